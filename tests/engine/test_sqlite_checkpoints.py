"""SQLite's write-ahead log is copied back into the database file by the storage's own
thread after every 32 commits (``Checkpointer``), not inside whichever submission's COMMIT
finds the log over 1,000 pages."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from iwant_engine.model import PersonInfo
from iwant_engine.storage.sql import SQLStorage
from iwant_engine.storage.sqlite_checkpoints import EVERY, Checkpointer

from ..support import wait_until


def _people_in_the_file(path: Path) -> int:
    """People stored in the database file itself: ``immutable`` reads it without the log."""
    with sqlite3.connect(f"file:{path}?immutable=1", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM people").fetchone()[0])


def test_commits_reach_the_database_file_through_the_checkpoint_thread(tmp_path: Path) -> None:
    path = tmp_path / "iwant.db"
    storage = SQLStorage(f"sqlite:///{path}")
    try:
        storage.migrate()
        checkpoints = storage._checkpoints
        assert checkpoints is not None
        for i in range(3 * EVERY):
            with storage.transaction() as uow:
                uow.save_person(PersonInfo(f"test:p{i}", f"P{i}"))
        # A checkpoint was asked for after the first 2 * EVERY of these commits at least
        # (migrating committed too): those rows reach the file itself. Without the thread the
        # log (about 300 pages here) would hold them all until it reached 1,000 pages.
        wait_until(lambda: _people_in_the_file(path) >= 2 * EVERY, 20, "the rows in the file")
        assert checkpoints.runs >= 2
    finally:
        storage.close()


class _Connection:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.statements: list[str] = []
        self.closed = False

    def execute(self, sql: str) -> Any:
        if self.fail:
            raise sqlite3.OperationalError("disk I/O error")
        self.statements.append(sql)
        return self

    def fetchall(self) -> list[Any]:
        return [(0, 0, 0)]

    def close(self) -> None:
        self.closed = True


def test_a_checkpoint_every_nth_commit_and_none_after_close() -> None:
    conn = _Connection()
    checkpoints = Checkpointer(lambda: conn, every=3)
    checkpoints.committed()
    checkpoints.committed()
    time.sleep(0.05)
    assert conn.statements == [] and checkpoints.runs == 0
    checkpoints.committed()
    wait_until(lambda: checkpoints.runs == 1, 20, "a checkpoint")
    assert conn.statements == ["PRAGMA wal_checkpoint(PASSIVE)"]
    checkpoints.close()
    assert conn.closed  # by the thread, as it ended
    for _ in range(6):
        checkpoints.committed()
    time.sleep(0.05)
    assert checkpoints.runs == 1


def test_a_failed_checkpoint_is_logged_and_the_next_one_connects_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    made = [_Connection(fail=True), _Connection()]
    opened: list[_Connection] = []

    def connect() -> _Connection:
        opened.append(made[len(opened)])
        return opened[-1]

    checkpoints = Checkpointer(connect, every=1)
    with caplog.at_level(logging.WARNING, logger="iwant_engine.storage.sqlite_checkpoints"):
        checkpoints.committed()
        wait_until(lambda: made[0].closed, 20, "the failed connection closed")
        checkpoints.committed()
        wait_until(lambda: checkpoints.runs == 1, 20, "a checkpoint")
    checkpoints.close()
    assert "background WAL checkpoint failed: disk I/O error" in caplog.text
    assert opened == made and made[1].statements == ["PRAGMA wal_checkpoint(PASSIVE)"]
