"""The ``!iwant <activity> ...`` grammar: clauses around dateparser's time phrases.

    <activity> [when] [for DURATION] [by TIME] [max N] [min N]

``when`` is empty or ``now``, a clock time (``12:00``, ``at 12:30``, ``tomorrow 12:30``), a
range (``11:30-13:00``, ``from 11:30 to 13:00``, ``until 11:00``) or ``in DURATION``.
Every word must be understood: a leftover word is an error, never silently dropped.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from functools import lru_cache

from .errors import UserError
from .messages import clock, quote, visible
from .settings import ACTIVITY_NAME_MAX, Settings
from .timephrases import PhraseError, parse_clock, parse_duration

MAX_INPUT = 200
EXAMPLE = "!iwant coffee 10:00 by 9:30"
# "min 3" (quorum) is a keyword only before a number; "for 20 min" is a unit.
_KEYWORDS = re.compile(r"\b(for|during|by|max|instead|min(?=\s+[0-9]+(?:\s|$)))\b")
# "instead of #12": the waiting request a suggested wish replaces.
_INSTEAD = re.compile(r"^of\s+#?([0-9]{1,10})$")
# One word in any script: a letter, then letters, digits, "-" or "_" (café, обед, 午饭).
_ACTIVITY = re.compile(r"^[^\W\d_][\w-]*$")
_NOT_ACTIVITIES = ("at", "in", "for", "by", "now", "tomorrow")
# Symbols that name one activity without doubt.
_SYMBOLS = {"☕": "coffee", "🍵": "tea", "🍽️": "lunch", "🍽": "lunch"}
_RANGE = re.compile(
    r"^(?:from\s+|between\s+)?(?P<a>.+?)\s*(?:-|–|—|\bto\b|\buntil\b|\btill\b|\band\b)\s*(?P<b>.+)$"
)
_UNTIL = re.compile(r"^(?:until|till)\s+(?P<b>.+)$")


@dataclass(frozen=True)
class ParsedWish:
    activity: str
    earliest: datetime
    latest: datetime
    deadline: datetime
    length: timedelta
    max_size: int
    min_size: int = 2
    replaces: int | None = None  # "instead of #12"


def _clean(text: str) -> str:
    if len(text) > MAX_INPUT:
        raise UserError(f"That is too long for me ({len(text)} characters); try {EXAMPLE}.")
    # isprintable() is False for every Cc and Cf character (and for some others, which the
    # slower check then lets through): most texts skip the check per character.
    if not text.isprintable() and any(unicodedata.category(c) in ("Cc", "Cf") for c in text):
        raise UserError(f"Your message has control characters in it; try {EXAMPLE}.")
    # NFC so that "café" typed either way is one activity; casefold for any script.
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def is_number(text: str) -> bool:
    """Whether ``text`` is a whole number in ASCII digits (``²`` and ``٣`` are not)."""
    return text.isascii() and text.isdigit()


def parse_activity(word: str, settings: Settings, rest: str = "") -> str:
    """The activity named by ``word``, or a UserError that says what to write instead
    (``rest``, what followed the word, is kept in the suggested command)."""
    name = _SYMBOLS.get(word, word).rstrip(":,;.!")
    if (  # a configured activity, the commonest case, passes every check below
        name in settings.activities
        and name not in _NOT_ACTIVITIES
        and len(name) <= ACTIVITY_NAME_MAX
        and _ACTIVITY.match(name)
    ):
        return name
    known = sorted(settings.activities)
    examples = ", ".join(known[:5]) or "coffee"
    if not name or name[0].isdigit() or name in _NOT_ACTIVITIES:
        raise UserError(f"Say what you want to do first, like {EXAMPLE}.")
    if len(name) > ACTIVITY_NAME_MAX:
        raise UserError(
            f"'{quote(name, ACTIVITY_NAME_MAX)}…' is too long for an activity "
            f"(at most {ACTIVITY_NAME_MAX} letters); try one word like {examples}."
        )
    if not _ACTIVITY.match(name):
        raise UserError(
            f"'{quote(name)}' is not an activity; use one word like {examples}: "
            f"!iwant {known[0] if known else 'coffee'} 10:00."
        )
    if name in settings.activities:
        return name
    if settings.any_activity is None:
        raise UserError(
            f"I don't know '{quote(name)}'; try one of: {examples}, like "
            f"!iwant {known[0] if known else 'coffee'} 10:00."
        )
    close = _close_activity(name, tuple(known)) if len(name) >= 4 else None
    if close:
        # The whole rest (input is at most MAX_INPUT long): the suggestion must work as it is.
        tail = f" {visible(rest)}" if rest else ""
        raise UserError(f"Did you mean {close}? Try: !iwant {close}{tail}")
    return name


@lru_cache(maxsize=4096)
def _close_activity(name: str, known: tuple[str, ...]) -> str | None:
    """The configured activity ``name`` is probably a typo of (the same words recur)."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
    return close[0] if close else None


