"""Every command form of DESIGN.md's contract and every bad input, as a table."""

from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iwant_engine import UserError
from iwant_engine import settings as settings_mod
from iwant_engine.grammar import parse_wish

from ..support import at

SETTINGS = settings_mod.load(environ={})
UTC = ZoneInfo("UTC")
NOW = at(9, 0)  # Tue 1 Dec 2026, 09:00


def window(text, now=NOW, zone=UTC):
    w = parse_wish(text, now, zone, SETTINGS)
    fmt = "%d %H:%M"
    return (
        w.activity,
        w.earliest.astimezone(zone).strftime(fmt),
        w.latest.astimezone(zone).strftime(fmt),
        w.deadline.astimezone(zone).strftime(fmt),
        w.max_size,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("coffee", ("coffee", "01 09:00", "01 10:00", "01 09:45", 6)),
        ("coffee now", ("coffee", "01 09:00", "01 10:00", "01 09:45", 6)),
        ("lunch 12:00", ("lunch", "01 12:00", "01 12:45", "01 12:00", 8)),
        ("lunch at 12:30", ("lunch", "01 12:30", "01 13:15", "01 12:30", 8)),
        ("lunch 11:30-13:00", ("lunch", "01 11:30", "01 13:00", "01 12:15", 8)),
        ("coffee for 1h", ("coffee", "01 09:00", "01 10:00", "01 09:45", 6)),
        ("coffee for 90 min", ("coffee", "01 09:00", "01 10:30", "01 10:15", 6)),
        ("coffee for 2h", ("coffee", "01 09:00", "01 11:00", "01 10:45", 6)),
        ("coffee 10:00 for 2h", ("coffee", "01 10:00", "01 12:00", "01 11:45", 6)),
        ("coffee in 20 min", ("coffee", "01 09:20", "01 09:35", "01 09:20", 6)),
        ("lunch tomorrow 12:30", ("lunch", "02 12:30", "02 13:15", "02 12:30", 8)),
        ("coffee 10:00 by 9:30", ("coffee", "01 10:00", "01 10:15", "01 09:30", 6)),
        ("lunch 12:00 max 4", ("lunch", "01 12:00", "01 12:45", "01 12:00", 4)),
        # Case-insensitive, and the 2017 original's failures and good cases.
        ("Coffee AT 10:00", ("coffee", "01 10:00", "01 10:15", "01 10:00", 6)),
        ("coffee: 10:00", ("coffee", "01 10:00", "01 10:15", "01 10:00", 6)),
        ("coffee in 1:26", ("coffee", "01 10:26", "01 10:41", "01 10:26", 6)),
        ("coffee in 1h27m", ("coffee", "01 10:27", "01 10:42", "01 10:27", 6)),
        ("coffee during 20 min", ("coffee", "01 09:00", "01 09:20", "01 09:05", 6)),
        ("coffee in 19 minutes", ("coffee", "01 09:19", "01 09:34", "01 09:19", 6)),
        ("coffee in 1h 25m", ("coffee", "01 10:25", "01 10:40", "01 10:25", 6)),
        ("coffee in 2 hours", ("coffee", "01 11:00", "01 11:15", "01 11:00", 6)),
        ("lunch from 11:30 to 13:00", ("lunch", "01 11:30", "01 13:00", "01 12:15", 8)),
        ("coffee until 11:00", ("coffee", "01 09:00", "01 11:00", "01 10:45", 6)),
        ("lunch 12", ("lunch", "01 12:00", "01 12:45", "01 12:00", 8)),
        ("lunch 1pm", ("lunch", "01 13:00", "01 13:45", "01 13:00", 8)),
        ("lunch friday noon", ("lunch", "04 12:00", "04 12:45", "04 12:00", 8)),
        ("tennis 17:00", ("tennis", "01 17:00", "01 17:30", "01 17:00", 6)),
        # A window that has started is clipped to now.
        ("coffee 8:30-10:00", ("coffee", "01 09:00", "01 10:00", "01 09:45", 6)),
    ],
)
def test_contract_examples(text, expected):
    assert window(text) == expected


