"""The network half of the ``caldav`` provider: a pinned, bounded CalDAV client and the
events it reads (imported by ``caldav_provider`` on first use)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import niquests
from caldav.collection import Calendar
from caldav.davclient import DAVClient
from caldav.lib import error as caldav_error

from .provider import CalendarError, FetchLimits


def read(
    url: str,
    host: str,
    ip: str,
    user: str | None,
    password: str | None,
    start: datetime,
    end: datetime,
    limits: FetchLimits,
) -> list[str]:
    """The iCalendar text of each calendar object at ``url`` with an event touching
    ``[start, end)``, read from ``ip`` (``host``'s checked address)."""
    try:
        with _client(url, host, ip, user, password, limits) as client:
            found: Any = Calendar(client=client, url=url).search(
                start=start, end=end, event=True, expand=False
            )
            return [str(event.data) for event in found]
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