def _split_clauses(rest: str) -> tuple[str, dict[str, str]]:
    parts = _KEYWORDS.split(rest)
    when, clauses = parts[0].strip(), {}
    for key, value in zip(parts[1::2], parts[2::2], strict=True):
        key = "for" if key == "during" else key
        if key in clauses:
            raise UserError(f"You said '{key}' twice; say it once, like {EXAMPLE}.")
        if not value.strip():
            hint = {
                "for": "for 1h", "by": "by 9:30", "max": "max 4", "min": "min 3",
                "instead": "instead of #12",
            }[key]  # fmt: skip
            raise UserError(f"'{key}' needs a value; try !iwant coffee 10:00 {hint}.")
        clauses[key] = value.strip()
    return when, clauses


def names_no_time(args: str) -> bool:
    """Whether a wish says no time at all (``coffee``, ``coffee now``, ``coffee max 3``):
    it may then take the person's next free slot."""
    first, _, rest = _clean(args).partition(" ")
    try:
        when, clauses = _split_clauses(rest)
    except UserError:
        return False
    return when in ("", "now") and "for" not in clauses and "by" not in clauses


def _window_from_when(
    when: str, now: datetime, zone: tzinfo
) -> tuple[datetime, datetime | None, bool]:
    """(start, end or None, start_is_now) for the ``when`` phrase."""
    if when in ("", "now", "asap", "right now"):
        return now, None, True
    if when.startswith("in "):
        return now + parse_duration(when[3:]), None, False
    if m := _UNTIL.match(when):
        return now, parse_clock(m["b"], now, zone), True
    if m := _RANGE.match(when):
        start = parse_clock(m["a"], now, zone)
        end_local_day = start.astimezone(zone).date()
        end = parse_clock(m["b"], now, zone, day=end_local_day)
        return start, end, False
    return parse_clock(when, now, zone), None, False


_PAST_WORDS = {"yesterday", "ago", "last"}
# Words that start a time phrase; any other word after the activity is a second word of it.
_TIME_WORDS = {
    "now", "asap", "right", "in", "at", "until", "till", "from", "today", "tomorrow", "next",
    "noon", "midnight", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
    "sunday", "mon", "tue", "wed", "thu", "fri", "sat", "sun",
}  # fmt: skip
_CLAUSE_WORDS = ("by", "for", "max", "min", "during", "until")
_FAR_WORDS = {"week", "weeks", "month", "months", "year", "years", "weekend"}


def _refuse_past_and_far(when: str, activity: str, settings: Settings) -> None:
    """ "yesterday" and "next week" are times, just not ones a wish can have: say which rule
    they break instead of "not a time of day"."""
    words = set(when.split())
    if words & _PAST_WORDS:
        raise UserError(
            f"'{quote(when)}' is in the past; a wish is for now or later, like "
            f"!iwant {activity} tomorrow 12:00."
        )
    if words & _FAR_WORDS:
        raise UserError(
            f"'{quote(when)}' is too far ahead: I take wishes up to {settings.horizon.days} "
            f"days ahead, like !iwant {activity} friday 12:00."
        )


