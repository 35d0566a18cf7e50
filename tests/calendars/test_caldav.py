"""The ``caldav`` provider against a real Radicale server (started once per run; the tests
that use it are marked slow)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from caldav.davclient import DAVClient

from iwant_engine.calendars import addresses
from iwant_engine.calendars.caldav_provider import provider
from iwant_engine.calendars.provider import Busy, CalendarError, FetchLimits

from .conftest import LOCAL, RADICALE_PASSWORD, RADICALE_USER, Radicale
from .feed_server import SECRET, FeedServer

PRAGUE_TZ = """BEGIN:VTIMEZONE
TZID:Europe/Prague
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE"""

EVENTS = {
    # Weekly 9:30 Prague across the DST change; 04-06 left out; 04-13 moved to Tuesday 14:00.
    "standup": """BEGIN:VEVENT
UID:standup@test
DTSTAMP:20260301T000000Z
DTSTART;TZID=Europe/Prague:20260316T093000
DTEND;TZID=Europe/Prague:20260316T100000
RRULE:FREQ=WEEKLY;BYDAY=MO
EXDATE;TZID=Europe/Prague:20260406T093000
SUMMARY:Standup
END:VEVENT
BEGIN:VEVENT
UID:standup@test
DTSTAMP:20260301T000000Z
RECURRENCE-ID;TZID=Europe/Prague:20260413T093000
DTSTART;TZID=Europe/Prague:20260414T140000
DTEND;TZID=Europe/Prague:20260414T143000
SUMMARY:Standup (moved)
END:VEVENT""",
    "gym": """BEGIN:VEVENT
UID:gym@test
DTSTAMP:20260301T000000Z
DTSTART:20260324T170000Z
DTEND:20260324T180000Z
TRANSP:TRANSPARENT
SUMMARY:Gym (free)
END:VEVENT""",
    "review": """BEGIN:VEVENT
UID:review@test
DTSTAMP:20260301T000000Z
DTSTART:20260324T150000Z
DTEND:20260324T160000Z
SUMMARY:Review
END:VEVENT""",
    "cancelled": """BEGIN:VEVENT
UID:cancelled@test
DTSTAMP:20260301T000000Z
DTSTART:20260326T100000Z
DTEND:20260326T110000Z
STATUS:CANCELLED
SUMMARY:Cancelled
END:VEVENT""",
    "birthday": """BEGIN:VEVENT
UID:birthday@test
DTSTAMP:20260301T000000Z
DTSTART;VALUE=DATE:20260325
DTEND;VALUE=DATE:20260326
SUMMARY:Birthday (all day, free)
END:VEVENT""",
    "conference": """BEGIN:VEVENT
UID:conference@test
DTSTAMP:20260301T000000Z
DTSTART;VALUE=DATE:20260327
DTEND;VALUE=DATE:20260328
TRANSP:OPAQUE
SUMMARY:Conference (all day, busy)
END:VEVENT""",
    "outside": """BEGIN:VEVENT
UID:outside@test
DTSTAMP:20260301T000000Z
DTSTART:20260601T100000Z
DTEND:20260601T110000Z
SUMMARY:Outside the span
END:VEVENT""",
}

START, END = datetime(2026, 3, 23, tzinfo=UTC), datetime(2026, 4, 20, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.strptime(f"2026-{text}", "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def calendar_address(radicale: Radicale) -> Iterator[str]:
    """A calendar ``work`` of alice's with ``EVENTS``, as a ``caldav+http`` address."""
    with DAVClient(
        url=radicale.url(),
        username=RADICALE_USER,
        password=RADICALE_PASSWORD,
        enable_rfc6764=False,
    ) as client:
        calendar = client.principal().make_calendar(name="Work", cal_id="work")
        for body in EVENTS.values():
            calendar.add_event(
                f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//iwant tests//EN\n{PRAGUE_TZ}\n"
                f"{body}\nEND:VCALENDAR\n"
            )
    secret = quote(RADICALE_PASSWORD, safe="")
    yield f"caldav+http://{RADICALE_USER}:{secret}@127.0.0.1:{radicale.port}/alice/work/"


