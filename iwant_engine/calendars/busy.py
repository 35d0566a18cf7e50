"""Busy times from iCalendar data: the rules every provider that reads events shares.

An occurrence is busy or free by these rules, first match wins:

1. ``STATUS:CANCELLED`` is free.
2. Outlook's ``X-MICROSOFT-CDO-BUSYSTATUS`` decides when present: ``BUSY``, ``OOF`` and
   ``TENTATIVE`` are busy; ``FREE`` and ``WORKINGELSEWHERE`` are free. Outlook writes it
   beside a ``TRANSP`` that only says opaque or not, so it is the finer statement.
3. ``TRANSP:TRANSPARENT`` is free.
4. An all-day event is free unless it says ``TRANSP:OPAQUE`` itself: Google, Outlook and
   Apple show all-day events (birthdays, holidays, "office closed" notes) as free by default
   and write ``OPAQUE`` only when the person marked it busy.
5. A timed event is busy (a missing ``TRANSP`` means opaque, RFC 5545 3.8.2.7).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import recurring_ical_events
import x_wr_timezone

from .provider import Busy, CalendarError

NOT_A_FEED = "the calendar address is not an iCalendar feed"
#: Occurrences are looked for this much beyond the span, then clipped: floating times and
#: all-day dates become instants only after the zone is applied (offsets reach 14 h).
_MARGIN = timedelta(days=1)
_BUSY_STATUS = {
    "BUSY": True,
    "OOF": True,
    "TENTATIVE": True,
    "FREE": False,
    "WORKINGELSEWHERE": False,
}


def parse_calendar(data: bytes) -> icalendar.Calendar:
    """``data`` as a calendar, or ``CalendarError`` saying it is not one (a login page,
    an error page, an empty answer)."""
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:15].upper()
    if not head.startswith(b"BEGIN:VCALENDAR"):
        kind = "a web page" if head.startswith(b"<") else "something else"
        raise CalendarError(f"{NOT_A_FEED} (it gave {kind}; is it the secret iCal address?)")
    try:
        return icalendar.Calendar.from_ical(data)
    except (ValueError, IndexError, KeyError):
        # The parser's message quotes the feed's lines: private, and no help to a person.
        raise CalendarError(f"{NOT_A_FEED} (it cannot be read as one)") from None


def busy_times(
    data: bytes | icalendar.Calendar,
    start: datetime,
    end: datetime,
    *,
    floating: tzinfo = UTC,
) -> list[Busy]:
    """The busy parts of ``[start, end)`` in a calendar, merged, sorted, clipped, in UTC.

    ``floating`` is the zone of times and all-day dates that name none, when the calendar
    gives no ``X-WR-TIMEZONE`` either (RFC 5545 means "the viewer's zone"; the caller knows
    the person's). A ``Calendar`` given is changed (broken events dropped)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("busy_times needs aware datetimes")
    cal = parse_calendar(data) if isinstance(data, bytes) else data
    named = _calendar_zone(cal)
    zone = named or floating
    # One broken event must not hide the rest: an event without a start cannot be placed.
    cal.subcomponents = [c for c in cal.subcomponents if c.name != "VEVENT" or "DTSTART" in c]
    if named is None and "X-WR-TIMEZONE" in cal:
        del cal["X-WR-TIMEZONE"]  # unknown: the repair below would fail on it
    try:
        cal = x_wr_timezone.to_standard(cal)
        occurrences = recurring_ical_events.of(cal, skip_bad_series=True).between(
            start - _MARGIN, end + _MARGIN
        )
        blocks = [
            block
            for event in occurrences
            if _is_busy(event)
            for block in [_block(event, zone)]
            if block is not None
        ]
    except (ValueError, TypeError, KeyError, AttributeError):
        raise CalendarError("the calendar has events that cannot be read") from None
    return merged(blocks, start, end)


def merged(blocks: Iterable[Busy], start: datetime, end: datetime) -> list[Busy]:
    """``blocks`` clipped to ``[start, end)``, overlapping and touching ones joined, sorted."""
    out: list[Busy] = []
    for block in sorted(blocks):
        lo, hi = max(block.start, start), min(block.end, end)
        if lo >= hi:
            continue
        if out and lo <= out[-1].end:
            if hi > out[-1].end:
                out[-1] = Busy(out[-1].start, hi)
        else:
            out.append(Busy(lo, hi))
    return [Busy(b.start.astimezone(UTC), b.end.astimezone(UTC)) for b in out]


def _is_busy(event: icalendar.Event) -> bool:
    if str(event.get("STATUS", "")).upper() == "CANCELLED":
        return False
    status = str(event.get("X-MICROSOFT-CDO-BUSYSTATUS", "")).upper()
    if status in _BUSY_STATUS:
        return _BUSY_STATUS[status]
    transp = str(event.get("TRANSP", "")).upper()
    if transp == "TRANSPARENT":
        return False
    all_day = not isinstance(event.start, datetime)
    return transp == "OPAQUE" or not all_day


def _block(event: icalendar.Event, zone: tzinfo) -> Busy | None:
    start, end = _instant(event.start, zone), _instant(event.end, zone)
    return Busy(start, end) if start < end else None


def _instant(moment: date | datetime, zone: tzinfo) -> datetime:
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def _calendar_zone(cal: icalendar.Calendar) -> tzinfo | None:
    name = str(cal.get("X-WR-TIMEZONE", "")).strip()
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
