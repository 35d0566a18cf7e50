"""A careful HTTP GET of a calendar feed: checked addresses, bounded time, size and redirects.

The address is a password (a secret token in the path or the query), so no message here
ever contains it, and errors are raised ``from None``: httpx's own messages quote the URL and
would reach a log through the exception chain.
"""

from __future__ import annotations

import time

import httpx

from .addresses import resolve
from .provider import CalendarError, FetchLimits
from .transport import PinnedTransport

SCHEMES = ("http", "https", "webcal")
_HEADERS = {
    "Accept": "text/calendar, */*;q=0.5",
    # Counted bytes are the bytes read: a compressed body could expand far past max_bytes.
    "Accept-Encoding": "identity",
    "User-Agent": "iwant-calendar/1 (+busy times for a chat bot)",
}


def feed_url(address: str) -> httpx.URL:
    """``address`` as the URL to read: ``webcal://`` is read as ``https://`` (the scheme only
    tells a desktop to subscribe; every provider that gives such links serves them over
    HTTPS), ``http://`` and ``https://`` as they are. Anything else is refused."""
    scheme = address.split(":", 1)[0].lower() if ":" in address else ""
    if scheme not in SCHEMES:
        raise CalendarError("the calendar address must start with https://, http:// or webcal://")
    if scheme == "webcal":
        address = "https" + address[len("webcal") :]
    try:
        url = httpx.URL(address)
    except (httpx.InvalidURL, ValueError):
        raise CalendarError("the calendar address is not a valid web address") from None
    if not url.host:
        raise CalendarError("the calendar address has no server name")
    return url


def fetch(address: str, limits: FetchLimits) -> bytes:
    """The body behind ``address``, following at most ``limits.max_redirects`` redirects, each
    hop's server checked and pinned; ``CalendarError`` with one line saying what failed."""
    url = feed_url(address)
    deadline = time.monotonic() + limits.timeout_seconds
    for _ in range(limits.max_redirects + 1):
        location = _get(url, limits, deadline)
        if isinstance(location, bytes):
            return location
        url = location
    raise CalendarError(f"the calendar address redirected more than {limits.max_redirects} times")


def _get(url: httpx.URL, limits: FetchLimits, deadline: float) -> bytes | httpx.URL:
    """One hop: the body, or where a redirect points."""
    ip = resolve(url.host, url.port or (443 if url.scheme == "https" else 80), limits)
    transport = PinnedTransport(ip, deadline)
    timeout = httpx.Timeout(max(deadline - time.monotonic(), 0.001))
    try:
        with (
            httpx.Client(transport=transport, timeout=timeout, trust_env=False) as client,
            client.stream("GET", url, headers=_HEADERS) as response,
        ):
            if response.is_redirect:
                return _next(url, response)
            _check_status(response.status_code)
            return _read(response, limits.max_bytes)
    except httpx.TimeoutException:
        raise CalendarError(
            f"the calendar server did not answer within {limits.timeout_seconds:g} s"
        ) from None
    except httpx.HTTPError:
        raise CalendarError("the calendar server cannot be reached") from None


def _next(url: httpx.URL, response: httpx.Response) -> httpx.URL:
    location = response.headers.get("Location")
    if not location:
        raise CalendarError("the calendar server redirected without saying where")
    try:
        target = url.join(location)
    except (httpx.InvalidURL, ValueError):
        raise CalendarError("the calendar server redirected to an invalid address") from None
    if target.scheme not in ("http", "https") or not target.host:
        raise CalendarError("the calendar server redirected to an address that is not http(s)")
    return target


def _check_status(status: int) -> None:
    if status in (404, 410):
        raise CalendarError(
            f"the calendar was not found (HTTP {status}): the address may be mistyped or revoked"
        )
    if status in (401, 403):
        raise CalendarError(
            f"the calendar server refused access (HTTP {status}): the address may have been "
            "revoked, or it is not the secret (private) address"
        )
    if status >= 500:
        raise CalendarError(f"the calendar server failed (HTTP {status}); it may work later")
    if not 200 <= status < 300:
        raise CalendarError(f"the calendar server answered HTTP {status}, not a calendar")


def _read(response: httpx.Response, max_bytes: int) -> bytes:
    too_large = f"the calendar is larger than {max_bytes:,} bytes"
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise CalendarError(too_large)
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise CalendarError(too_large)
    return bytes(body)
