"""The feed's GET against a local server: limits, refused addresses, clear and secret-free
errors."""

from __future__ import annotations

import ipaddress
import socket
import time
import traceback
from dataclasses import replace
from urllib.parse import quote

import pytest

from iwant_engine.calendars import addresses, fetch
from iwant_engine.calendars.fetch import feed_url
from iwant_engine.calendars.provider import CalendarError, FetchLimits

from .conftest import LOCAL
from .feed_server import FEEDS, SECRET, FeedServer


def failure(address: str, limits: FetchLimits = LOCAL) -> str:
    """The one-line message of the ``CalendarError`` that reading ``address`` raises; neither
    it nor its traceback with chained exceptions (what a log would show) has the secret."""
    with pytest.raises(CalendarError) as caught:
        fetch.fetch(address, limits)
    message = str(caught.value)
    assert "\n" not in message
    assert SECRET not in message and "127.0.0.1" not in message
    assert SECRET not in "".join(traceback.format_exception(caught.value))
    return message


def test_reads_a_feed(feed_server: FeedServer):
    body = fetch.fetch(feed_server.url("feed/google.ics"), LOCAL)
    assert body == (FEEDS / "google.ics").read_bytes()


@pytest.mark.parametrize(
    ("address", "url"),
    [
        (
            "webcal://p01-caldav.icloud.com/published/2/abc",
            "https://p01-caldav.icloud.com/published/2/abc",
        ),
        ("WEBCAL://example.com/x.ics", "https://example.com/x.ics"),
        ("https://example.com/x.ics?token=1", "https://example.com/x.ics?token=1"),
        ("http://example.com/x.ics", "http://example.com/x.ics"),
    ],
)
def test_webcal_is_read_as_https(address: str, url: str):
    assert str(feed_url(address)) == url


@pytest.mark.parametrize(
    "address",
    ["ftp://example.com/cal.ics", "file:///etc/passwd", "example.com/cal.ics", "gopher://x/"],
)
def test_other_schemes_are_refused(address: str):
    with pytest.raises(CalendarError, match="must start with https://, http:// or webcal://"):
        fetch.fetch(address, LOCAL)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "10.1.2.3",
        "192.168.0.10",
        "169.254.169.254",
        "[::1]",
        "0.0.0.0",
        "100.64.0.1",
        "[::ffff:127.0.0.1]",
        "224.0.0.1",
        "[fe80::1]",
    ],
)
def test_the_default_limits_refuse_local_and_private_addresses(host: str):
    message = failure(f"http://{host}/{SECRET}/feed/google.ics", FetchLimits())
    assert message == addresses.REFUSED


def test_a_local_server_is_refused_by_default(feed_server: FeedServer):
    before = len(feed_server.hosts)
    assert failure(feed_server.url("feed/google.ics"), FetchLimits()) == addresses.REFUSED
    assert len(feed_server.hosts) == before, "refused before any connection"


def test_a_name_with_one_private_answer_among_public_ones_is_refused(monkeypatch):
    answers = [ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("10.0.0.7")]
    monkeypatch.setattr(addresses, "lookup", lambda host, port: answers)
    assert failure(f"https://calendar.example/{SECRET}.ics", FetchLimits()) == addresses.REFUSED


