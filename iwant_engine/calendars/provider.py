"""What a calendar provider is: the currency of the ``iwant_calendars`` hook.

A provider turns an address a person gave (``!iwant calendar ADDRESS``) into the busy parts
of a span of time. It never sees a wish, a match or another person; the engine keeps the
address secret and decides what the busy parts mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Protocol


@dataclass(frozen=True, order=True)
class Busy:
    """One busy interval, ``[start, end)``, both aware datetimes in UTC."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class FetchLimits:
    """What a provider may spend on one read (``[calendar]`` in ``plugins.cfg``)."""

    timeout_seconds: float = 10.0
    max_bytes: int = 5_000_000
    max_redirects: int = 3
    #: Addresses resolving to loopback, private or link-local networks are refused unless set.
    allow_private_addresses: bool = False


class CalendarError(Exception):
    """A calendar cannot be read. ``str(error)`` is one line a person may see: it says
    what went wrong (not found, too large, not a calendar, timed out, refused address) and
    never contains the address or its secret parts."""


class CalendarProvider(Protocol):
    """A source of busy times. Implementations must be safe to call from several threads."""

    #: Short name shown to the person and stored beside the address (``ics``, ``caldav``).
    name: str

    def accepts(self, address: str) -> bool:
        """Whether this provider reads ``address``: its scheme and shape only, no I/O."""
        ...

    def busy(
        self,
        address: str,
        start: datetime,
        end: datetime,
        limits: FetchLimits,
        floating: tzinfo = UTC,
    ) -> list[Busy]:
        """The busy intervals overlapping ``[start, end)`` (aware UTC), merged and sorted,
        clipped to the span. ``floating`` is the person's zone: the zone of times and
        all-day dates the calendar names none for. Raises ``CalendarError`` for anything
        that goes wrong."""
        ...
