"""What an operator asks of the SQL storage: is the database there, how deep is the outbox,
which processes are alive (their heartbeats in ``processes``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, text

from ..model import Beat, OutboxDepth
from .sql_rows import OUTBOX, PROCESSES

_BEAT_COLUMNS = (
    "process", "platform", "version", "started_at", "seen_at", "last_429_at", "last_429_seconds",
)  # fmt: skip


class OperationsStore:
    """``Storage.ping``, ``outbox_depths`` and the heartbeats (mixed into ``SQLStorage``)."""

    engine: Any
    _guard: Any
    _read: Any
    _insert: Any

    def ping(self) -> None:
        with self._read() as conn:
            conn.execute(text("SELECT 1"))

    def outbox_depths(self) -> list[OutboxDepth]:
        # The predicate of the partial index ix_outbox_due, grouped by its first column.
        with self._read() as conn:
            rows = conn.execute(
                select(OUTBOX.c.platform, func.count(), func.min(OUTBOX.c.created_at))
                .where(OUTBOX.c.delivered_at.is_(None), OUTBOX.c.failed_at.is_(None))
                .group_by(OUTBOX.c.platform)
                .order_by(OUTBOX.c.platform)
            ).all()
        return [OutboxDepth(platform, int(n), oldest) for platform, n, oldest in rows]

    def beat(self, beat: Beat, forget_before: datetime) -> None:
        values = {name: getattr(beat, name) for name in _BEAT_COLUMNS}
        upsert = self._insert(PROCESSES).values(**values)
        upsert = upsert.on_conflict_do_update(
            index_elements=[PROCESSES.c.process],
            set_={name: upsert.excluded[name] for name in _BEAT_COLUMNS[1:]},
        )
        with self._guard(), self.engine.begin() as conn:
            conn.execute(upsert)
            conn.execute(delete(PROCESSES).where(PROCESSES.c.seen_at < forget_before))

    def beats(self, since: datetime) -> list[Beat]:
        with self._read() as conn:
            rows = conn.execute(
                select(*(PROCESSES.c[name] for name in _BEAT_COLUMNS))
                .where(PROCESSES.c.seen_at >= since)
                .order_by(PROCESSES.c.process)
            ).all()
        return [Beat(*row) for row in rows]

    def drop_beat(self, process: str) -> None:
        with self._guard(), self.engine.begin() as conn:
            conn.execute(delete(PROCESSES).where(PROCESSES.c.process == process))
