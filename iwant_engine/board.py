"""The room's board: what is wanted today and tomorrow, at a glance (``!iwant board``).

Open groups with their meeting time and free places (and the command that joins), waiting
wishes as counts per hour, and the reader's own waiting wishes, marked as theirs. Counts and
times only, never who; everyone kept apart from the reader by an ignore (either way) is left
out, a group with such a member left out whole, so that no number on the board, in a near
miss or in a group's free places differs by the hidden person.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from . import messages as msg
from .model import NearbyRows, OpenRequest, Status, StoredGroup, StoredRequest, Suggestion

#: Lines of the board at most (headings count), besides its title: readable on a phone.
MAX_LINES = 12
ROWS_LIMIT = 200


def visible(rows: NearbyRows, reader: str) -> tuple[list[StoredGroup], list[StoredRequest]]:
    """The groups and waiting wishes the reader may see counted."""
    blocked = {p for pair in rows.apart for p in pair} - {reader}
    groups = [g for g in rows.groups if not any(m.person in blocked for m in g.members)]
    waiting = [r for r in rows.waiting if r.person not in blocked]
    return groups, waiting


def render(
    rows: NearbyRows,
    reader: str,
    mine: Sequence[OpenRequest],
    zone: ZoneInfo,
    now: datetime,
    where: str,
    own: Sequence[OpenRequest] = (),
    activity: str = "",
) -> tuple[str, list[dict[str, str]]]:
    """The board's text and its join buttons. ``own``: the reader's waiting wishes to show
    (the rows hold other people's only); ``activity``: the one the board was asked for."""
    groups, waiting = visible(rows, reader)
    by_activity: dict[str, list[tuple[datetime, str, dict[str, str] | None]]] = defaultdict(list)
    for item in own:
        begin = max(item.earliest, now)
        when = f"{_day(begin, zone, now)} {msg.clock(begin, zone)}–{msg.clock(item.latest, zone)}"
        by_activity[item.activity].append((begin, f"{when}: your wish, waiting", None))
    for g in groups:
        r = g.result
        assert r.start is not None and r.end is not None
        when = f"{_day(r.start, zone, now)} {msg.clock(r.start, zone)}–{msg.clock(r.end, zone)}"
        free = r.max_size - len(g.members)
        if any(m.person == reader for m in g.members):
            by_activity[r.activity].append(
                (r.start, f"{when}: your group of {len(g.members)}", None)
            )
            continue
        if free <= 0:
            text = f"{when}: a group of {len(g.members)}, full"
            by_activity[r.activity].append((r.start, text, None))
            continue
        replaces = _replaces(mine, r.activity, r.start, r.end)
        suggestion = Suggestion(r.start, r.end, len(g.members), timedelta(0), r.id)
        command = msg.suggestion_command(suggestion, r.activity, zone, now, replaces)
        places = "1 place" if free == 1 else f"{free} places"
        text = f"{when}: a group of {len(g.members)}, {places} free; !{command} joins"
        button = {"label": f"Join {r.activity} {msg.clock(r.start, zone)}", "command": command}
        by_activity[r.activity].append((r.start, text, button))
    hours: Counter[tuple[str, datetime]] = Counter()
    for w in waiting:
        local = w.earliest.astimezone(zone).replace(minute=0, second=0, microsecond=0)
        this_hour = now.astimezone(zone).replace(minute=0, second=0, microsecond=0)
        hours[(w.activity, max(local, this_hour))] += 1
    for (activity, hour), count in hours.items():
        end = hour + timedelta(hours=1)
        when = f"{_day(hour, zone, now)} {hour:%H:%M}–{end:%H:%M}"
        who = "someone waiting" if count == 1 else f"{count} people waiting"
        by_activity[activity].append((hour, f"{when}: {who}", None))
    if not by_activity:
        start = f"!iwant {activity}" if activity else "!iwant coffee"
        return f"Nothing is wanted {where} today or tomorrow yet. Start something: {start}", []
    lines = [f"Today and tomorrow {where} ({zone.key} time):"]
    buttons: list[dict[str, str]] = []
    shown = 0
    total = sum(len(items) for items in by_activity.values())
    for activity in sorted(by_activity, key=lambda a: min(t for t, _, _ in by_activity[a])):
        if len(lines) > MAX_LINES - 1:  # a heading needs a line under it
            break
        lines.append(f"{activity}:")
        for _, text, join in sorted(by_activity[activity], key=lambda item: item[0]):
            if len(lines) > MAX_LINES:
                break
            lines.append(f"· {text}")
            shown += 1
            if join is not None:
                buttons.append(join)
    if shown < total:
        lines.append(f"… and {total - shown} more; !iwant board coffee shows one activity.")
    return "\n".join(lines), buttons


def _day(moment: datetime, zone: ZoneInfo, now: datetime) -> str:
    days = (moment.astimezone(zone).date() - now.astimezone(zone).date()).days
    return "today" if days <= 0 else "tomorrow" if days == 1 else msg.day(moment, zone)


def _replaces(
    mine: Sequence[OpenRequest], activity: str, start: datetime, end: datetime
) -> int | None:
    """The reader's waiting wish that joining this meeting would clash with, if any."""
    for item in mine:
        clash = item.earliest < end and start < item.latest
        if item.activity == activity and item.status == Status.PENDING and clash:
            return item.request_id
    return None