def failure(address: str, limits: FetchLimits = LOCAL) -> str:
    with pytest.raises(CalendarError) as caught:
        provider.busy(address, START, END, limits)
    message = str(caught.value)
    assert "\n" not in message and SECRET not in message and "w0nder" not in message
    return message


@pytest.mark.slow  # starts Radicale
def test_busy_times_from_radicale(calendar_address: str):
    got = provider.busy(calendar_address, START, END, LOCAL)
    assert got == [
        Busy(at("03-23 08:30"), at("03-23 09:00")),  # 9:30 CET
        Busy(at("03-24 15:00"), at("03-24 16:00")),  # the transparent gym is free
        # the all-day birthday is free, the cancelled event too
        # The busy all-day conference: a date names no zone and a provider is told none, so
        # the day is read in UTC (feed.py/busy.py take a zone; see docs/calendars.md).
        Busy(at("03-27 00:00"), at("03-28 00:00")),
        Busy(at("03-30 07:30"), at("03-30 08:00")),  # 9:30 CEST
        Busy(at("04-14 12:00"), at("04-14 12:30")),  # the moved occurrence; 04-06 excluded
    ]


@pytest.mark.slow  # starts Radicale
def test_a_short_span_is_clipped(calendar_address: str):
    got = provider.busy(calendar_address, at("03-24 15:30"), at("03-24 18:00"), LOCAL)
    assert got == [Busy(at("03-24 15:30"), at("03-24 16:00"))]


@pytest.mark.slow  # starts Radicale
def test_the_name_resolves_once_and_the_session_connects_to_that_address(
    calendar_address: str, monkeypatch: pytest.MonkeyPatch
):
    import ipaddress

    lookups: list[str] = []

    def lookup(host: str, port: int) -> list[addresses.IPAddress]:
        lookups.append(host)
        return [ipaddress.ip_address("127.0.0.1")]

    monkeypatch.setattr(addresses, "lookup", lookup)
    address = calendar_address.replace("@127.0.0.1:", "@calendar.invalid:")
    assert provider.busy(address, at("03-24 00:00"), at("03-25 00:00"), LOCAL) == [
        Busy(at("03-24 15:00"), at("03-24 16:00"))
    ]
    assert lookups == ["calendar.invalid"]


@pytest.mark.slow  # starts Radicale
def test_a_wrong_password_is_refused(calendar_address: str):
    address = calendar_address.replace(quote(RADICALE_PASSWORD, safe=""), "w0nder-nope")
    assert failure(address) == "the CalDAV server refused the user name or password in the address"


@pytest.mark.slow  # starts Radicale
def test_a_missing_calendar_is_not_found(calendar_address: str):
    assert failure(calendar_address.replace("/work/", "/nosuch/")) == (
        "the CalDAV calendar was not found at that address"
    )


@pytest.mark.slow  # starts Radicale
def test_the_default_limits_refuse_a_local_server(calendar_address: str):
    assert failure(calendar_address, FetchLimits()) == addresses.REFUSED


def test_a_silent_server_times_out(feed_server: FeedServer):
    address = f"caldav+http://alice:{SECRET}@127.0.0.1:{feed_server.port}/{SECRET}/silent"
    message = failure(address, replace(LOCAL, timeout_seconds=1.0))
    assert message == "the CalDAV server did not answer within 1 s"


def test_a_redirect_to_another_server_is_refused(feed_server: FeedServer):
    target = quote("http://10.20.30.40/dav/", safe="")
    address = f"caldav+http://alice:{SECRET}@127.0.0.1:{feed_server.port}/{SECRET}/to/{target}"
    assert failure(address) == "the CalDAV server redirected to another server"


@pytest.mark.parametrize(
    ("address", "accepted"),
    [
        ("caldav+https://u:p@cloud.example.com/remote.php/dav/calendars/u/personal/", True),
        ("caldav+http://radicale.lan:5232/u/cal/", True),
        ("CALDAV+HTTPS://cal.example/", True),
        ("https://cloud.example.com/remote.php/dav/calendars/u/personal/", False),
        ("caldav://cal.example/", False),
        ("caldav+https:///nohost", False),
    ],
)
def test_accepts_only_caldav_addresses(address: str, accepted: bool):
    assert provider.accepts(address) is accepted
