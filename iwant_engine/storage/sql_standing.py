"""Standing wishes in the SQL storage: the ``standing`` table's part of the protocol.

Mixed into ``SQLWork`` (a unit of work) and ``SQLStorage``; every rule about when a day's
wish is made is the engine's (``standing.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date, datetime
from typing import Any

from sqlalchemy import Executable, insert, select, update
from sqlalchemy.engine import Connection, Row

from ..model import Standing
from .sql_rows import STANDING


def _mask(days: frozenset[int]) -> int:
    return sum(1 << d for d in days)


def _skips(skips: frozenset[date]) -> str:
    return " ".join(sorted(d.isoformat() for d in skips))


def standing_of(row: Row[Any]) -> Standing:
    return Standing(
        row.id,
        row.person,
        row.pool,
        row.origin,
        row.activity,
        row.text,
        frozenset(d for d in range(7) if row.days >> d & 1),
        row.created_at,
        row.next_day,
        row.create_at,
        row.paused_until,
        frozenset(date.fromisoformat(d) for d in row.skips.split()),
        row.ended_at,
    )


class StandingWork:
    """Standing wishes inside a unit of work (``SQLWork`` provides ``_run`` and ``pg``)."""

    pg: bool
    _run: Callable[..., Any]

    def add_standing(self, standing: Standing) -> int:
        s = standing
        stmt = insert(STANDING).values(
            person=s.person, pool=s.pool, origin=s.origin, activity=s.activity, text=s.text,
            days=_mask(s.days), created_at=s.created_at, next_day=s.next_day,
            create_at=s.create_at, paused_until=s.paused_until, skips=_skips(s.skips),
            ended_at=s.ended_at,
        )  # fmt: skip
        return int(self._run(stmt.returning(STANDING.c.id)).scalar_one())

    def standing(self, person: str, *, claim: bool = False) -> list[Standing]:
        stmt: Any = (
            select(STANDING)
            .where(STANDING.c.person == person, STANDING.c.ended_at.is_(None))
            .order_by(STANDING.c.id)
        )
        if claim and self.pg:
            stmt = stmt.with_for_update()
        return [standing_of(r) for r in self._run(stmt)]

    def save_standing(self, standing: Standing) -> None:
        s = standing
        self._run(
            update(STANDING)
            .where(STANDING.c.id == s.id)
            .values(
                next_day=s.next_day,
                create_at=s.create_at,
                paused_until=s.paused_until,
                skips=_skips(s.skips),
                ended_at=s.ended_at,
            )
        )

    def due_standing(self, now: datetime, limit: int) -> list[Standing]:
        stmt: Any = (
            select(STANDING)
            .where(STANDING.c.create_at <= now)
            .order_by(STANDING.c.create_at, STANDING.c.id)
            .limit(limit)
        )
        if self.pg:
            stmt = stmt.with_for_update(skip_locked=True)
        return [standing_of(r) for r in self._run(stmt)]


class StandingReads:
    """Reads of standing wishes that need no unit of work (``SQLStorage`` provides
    ``_read``)."""

    _read: Callable[[], AbstractContextManager[Connection]]

    def has_due_standing(self, now: datetime) -> bool:
        stmt: Executable = select(STANDING.c.id).where(STANDING.c.create_at <= now).limit(1)
        with self._read() as conn:
            return conn.execute(stmt).first() is not None
