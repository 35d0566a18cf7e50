"""Builders of what a strategy's decide function is handed, for hand-written unit tests.

Import them from ``iwant_engine.testing``::

    from iwant_engine.model import Form
    from iwant_engine.testing import at, candidate, match_context, wish

    alice = wish("alice", "coffee", "10:00-11:00", max=3)
    bob = candidate("bob", "10:30-11:30", id=1)
    assert decide(alice, [bob], [], match_context(now="09:00")) == Form((1,), at("10:30"))

Times are ``"HH:MM"`` on the kit's day (Tue 1 Dec 2026, UTC, the day of ``START``) or
datetimes (a naive one is read as UTC). A window is ``"HH:MM-HH:MM"``, one time for a window
exactly one meeting long (as ``!iwant coffee 10:00`` means), or a (start, end) pair. People
are names: ``"alice"`` is the person id ``kit:@alice``, as in ``replay``; a name with a ``:``
is taken as the id itself.

The defaults are the engine's: an activity's length and ``max`` from the default
``plugins.cfg`` (coffee: 15 minutes, max 6; lunch: 45 minutes, max 8; any other word: 30
minutes, max 6), ``min`` 2, the deadline at the last possible start, the pool ``kit:dm``
(said outside a room), now 09:00, no settings, no match history (``history``, ``last_met``),
nobody ignoring anyone.
"""

from __future__ import annotations

import builtins
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from . import outcomes
from . import settings as settings_mod
from .model import Candidate, MatchContext, OpenGroup, Outcome, PastMeeting, Person, Wish

#: Where the kit's clock starts, and the day of every ``"HH:MM"``.
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

Time = str | datetime
Window = str | datetime | tuple[Time, Time]

_HHMM = re.compile(r"(\d{1,2}):(\d\d)")


def at(time: Time) -> datetime:
    """``"10:30"`` on the kit's day, as an aware UTC datetime (a datetime: in UTC).

    >>> at("10:30")
    datetime.datetime(2026, 12, 1, 10, 30, tzinfo=datetime.timezone.utc)
    """
    if isinstance(time, datetime):
        return time.replace(tzinfo=UTC) if time.tzinfo is None else time.astimezone(UTC)
    found = _HHMM.fullmatch(time.strip())
    if found is None or int(found[1]) > 23 or int(found[2]) > 59:
        raise ValueError(f"a time is HH:MM (or a datetime), not {time!r}")
    return START.replace(hour=int(found[1]), minute=int(found[2]))


def person(name: str) -> Person:
    """The person a name stands for: ``person("bob") == Person("kit:@bob", "bob")``."""
    if ":" in name:
        return Person(name, name.split(":", 1)[1].lstrip("@"))
    return Person(f"kit:@{name.lower()}", name)


def wish(
    person: str,
    activity: str = "coffee",
    when: Window = "10:00-11:00",
    *,
    max: int | None = None,
    min: int = 2,
    by: Time | None = None,
    pool: str = "kit:dm",
) -> Wish:
    """What ``person`` asked for, as the engine hands it to a strategy: ``wish("alice",
    "lunch", "12:00-13:30", max=3, by="11:30")`` is ``!iwant lunch 12:00-13:30 max 3 by
    11:30``. ``pool``: ``kit:r1`` for a wish said in room ``r1``."""
    length, largest = _activity(activity)
    earliest, latest = _window(when, length)
    return Wish(
        _id(person),
        pool,
        activity,
        earliest,
        latest,
        at(by) if by is not None else latest - length,
        length,
        max if max is not None else largest,
        min,
    )


def candidate(
    person: str,
    when: Window = "10:00-11:00",
    *,
    id: int,
    activity: str = "coffee",
    max: int | None = None,
    min: int = 2,
    by: Time | None = None,
    created: Time = START,
) -> Candidate:
    """Someone else's waiting request, with its request id: ``candidate("bob", "10:30-11:30",
    id=1, max=2)``. ``activity`` gives its length and default ``max`` (a candidate has the
    wish's activity); ``created``: when it was asked for (candidates asked for earlier have
    waited longer)."""
    length, largest = _activity(activity)
    earliest, latest = _window(when, length)
    return Candidate(
        id,
        _id(person),
        earliest,
        latest,
        at(by) if by is not None else latest - length,
        max if max is not None else largest,
        at(created),
        min,
    )


def open_group(
    start: Time,
    members: Sequence[Candidate],
    *,
    id: int,
    activity: str = "coffee",
    max: int | None = None,
) -> OpenGroup:
    """A formed group meeting at ``start`` whose ``members`` (candidates, in the order they
    entered) are its requests: ``open_group("10:30", [bob, carol], id=7)``. Its ``max`` is,
    as the engine keeps it, the smallest of its members' unless given."""
    if len(members) < 2:
        raise ValueError("a formed group has two or more members")
    begin = at(start)
    length, _ = _activity(activity)
    cap = max if max is not None else builtins.min(m.max_size for m in members)
    return OpenGroup(id, begin, begin + length, cap, tuple(members))


def match_context(
    now: Time = START,
    *,
    activity: str = "coffee",
    settings: Mapping[str, str] | None = None,
    last_met: Mapping[str, Time] | None = None,
    apart: Iterable[tuple[str, str]] = (),
    history: Mapping[str, Sequence[tuple[Time, Outcome | str]]] | None = None,
) -> MatchContext:
    """The context of a decision: ``match_context(now="09:40", settings={"min_size": "3"},
    last_met={"bob": datetime(2026, 11, 24, 10, 0)}, apart=[("bob", "carol")])``.
    ``last_met``: a name to the start of the requester's last meeting with them;
    ``apart``: pairs of names of whom one ignores the other. The engine never offers someone
    the requester ignores (or is ignored by), so ``apart`` matters between candidates.
    ``history``: a name to the groups the requester shared with them, each (start, outcome:
    an ``Outcome`` or ``"met"``, ``"not met"``, ``"unknown"``), in any order:
    ``history={"bob": [(datetime(2026, 11, 24, 10, 0), "not met")]}``; without ``last_met``,
    it is derived from it as the engine does (a group not met does not count)."""
    length, _ = _activity(activity)
    past = {
        _id(name): tuple(
            sorted(
                (PastMeeting(at(start), Outcome(outcome)) for start, outcome in meetings),
                key=lambda m: m.start,
                reverse=True,
            )
        )
        for name, meetings in (history or {}).items()
    }
    met = (
        {_id(name): at(moment) for name, moment in last_met.items()}
        if last_met is not None
        else outcomes.last_met(past)
    )
    return MatchContext(
        at(now),
        length,
        dict(settings or {}),
        met,
        frozenset(frozenset((_id(a), _id(b))) for a, b in apart),
        past,
    )


def _id(name: str) -> str:
    return person(name).id


@functools.cache
def _activity(name: str) -> tuple[timedelta, int]:
    """An activity's length and default ``max`` under the default ``plugins.cfg``."""
    found = settings_mod.parse_cfg(settings_mod.DEFAULT_CFG, {}).activity(name)
    if found is None:  # pragma: no cover - the default configuration takes any word
        raise ValueError(f"no activity {name!r}")
    return found.length, found.max_size


def _window(when: Window, length: timedelta) -> tuple[datetime, datetime]:
    if isinstance(when, tuple):
        return at(when[0]), at(when[1])
    if isinstance(when, datetime):
        return at(when), at(when) + length
    first, dash, last = when.partition("-")
    start = at(first)
    if not dash:
        return start, start + length
    end = at(last)
    return start, end if end > start else end + timedelta(days=1)
