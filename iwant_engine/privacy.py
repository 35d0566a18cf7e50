"""A person's data in their hands: the export document and the texts of forgetting.

``!iwant export`` gives a person everything iwant keeps about them as one JSON document
(``SCHEMA``); other people appear in it only by display name, in the groups the person was
in. ``!iwant forget me`` deletes it all after a confirmation (``Engine.forget_me``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from .grammar import day_names
from .model import PersonData

SCHEMA = "iwant-export/1"


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def document(
    data: PersonData, person_id: str, now: datetime, accounts: Sequence[str] = ()
) -> dict[str, Any]:
    """The export of ``data`` as plain JSON values, times in UTC (ISO 8601); ``accounts``:
    the person's other accounts (``!iwant link``)."""
    info = data.person
    return {
        "schema": SCHEMA,
        "exported_at": _time(now),
        "person": {
            "id": person_id,
            "display_name": info.name if info else None,
            "timezone": info.timezone if info else None,
            "platform_timezone": info.platform_timezone if info else None,
        },
        "linked_accounts": list(accounts),
        "requests": [
            {
                "id": r.id,
                "activity": r.activity,
                "pool": r.pool,
                "room": r.origin,
                "window": [_time(r.earliest), _time(r.latest)],
                "deadline": _time(r.deadline),
                "length_minutes": r.length_minutes,
                "max": r.max_size,
                "min": r.min_size,
                "status": str(r.status),
                "made_at": _time(r.created_at),
                "meeting": [_time(res.start), _time(res.end)] if res.start else None,
                "with": list(data.groups.get(r.result_id, ())),
            }
            for r, res in data.requests
        ],
        "standing_wishes": [
            {
                "wish": w.text,
                "every": day_names(w.days),
                "next_day": w.next_day.isoformat(),
                "paused_until": w.paused_until.isoformat() if w.paused_until else None,
                "skipping": sorted(d.isoformat() for d in w.skips),
                "ended_at": _time(w.ended_at),
            }
            for w in data.standing
        ],
        "ignores": list(data.ignores),
        "undelivered_notifications": [o.body for o in data.undelivered],
    }


def as_json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=1)


FORGET_WINDOW_MINUTES = 5


def asked() -> str:
    return (
        "This deletes everything iwant keeps about you: your requests (open ones are cancelled "
        "and the others in them told), your groups, standing wishes, whom you ignore, your time "
        "zone and your name. Other people's ignore lists are theirs and stay. To go ahead: "
        f"!iwant forget me confirm within {FORGET_WINDOW_MINUTES} minutes."
    )


def forgotten(counts: Mapping[str, int]) -> str:
    parts = [
        f"{counts.get('requests', 0)} requests",
        f"{counts.get('standing', 0)} standing wishes",
        f"{counts.get('ignores', 0)} ignore entries",
        f"{counts.get('outbox', 0)} notifications",
    ]
    return (
        f"Done: I deleted {', '.join(parts)}, and your name and time zone. If someone ignores "
        "you, that entry is theirs and stays. I have nothing else about you."
    )
