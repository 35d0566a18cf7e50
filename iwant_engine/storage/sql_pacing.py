"""Delivery pacing in the SQL storage: the budgets of ``iwant_engine.pacing`` and giving a
claimed outbox row back.

On PostgreSQL every process of a bot shares one row per scope in ``pacing``, locked while a
process reserves a slot; SQLite serves one process, so its budgets stay in memory. The
arithmetic (what a slot is, what fits) is the engine's ``pacing.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from ..pacing import PaceBook, Step
from .sql_rows import OUTBOX, PACING, still_leased

_ADD = (
    pg_insert(PACING)
    .values(key=bindparam("key"), at=0.0)
    .on_conflict_do_nothing(index_elements=[PACING.c.key])
)
_READ = (
    select(PACING.c.key, PACING.c.at)
    .where(PACING.c.key.in_(bindparam("keys", expanding=True)))
    .order_by(PACING.c.key)
    .with_for_update()
)
_WRITE = update(PACING).where(PACING.c.key == bindparam("k")).values(at=bindparam("v"))


class PacingStore:
    """``Storage.pace`` and ``Storage.release`` (mixed into ``SQLStorage``)."""

    engine: Any
    is_sqlite: bool
    _guard: Any
    _book: PaceBook | None  # SQLite's budgets (set by SQLStorage), None on PostgreSQL

    def pace(self, keys: Sequence[str], step: Step) -> None:
        if self._book is not None:  # SQLite
            self._book.pace(keys, step)
            return
        ordered = sorted(set(keys))
        with self._guard(), self.engine.begin() as conn:
            # Rows first (in key order, as every process does, so two never deadlock), then
            # held until the commit: what ``step`` reads is what no one else changes.
            conn.execute(_ADD, [{"key": k} for k in ordered])
            at = {k: float(v) for k, v in conn.execute(_READ, {"keys": ordered})}
            changed = step({k: v for k, v in at.items() if v > 0.0})
            if changed:
                conn.execute(_WRITE, [{"k": k, "v": v} for k, v in sorted(changed.items())])

    def forget_paces(self, before: float) -> int:
        if self._book is not None:
            return self._book.forget_paces(before)
        with self._guard(), self.engine.begin() as conn:
            return int(conn.execute(delete(PACING).where(PACING.c.at < before)).rowcount or 0)

    def release(self, outbox_id: int, retry_at: datetime, lease: datetime | None = None) -> None:
        with self._guard(), self.engine.begin() as conn:
            conn.execute(
                update(OUTBOX)
                .where(still_leased(outbox_id, lease))
                .values(
                    claimed_until=None, next_attempt_at=retry_at, attempts=OUTBOX.c.attempts - 1
                )
            )
