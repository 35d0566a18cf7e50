"""A person's data in their hands, and retention: what iwant keeps ends.

``!iwant export`` gives a person everything iwant keeps about them as one JSON document
(``SCHEMA``); other people appear in it only by display name, in the groups the person was
in. ``!iwant forget me`` deletes it all after a confirmation (``Privacy.forget_me``).
Retention (``Privacy.purge``) deletes what is finished and older than ``[limits]
retention_days``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from . import matching
from . import messages as msg
from .clock import Clock
from .delivery import Delivery
from .errors import UserError
from .grammar import day_names
from .identity import Identity, check_person
from .model import Person, PersonData, PersonInfo
from .requests import Requests
from .settings import Settings
from .storage.protocol import Storage

#: Retention (``purge``) runs at most this often in one process.
PURGE_EVERY = timedelta(minutes=10)
PURGE_BATCH = 500

SCHEMA = "iwant-export/1"


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _meeting(start: datetime | None, end: datetime | None) -> list[str | None] | None:
    return [_time(start), _time(end)] if start else None


def document(
    data: PersonData,
    person_id: str,
    now: datetime,
    accounts: Sequence[str] = (),
    zone: str | None = None,
    names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The export of ``data`` as plain JSON values, times in UTC (ISO 8601); ``accounts``:
    the person's other accounts (``!iwant link``); ``zone``: the person's time zone now (their
    own, their platform's or the default), which their standing wishes' days follow;
    ``names``: display names of the people their answers say did not come."""
    info = data.person
    names = names or {}
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
                "meeting": _meeting(res.start, res.end)
                or _meeting(*data.left.get(res.id, (None, None))),
                "with": list(data.groups.get(r.result_id, ())) if r.result_id else [],
            }
            for r, res in data.requests
        ],
        "standing_wishes": [
            {
                "wish": w.text,
                "every": day_names(w.days),
                "timezone": zone,  # each day's time is read in the person's zone then
                "next_day": w.next_day.isoformat(),
                "paused_until": w.paused_until.isoformat() if w.paused_until else None,
                "skipping": sorted(d.isoformat() for d in w.skips),
                "ended_at": _time(w.ended_at),
            }
            for w in data.standing
        ],
        "did_you_meet_questions": "off" if info and info.feedback_off else "on",
        "did_you_meet": [
            {
                "group": q.result_id,
                "asked_at": _time(q.asked_at),
                "expires_at": _time(q.expires_at),
                "answer": None if q.answer is None else str(q.answer),
                "did_not_come": [names.get(p, p.split(":", 1)[-1]) for p in q.absent],
                "answered_at": _time(q.answered_at),
            }
            for q in data.questions
        ],
        "calendar": None
        if data.calendar is None
        else {
            "provider": data.calendar.provider,
            "address": data.calendar.shown,  # masked: the address is a password
            "linked_at": _time(data.calendar.linked_at),
            "last_read_at": _time(data.calendar.last_ok_at),
            "failing_since": _time(data.calendar.failing_since),
        },
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
        'zone, your name, your linked calendar and your answers to "Did you meet?". Other '
        "people's ignore lists are theirs and stay. To go ahead: "
        f"!iwant forget me confirm within {FORGET_WINDOW_MINUTES} minutes."
    )


def forgotten(counts: Mapping[str, int]) -> str:
    parts = [
        f"{counts.get('requests', 0)} requests",
        f"{counts.get('standing', 0)} standing wishes",
        f"{counts.get('ignores', 0)} ignore entries",
        f"{counts.get('outbox', 0)} notifications",
        f"{counts.get('questions', 0)} questions whether you met",
        f"{counts.get('calendars', 0)} linked calendars",
    ]
    return (
        f"Done: I deleted {', '.join(parts)}, and your name and time zone. If someone ignores "
        "you, that entry is theirs and stays. I have nothing else about you."
    )


