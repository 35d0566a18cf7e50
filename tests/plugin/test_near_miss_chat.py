"""Near misses and the board (issue 13) as people meet them: through the plugin on errbot's
Test backend, in a room and in direct messages, each reader in their own zone."""

from __future__ import annotations

import pytest
import time_machine

from ..support import at

pytest_plugins = ["errbot.backends.test"]


def test_a_near_miss_turns_into_a_match_and_the_board_shows_it(chat):
    with time_machine.travel(at(9, 0), tick=False) as traveller:
        chat.say("alice", "!iwant tz Europe/Prague")  # Bob and Carol read UTC
        chat.say_in("office", "bob", "!iwant coffee 10:30")
        reply, notes = chat.say_in("office", "carol", "!iwant coffee 10:30")
        assert reply == (
            "Matched! You meet bob for coffee at 10:30–10:45 (Tue 1 Dec).\n"
            "I can't make it: !iwant cancel #2"
        )

        # Alice asks half an hour too early (11:00 in Prague is 10:00 UTC).
        reply, notes = chat.say_in("office", "alice", "!iwant coffee 11:00")
        assert reply.splitlines() == [
            "Waiting for coffee company at 11:00–11:15 (Tue 1 Dec); you'll hear by 11:00.",
            "Nearest: a group of 2 meets for coffee at 11:30–11:45 (Tue 1 Dec); "
            "!iwant coffee 11:30 instead of #3 joins it.",
            "Cancel: !iwant cancel #3",
        ]
        assert notes == {}

        # The room's board, as Alice reads it, and Bob's in a direct message.
        board, _ = chat.say_in("office", "alice", "!iwant board")
        assert board.splitlines() == [
            "Today and tomorrow here (Europe/Prague time):",
            "coffee:",
            "· today 11:00–11:15: your wish, waiting",
            "· today 11:30–11:45: a group of 2, 4 places free; !iwant coffee 11:30 joins",
        ]  # her own wish is shown as hers, not counted; joining does not clash with it
        board, _ = chat.say("bob", "!iwant board")
        assert board.splitlines()[1:] == [
            "coffee:",
            "· today 10:00–11:00: someone waiting",
            "· today 10:30–10:45: your group of 2",
        ]

        # Alice takes the near miss: her 11:00 wish is replaced, the others are told in UTC.
        traveller.move_to(at(9, 5))
        reply, notes = chat.say_in("office", "alice", "!iwant coffee 11:30 instead of #3")
        assert reply == (
            "You join bob and carol for coffee at 11:30–11:45 (Tue 1 Dec). "
            "Your coffee wish 11:00–11:15 (Tue 1 Dec) is cancelled.\n"
            "I can't make it: !iwant cancel #4"
        )
        assert notes == {
            "bob": "alice joins you for coffee at 10:30–10:45 (Tue 1 Dec). "
            "The group: bob, carol and alice.\nI can't make it: !iwant cancel #1",
            "carol": "alice joins you for coffee at 10:30–10:45 (Tue 1 Dec). "
            "The group: bob, carol and alice.\nI can't make it: !iwant cancel #2",
        }
        reply, _ = chat.say("alice", "!iwant list")
        assert reply.splitlines()[1] == "1. coffee at 11:30–11:45 (Tue 1 Dec) with bob, carol"


@pytest.mark.parametrize(
    ("others", "mine", "nearest"),
    [
        (  # a window that overlaps by less than the activity's length
            ["coffee 10:10-10:40"],
            "coffee 10:00-10:20",
            "Nearest: someone wants coffee at 10:10–10:25 (Tue 1 Dec); "
            "!iwant coffee 10:10 instead of #2 meets them.",
        ),
        (  # a window up to an hour later
            ["coffee 11:00"],
            "coffee 10:00",
            "Nearest: someone wants coffee at 11:00–11:15 (Tue 1 Dec); "
            "!iwant coffee 11:00 instead of #2 meets them.",
        ),
        (  # a group that starts just outside the window
            ["coffee 10:30", "coffee 10:30"],
            "coffee 10:00",
            "Nearest: a group of 2 meets for coffee at 10:30–10:45 (Tue 1 Dec); "
            "!iwant coffee 10:30 instead of #3 joins it.",
        ),
        (  # a group full only for my max
            ["coffee 10:00", "coffee 10:00"],
            "coffee 10:00 max 2",
            "Nearest: a group of 2 meets for coffee at 10:00–10:15 (Tue 1 Dec), full for your "
            "max 2; !iwant coffee 10:00 max 3 instead of #3 joins it.",
        ),
    ],
)
def test_each_kind_of_near_miss_and_taking_it(chat, others, mine, nearest):
    with time_machine.travel(at(9, 0), tick=False):
        for n, text in enumerate(others):
            chat.say(f"p{n}", f"!iwant {text}")
        reply, _ = chat.say("alice", f"!iwant {mine}")
        assert reply.splitlines()[1] == nearest
        command = nearest.split("; ", 1)[1].rsplit(" ", 2)[0]
        reply, notes = chat.say("alice", command)
        assert reply.startswith(("Matched! You meet", "You join")), reply
        assert reply.endswith(
            f"is cancelled.\nI can't make it: !iwant cancel #{len(others) + 2}"
        ) and set(notes) == {f"p{n}" for n in range(len(others))}


def test_a_near_miss_gone_meanwhile_and_one_hidden_by_an_ignore(chat):
    with time_machine.travel(at(9, 0), tick=False):
        chat.say("bob", "!iwant coffee 10:30 max 3")
        chat.say("carol", "!iwant coffee 10:30")
        reply, _ = chat.say("alice", "!iwant coffee 10:00")
        assert "a group of 2 meets for coffee at 10:30" in reply
        chat.say("erin", "!iwant coffee 11:00-11:30")
        chat.say("dave", "!iwant coffee 10:30")  # the group is full now
        reply, notes = chat.say("alice", "!iwant coffee 10:30 instead of #3")
        assert reply.splitlines() == [
            "That is not possible any more: that group is full now. Your coffee wish "
            "10:00–10:15 (Tue 1 Dec) stays as it was.",
            "Nearest: someone wants coffee at 11:00–11:15 (Tue 1 Dec); "
            "!iwant coffee 11:00 instead of #3 meets them.",
            "Cancel: !iwant cancel #3",
        ]
        assert notes == {}
        chat.say("erin", "!iwant ignore alice")  # Erin ignores Alice: never counted for her
        reply, _ = chat.say("alice", "!iwant coffee 10:30 instead of #3")
        assert "Nearest" not in reply
        board, _ = chat.say("alice", "!iwant board")
        assert "someone waiting" not in board and "a group of 3, full" in board
