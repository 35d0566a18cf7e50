"""Standing wishes (issue 16) through the engine, on every storage: each day's wish is made
once, in the person's zone, and behaves like a typed one."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from iwant_engine import UserError
from iwant_engine.grammar import split_every
from iwant_engine.model import Status

from ..support import ALICE, BOB, CAROL, drain

PRAGUE = ZoneInfo("Europe/Prague")


def prague(day: int, hour: int, minute: int = 0, month: int = 10) -> datetime:
    """A Prague wall-clock time in October 2026 (summer time ends on Sunday 25 October)."""
    return datetime(2026, month, day, hour, minute, tzinfo=PRAGUE)


def standing_requests(engine) -> list:
    """Requests made by standing wishes, with their results, by request id."""
    return [
        (r, res)
        for r, res in engine.storage.snapshot()
        if r.event_key and r.event_key.startswith("standing:")
    ]


@pytest.mark.parametrize(
    ("text", "wish", "days"),
    [
        ("lunch 12:00 every weekday", "lunch 12:00", {0, 1, 2, 3, 4}),
        ("coffee 10:00-11:00 every day", "coffee 10:00-11:00", set(range(7))),
        ("lunch 12:30 every mon wed fri", "lunch 12:30", {0, 2, 4}),
        ("walk 17:00 every friday", "walk 17:00", {4}),
        ("Lunch 12:00 every Mon, Thu and Sat max 4", "lunch 12:00 max 4", {0, 3, 5}),
        ("coffee 10:00 every weekend by 9:30", "coffee 10:00 by 9:30", {5, 6}),
        ("lunch at 12:00 every tuesdays", "lunch at 12:00", {1}),
    ],
)
def test_every_phrases(text, wish, days):
    assert split_every(text) == (wish, frozenset(days))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("lunch 12:00 every blursday", "I don't know the day 'blursday'"),
        ("lunch 12:00 every", "Say which days after 'every'"),
        ("lunch every weekday", "needs a time of day"),
        ("coffee now every day", "needs a time of day"),
        ("coffee in 20 min every day", "needs a time of day"),
        ("lunch tomorrow 12:00 every day", "Say the days only after 'every'"),
        ("lunch friday 12:00 every day", "Say the days only after 'every'"),
        ("every day", "Say the wish, then the days once"),
        ("lunch 12:00 every day every friday", "Say the wish, then the days once"),
    ],
)
def test_a_bad_every_phrase_is_one_line_with_an_example(text, says):
    with pytest.raises(UserError) as err:
        split_every(text)
    assert says in str(err.value)
    assert "\n" not in str(err.value) and "every weekday" in str(err.value)


def test_not_a_standing_wish_without_every():
    assert split_every("lunch 12:00 max 4") is None


def test_two_standing_lunches_meet_each_day_at_noon_local_across_the_clock_change(engine, clock):
    clock.set(prague(19, 8))  # Monday
    for who in (ALICE, BOB):
        engine.set_timezone(who, "Europe/Prague")
        engine.feedback_setting(who, "off")  # "Did you meet?" is tested on its own
    first = engine.submit(ALICE, "lunch 12:00 every day").body
    assert first.splitlines() == [
        "Standing wish 1: lunch 12:00, every day. Each day at its time in your time zone "
        "(Europe/Prague; later days follow !iwant tz). I make each day's wish at 12:00 the day "
        "before, and you hear when someone joins; !iwant standing lists them, !iwant stop 1 "
        "ends this one.",
        "Mon 19 Oct: Waiting for lunch company at 12:00–12:45 (Mon 19 Oct); you'll hear by 12:00.",
    ]
    second = engine.submit(BOB, "lunch 12:00 every day").body
    assert second.splitlines()[1] == (
        "Mon 19 Oct: Matched! You meet Alice for lunch at 12:00–12:45 (Mon 19 Oct)."
    )
    told = drain(engine)
    assert told == [
        (
            ALICE.id,
            "Bob joins you for lunch at 12:00–12:45 (Mon 19 Oct). (From your standing lunch "
            "wish; !iwant stop lunch ends it.)",
        )
    ]
    for day in range(20, 27):
        clock.set(prague(day - 1, 12, 30))  # a day's wish is made at 12:00 the day before
        engine.sweep()
        label = f"{prague(day, 12):%a} {day} Oct"
        notes = dict(drain(engine))
        assert notes[BOB.id] == (
            f"Matched! You meet Alice for lunch at 12:00–12:45 ({label}). (From your standing "
            "lunch wish; !iwant stop lunch ends it.)"
        )
        assert notes[ALICE.id].startswith(f"Bob joins you for lunch at 12:00–12:45 ({label}).")
    starts = sorted({res.start for _, res in standing_requests(engine)})
    assert len(starts) == 8, "one meeting a day, each made once"
    # 12:00 in Prague is 10:00 UTC in summer time and 11:00 UTC from Sunday 25 October on.
    assert [s.astimezone(UTC).hour for s in starts] == [10] * 6 + [11] * 2
    assert all(s.astimezone(PRAGUE).hour == 12 for s in starts)


def test_a_days_wish_is_an_ordinary_request(engine, clock):
    clock.set(prague(19, 9))
    engine.set_timezone(ALICE, "Europe/Prague")
    engine.submit(ALICE, "lunch 12:00 every weekday")
    assert engine.list_text(ALICE).splitlines()[1].startswith("1. lunch 12:00–12:45 (Mon 19 Oct)")
    assert engine.cancel(ALICE, "lunch").body.startswith("Cancelled: lunch 12:00–12:45")
    clock.set(prague(19, 12, 30))
    engine.sweep()
    assert drain(engine) == [], "a wish that waits is made without a message"
    listed = engine.list_text(ALICE).splitlines()
    assert listed[1].startswith("1. lunch 12:00–12:45 (Tue 20 Oct), waiting")
    # A typed lunch the same day then is refused like any second lunch; the standing one
    # says why the next day's was not made.
    clock.set(prague(20, 13))
    engine.submit(ALICE, "lunch tomorrow 11:30-13:30")
    engine.sweep()
    assert drain(engine) == [
        (
            ALICE.id,
            "I did not make your standing lunch wish for Wed 21 Oct: You already want lunch "
            "11:30–13:30 (Wed 21 Oct); cancel it first with !iwant cancel lunch.",
        ),
        (
            ALICE.id,
            "Nobody joined you for lunch between 12:00 and 12:45 (Tue 20 Oct). Maybe next "
            "time! (From your standing lunch wish; !iwant stop lunch ends it.)",
        ),
    ]


def test_skip_pause_resume_and_stop(engine, clock):
    clock.set(prague(19, 9))  # Monday
    engine.set_timezone(ALICE, "Europe/Prague")
    engine.submit(ALICE, "lunch 12:00 every weekday")
    assert engine.skip(ALICE, "wednesday") == ("Skipping Wed 21 Oct: lunch 12:00, every weekday.")
    assert "skipping Wed 21 Oct" in engine.standing_text(ALICE)
    made = []
    for day in (20, 21, 22):
        clock.set(prague(day - 1, 12, 30))
        engine.sweep()
        made.append(len(standing_requests(engine)))
    assert made == [2, 2, 3], "Tuesday and Thursday made, Wednesday skipped"
    clock.set(prague(21, 13))
    reply = engine.pause(ALICE, "until 2026-10-26")
    assert reply == (
        "Paused your standing wish until Mon 26 Oct (the first day back); !iwant resume ends "
        "the pause sooner. I cancelled the wishes already made (lunch)."
    )
    thursday = standing_requests(engine)[-1][0]
    assert thursday.status == Status.CANCELLED
    clock.set(prague(22, 12, 30))
    engine.sweep()
    assert len(standing_requests(engine)) == 3, "Friday is paused"
    assert engine.resume(ALICE) == "Resumed: the next is lunch on Mon 26 Oct; see !iwant standing."
    assert engine.resume(ALICE) == "Your standing wishes are not paused; see !iwant standing."
    clock.set(prague(25, 12, 30))
    engine.sweep()
    assert len(standing_requests(engine)) == 4, "Monday made after the pause"
    assert engine.stop(ALICE, "lunch") == (
        "Stopped: lunch 12:00, every weekday. The lunch wish already made from it stays; "
        "!iwant cancel lunch cancels it."
    )
    clock.set(prague(26, 12, 30))
    engine.sweep()
    assert len(standing_requests(engine)) == 4, "nothing made once stopped"
    assert engine.standing_text(ALICE).startswith("You have no standing wishes.")


def test_skipping_a_day_already_made_cancels_it_and_tells_the_group(engine, clock):
    clock.set(prague(19, 9))
    for who in (ALICE, BOB):
        engine.set_timezone(who, "Europe/Prague")
        engine.submit(who, "lunch 12:00 every weekday")
    drain(engine)
    assert engine.skip(BOB, "today") == (
        "Skipping Mon 19 Oct: lunch 12:00, every weekday. I cancelled the wish already made "
        "for that day (lunch)."
    )
    notes = drain(engine)
    assert [r for r, _ in notes] == [ALICE.id]
    assert "Bob dropped out of lunch" in notes[0][1]
    assert notes[0][1].endswith("(From your standing lunch wish; !iwant stop lunch ends it.)")


def test_no_wish_in_the_past_and_the_limit_of_standing_wishes(engine, clock):
    clock.set(prague(19, 13))  # today's 12:00 has passed
    engine.set_timezone(ALICE, "Europe/Prague")
    reply = engine.submit(ALICE, "lunch 12:00 every weekday").body
    assert reply.splitlines()[1:] == ["Tue 20 Oct: Waiting for lunch company at 12:00–12:45 "
                                      "(Tue 20 Oct); you'll hear by 12:00."]  # fmt: skip
    with pytest.raises(UserError, match=r"already \(number 1\)"):
        engine.submit(ALICE, "lunch 12:00 every weekday")
    for hour in (8, 9, 10, 11):
        engine.submit(ALICE, f"walk {hour}:00 every saturday")
    with pytest.raises(UserError, match="You have 5 standing wishes, the most"):
        engine.submit(ALICE, "walk 15:00 every sunday")
    # After a week of downtime nothing is made for the days that passed.
    clock.set(prague(28, 12, 30))
    engine.sweep()
    days = sorted(r.earliest.astimezone(PRAGUE).day for r, _ in standing_requests(engine))
    assert days == [20, 29], "Tuesday before the downtime, then the next day due"


def test_commands_refuse_clearly(engine, clock):
    clock.set(prague(19, 9))
    assert engine.standing_text(ALICE).startswith("You have no standing wishes.")
    for call, says in [
        (lambda: engine.skip(ALICE, "friday"), "You have no standing wishes"),
        (lambda: engine.stop(ALICE, ""), "You have no standing wishes"),
        (lambda: engine.pause(ALICE, "2 weeks"), "You have no standing wishes"),
    ]:
        with pytest.raises(UserError, match=says):
            call()
    engine.submit(ALICE, "lunch 12:00 every weekday")
    engine.submit(ALICE, "coffee 10:00 every day")
    for call, says in [
        (lambda: engine.skip(ALICE, "blursday"), "I can't read the day 'blursday'; try !iwant"),
        (lambda: engine.skip(ALICE, "lunch sunday"), "None of your standing lunch wishes is on"),
        (lambda: engine.stop(ALICE, ""), "You have 2 standing wishes; say which"),
        (lambda: engine.stop(ALICE, "3"), "There is no standing wish 3; you have 2"),
        (lambda: engine.stop(ALICE, "tea"), "You have no standing tea wish"),
        (lambda: engine.pause(ALICE, ""), "Say until when"),
        (lambda: engine.pause(ALICE, "until 2026-10-01"), "has passed"),
        (lambda: engine.pause(ALICE, "400 days"), "at most 365 days"),
        (lambda: engine.submit(CAROL, "lunch 25:00 every day"), "try !iwant lunch"),
    ]:
        with pytest.raises(UserError, match=says) as err:
            call()
        assert "\n" not in str(err.value) and "!iwant" in str(err.value)
    assert engine.pause(ALICE, "2 weeks").startswith("Paused all 2 standing wishes until Mon 2 Nov")
