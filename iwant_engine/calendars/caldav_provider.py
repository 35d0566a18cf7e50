"""The built-in ``caldav`` provider: one calendar on a CalDAV server (Nextcloud, Fastmail,
iCloud with an app password, Radicale, Baïkal), read with the ``caldav`` library.

Address: ``caldav+https://USER:PASSWORD@HOST/path/to/calendar/`` (``caldav+http://`` too);
user and password percent-encoded where they hold ``@``, ``:`` or ``/``. The events that touch
the span are fetched as stored (masters with their exceptions) and expanded here, by the
same rules as a feed (``busy.py``), so a CalDAV calendar and its exported feed agree.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import icalendar
import niquests
from caldav.collection import Calendar
from caldav.davclient import DAVClient
from caldav.lib import error as caldav_error

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

    def busy(self, address: str, start: datetime, end: datetime, limits: FetchLimits) -> list[Busy]:
        url, host, port, user, password = _split(address)
        ip = resolve(host, port, limits)
        try:
            with _client(url, host, ip, user, password, limits) as client:
                found: Any = Calendar(client=client, url=url).search(
                    start=start, end=end, event=True, expand=False
                )
                data = [str(event.data) for event in found]
        except niquests.exceptions.Timeout:
            raise CalendarError(
                f"the CalDAV server did not answer within {limits.timeout_seconds:g} s"
            ) from None
        except caldav_error.AuthorizationError:
            raise CalendarError(
                "the CalDAV server refused the user name or password in the address"
            ) from None
        except caldav_error.NotFoundError:
            raise CalendarError("the CalDAV calendar was not found at that address") from None
        except CalendarError:
            raise
        except niquests.exceptions.ConnectionError:
            raise CalendarError("the CalDAV server cannot be reached") from None
        except (caldav_error.DAVError, niquests.exceptions.RequestException, OSError):
            raise CalendarError("the CalDAV server cannot be read") from None
        if sum(len(text) for text in data) > limits.max_bytes:
            raise CalendarError(f"the calendar is larger than {limits.max_bytes:,} bytes")
        return busy_times(_joined(data), start, end)


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


def _client(
    url: str, host: str, ip: str, user: str | None, password: str | None, limits: FetchLimits
) -> DAVClient:
    """A client whose session connects only to ``ip`` for ``host`` (the in-memory resolver
    knows no other name, so a redirect elsewhere fails to resolve), ignores proxies and
    ``.netrc`` from the environment, makes no OCSP requests of its own, and refuses
    oversized answers that declare their length and redirects to another server."""
    client = DAVClient(
        url=url,
        username=user,
        password=password,
        timeout=limits.timeout_seconds,  # type: ignore[arg-type]  # niquests takes floats
        enable_rfc6764=False,
    )
    client.session.close()
    session = niquests.Session(
        resolver=None if _is_ip(host) else f"in-memory://default/?hosts={host}:{ip}",
        revocation_configuration=None,
    )
    session.trust_env = False
    session.max_redirects = limits.max_redirects

    def check(response: niquests.PreparedRequest | niquests.Response) -> None:
        headers: Mapping[Any, Any] = response.headers or {}
        declared = headers.get("Content-Length", "")
        if isinstance(declared, str) and declared.isdigit() and int(declared) > limits.max_bytes:
            raise CalendarError(f"the calendar is larger than {limits.max_bytes:,} bytes")
        location = headers.get("Location")
        if isinstance(response, niquests.Response) and response.is_redirect and location:
            # Only to the checked server: an IP literal elsewhere would need no resolver.
            target = urlsplit(urljoin(url, str(location)))
            if (target.hostname or "").lower() != host.lower():
                raise CalendarError("the CalDAV server redirected to another server")

    session.hooks["response"].append(check)
    client.session = session
    return client


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _joined(texts: list[str]) -> icalendar.Calendar:
    """One calendar of every object's components (each object is a VCALENDAR of its own)."""
    joined = icalendar.Calendar()
    joined.add("prodid", "-//iwant//caldav busy//EN")
    joined.add("version", "2.0")
    seen_zones: set[str] = set()
    for text in texts:
        for component in parse_calendar(text.encode()).subcomponents:
            if component.name == "VTIMEZONE":
                if str(component.get("TZID")) in seen_zones:
                    continue
                seen_zones.add(str(component.get("TZID")))
            joined.add_component(component)
    return joined


@hookimpl
def iwant_calendars() -> Mapping[str, Any]:
    return {provider.name: provider}


#: Annotated so that mypy checks the class against the protocol.
provider: CalendarProvider = CalDavProvider()