def test_times_are_read_in_the_senders_zone():
    prague = ZoneInfo("Europe/Prague")  # UTC+1 in December
    w = parse_wish("lunch 12:00", NOW, prague, SETTINGS)
    assert w.earliest == at(11, 0)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "Tell me what you want to do"),
        ("12:00", "Say what you want to do first"),
        ("x" * 30, "too long for an activity"),
        ("c0ff€e", "is not an activity"),
        ("cofee 10:00", "Did you mean coffee?"),
        ("coffee 25:00", "'25:00' is not a time of day"),
        ("coffee at lunchtime", "'lunchtime' is not a time of day"),
        ("lunch 13:00-12:00", "is not after the start"),
        ("coffee 10:00 by 10:30", "after the last possible start"),
        ("coffee 10:00 by 8:30", "has passed"),
        ("lunch 12:00-12:30", "Lunch takes 45 min"),
        ("coffee 8:00", "did you mean !iwant coffee tomorrow 8:00?"),
        ("lunch tuesday 10:00 for 1h", None),  # today 10:00 is fine
        ("coffee 8:00 for 30 min", "did you mean !iwant coffee tomorrow 8:00?"),
        ("lunch 12:00 max 1", "at least 2 people"),
        ("lunch 12:00 max 500", "at most 20 people"),
        ("lunch 12:00 max four", "needs a whole number"),
        ("coffee 10:00 bye 9:30", "I don't understand 'bye'"),
        ("coffee 10:00 by", "'by' needs a value"),
        ("coffee for 1h for 2h", "twice"),
        ("coffee for ages", "as a length of time"),
        ("lunch 11:30-13:00 for 1h", "either a range or 'for'"),
        ("coffee for 30h", "longer than a day"),
        ("coffee " + "9" * 300, "too long for me"),
        ("coffee\x00 10:00", "control characters"),
    ],
)
def test_bad_input_gets_one_clear_line_with_an_example(text, says):
    if says is None:
        parse_wish(text, NOW, UTC, SETTINGS)
        return
    with pytest.raises(UserError) as err:
        parse_wish(text, NOW, UTC, SETTINGS)
    line = str(err.value)
    assert says in line
    assert "\n" not in line
    assert "!iwant" in line or "like" in line or "try" in line.lower()


def test_too_far_ahead_is_refused():
    near = settings_mod.parse_cfg("[activities]\nlunch = 45, 8\n[limits]\nhorizon_days = 2\n", {})
    with pytest.raises(UserError, match="more than 2 days ahead"):
        parse_wish("lunch friday 12:00", NOW, UTC, near)


def test_monday_is_the_next_monday():
    w = parse_wish("lunch monday 12:00", at(9, 0, day=3), UTC, SETTINGS)  # Thursday
    assert w.earliest == at(12, 0, day=7)


def test_unknown_activity_refused_when_config_allows_no_others():
    strict = settings_mod.parse_cfg("[activities]\ncoffee = 15, 6\n", {})
    with pytest.raises(UserError, match="I don't know 'tennis'; try one of: coffee"):
        parse_wish("tennis 17:00", NOW, UTC, strict)


def _request_or_clear_error(text):
    try:
        w = parse_wish(text, NOW, UTC, SETTINGS)
    except UserError as err:
        assert str(err) and "\n" not in str(err)
        return
    assert w.earliest >= NOW.replace(second=0) and w.latest - w.earliest >= w.length
    assert NOW <= w.deadline <= w.latest - w.length


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_gives_a_request_or_a_clear_error(text):
    _request_or_clear_error(text)


WORDS = [
    "coffee",
    "lunch",
    "at",
    "in",
    "for",
    "by",
    "max",
    "tomorrow",
    "now",
    "12:00",
    "9:30",
    "11:30-13:00",
    "20",
    "min",
    "1h",
    "2",
    "h",
    "friday",
    "-",
    "noon",
    "until",
    "bye",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=7))
def test_any_mix_of_grammar_words_gives_a_request_or_a_clear_error(words):
    _request_or_clear_error(" ".join(words))


@pytest.mark.parametrize("zone", ["UTC", "Europe/Prague", "America/New_York", "Asia/Kolkata"])
@pytest.mark.parametrize("day", ["", "today ", "tomorrow "])
def test_the_fast_path_for_clock_times_agrees_with_dateparser(zone, day):
    import dateparser

    from iwant_engine.timephrases import parse_clock

    tz = ZoneInfo(zone)
    for now in (at(0, 30), at(9, 0), at(23, 59), at(1, 0, day=29)):
        base = now.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)
        for hour in range(0, 24, 5):
            for minute in (0, 7, 59):
                phrase = f"{day}{hour}:{minute:02d}"
                expected = dateparser.parse(
                    phrase,
                    languages=["en"],
                    settings={"PREFER_DATES_FROM": "current_period", "RELATIVE_BASE": base},
                )
                assert parse_clock(phrase, now, tz) == expected.replace(tzinfo=tz).astimezone(
                    ZoneInfo("UTC")
                ), phrase


def test_a_request_from_now_starts_at_the_next_whole_minute():
    w = parse_wish("coffee for 15 min", NOW.replace(second=30), UTC, SETTINGS)
    assert (w.earliest, w.latest, w.deadline) == (at(9, 1), at(9, 16), at(9, 1))