class Privacy:
    """Export and forgetting, on a person's command or an admin's; and retention."""

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        settings: Settings,
        identity: Identity,
        requests: Requests,
        delivery: Delivery,
    ) -> None:
        """``requests``: cancels a forgotten person's open requests (the others are told);
        ``delivery``: its idle budgets go at retention time."""
        self.storage = storage
        self.clock = clock
        self.settings = settings
        self.identity = identity
        self.requests = requests
        self.delivery = delivery
        self._next_purge = 0.0  # time.monotonic() of this process's next retention round

    def export(self, person: Person) -> str:
        """``!iwant export``: everything iwant keeps about the person, as a JSON document."""
        check_person(person)
        who = self.identity.as_person(person).id
        data = self.storage.person_data(who)
        linked = self.storage.accounts(who)
        for account in linked:  # what is kept per account: standing wishes, notifications
            more = self.storage.person_data(account)
            data = dataclasses.replace(
                data,
                standing=data.standing + more.standing,
                undelivered=data.undelivered + more.undelivered,
            )
        accounts = [a for a in [who, *linked] if a != person.id]
        zone = self.identity.zone_of(person).key
        absent = sorted({p for q in data.questions for p in q.absent})
        names = dict(zip(absent, self.identity.display_names(absent), strict=True))
        return as_json(document(data, person.id, self.clock.now(), accounts, zone, names))

    def forget_me(self, person: Person, args: str = "") -> msg.Note:
        """``!iwant forget me``, then ``!iwant forget me confirm`` within five minutes."""
        check_person(person)
        words = args.lower().split()
        now = self.clock.now()
        if words == ["me"]:
            with self.storage.transaction() as uow:
                uow.add_person(PersonInfo(person.id, person.name[: matching.NAME_MAX]))
                uow.ask_to_forget(person.id, now)
            button = {"label": "Forget me", "command": "iwant forget me confirm"}
            return msg.Note(person.id, asked(), [button])
        if words != ["me", "confirm"]:
            raise UserError("To delete everything iwant keeps about you: !iwant forget me")
        with self.storage.transaction() as uow:
            asked_at = uow.ask_to_forget(person.id, None)
        window = timedelta(minutes=FORGET_WINDOW_MINUTES)
        if asked_at is None or asked_at < now - window:
            raise UserError(
                f"Say !iwant forget me first, then confirm within {FORGET_WINDOW_MINUTES} minutes."
            )
        return msg.Note(person.id, forgotten(self.forget(person.id, person.name)))

    def forget(self, person_id: str, name: str | None = None) -> dict[str, int]:
        """Delete the person and everything that is theirs, all their linked accounts too
        (their open requests cancelled first, so the others in them are told); rows deleted
        per table. For ``!iwant forget me`` and for an admin (``iwant forget PERSON_ID``)."""
        stored = self.storage.person(person_id)
        main = stored.canonical if stored and stored.canonical else person_id
        ids = [main, *self.storage.accounts(main)]
        known = self.storage.people(ids)
        now = self.clock.now()
        # Ordered by lock, so that two such transactions never wait on each other in a ring.
        open_requests = sorted(
            self.storage.open_requests(main, now), key=lambda item: (item.pool, item.activity)
        )
        counts: Counter[str] = Counter()
        # One transaction: the notes telling the others that their group lost someone are
        # made nameless below before any process can deliver them.
        with self.storage.transaction() as uow:
            for item in open_requests:
                try:
                    self.requests.cancel_within(uow, main, item.request_id, now)
                except UserError:
                    continue  # it ended meanwhile; nothing was written
            for each in ids:
                shown = known[each].name if each in known else (name or each.split(":")[-1])
                counts.update(uow.forget(each, shown, partial(msg.unnamed, name=shown)))
        self.identity.forget_caches()
        return dict(counts)

    def purge(self, limit: int = PURGE_BATCH, force: bool = False) -> int:
        """Delete finished requests, unused results and sent notifications older than
        ``[limits] retention_days``; how many rows. A sweep's job, done at most every
        ``PURGE_EVERY`` in one process (``force``: now, whenever the last round was)."""
        if not force and time.monotonic() < self._next_purge:
            return 0
        self._next_purge = time.monotonic() + PURGE_EVERY.total_seconds()
        before, total = self.clock.now() - self.settings.retention, 0
        for _ in range(20):  # bounded: the rest waits for the next round
            with self.storage.transaction() as uow:
                deleted = uow.purge(before, limit)
            total += deleted
            if deleted < limit:
                break
        # Delivery budgets not touched for an hour have refilled: as good as never stored.
        return total + self.delivery.forget_idle_budgets()
