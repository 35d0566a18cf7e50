"""The built-in ``ics`` provider: a private iCalendar feed read over HTTP(S) or webcal.

Google's "secret address in iCal format", Outlook's published calendar, iCloud's public
calendar link, Nextcloud's and Fastmail's subscription links are all such feeds.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

from ..hookspecs import hookimpl
from .busy import busy_times
from .fetch import SCHEMES, fetch
from .provider import Busy, CalendarProvider, FetchLimits


class FeedProvider:
    """Fetch, then read busy times. Holds no state, so any number of threads may share it."""

    name = "ics"

    def accepts(self, address: str) -> bool:
        scheme, sep, rest = address.partition("://")
        return bool(sep) and scheme.lower() in SCHEMES and bool(rest.strip("/"))

    def busy(
        self,
        address: str,
        start: datetime,
        end: datetime,
        limits: FetchLimits,
        floating: tzinfo = UTC,
    ) -> list[Busy]:
        return busy_times(fetch(address, limits), start, end, floating=floating)


#: Annotated so that mypy checks the class against the protocol.
provider: CalendarProvider = FeedProvider()


@hookimpl
def iwant_calendars() -> Mapping[str, Any]:
    return {provider.name: provider}