def _example_for(when: str) -> str:
    """A phrase of the same kind as ``when`` that reads."""
    if when.startswith("in "):
        return "in 20 min"
    if _UNTIL.match(when):
        return "until 11:00"
    if _RANGE.match(when):
        return "11:30-13:00"
    return "12:30"


class _Whole:
    """A time phrase that cannot be read is refused with a whole command that works:
    ``example()`` makes a phrase of the same kind that reads (only then)."""

    __slots__ = ("activity", "example")

    def __init__(self, activity: str, example: Callable[[], str]) -> None:
        self.activity, self.example = activity, example

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, err: BaseException | None, tb: object) -> None:
        if isinstance(err, PhraseError):
            fixed = " ".join(self.example().split())
            raise UserError(f"{err.problem}; try !iwant {self.activity} {fixed}.") from None


#: Time words long enough that a word close to one is a typo of it (``tomorow``), not
#: another word (``in``, ``at``).
_LONG_TIME_WORDS = sorted(w for w in _TIME_WORDS if len(w) >= 4)


def _suggest_time_words(
    activity: str, rest: str, when: str, now: datetime, zone: tzinfo, settings: Settings
) -> None:
    """A time phrase that did not read because of a typo of a time word (``lunch tomorow``,
    ``coffee frday 10:00``): refused with the whole command spelled right (with a time of
    day, when the phrase has none: ``lunch tomorrow 12:30``) if that reads, else with what
    is still wrong once spelled right."""
    typos: dict[str, str] = {}
    for word in when.split(" "):
        if len(word) >= 4 and word.isalpha() and word not in _TIME_WORDS:
            close = difflib.get_close_matches(word, _LONG_TIME_WORDS, 1, 0.8)
            if close:
                typos[word] = close[0]
    if not typos:
        return
    meant = " and ".join(dict.fromkeys(typos.values()))
    spelled = " ".join(typos.get(w, w) for w in when.split(" "))
    tail = rest[len(when) :] if rest.startswith(when) else ""  # the by, max and min clauses
    tries = [f"{activity} {spelled}{tail}"]
    if not any(c.isdigit() for c in when) and "noon" not in spelled and "now" not in spelled:
        tries.append(f"{activity} {spelled} 12:30{tail}")
    problem = ""
    for fixed in tries:
        try:
            parse_wish(fixed, now, zone, settings)
        except UserError as err:
            problem = problem or str(err)
            continue
        raise UserError(f"Did you mean {meant}? Try: !iwant {visible(fixed)}") from None
    raise UserError(f"Did you mean {meant}? {problem}") from None


