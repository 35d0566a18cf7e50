"""Busy times from feeds as Google, Outlook and Apple export them (``feeds/``)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from iwant_engine.calendars.busy import busy_times, merged
from iwant_engine.calendars.provider import Busy, CalendarError

from .feed_server import FEEDS

PRAGUE = ZoneInfo("Europe/Prague")


def utc(text: str) -> datetime:
    """``"03-23 08:30"`` in 2026, UTC."""
    return datetime.strptime(f"2026-{text}", "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def blocks(*pairs: tuple[str, str]) -> list[Busy]:
    return [Busy(utc(a), utc(b)) for a, b in pairs]


def read(name: str, start: str, end: str, **kw: object) -> list[Busy]:
    return busy_times((FEEDS / name).read_bytes(), utc(start), utc(end), **kw)  # type: ignore[arg-type]


def test_google_feed_over_four_weeks_across_the_march_dst_change():
    assert read("google.ics", "03-23 00:00", "04-20 00:00") == blocks(
        ("03-23 08:30", "03-23 09:00"),  # weekly standup 9:30 CET
        ("03-24 11:00", "03-24 12:00"),  # floating 12:00, read in X-WR-TIMEZONE
        ("03-24 15:00", "03-24 16:00"),  # UTC; the transparent gym at 17:00 is free
        # 03-25: the transparent all-day birthday is free; 03-26 10:00: cancelled
        ("03-26 13:00", "03-26 15:00"),  # overlapping and adjacent events merged
        ("03-26 23:00", "03-27 23:00"),  # all-day day off marked busy: the Prague day
        ("03-30 07:30", "03-30 08:00"),  # standup 9:30 CEST: wall time kept across DST
        # 04-06: EXDATE
        ("04-14 12:00", "04-14 12:30"),  # 04-13's standup moved (RECURRENCE-ID)
    )


def test_outlook_feed_reads_busy_status_over_transp_across_the_october_dst_change():
    got = read("outlook.ics", "10-12 00:00", "11-02 00:00", floating=PRAGUE)
    assert got == blocks(
        ("10-12 12:00", "10-12 13:00"),  # weekly 14:00 CEST, Windows zone name + VTIMEZONE
        # 10-13 10:00 local: FREE and TRANSPARENT
        ("10-13 10:00", "10-13 11:00"),  # TENTATIVE counts as busy
        # 10-14: FREE wins over TRANSP:OPAQUE
        ("10-15 09:00", "10-15 10:00"),  # TENTATIVE wins over TRANSP:TRANSPARENT
        ("10-15 22:00", "10-16 22:00"),  # all-day OOF, a floating date read in Prague
        # 10-19 14:00 local moved to 16:00 (RECURRENCE-ID); 10-20 all-day FREE holiday
        ("10-19 14:00", "10-19 15:00"),
        # 10-21: WORKINGELSEWHERE is free
        ("10-26 13:00", "10-26 14:00"),  # 14:00 CET after the change: wall time kept
    )


def test_apple_feed_daily_recurrence_with_exceptions_and_all_day_events():
    # Apple writes TZID for times but no X-WR-TIMEZONE: dates are read in the person's zone.
    got = read("apple.ics", "03-23 00:00", "04-06 00:00", floating=PRAGUE)
    assert got == blocks(
        ("03-26 07:00", "03-26 07:30"),
        ("03-27 07:00", "03-27 07:30"),  # the all-day name day (no TRANSP) is free
        ("03-28 07:00", "03-28 07:30"),
        ("03-29 06:00", "03-29 06:30"),  # DST began that night: 8:00 CEST
        ("03-30 06:00", "03-30 06:30"),
        ("03-31 07:00", "03-31 07:30"),  # moved to 9:00
        # 04-01: EXDATE; 04-02: the occurrence is CANCELLED (RECURRENCE-ID + STATUS)
        ("04-02 22:00", "04-03 22:00"),  # all-day OPAQUE conference swallows 04-03 8:00
        ("04-04 06:00", "04-04 06:30"),
    )


def test_blocks_are_clipped_to_the_span():
    assert read("google.ics", "03-24 11:30", "03-24 15:30") == blocks(
        ("03-24 11:30", "03-24 12:00"), ("03-24 15:00", "03-24 15:30")
    )
    assert read("google.ics", "03-25 00:00", "03-26 00:00") == []


def test_floating_times_without_x_wr_timezone_take_the_given_zone():
    feed = b"\r\n".join(
        [
            b"BEGIN:VCALENDAR",
            b"VERSION:2.0",
            b"PRODID:-//test//EN",
            b"BEGIN:VEVENT",
            b"UID:f1",
            b"DTSTAMP:20260101T000000Z",
            b"DTSTART:20260115T120000",
            b"DTEND:20260115T130000",
            b"END:VEVENT",
            b"END:VCALENDAR",
            b"",
        ]
    )
    span = (utc("01-15 00:00"), utc("01-16 00:00"))
    assert busy_times(feed, *span) == blocks(("01-15 12:00", "01-15 13:00"))
    assert busy_times(feed, *span, floating=PRAGUE) == blocks(("01-15 11:00", "01-15 12:00"))


def test_an_unknown_x_wr_timezone_and_an_event_without_start_spoil_nothing_else():
    feed = b"\r\n".join(
        [
            b"BEGIN:VCALENDAR",
            b"VERSION:2.0",
            b"PRODID:-//test//EN",
            b"X-WR-TIMEZONE:Mars/Olympus_Mons",
            b"BEGIN:VEVENT",
            b"UID:no-start",
            b"DTSTAMP:20260101T000000Z",
            b"SUMMARY:broken",
            b"END:VEVENT",
            b"BEGIN:VEVENT",
            b"UID:fine",
            b"DTSTAMP:20260101T000000Z",
            b"DTSTART:20260115T120000",
            b"DTEND:20260115T130000",
            b"END:VEVENT",
            b"END:VCALENDAR",
            b"",
        ]
    )
    got = busy_times(feed, utc("01-15 00:00"), utc("01-16 00:00"), floating=PRAGUE)
    assert got == blocks(("01-15 11:00", "01-15 12:00"))


def test_merge_joins_touching_and_nested_blocks_and_drops_empty_ones():
    span = (utc("01-01 00:00"), utc("01-02 00:00"))
    got = merged(
        blocks(
            ("01-01 10:00", "01-01 12:00"),
            ("01-01 10:30", "01-01 11:00"),  # nested
            ("01-01 12:00", "01-01 12:15"),  # touching
            ("01-01 14:00", "01-01 14:00"),  # empty
            ("01-01 23:00", "01-02 03:00"),  # crosses the end
        ),
        *span,
    )
    assert got == blocks(("01-01 10:00", "01-01 12:15"), ("01-01 23:00", "01-02 00:00"))
    assert all(b.start.tzinfo is UTC for b in got)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ((FEEDS / "login.html").read_bytes(), "it gave a web page"),
        (b"", "it gave something else"),
        (b"Hello, this is not a calendar", "it gave something else"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nnot a content line\r\n", "cannot be read"),
    ],
)
def test_garbage_is_not_an_icalendar_feed(data: bytes, says: str):
    with pytest.raises(CalendarError, match="is not an iCalendar feed") as err:
        busy_times(data, utc("01-01 00:00"), utc("01-02 00:00"))
    assert says in str(err.value) and "\n" not in str(err.value)


def test_naive_span_is_a_programming_error():
    with pytest.raises(ValueError, match="aware"):
        busy_times(b"BEGIN:VCALENDAR", datetime(2026, 1, 1), datetime(2026, 1, 2))
