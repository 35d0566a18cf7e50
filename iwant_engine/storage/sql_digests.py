"""Weekly digests in the SQL storage: the ``digests`` table, one row per room that gets one.

Mixed into ``SQLWork`` and ``SQLStorage``; when a digest is due and what it says are the
engine's (``digests.py``). A due digest is claimed like the outbox's rows are: ``FOR UPDATE
SKIP LOCKED`` on PostgreSQL, SQLite's write lock elsewhere, so one process alone sends it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Row

from ..model import DigestRoom
from .sql_rows import DIGESTS


def _digest_of(row: Row[Any]) -> DigestRoom:
    return DigestRoom(row.room, row.pool, row.next_at, row.last_sent_at)


class DigestWork:
    """Digests inside a unit of work (``SQLWork`` provides ``_run`` and ``pg``)."""

    pg: bool
    _run: Callable[..., Any]

    def digest(self, room: str) -> DigestRoom | None:
        stmt = select(DIGESTS).where(DIGESTS.c.room == room)
        if self.pg:
            stmt = stmt.with_for_update()
        row = self._run(stmt).first()
        return None if row is None else _digest_of(row)

    def save_digest(self, digest: DigestRoom) -> None:
        values = {
            "pool": digest.pool,
            "next_at": digest.next_at,
            "last_sent_at": digest.last_sent_at,
        }
        done = self._run(update(DIGESTS).where(DIGESTS.c.room == digest.room).values(values))
        if not done.rowcount:
            self._run(insert(DIGESTS).values(room=digest.room, **values))

    def drop_digest(self, room: str) -> bool:
        return bool(self._run(delete(DIGESTS).where(DIGESTS.c.room == room)).rowcount)

    def due_digests(self, now: datetime, limit: int) -> list[DigestRoom]:
        stmt = (
            select(DIGESTS)
            .where(DIGESTS.c.next_at <= now)
            .order_by(DIGESTS.c.next_at, DIGESTS.c.room)
            .limit(limit)
        )
        if self.pg:
            stmt = stmt.with_for_update(skip_locked=True)
        return [_digest_of(row) for row in self._run(stmt)]


class DigestReads:
    """Reads that need no unit of work (``SQLStorage`` provides ``_read``)."""

    _read: Callable[[], AbstractContextManager[Connection]]

    def has_due_digests(self, now: datetime) -> bool:
        with self._read() as conn:
            stmt = select(DIGESTS.c.room).where(DIGESTS.c.next_at <= now).limit(1)
            return conn.execute(stmt).first() is not None
