"""Standing wishes (issue 16) as people use them: through the plugin on errbot's Test backend,
on SQLite and PostgreSQL, with time travel across the week in which summer time ends in
Prague (Sunday 25 October 2026, 03:00 -> 02:00)."""

from __future__ import annotations

from datetime import UTC, datetime
from multiprocessing.pool import ThreadPool
from zoneinfo import ZoneInfo

import pytest
import time_machine

from ..support import truncate_postgres
from .chat import Chat

pytest_plugins = ["errbot.backends.test"]
PRAGUE = ZoneInfo("Europe/Prague")
MARK = "(From your standing lunch wish; !iwant stop lunch ends it.)"


def prague(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 10, day, hour, minute, tzinfo=PRAGUE)


@pytest.fixture(params=["sqlite", "postgresql"])
def chat(request, monkeypatch, testbot) -> Chat:
    testbot.bot.thread_pool = ThreadPool(1)
    chat = Chat(testbot)
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_database")
        truncate_postgres(url)
        monkeypatch.setenv("IWANT_DATABASE_URL", url)
        chat.plugin.deactivate()  # the plugin started on SQLite before the variable was set
        chat.plugin.activate()
    return chat


def meetings(chat: Chat) -> list[datetime]:
    """Start of every group made from standing wishes, in UTC, by time."""
    rows = chat.plugin.engine.storage.snapshot()
    starts = {
        res.start
        for req, res in rows
        if req.event_key and req.event_key.startswith("standing:") and res.start
    }
    return sorted(s.astimezone(UTC) for s in starts if s is not None)