def parse_wish(args: str, now: datetime, zone: tzinfo, settings: Settings) -> ParsedWish:
    """Read ``coffee 10:00 by 9:30`` (the text after ``!iwant``) at ``now`` in ``zone``."""
    text = _clean(args)
    if not text:
        raise UserError(f"Tell me what you want to do and when, like {EXAMPLE}.")
    first, _, rest = text.partition(" ")
    activity_name = parse_activity(first, settings, rest)
    activity = settings.activity(activity_name)
    assert activity is not None  # parse_activity refuses unknown names
    length = activity.length
    # "Now" is the next whole minute: every stored time is a whole minute, and a default
    # deadline (the last possible start) never lies in the past.
    minute = now.replace(second=0, microsecond=0)
    if minute != now:
        minute += timedelta(minutes=1)
    when, clauses = _split_clauses(rest)
    _refuse_past_and_far(when, activity_name, settings)
    try:
        with _Whole(activity_name, lambda: _example_for(when)):
            start, end, from_now = _window_from_when(when, minute, zone)
    except UserError:
        _suggest_time_words(activity_name, rest, when, now, zone, settings)
        second, _, after = when.partition(" ")
        typo = difflib.get_close_matches(second, [*_TIME_WORDS, *_CLAUSE_WORDS], 1, 0.75)
        if second.isalpha() and second not in _TIME_WORDS and not typo:  # "board games 17:00"
            joined = f"{activity_name}-{second}"[:ACTIVITY_NAME_MAX]
            after_word = rest.partition(" ")[2]  # with its by, max and min clauses
            tail = f" {visible(after_word)}" if after_word else ""
            raise UserError(f"An activity is one word; try !iwant {joined}{tail}.") from None
        raise
    if "for" in clauses:
        if end is not None:
            raise UserError("Give either a range or 'for', not both: !iwant lunch 11:30-13:00")
        with _Whole(activity_name, lambda: f"{when} for 90 min"):
            end = start + parse_duration(clauses["for"])
    if end is None:
        end = start + (settings.default_window if from_now else length)
    if end <= start:
        raise UserError(
            f"The end {clock(end, zone)} is not after the start {clock(start, zone)}; "
            "try !iwant lunch 11:30-13:00."
        )
    if end - start > timedelta(hours=24):
        raise UserError("That window is longer than a day; try !iwant coffee for 2h.")
    if end <= minute or (start < minute and end - minute < length):
        suggestion = when or clock(start, zone)
        for day_word in ("today ", "tomorrow "):
            suggestion = suggestion.removeprefix(day_word)
        raise UserError(
            f"{clock(start, zone)} has already passed; did you mean "
            f"!iwant {activity_name} tomorrow {suggestion}?"
        )
    start = max(start, minute)
    if end - start < length:
        minutes = int(length.total_seconds() // 60)
        raise UserError(
            f"{activity_name.capitalize()} takes {minutes} min but your window "
            f"{clock(start, zone)}–{clock(end, zone)} is shorter; try "
            f"!iwant {activity_name} {clock(start, zone)} for {minutes} min."
        )
    if start > now + settings.horizon:
        raise UserError(
            f"That is more than {settings.horizon.days} days ahead; "
            f"ask again closer to the day, like !iwant {activity_name} tomorrow 12:00."
        )
    last_start = end - length
    deadline = last_start
    if "by" in clauses:
        earlier = start - timedelta(minutes=30)
        with _Whole(activity_name, lambda: f"{when} by {clock(earlier, zone)}"):
            deadline = parse_clock(clauses["by"], now, zone, day=start.astimezone(zone).date())
        if deadline <= now:
            raise UserError(
                f"The deadline {clock(deadline, zone)} has passed; give a later one, "
                f"like {EXAMPLE}."
            )
        if deadline > last_start:
            raise UserError(
                f"The deadline {clock(deadline, zone)} is after the last possible start "
                f"{clock(last_start, zone)}; give an earlier one, like {EXAMPLE}."
            )
    max_size = _size(clauses, "max", activity.max_size, settings)
    min_size = _size(clauses, "min", 2, settings)
    if min_size > max_size:
        raise UserError(
            f"min {min_size} is more than max {max_size}; try !iwant lunch 12:00 min 3 max 6."
        )
    replaces = None
    if "instead" in clauses:
        found = _INSTEAD.match(clauses["instead"])
        if found is None:
            raise UserError(
                f"'instead {quote(clauses['instead'], 12)}' needs a request number, like "
                f"!iwant {activity_name} 10:30 instead of #12 (see !iwant list)."
            )
        replaces = int(found[1])
    return ParsedWish(activity_name, start, end, deadline, length, max_size, min_size, replaces)


def _size(clauses: dict[str, str], key: str, default: int, settings: Settings) -> int:
    if key not in clauses:
        return default
    value = clauses[key]
    example = f"!iwant lunch 12:00 {key} {4 if key == 'max' else 3}"
    if not is_number(value):
        raise UserError(f"'{key} {quote(value, 12)}' needs a whole number, like {example}.")
    size = int(value)
    if size < 2:
        raise UserError(f"A group needs at least 2 people; try {example}.")
    if size > settings.max_group_size:
        raise UserError(f"Groups can have at most {settings.max_group_size} people; try {example}.")
    return size


# -- standing wishes: "lunch 12:00 every weekday" ------------------------------------------------

_EVERY = re.compile(r"\bevery\b")
DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAYS: dict[str, frozenset[int]] = {
    **{name: frozenset({i}) for i, name in enumerate(DAY_NAMES)},
    **{name + "s": frozenset({i}) for i, name in enumerate(DAY_NAMES)},
    **{name[:3]: frozenset({i}) for i, name in enumerate(DAY_NAMES)},
    "tues": frozenset({1}), "thur": frozenset({3}), "thurs": frozenset({3}),
    "weekday": frozenset(range(5)), "weekdays": frozenset(range(5)),
    "workday": frozenset(range(5)), "workdays": frozenset(range(5)),
    "weekend": frozenset({5, 6}), "weekends": frozenset({5, 6}),
    "day": frozenset(range(7)), "days": frozenset(range(7)),
}  # fmt: skip
EVERY_EXAMPLE = "!iwant lunch 12:00 every weekday"
_RELATIVE_WHEN = ("now", "asap", "right", "in", "until", "till")
_DAY_WORDS = {"today", "tomorrow", "next", *_DAYS}


def day_names(days: frozenset[int]) -> str:
    """``weekday``, ``day``, ``weekend`` or ``mon wed fri``: how ``days`` are written."""
    for word in ("day", "weekday", "weekend"):
        if days == _DAYS[word]:
            return word
    return " ".join(DAY_NAMES[d][:3] for d in sorted(days))


def parse_days(words: str, example: str = EVERY_EXAMPLE) -> frozenset[int]:
    """The weekdays (0 = Monday) of ``weekday``, ``day``, ``mon wed fri``, ``friday``."""
    days: set[int] = set()
    for word in words.replace(",", " ").split():
        if word in ("and", "&"):
            continue
        if word not in _DAYS:
            raise UserError(
                f"I don't know the day '{quote(word, 20)}'; say every day, every weekday or "
                f"every mon wed fri, like {example}."
            )
        days |= _DAYS[word]
    if not days:
        raise UserError(f"Say which days after 'every', like {example} (or every mon wed fri).")
    return frozenset(days)


def split_every(args: str) -> tuple[str, frozenset[int]] | None:
    """``lunch 12:00 every weekday max 4`` -> (``lunch 12:00 max 4``, Monday to Friday); None
    when the text has no ``every``. The wish must name a time of day and no day of its own."""
    text = _clean(args)
    found = _EVERY.search(text)
    if found is None:
        return None
    before, after = text[: found.start()].strip(), text[found.end() :].strip()
    clause = _KEYWORDS.search(after)
    day_words, tail = (after[: clause.start()], after[clause.start() :]) if clause else (after, "")
    activity = before.partition(" ")[0]
    example = f"!iwant {activity or 'lunch'} 12:00 every weekday"
    if not before or _EVERY.search(after):
        raise UserError(f"Say the wish, then the days once, like {example}.")
    days = parse_days(day_words, example)
    wish = f"{before} {tail}".strip()
    if "instead" in _split_clauses(wish.partition(" ")[2])[1]:
        raise UserError(f"A standing wish replaces no request; try {example}.")
    when = _split_clauses(wish.partition(" ")[2])[0]
    words = when.split()
    if not words or words[0] in _RELATIVE_WHEN:
        raise UserError(f"A standing wish needs a time of day, like {example}.")
    if _DAY_WORDS & set(words):
        raise UserError(f"Say the days only after 'every', like {example}.")
    return wish, days
