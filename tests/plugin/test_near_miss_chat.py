"""Near misses and the board (issue 13) as people meet them: through the plugin on errbot's
Test backend, in a room and in direct messages, each reader in their own zone."""

from __future__ import annotations

from pathlib import Path

import pytest
import time_machine

from ..support import at
from .chat import Chat, on_sqlite

pytest_plugins = ["errbot.backends.test"]
extra_plugin_dir = str(Path(__file__).resolve().parents[2] / "iwant_plugins")
extra_config = {"BOT_ASYNC": False}


@pytest.fixture
def chat(monkeypatch, testbot) -> Chat:
    return on_sqlite(monkeypatch, testbot)


def test_a_near_miss_turns_into_a_match_and_the_board_shows_it(chat):
    with time_machine.travel(at(9, 0), tick=False) as traveller:
        chat.say("alice", "!iwant tz Europe/Prague")  # Bob and Carol read UTC
        chat.say_in("office", "bob", "!iwant coffee 10:30")
        reply, notes = chat.say_in("office", "carol", "!iwant coffee 10:30")
        assert reply == "Matched! You meet bob for coffee at 10:30–10:45 (Tue 1 Dec)."

        # Alice asks half an hour too early (11:00 in Prague is 10:00 UTC).
        reply, notes = chat.say_in("office", "alice", "!iwant coffee 11:00")
        assert reply.splitlines() == [
            "Waiting for coffee company at 11:00–11:15 (Tue 1 Dec); you'll hear by 11:00.",
            "Nearest: a group of 2 meets for coffee at 11:30–11:45 (Tue 1 Dec); "
            "!iwant coffee 11:30 instead of #3 joins it.",
        ]
        assert notes == {}

        # The room's board, as Alice reads it, and Bob's in a direct message.
        board, _ = chat.say_in("office", "alice", "!iwant board")
        assert board.splitlines() == [
            "Today and tomorrow here (Europe/Prague time):",
            "coffee:",
            "· today 11:30–11:45: a group of 2, 4 places free; !iwant coffee 11:30 joins",
        ]  # her own wish is not counted for her; joining does not clash with it
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
            "Your coffee wish 11:00–11:15 (Tue 1 Dec) is cancelled."
        )
        assert notes == {
            "bob": "alice joins you for coffee at 10:30–10:45 (Tue 1 Dec). "
            "The group: bob, carol and alice.",
            "carol": "alice joins you for coffee at 10:30–10:45 (Tue 1 Dec). "
            "The group: bob, carol and alice.",
        }
        reply, _ = chat.say("alice", "!iwant list")
        assert reply.splitlines()[1] == "1. coffee at 11:30–11:45 (Tue 1 Dec) with bob, carol"