def test_a_week_of_standing_lunches_with_skip_pause_resume_stop_and_a_cancelled_day(chat):
    with time_machine.travel(prague(19, 9), tick=False) as traveller:  # Monday
        for who in ("alice", "bob"):
            chat.say(who, "!iwant tz Europe/Prague")
            chat.say(who, "!iwant feedback off")  # "Did you meet?" is tested on its own
        reply, _ = chat.say("alice", "!iwant lunch 12:00 every day")
        assert reply.startswith("Standing wish 1: lunch 12:00, every day.")
        assert reply.endswith("Mon 19 Oct: Waiting for lunch company at 12:00–12:45 (Mon 19 Oct);"
                              " you'll hear by 12:00.")  # fmt: skip
        assert "!iwant stop 1" in reply and "Stop it:" not in reply, "said once, in one form"
        reply, notes = chat.say("bob", "!iwant lunch 12:00 every day")
        assert reply.endswith("Mon 19 Oct: Matched! You meet alice for lunch at 12:00–12:45 "
                              "(Mon 19 Oct).")  # fmt: skip
        assert notes == {
            "alice": f"bob joins you for lunch at 12:00–12:45 (Mon 19 Oct). {MARK}\n"
            "I can't make it: !iwant cancel #1"
        }
        reply, _ = chat.say("bob", "!iwant skip wednesday")
        assert reply == "Skipping Wed 21 Oct: lunch 12:00, every day."

        # Monday 12:30: Tuesday's wishes are made and meet.
        traveller.move_to(prague(19, 12, 30))
        notes = chat.tick()
        assert notes["bob"] == (
            f"Matched! You meet alice for lunch at 12:00–12:45 (Tue 20 Oct). {MARK}\n"
            "I can't make it: !iwant cancel #4"
        )
        assert notes["alice"] == (
            f"bob joins you for lunch at 12:00–12:45 (Tue 20 Oct). {MARK}\n"
            "I can't make it: !iwant cancel #3"
        )

        # Tuesday morning alice cancels that day alone; bob waits again, and hears at noon.
        traveller.move_to(prague(20, 9))
        reply, notes = chat.say("alice", "!iwant cancel lunch")
        assert reply.startswith("Cancelled: you left lunch at 12:00–12:45 (Tue 20 Oct)")
        assert notes["bob"].startswith("alice dropped out of lunch at 12:00–12:45 (Tue 20 Oct)")
        assert notes["bob"].endswith(f"{MARK}\nCancel: !iwant cancel #4")
        reply, _ = chat.say("alice", "!iwant standing")
        assert reply.splitlines()[1] == "1. lunch 12:00, every day"

        # Tuesday 12:30: bob skips Wednesday, so alice's Wednesday waits alone, silently; bob's
        # Tuesday has ended with nobody.
        traveller.move_to(prague(20, 12, 30))
        notes = chat.tick()
        assert notes == {
            "bob": "Nobody joined you for lunch between 12:00 and 12:45 (Tue 20 Oct). Maybe "
            f"next time! {MARK}"
        }
        reply, _ = chat.say("bob", "!iwant list")
        assert reply.startswith("You have no open requests")
        reply, _ = chat.say("alice", "!iwant list")
        assert reply.splitlines()[1].startswith("1. lunch 12:00–12:45 (Wed 21 Oct), waiting")

        # Wednesday 12:30: Thursday's meet again.
        traveller.move_to(prague(21, 12, 30))
        notes = chat.tick()
        assert set(notes) == {"alice", "bob"} and "(Thu 22 Oct)" in notes["bob"]

        # Thursday 13:00 (Friday's are made and matched): alice pauses until Monday; her
        # Friday is cancelled and bob is told.
        traveller.move_to(prague(22, 13))
        notes = chat.tick()
        assert "(Fri 23 Oct)" in notes["bob"]
        reply, notes = chat.say("alice", "!iwant pause until 2026-10-26")
        assert reply == (
            "Paused your standing wish until Mon 26 Oct (the first day back); !iwant resume "
            "ends the pause sooner. I cancelled the wishes already made (lunch)."
        )
        assert notes["bob"].startswith("alice dropped out of lunch at 12:00–12:45 (Fri 23 Oct)")

        # Friday 12:30: no Saturday wish for alice; she resumes, and Sunday's are made.
        traveller.move_to(prague(23, 12, 30))
        chat.tick()
        reply, _ = chat.say("alice", "!iwant resume")
        assert reply == "Resumed: the next is lunch on Sun 25 Oct; see !iwant standing."
        traveller.move_to(prague(24, 12, 30))
        assert chat.tick_all() == [
            ("alice", f"bob joins you for lunch at 12:00–12:45 (Sun 25 Oct). {MARK}\n"
                      "I can't make it: !iwant cancel #11"),
            ("bob", f"Matched! You meet alice for lunch at 12:00–12:45 (Sun 25 Oct). {MARK}\n"
                    "I can't make it: !iwant cancel #12"),
            ("bob", "Nobody joined you for lunch between 12:00 and 12:45 (Sat 24 Oct). Maybe "
                    f"next time! {MARK}"),
        ]  # fmt: skip

        # Sunday 13:00 (clocks went back at 03:00): Monday's are made; bob stops his.
        traveller.move_to(prague(25, 13))
        notes = chat.tick()
        assert "(Mon 26 Oct)" in notes["bob"]
        reply, _ = chat.say("bob", "!iwant stop 1")
        assert reply == (
            "Stopped: lunch 12:00, every day. The lunch wish already made from it stays; "
            "!iwant cancel lunch cancels it."
        )
        traveller.move_to(prague(26, 12, 50))
        assert chat.tick() == {}, "alice's Tuesday waits; bob has no standing wish any more"
        reply, _ = chat.say("bob", "!iwant standing")
        assert reply.startswith("You have no standing wishes.")

    # The meetings that stand (Tuesday's and Friday's broke up), each at 12:00 in Prague:
    # 10:00 UTC in summer time, 11:00 UTC from Sunday on.
    starts = meetings(chat)
    assert [s.day for s in starts] == [19, 22, 25, 26]
    assert [s.hour for s in starts] == [10, 10, 11, 11]


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("!iwant lunch 12:00 every blursday", "I don't know the day 'blursday'"),
        ("!iwant lunch every weekday", "A standing wish needs a time of day"),
        ("!iwant skip friday", "You have no standing wishes"),
        ("!iwant pause until someday", "I can't read the day 'someday'"),
        ("!iwant stop", "You have no standing wishes"),
    ],
)
def test_bad_standing_commands_get_one_line_with_an_example(chat, command, says):
    with time_machine.travel(prague(19, 9), tick=False):
        reply, notes = chat.say("mallory", command)
    assert says in reply and "!iwant" in reply
    assert "\n" not in reply and notes == {}
