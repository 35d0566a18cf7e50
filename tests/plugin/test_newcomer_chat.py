"""What a newcomer tripped on (issue 25), as people meet it: through the plugin on errbot's
Test backend, and the export as errbot's console renders it."""

from __future__ import annotations

import json

import time_machine
from errbot.rendering import ansi

from ..support import at

pytest_plugins = ["errbot.backends.test"]


def exported(text: str) -> dict:
    return json.loads(text.split("```\n", 1)[1].rsplit("\n```", 1)[0])


def test_matched_then_asking_again_quotes_the_meeting_that_list_shows(chat):
    with time_machine.travel(at(0, 59), tick=False):
        chat.say("alice", "!iwant coffee")
        reply, _ = chat.say("bob", "!iwant coffee 1:19-1:40")
        assert reply.startswith("Matched! You meet alice for coffee at 01:19–01:34 (Tue 1 Dec).")
        reply, _ = chat.say("alice", "!iwant coffee")
        assert reply == (
            "You already want coffee: you meet bob at 01:19–01:34 (Tue 1 Dec); to ask again, "
            "leave that first with !iwant cancel coffee."
        )
        listed, _ = chat.say("alice", "!iwant list")
        assert listed.splitlines()[1] == "1. coffee at 01:19–01:34 (Tue 1 Dec) with bob"


def test_the_board_shows_my_waiting_wish_as_mine(chat):
    with time_machine.travel(at(9, 0), tick=False):
        chat.say("carol", "!iwant lunch 12:00")
        board, _ = chat.say("carol", "!iwant board")
        assert board.splitlines() == [
            "Today and tomorrow in your rooms (UTC time):",
            "lunch:",
            "· today 12:00–12:45: your wish, waiting",
        ]
        board, _ = chat.say("carol", "!iwant board lunch")
        assert "Nothing is wanted" not in board and "your wish, waiting" in board
        board, _ = chat.say("carol", "!iwant board tennis")
        assert board.endswith("Start something: !iwant tennis")


def test_after_tz_standing_wishes_say_which_zone_their_days_use(chat):
    with time_machine.travel(at(0, 59), tick=False) as traveller:
        reply, _ = chat.say("erin", "!iwant lunch 12:30 every weekday")
        assert "Each day at its time in your time zone (UTC; later days follow !iwant tz)." in (
            reply
        )
        reply, _ = chat.say("erin", "!iwant tz Europe/Prague")
        assert reply.endswith(
            "Your standing wishes follow it, at their times in Europe/Prague: lunch 12:30, "
            "every weekday from Wed 2 Dec. Made before the change, these keep their time: "
            "lunch at 13:30–14:15 (Tue 1 Dec)."
        )
        reply, _ = chat.say("erin", "!iwant standing")
        assert reply.splitlines()[0] == (
            "Your standing wishes, each day at its time in your time zone (Europe/Prague; "
            "later days follow !iwant tz):"
        )
        reply, _ = chat.say("erin", "!iwant export")
        assert exported(reply)["standing_wishes"][0]["timezone"] == "Europe/Prague"
        traveller.move_to(at(11, 0))  # noon in Prague: Wednesday's wish is made
        chat.tick()
        listed, _ = chat.say("erin", "!iwant list")
        assert listed.splitlines()[2].startswith("2. lunch 12:30–13:15 (Wed 2 Dec)")


def test_tz_alone_suggests_a_zone_other_than_mine(chat):
    reply, _ = chat.say("dave", "!iwant tz")
    assert reply == "Your time zone is UTC; change it with !iwant tz Europe/Prague."
    chat.say("dave", "!iwant tz Europe/Prague")
    reply, _ = chat.say("dave", "!iwant tz")
    assert reply == "Your time zone is Europe/Prague; change it with !iwant tz America/New_York."


def test_a_misspelt_time_word_gets_did_you_mean_like_a_misspelt_activity(chat):
    with time_machine.travel(at(9, 0), tick=False):
        reply, _ = chat.say("dave", "!iwant lunch tomorow")
        assert reply == "Did you mean tomorrow? Try: !iwant lunch tomorrow 12:30"
        reply, _ = chat.say("dave", "!iwant lunch tomorrow 12:30")
        assert reply.startswith("Waiting for lunch company at 12:30–13:15 (Wed 2 Dec)")


def test_the_export_starts_its_json_clean_and_keeps_a_left_meeting(chat):
    with time_machine.travel(at(0, 59), tick=False):
        chat.say("alice", "!iwant coffee")
        chat.say("bob", "!iwant coffee 1:19-1:40")
        chat.say("bob", "!iwant cancel")
        reply, _ = chat.say("bob", "!iwant export")
    (request,) = exported(reply)["requests"]
    assert request["status"] == "CANCELLED"
    assert request["meeting"] == ["2026-12-01T01:19:00+00:00", "2026-12-01T01:34:00+00:00"]
    assert request["with"] == ["alice"]
    # On errbot's console (and its other text renderers) the JSON starts at the line's start.
    shown = ansi().convert(reply).splitlines()
    assert shown[0] == "Everything iwant keeps about you (JSON):"
    assert "{" in shown and " {" not in shown
    assert json.loads("\n".join(shown[shown.index("{") :]).split("\x1b")[0])["requests"]
