"""The built-in ``caldav`` provider: one calendar on a CalDAV server (Nextcloud, Fastmail,
iCloud with an app password, Radicale, Baïkal), read with the ``caldav`` library.

Address: ``caldav+https://USER:PASSWORD@HOST/path/to/calendar/`` (``caldav+http://`` too);
user and password percent-encoded where they hold ``@``, ``:`` or ``/``. The events that touch
the span are fetched as stored (masters with their exceptions) and expanded here, by the
same rules as a feed (``busy.py``), so a CalDAV calendar and its exported feed agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import icalendar

from ..hookspecs import hookimpl
from .addresses import resolve
from .busy import busy_times, parse_calendar
from .provider import Busy, CalendarError, CalendarProvider, FetchLimits

SCHEMES = ("caldav+https", "caldav+http")


class CalDavProvider:
    """Each call opens its own client and session: no state is shared between threads."""

    name = "caldav"

    def accepts(self, address: str) -> bool:
        try:
            parts = urlsplit(address)
        except ValueError:
            return False
        return parts.scheme.lower() in SCHEMES and bool(parts.hostname)

    def busy(
        self,
        address: str,
        start: datetime,
        end: datetime,
        limits: FetchLimits,
        floating: tzinfo = UTC,
    ) -> list[Busy]:
        url, host, port, user, password = _split(address)
        ip = resolve(host, port, limits)
        # Imported on first use: the caldav library and its HTTP stack take a third of a
        # second to import, which every engine would pay at start for a rarely used provider.
        from .caldav_read import read

        texts = read(url, host, ip, user, password, start, end, limits)
        if sum(len(text) for text in texts) > limits.max_bytes:
            raise CalendarError(f"the calendar is larger than {limits.max_bytes:,} bytes")
        return busy_times(joined(texts), start, end, floating=floating)


def _split(address: str) -> tuple[str, str, int, str | None, str | None]:
    """The calendar URL without credentials, its host and port, user and password."""
    try:
        parts = urlsplit(address)
        port = parts.port
    except ValueError:
        raise CalendarError("the CalDAV address is not a valid address") from None
    if parts.scheme.lower() not in SCHEMES or not parts.hostname:
        raise CalendarError(
            "a CalDAV address looks like caldav+https://user:password@host/path/to/calendar/"
        )
    scheme = parts.scheme.lower().removeprefix("caldav+")
    host = parts.hostname
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    url = urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return url, host, port or (443 if scheme == "https" else 80), user, password


def joined(texts: list[str]) -> icalendar.Calendar:
    """One calendar of every object's components (each object is a VCALENDAR of its own)."""
    cal = icalendar.Calendar()
    cal.add("prodid", "-//iwant//caldav busy//EN")
    cal.add("version", "2.0")
    seen_zones: set[str] = set()
    for text in texts:
        for component in parse_calendar(text.encode()).subcomponents:
            if component.name == "VTIMEZONE":
                if str(component.get("TZID")) in seen_zones:
                    continue
                seen_zones.add(str(component.get("TZID")))
            cal.add_component(component)
    return cal


@hookimpl
def iwant_calendars() -> Mapping[str, Any]:
    return {provider.name: provider}


#: Annotated so that mypy checks the class against the protocol.
provider: CalendarProvider = CalDavProvider()
