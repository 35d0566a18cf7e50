"""Helpers shared by the tests."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import create_engine, text

from iwant_engine import Engine, FixedClock, Person, settings

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # a Tuesday
ALICE = Person("text:@alice", "Alice")
BOB = Person("text:@bob", "Bob")
CAROL = Person("text:@carol", "Carol")
DAVE = Person("text:@dave", "Dave")


def at(hour: int, minute: int = 0, day: int = 1) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


MEMORY = "memory:"  # the memory storage's "URL"


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """``condition()`` once it is true (polled every 50 ms), or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def make_engine(url: str, clock: FixedClock, **overrides: object) -> Engine:
    """An engine on ``url``: the memory storage for ``MEMORY``, else the SQL one."""
    base = settings.load(environ={})
    storage = "memory" if url == MEMORY else "sql"
    return Engine(dataclasses.replace(base, database_url=url, storage=storage, **overrides), clock)


def drain(
    engine: Engine, platform: str = "text", groups: list | None = None
) -> list[tuple[str, str]]:
    """Deliver everything due; (recipient, body) pairs of direct messages in order.

    Group conversation rows go to ``groups`` as (member ids, body) when it is given."""
    sent: list[tuple[str, str]] = []

    def send(item) -> None:
        if item.group_members is None:
            sent.append((item.recipient, item.body))
        elif groups is not None:
            groups.append((item.group_members, item.body))

    while engine.deliver(platform, send).delivered:
        pass
    return sent


def truncate_postgres(url: str) -> None:
    """Empty every iwant table of the PostgreSQL database at ``url``."""
    eng = create_engine(url)
    with eng.begin() as conn:
        tables = [
            r[0]
            for r in conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_version'"
                )
            )
        ]
        if tables:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    eng.dispose()


class FakeTime:
    """Wall-clock seconds (a ``Pacer``'s clock) that move only when slept."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
