"""Time phrases of the command grammar, read with dateparser in the sender's time zone.

Our own code only decides which words may form a phrase (so ``bye 9:30`` is an error and
``lunch 12`` is not the 12th of the month); dateparser turns an accepted phrase into a moment.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo

import dateparser  # type: ignore[import-untyped]  # no stubs installed

from .errors import UserError
from .messages import quote

_DAY_WORDS = {
    "today",
    "tomorrow",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "mon",
    "tue",
    "wed",
    "thu",
    "fri",
    "sat",
    "sun",
}
_WEEKDAYS = _DAY_WORDS - {"today", "tomorrow"}
_HHMM = re.compile(r"^([0-9]{1,2}):([0-9]{2})$")  # what _normalise_clock makes of 24-hour times
_CLOCK = re.compile(r"^([0-9]{1,2})(?:[:.]([0-9]{2}))?(am|pm)?$")
_UNITS = {
    "h": "hours",
    "hr": "hours",
    "hrs": "hours",
    "hour": "hours",
    "hours": "hours",
    "m": "minutes",
    "min": "minutes",
    "mins": "minutes",
    "minute": "minutes",
    "minutes": "minutes",
}
_DURATION_PART = re.compile(r"([0-9]+)\s*([a-z]+)")
_DATEPARSER_SETTINGS = {"PREFER_DATES_FROM": "current_period", "RETURN_AS_TIMEZONE_AWARE": False}

CLOCK_EXAMPLE = "12:30"


class PhraseError(UserError):
    """A time phrase that cannot be read: ``problem`` says why; the caller, who knows the
    whole command, adds one that works (``str`` alone adds a fragment to copy)."""

    def __init__(self, problem: str, hint: str) -> None:
        super().__init__(f"{problem}; write it like {hint}.")
        self.problem = problem


def warm_up() -> None:
    """dateparser loads its language data on first use (~0.1 s); do it at start, not per user."""
    dateparser.parse("12:00", languages=["en"], settings=dict(_DATEPARSER_SETTINGS))


def _local_base(now: datetime, zone: tzinfo) -> datetime:
    return now.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)


def _to_utc(naive: datetime, zone: tzinfo) -> datetime:
    return naive.replace(tzinfo=zone).astimezone(UTC)


def _normalise_clock(token: str) -> str | None:
    """'12' -> '12:00', '9.30' -> '9:30', '3pm' -> '3pm'; None when not a clock time."""
    if token in ("noon", "midnight"):
        return token
    m = _CLOCK.match(token)
    if not m:
        return None
    hour, minute, ampm = int(m[1]), int(m[2] or 0), m[3]
    if ampm and not 1 <= hour <= 12 or hour > 24 or minute > 59:
        return None
    return f"{hour}:{minute:02d}{ampm or ''}"


def parse_clock(phrase: str, now: datetime, zone: tzinfo, day: date | None = None) -> datetime:
    """A moment like ``12:30``, ``at 3pm``, ``tomorrow 9:30`` or ``friday noon``, in UTC.

    Without a day word the moment falls on ``day`` (default: today in ``zone``); a weekday
    means its next occurrence (today included).
    """
    words = phrase.replace(" am", "am").replace(" pm", "pm").split()
    if words and words[0] == "at":
        words = words[1:]
    day_words = [w for w in words if w in _DAY_WORDS or w == "next"]
    clocks = [w for w in words if w not in day_words and w != "at"]
    strange = [w for w in clocks if _normalise_clock(w) is None]
    if len(clocks) > 1 and strange:
        raise PhraseError(
            f"I don't understand '{quote(strange[0])}' in '{quote(phrase)}'", CLOCK_EXAMPLE
        )
    if len(clocks) != 1 or len(day_words) > 2:
        raise PhraseError(f"I can't read '{quote(phrase)}' as a time", CLOCK_EXAMPLE)
    clock = _normalise_clock(clocks[0])
    if clock is None:
        raise PhraseError(f"'{quote(clocks[0])}' is not a time of day", CLOCK_EXAMPLE)
    next_day = clock in ("24:00", "midnight") and not day_words
    clock = "0:00" if clock == "24:00" else clock
    base = _local_base(now, zone)
    if day is not None and not day_words:
        base = base.replace(year=day.year, month=day.month, day=day.day)
    fast = _HHMM.match(clock)
    if fast and day_words in ([], ["today"], ["tomorrow"]):
        # The commonest phrase, a 24-hour time today or tomorrow, needs no library: the gate
        # above has already read it (dateparser gives the same moment; a test compares).
        parsed = base.replace(hour=int(fast[1]), minute=int(fast[2]))
        if day_words == ["tomorrow"]:
            parsed += timedelta(days=1)
    else:
        parsed = dateparser.parse(
            " ".join([*day_words, clock]),
            languages=["en"],
            settings={**_DATEPARSER_SETTINGS, "RELATIVE_BASE": base},
        )
    if parsed is None:
        raise PhraseError(f"I can't read '{quote(phrase)}' as a time", CLOCK_EXAMPLE)
    if next_day:  # "until midnight" means the end of the day, not its start
        parsed += timedelta(days=1)
    if any(w in _WEEKDAYS for w in day_words) and parsed.date() < base.date():
        parsed += timedelta(days=7)
    return _to_utc(parsed, zone)


def parse_duration(phrase: str) -> timedelta:
    """A length like ``1h``, ``90 min``, ``1h 25m``, ``1:26``, ``2 hours`` or ``an hour``.

    Lengths are our grammar's own small vocabulary (numbers and units), so they are summed
    here; dateparser is for moments, where days, weekdays and am/pm need it."""
    text = phrase.strip()
    if m := re.fullmatch(r"([0-9]{1,2}):([0-9]{2})", text):
        return timedelta(hours=int(m[1]), minutes=int(m[2]))
    if text in ("an hour", "a hour", "one hour"):
        return timedelta(hours=1)
    if text in ("half an hour", "half hour"):
        return timedelta(minutes=30)
    parts = _DURATION_PART.findall(text)
    rebuilt = "".join(n + u for n, u in parts)
    if (
        not parts
        or rebuilt != text.replace(" ", "")
        or any(u not in _UNITS or len(n) > 5 for n, u in parts)
    ):
        raise PhraseError(f"I can't read '{quote(phrase)}' as a length of time", "90 min")
    return sum((timedelta(**{_UNITS[u]: int(n)}) for n, u in parts), timedelta())
