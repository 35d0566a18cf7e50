""" "Did you meet?" as people see it on a platform without buttons: errbot's Test backend, with
time moving (issue 26)."""

from __future__ import annotations

import re

import time_machine

from ..support import at

pytest_plugins = ["errbot.backends.test"]


def test_asked_once_after_the_meeting_with_every_answer_written_out(chat):
    with time_machine.travel(at(9, 0), tick=False) as traveller:
        chat.say("alice", "!iwant coffee 10:00")
        chat.say("bob", "!iwant coffee 9:30-11:00")
        chat.say("carol", "!iwant coffee 9:30-11:00")
        reply, _ = chat.say("dave", "!iwant feedback off")
        assert reply.startswith("I won't ask you whether you met any more.")
        chat.say("dave", "!iwant coffee 9:30-11:00")
        chat.tick()
        traveller.move_to(at(10, 44))
        assert chat.tick() == {}
        traveller.move_to(at(10, 45))
        asked = chat.tick()
        assert sorted(asked) == ["alice", "bob", "carol"], "Dave switched the questions off"
        group = re.search(r"\(group #(\d+)\)", asked["alice"])[1]
        assert asked["alice"].startswith(
            f"Did you meet? coffee 10:00–10:15 (Tue 1 Dec) with bob, carol and dave "
            f"(group #{group})."
        )
        assert asked["alice"].endswith(
            f"We all met: !iwant met #{group} all\n"
            f"Some of us met: !iwant met #{group} some\n"
            f"We didn't meet: !iwant met #{group} none\n"
            "Don't ask me again: !iwant feedback off"
        )
        traveller.move_to(at(11, 30))
        assert chat.tick() == {}, "asked once"

        assert chat.say("alice", f"!iwant met #{group} all")[0] == "Thanks! Glad you all met."
        reply, _ = chat.say("bob", f"!iwant met #{group} some")
        assert reply.splitlines()[1:] == [
            f"alice didn't come: !iwant met #{group} without alice",
            f"carol didn't come: !iwant met #{group} without carol",
            f"dave didn't come: !iwant met #{group} without dave",
        ]
        reply, _ = chat.say("bob", f"!iwant met #{group} without dave")
        assert reply == "Thanks. Noted that dave didn't come."
        reply, _ = chat.say("carol", f"!iwant met #{group} maybe")
        assert reply == f"Say how it went: !iwant met #{group} all (or: none, or without NAME)."
        reply, _ = chat.say("dave", f"!iwant met #{group} none")
        assert reply.startswith(f"I didn't ask you about group #{group}")

        reply, _ = chat.say("bob", "!iwant export")
        assert '"answer": "some"' in reply and '"did_not_come": [\n    "dave"\n   ]' in reply
