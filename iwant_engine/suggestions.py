"""``nearest-miss``: the built-in suggestion rule (hook ``iwant_suggestions``).

For a wish that waits, the nearest ways to meet that a small change would make:

- other people's waiting wishes whose window overlaps it by less than the activity's length,
  or lies up to an hour before or after it: the meeting slot inside their windows nearest to
  the wish's window, with how many of them fit that slot;
- an open group whose meeting starts up to an hour outside the window, with room;
- an open group inside the window that is full only for the wish's own ``max``.

Registered like a third-party plugin (``plugins.BUILTINS``); a strategy package can add its
own rule through the same hook.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from .hookspecs import hookimpl
from .model import Candidate, MatchContext, Nearby, Suggestion, Wish

ZERO = timedelta(0)


def _outside(start: datetime, wish: Wish, length: timedelta) -> timedelta:
    """How far a meeting from ``start`` lies outside ``wish``'s window (zero: inside)."""
    if start < wish.earliest:
        return wish.earliest - start
    return max(ZERO, start + length - wish.latest)


def _first_minute(now: datetime) -> datetime:
    minute = now.replace(second=0, microsecond=0)
    return minute if minute == now else minute + timedelta(minutes=1)


def _slot(c: Candidate, length: timedelta, now: datetime) -> tuple[datetime, datetime] | None:
    """The earliest and latest start of a meeting inside ``c``'s window, not before now."""
    first = max(c.earliest, _first_minute(now))
    last = c.latest - length
    return (first, last) if first <= last and c.deadline >= first else None


def from_wishes(
    wish: Wish, wishes: Sequence[Candidate], margin: timedelta, ctx: MatchContext
) -> list[Suggestion]:
    length, found = ctx.length, []
    slots = {c.request_id: s for c in wishes if (s := _slot(c, length, ctx.now))}
    starts = set()
    for first, last in slots.values():
        # The start nearest to the wish's window: its own start clamped into the slot.
        starts.add(min(max(wish.earliest, first), last))
    for start in sorted(starts):
        distance = _outside(start, wish, length)
        if distance == ZERO or distance > margin:
            continue  # one that fits was the strategy's to pair; one too far is no near miss
        fitting = [c for c in wishes if c.request_id in slots and _fits(slots[c.request_id], start)]
        cap = min([wish.max_size, *(c.max_size for c in fitting)]) - 1
        people = min(len(fitting), cap)
        if people >= max([1, *(c.min_size - 1 for c in fitting), wish.min_size - 1]):
            found.append(Suggestion(start, start + length, people, distance))
    return found


def _fits(slot: tuple[datetime, datetime], start: datetime) -> bool:
    return slot[0] <= start <= slot[1]


def nearest_miss(wish: Wish, nearby: Nearby, ctx: MatchContext) -> list[Suggestion]:
    found = from_wishes(wish, nearby.wishes, nearby.margin, ctx)
    for g in nearby.groups:
        if g.start < ctx.now:
            continue
        size = len(g.members)
        distance = _outside(g.start, wish, g.end - g.start)
        if size >= g.max_size or distance > nearby.margin:
            continue
        if distance > ZERO and size + 1 <= wish.max_size:
            found.append(Suggestion(g.start, g.end, size, distance, g.result_id))
        elif distance == ZERO and size + 1 > wish.max_size:
            found.append(Suggestion(g.start, g.end, size, ZERO, g.result_id, size + 1))
    return sorted(found, key=lambda s: (s.distance, s.start, -s.people))


@hookimpl
def iwant_suggestions(wish: Wish, nearby: Nearby, ctx: MatchContext) -> list[Suggestion]:
    return nearest_miss(wish, nearby, ctx)
