"""Linked calendars in the SQL storage: the ``calendars`` row of each person (address sealed
by the engine) and the ``busy_blocks`` its latest good read left.

Mixed into ``SQLWork`` (a unit of work) and ``SQLStorage``; when to read a calendar, what a
failure means and what busy time does to a wish are the engine's (``calendar_service.py``,
``busy_times.py``). Background refreshes are claimed like the outbox: ``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, then a lease (``claimed_until``) that outlives the unit of work,
since a feed is read outside any transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, or_, select, update
from sqlalchemy.engine import Connection, Row

from ..model import LinkedCalendar, Span
from .compiled import Prepared, Runner
from .sql_rows import BUSY, CALENDARS

COLUMNS = (
    "person", "provider", "sealed", "shown", "linked_at", "next_refresh_at", "last_ok_at",
    "failing_since", "told_failing_at", "claimed_until",
)  # fmt: skip


#: A person's busy blocks overlapping a span: read on every wish of someone with a calendar,
#: so compiled once and run on the driver's cursor, as the hot path's statements are.
_BUSY = (
    select(BUSY.c.start, BUSY.c.end)
    .where(
        BUSY.c.person == bindparam("person"),
        BUSY.c.end > bindparam("start"),
        BUSY.c.start < bindparam("end"),
    )
    .order_by(BUSY.c.start, BUSY.c.end)
)


def calendar_of(row: Row[Any]) -> LinkedCalendar:
    return LinkedCalendar(*(getattr(row, name) for name in COLUMNS))


def _due(now: datetime) -> Any:
    free = or_(CALENDARS.c.claimed_until.is_(None), CALENDARS.c.claimed_until <= now)
    return select(CALENDARS.c.person).where(CALENDARS.c.next_refresh_at <= now, free)


class CalendarWork:
    """Calendars inside a unit of work (``SQLWork`` provides ``_run`` and ``pg``)."""

    pg: bool
    _run: Callable[..., Any]

    def calendar(self, person: str) -> LinkedCalendar | None:
        stmt = select(CALENDARS).where(CALENDARS.c.person == person)
        if self.pg:
            stmt = stmt.with_for_update()
        row = self._run(stmt).first()
        return None if row is None else calendar_of(row)

    def save_calendar(self, calendar: LinkedCalendar, busy: Sequence[Span] | None = None) -> None:
        values = {name: getattr(calendar, name) for name in COLUMNS}
        where = CALENDARS.c.person == calendar.person
        if self._run(update(CALENDARS).where(where).values(**values)).rowcount == 0:
            self._run(insert(CALENDARS).values(**values))
        if busy is not None:
            self._run(delete(BUSY).where(BUSY.c.person == calendar.person))
            rows = [{"person": calendar.person, "start": s, "end": e} for s, e in busy]
            if rows:
                self._run(insert(BUSY), rows)

    def drop_calendar(self, person: str) -> bool:
        self._run(delete(BUSY).where(BUSY.c.person == person))
        return bool(self._run(delete(CALENDARS).where(CALENDARS.c.person == person)).rowcount)

    def due_calendars(self, now: datetime, limit: int, until: datetime) -> list[LinkedCalendar]:
        claim = _due(now).order_by(CALENDARS.c.next_refresh_at, CALENDARS.c.person).limit(limit)
        if self.pg:
            claim = claim.with_for_update(skip_locked=True)
        people = list(self._run(claim).scalars())
        if not people:
            return []
        rows = self._run(
            update(CALENDARS)
            .where(CALENDARS.c.person.in_(people))
            .values(claimed_until=until)
            .returning(CALENDARS)
        ).all()
        return sorted((calendar_of(r) for r in rows), key=lambda c: (c.next_refresh_at, c.person))


class CalendarReads:
    """Reads that need no unit of work (``SQLStorage`` provides ``_read``)."""

    _read: Callable[[], AbstractContextManager[Connection]]

    _busy: Prepared | None = None

    def busy(self, person: str, start: datetime, end: datetime) -> list[Span]:
        with self._read() as conn:
            if self._busy is None:
                self._busy = Prepared(_BUSY, conn.dialect)
            rows = Runner(conn).rows(self._busy, {"person": person, "start": start, "end": end})
            return [(s, e) for s, e in rows]

    def calendar_people(self) -> list[str]:
        with self._read() as conn:
            return list(conn.scalars(select(CALENDARS.c.person)))

    def has_due_calendars(self, now: datetime) -> bool:
        with self._read() as conn:
            return conn.execute(_due(now).limit(1)).first() is not None