def test_public_addresses_pass_the_check():
    for ip in ("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "8.8.8.8"):
        assert not addresses.refused(ipaddress.ip_address(ip))


def test_the_connection_goes_to_the_checked_address_not_a_second_lookup(
    feed_server: FeedServer, monkeypatch
):
    """``calendar.invalid`` resolves only through the check's lookup: were httpx to resolve
    it again when connecting (where DNS rebinding would strike), the read would fail."""
    lookups: list[str] = []

    def lookup(host: str, port: int) -> list[addresses.IPAddress]:
        lookups.append(host)
        return [ipaddress.ip_address("127.0.0.1")]

    monkeypatch.setattr(addresses, "lookup", lookup)
    body = fetch.fetch(feed_server.url("feed/apple.ics", host="calendar.invalid"), LOCAL)
    assert body.startswith(b"BEGIN:VCALENDAR")
    assert lookups == ["calendar.invalid"]
    assert feed_server.hosts[-1] == f"calendar.invalid:{feed_server.port}"


def test_redirects_are_followed_within_the_limit_and_each_hop_is_checked(
    feed_server: FeedServer, monkeypatch
):
    checked: list[str] = []
    real = addresses.resolve

    def spy(host: str, port: int, limits: FetchLimits) -> str:
        checked.append(host)
        return real(host, port, limits)

    monkeypatch.setattr(fetch, "resolve", spy)
    body = fetch.fetch(feed_server.url("redirect/3/feed/outlook.ics"), LOCAL)
    assert body == (FEEDS / "outlook.ics").read_bytes()
    assert checked == ["127.0.0.1"] * 4


def test_a_redirect_to_a_private_address_is_refused_at_that_hop(
    feed_server: FeedServer, monkeypatch
):
    real = addresses.resolve

    def first_hop_allowed(host: str, port: int, limits: FetchLimits) -> str:
        return "127.0.0.1" if host == "127.0.0.1" else real(host, port, FetchLimits())

    monkeypatch.setattr(fetch, "resolve", first_hop_allowed)
    target = quote(f"http://10.20.30.40/{SECRET}/feed/google.ics", safe="")
    assert failure(feed_server.url(f"to/{target}")) == addresses.REFUSED


def test_a_redirect_to_another_scheme_is_refused(feed_server: FeedServer):
    target = quote("file:///etc/passwd", safe="")
    assert "not http(s)" in failure(feed_server.url(f"to/{target}"))


def test_too_many_redirects(feed_server: FeedServer):
    message = failure(feed_server.url("redirect/4/feed/google.ics"))
    assert message == "the calendar address redirected more than 3 times"
    limits = replace(LOCAL, max_redirects=0)
    assert "more than 0 times" in failure(feed_server.url("redirect/1/feed/google.ics"), limits)


def test_an_oversized_body_is_cut_off_while_streaming(feed_server: FeedServer):
    limits = replace(LOCAL, max_bytes=100_000)
    started = time.monotonic()
    assert failure(feed_server.url("huge"), limits) == "the calendar is larger than 100,000 bytes"
    assert time.monotonic() - started < 3


def test_an_oversized_declared_length_is_refused_before_reading(feed_server: FeedServer):
    assert "larger than 5,000,000 bytes" in failure(feed_server.url("declared-huge"))


@pytest.mark.parametrize("kind", ["silent", "stall"])
def test_a_slow_server_times_out_within_the_limit(feed_server: FeedServer, kind: str):
    limits = replace(LOCAL, timeout_seconds=1.0)
    started = time.monotonic()
    assert failure(feed_server.url(kind), limits) == (
        "the calendar server did not answer within 1 s"
    )
    assert 0.9 < time.monotonic() - started < 2.5


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (404, "the calendar was not found (HTTP 404)"),
        (410, "the calendar was not found (HTTP 410)"),
        (401, "the calendar server refused access (HTTP 401)"),
        (403, "the calendar server refused access (HTTP 403)"),
        (500, "the calendar server failed (HTTP 500)"),
        (503, "the calendar server failed (HTTP 503)"),
        (418, "the calendar server answered HTTP 418"),
    ],
)
def test_http_errors_have_clear_distinct_messages(feed_server: FeedServer, status: int, says: str):
    assert failure(feed_server.url(f"status/{status}")).startswith(says)


def test_a_closed_port_cannot_be_reached():
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        message = failure(f"http://127.0.0.1:{port}/{SECRET}/feed.ics")
    assert message == "the calendar server cannot be reached"


def test_an_unknown_name_cannot_be_found(monkeypatch: pytest.MonkeyPatch):
    def nxdomain(host: str, port: int) -> list[addresses.IPAddress]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(addresses, "lookup", nxdomain)  # no DNS query leaves the machine
    assert failure(f"https://nosuchhost.invalid/{SECRET}.ics") == (
        "the calendar server's name cannot be found"
    )
