"""A calendar provider for tests, registered through the real ``iwant_calendars`` hook: it
reads ``test://HOST/NAME`` addresses from busy intervals the test sets (or raises the
``CalendarError`` the test sets), and counts its reads."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, tzinfo

from iwant_engine import Engine, FixedClock, hookimpl, settings
from iwant_engine.calendars.provider import Busy, CalendarError, FetchLimits

from .support import MEMORY


class TestCalendar:
    """The provider ``test``: ``feeds[NAME]`` is what ``test://HOST/NAME`` holds, an error
    to raise, or absent (not found)."""

    __test__ = False  # not a test class, for pytest
    name = "test"

    def __init__(self) -> None:
        self.feeds: dict[str, list[tuple[datetime, datetime]] | CalendarError] = {}
        self.reads: list[tuple[str, datetime, datetime, FetchLimits]] = []
        self._lock = threading.Lock()

    def accepts(self, address: str) -> bool:
        return address.startswith("test://")

    def busy(
        self,
        address: str,
        start: datetime,
        end: datetime,
        limits: FetchLimits,
        floating: tzinfo = UTC,
    ) -> list[Busy]:
        with self._lock:
            self.reads.append((address, start, end, limits))
            feed = self.feeds.get(address.rsplit("/", 1)[-1])
        if feed is None:
            raise CalendarError("the calendar was not found (404)")
        if isinstance(feed, CalendarError):
            raise feed
        return [Busy(max(s, start), min(e, end)) for s, e in sorted(feed) if s < end and e > start]


class TestCalendars:
    """The plugin: names the ``test`` provider through ``iwant_calendars``."""

    __test__ = False

    def __init__(self, provider: TestCalendar | None = None) -> None:
        self.provider = provider or TestCalendar()

    @hookimpl
    def iwant_calendars(self) -> dict[str, TestCalendar]:
        return {"test": self.provider}


#: The ``IWANT_SECRET_KEY`` of the engine tests with calendars.
KEY = "a long random admin secret"


def make(url: str, clock: FixedClock, provider: TestCalendar, **overrides: object) -> Engine:
    """An engine on ``url`` (the memory storage for ``MEMORY``) with ``provider`` registered
    through the ``iwant_calendars`` hook, and ``overrides`` of its settings."""
    base = settings.load(environ={})
    storage = "memory" if url == MEMORY else "sql"
    chosen = dataclasses.replace(base, database_url=url, storage=storage, **overrides)
    return Engine(chosen, clock, plugins=(TestCalendars(provider),))
