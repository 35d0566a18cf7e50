"""The built-in ``ics`` provider, and both built-ins as the ``iwant_calendars`` hook gives
them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from iwant_engine.calendars import caldav_provider, feed
from iwant_engine.calendars.busy import busy_times
from iwant_engine.calendars.provider import Busy, CalendarError
from iwant_engine.plugins import make_plugin_manager, named

from .conftest import LOCAL
from .feed_server import FEEDS, SECRET, FeedServer

START, END = datetime(2026, 3, 23, tzinfo=UTC), datetime(2026, 4, 20, tzinfo=UTC)


def test_the_hook_names_both_built_in_providers():
    providers = named(make_plugin_manager(), "iwant_calendars")
    assert {name: plugin for name, (_, plugin) in providers.items()} == {
        "ics": "iwant_engine.calendars.feed",
        "caldav": "iwant_engine.calendars.caldav_provider",
    }
    for name, (provider, _) in providers.items():
        assert provider.name == name
        assert callable(provider.accepts) and callable(provider.busy)


def test_the_feed_provider_reads_a_served_feed(feed_server: FeedServer):
    got = feed.provider.busy(feed_server.url("feed/google.ics"), START, END, LOCAL)
    assert got == busy_times((FEEDS / "google.ics").read_bytes(), START, END)
    assert len(got) == 7


def test_an_all_day_busy_day_counts_from_midnight_in_the_persons_zone(feed_server: FeedServer):
    """Apple's feed names no zone for its all-day "Conference" (3 April 2026, opaque): the
    person's zone, passed by the engine, places it."""
    prague = ZoneInfo("Europe/Prague")
    day = (datetime(2026, 4, 3, tzinfo=prague), datetime(2026, 4, 4, tzinfo=prague))
    address = feed_server.url("feed/apple.ics")
    got = feed.provider.busy(address, *day, LOCAL, floating=prague)
    assert got == [Busy(datetime(2026, 4, 2, 22, tzinfo=UTC), datetime(2026, 4, 3, 22, tzinfo=UTC))]
    in_utc = feed.provider.busy(address, *day, LOCAL)
    assert in_utc == [Busy(datetime(2026, 4, 3, tzinfo=UTC), datetime(2026, 4, 3, 22, tzinfo=UTC))]


def test_a_login_page_is_not_an_icalendar_feed(feed_server: FeedServer):
    with pytest.raises(CalendarError, match="is not an iCalendar feed") as caught:
        feed.provider.busy(feed_server.url("login"), START, END, LOCAL)
    assert SECRET not in str(caught.value)


def test_the_feed_provider_is_safe_to_share_between_threads(feed_server: FeedServer):
    names = ["google.ics", "outlook.ics", "apple.ics"] * 4
    expected = {n: busy_times((FEEDS / n).read_bytes(), START, END) for n in set(names)}
    with ThreadPoolExecutor(4) as pool:
        got = list(
            pool.map(
                lambda n: feed.provider.busy(feed_server.url(f"feed/{n}"), START, END, LOCAL),
                names,
            )
        )
    assert got == [expected[n] for n in names]


@pytest.mark.parametrize(
    ("address", "ics", "caldav"),
    [
        ("https://calendar.google.com/calendar/ical/a%40b.com/private-x/basic.ics", True, False),
        ("webcal://p52-caldav.icloud.com/published/2/MTIz", True, False),
        ("http://intranet.example/cal.ics", True, False),
        ("caldav+https://u:p@cloud.example.com/remote.php/dav/calendars/u/personal/", False, True),
        ("ftp://example.com/cal.ics", False, False),
        ("https://", False, False),
        ("my calendar", False, False),
    ],
)
def test_each_provider_accepts_its_own_addresses(address: str, ics: bool, caldav: bool):
    assert feed.provider.accepts(address) is ics
    assert caldav_provider.provider.accepts(address) is caldav
