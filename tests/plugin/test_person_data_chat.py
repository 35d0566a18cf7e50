"""Export and forget-me as people use them: through the plugin on errbot's Test backend."""

from __future__ import annotations

import json

import time_machine

from ..support import at

pytest_plugins = ["errbot.backends.test"]


def exported(text: str) -> dict:
    return json.loads(text.split("```\n", 1)[1].rsplit("\n```", 1)[0])


def test_export_goes_to_a_direct_message_and_forget_me_asks_first(chat):
    with time_machine.travel(at(9, 0), tick=False) as traveller:
        chat.say_in("office", "alice", "!iwant coffee 10:00")
        chat.say_in("office", "bob", "!iwant coffee 10:00")
        reply, notes = chat.say_in("office", "alice", "!iwant export")
        assert reply == "I sent you everything iwant keeps about you in a direct message."
        doc = exported(notes["alice"])
        assert doc["schema"] == "iwant-export/1"
        assert [r["with"] for r in doc["requests"]] == [["bob"]]

        reply, _ = chat.say("alice", "!iwant forget me")
        assert reply.endswith("To go ahead: !iwant forget me confirm within 5 minutes.")
        traveller.move_to(at(9, 3))
        reply, notes = chat.say("alice", "!iwant forget me confirm")
        assert reply.startswith("Done: I deleted 1 requests")
        assert notes["bob"].startswith("Someone dropped out of coffee at 10:00–10:15")
        reply, _ = chat.say("alice", "!iwant export")
        assert (
            exported(reply)["requests"] == [] and exported(reply)["person"]["display_name"] is None
        )
        reply, _ = chat.say("alice", "!iwant forget everything")
        assert reply == "To delete everything iwant keeps about you: !iwant forget me"
