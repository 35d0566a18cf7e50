"""The iwant plugin in errbot's Test backend: several people talking to one bot."""

from __future__ import annotations

from pathlib import Path

import pytest
import time_machine

from ..support import at

pytest_plugins = ["errbot.backends.test"]


def test_worked_example_between_several_people(chat):
    with time_machine.travel(at(9, 0), tick=False) as traveller:
        reply, notes = chat.say("alice", "!iwant coffee 10:00 by 9:30")
        assert reply == (
            "Waiting for coffee company at 10:00–10:15 (Tue 1 Dec); you'll hear by 09:30.\n"
            "Cancel: !iwant cancel #1"
        )
        assert notes == {}

        traveller.move_to(at(9, 20))
        reply, notes = chat.say("bob", "!iwant coffee for 1h")
        assert reply == (
            "Matched! You meet alice for coffee at 10:00–10:15 (Tue 1 Dec).\n"
            "I can't make it: !iwant cancel #2"
        )
        assert notes == {
            "alice": "bob joins you for coffee at 10:00–10:15 (Tue 1 Dec).\n"
            "I can't make it: !iwant cancel #1"
        }

        traveller.move_to(at(9, 45))
        reply, notes = chat.say("carol", "!iwant coffee 9:50-10:30")
        assert reply == (
            "You join alice and bob for coffee at 10:00–10:15 (Tue 1 Dec).\n"
            "I can't make it: !iwant cancel #3"
        )
        assert set(notes) == {"alice", "bob"}
        assert notes["alice"].startswith("carol joins you for coffee at 10:00–10:15")

        reply, notes = chat.say("bob", "!iwant cancel")
        assert reply.startswith("Cancelled: you left coffee at 10:00–10:15")
        assert set(notes) == {"alice", "carol"}
        assert notes["carol"].startswith("bob dropped out of coffee")

        reply, _ = chat.say("alice", "!iwant list")
        assert reply.splitlines()[1] == "1. coffee at 10:00–10:15 (Tue 1 Dec) with carol"

        traveller.move_to(at(10, 16))
        assert chat.tick() == {}
        reply, _ = chat.say("alice", "!iwant list")
        assert reply.startswith("You have no open requests")


def test_bob_too_late_alice_told_at_her_deadline(chat):
    with time_machine.travel(at(9, 0), tick=False) as traveller:
        chat.say("alice", "!iwant coffee 10:00 by 9:30")
        traveller.move_to(at(9, 29))
        assert chat.tick() == {}
        traveller.move_to(at(9, 30))
        assert chat.tick() == {
            "alice": "Nobody joined you for coffee between 10:00 and 10:15 (Tue 1 Dec). "
            "Maybe next time!"
        }
        traveller.move_to(at(9, 40))
        reply, notes = chat.say("bob", "!iwant coffee for 1h")
        assert reply.startswith("Waiting for coffee company") and notes == {}


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("!iwant", "Tell me what you want to do"),
        ("!iwant coffee 10:00 bye 9:30", "I don't understand 'bye'"),
        ("!iwant lunch 13:00-12:00", "is not after the start"),
        ("!iwant cancel", "no open requests to cancel"),
        ("!iwant cancel #1", "not yours"),
        ("!iwant tz Mars/Base", "try !iwant tz Europe/Prague"),
        ("!iwant coffee '; DROP TABLE requests; --", "I don't understand"),
        ("!iwant " + "x" * 2000, "too long"),
    ],
)
def test_bad_input_gets_one_clear_line(chat, command, says):
    with time_machine.travel(at(9, 0), tick=False):
        reply, notes = chat.say("mallory", command)
        assert says in reply
        assert "\n" not in reply and "Computer says" not in reply and notes == {}
        reply, _ = chat.say("mallory", "!iwant list")
        assert reply.startswith("You have no open requests")


def test_an_internal_failure_is_one_friendly_line(chat, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(chat.plugin.engine, "submit", boom)
    reply, _ = chat.say("alice", "!iwant coffee")
    assert reply.startswith("Something went wrong on my side")


def test_help_lists_the_contract(chat):
    reply, _ = chat.say("alice", "!iwant help")
    for example in ("!iwant coffee 10:00 by 9:30", "!iwant cancel", "!iwant tz Europe/Prague"):
        assert example in reply


def test_acting_as_someone_else_is_for_admins_only(chat):
    admin = chat.bot.bot_config.BOT_ADMINS[0]
    with time_machine.travel(at(9, 0), tick=False):
        reply, _ = chat.say("mallory", "!iwant as @bob coffee 10:00")
        assert "bob" not in reply.lower() or "not" in reply.lower()
        reply, _ = chat.say("bob", "!iwant list")
        assert reply.startswith("You have no open requests")
        reply, _ = chat.say(admin, "!iwant as @bob coffee 10:00")
        assert reply.startswith("[@bob] Waiting for coffee company at 10:00–10:15")


def test_flood_from_one_person_is_limited(chat):
    with time_machine.travel(at(9, 0), tick=False):
        replies = [chat.say("flooder", "!iwant list")[0] for _ in range(21)]
    assert all(r.startswith("You have no open requests") for r in replies[:20])
    assert "faster than I take them" in replies[20]
    assert chat.say("calm", "!iwant list")[0].startswith("You have no open requests")


def test_times_in_each_recipients_zone(chat):
    with time_machine.travel(at(9, 0), tick=False):
        chat.say("alice", "!iwant tz Europe/Prague")
        chat.say("alice", "!iwant lunch 12:00")  # 11:00 UTC
        reply, notes = chat.say("bob", "!iwant lunch 10:30-13:00")
        assert reply == (
            "Matched! You meet alice for lunch at 11:00–11:45 (Tue 1 Dec).\n"
            "I can't make it: !iwant cancel #2"
        )
        assert notes == {
            "alice": "bob joins you for lunch at 12:00–12:45 (Tue 1 Dec).\n"
            "I can't make it: !iwant cancel #1"
        }


def test_ignore_commands_keep_people_apart_privately(chat):
    with time_machine.travel(at(9, 0), tick=False):
        reply, notes = chat.say("alice", "!iwant ignore bob")
        assert reply == "You won't be grouped with bob from now on; they are not told."
        assert notes == {}
        assert chat.say("alice", "!iwant ignored")[0].startswith("You ignore: bob.")
        chat.say("alice", "!iwant coffee 10:00")
        reply, notes = chat.say("bob", "!iwant coffee 10:00")
        assert reply.startswith("Waiting") and notes == {}
        reply, _ = chat.say("alice", "!iwant unignore bob")
        assert reply == "You can be grouped with bob again."
        reply, notes = chat.say("carol", "!iwant coffee 10:00")
        assert reply.startswith("Matched!")
        assert chat.say("alice", "!iwant ignore")[0] == "Say who, like !iwant ignore @bob."


def test_plugins_command_for_admins_and_switching_strategy_on_a_running_bot(
    chat, tmp_path, monkeypatch
):
    admin = chat.bot.bot_config.BOT_ADMINS[0]
    reply, _ = chat.say("mallory", "!iwant plugins")
    assert "overlap" not in reply
    reply, _ = chat.say(admin, "!iwant plugins")
    assert "overlap from iwant_engine.strategies.overlap  (active)" in reply
    assert "quorum from iwant_engine.strategies.quorum\n" in reply + "\n"

    cfg = tmp_path / "plugins.cfg"
    cfg.write_text("[engine]\nstrategy = quorum\n[activities]\nlunch = 45, 8\n")
    monkeypatch.setenv("IWANT_PLUGINS_CFG", str(cfg))
    chat.say(admin, "!plugin reload IWant")
    reply, _ = chat.say(admin, "!iwant plugins")
    assert "quorum from iwant_engine.strategies.quorum  (active)" in reply
    with time_machine.travel(at(9, 0), tick=False):
        chat.say("alice", "!iwant lunch 12:00")
        reply, _ = chat.say("bob", "!iwant lunch 12:00")
        assert reply.startswith("Waiting"), "quorum waits for a third person"
        reply, notes = chat.say("carol", "!iwant lunch 12:00")
        assert reply.startswith("Matched! You meet alice and bob")
        assert set(notes) == {"alice", "bob"}


def test_refusals_a_newcomer_meets_say_what_is_wrong_and_keep_what_was_typed(chat):
    with time_machine.travel(at(9, 0), tick=False):
        cases = {
            "!iwant lunch yesterday": "'yesterday' is in the past; a wish is for now or later, "
            "like !iwant lunch tomorrow 12:00.",
            "!iwant lunch next week": "'next week' is too far ahead: I take wishes up to 7 days "
            "ahead, like !iwant lunch friday 12:00.",
            "!iwant cofee 10:00": "Did you mean coffee? Try: !iwant coffee 10:00",
            "!iwant board games 17:00": "An activity is one word; try !iwant board-games 17:00.",
        }
        for command, expected in cases.items():
            assert chat.say("alice", command)[0] == expected, command
        assert chat.say("alice", "!iwant board-games 17:00")[0].startswith("Waiting for board")
        assert chat.say("alice", "!iwant lunch bye 9:30")[0].startswith("I don't understand")


def test_activities_in_any_script_and_symbols(chat):
    with time_machine.travel(at(9, 0), tick=False):
        assert chat.say("alice", "!iwant café 10:00")[0].startswith("Waiting for café company")
        reply, notes = chat.say("bob", "!iwant CAFE\u0301 10:00")  # decomposed, upper case
        assert reply.startswith("Matched! You meet alice for café at 10:00")
        assert chat.say("olga", "!iwant обед 12:00")[0].startswith("Waiting for обед company")
        assert chat.say("li", "!iwant 午饭 12:00")[0].startswith("Waiting for 午饭 company")
        assert chat.say("carol", "!iwant ☕ 11:00")[0].startswith("Waiting for coffee company")
        reply, _ = chat.say("dave", "!iwant 🎉 11:00")
        assert reply.startswith("'🎉' is not an activity; use one word like coffee")


def test_one_table_of_commands_gives_help_readme_and_the_as_dispatch(chat):
    import sys

    plugin = chat.plugin
    table = sys.modules[type(plugin).__module__]
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    listed = readme.split("## Commands\n\n```\n", 1)[1].split("```", 1)[0].rstrip("\n")
    assert listed == table.command_list(), "README's command list differs from the table"
    for form in table.COMMANDS:
        if form.command:
            assert hasattr(plugin, f"iwant_{form.command}"), form.command
    helped, _ = chat.say("alice", "!iwant help")
    for form in table.COMMANDS:
        assert f"!iwant {form.example}" in helped
    with time_machine.travel(at(9, 0), tick=False):
        admin = chat.bot.bot_config.BOT_ADMINS[0]
        assert chat.say(admin, "!iwant as @bob ignore @carol")[0].startswith("[@bob] You won't")
        assert chat.say(admin, "!iwant as @bob ignored")[0] == (
            "[@bob] You ignore: @carol. Undo with !iwant unignore @someone."
        )
        reply, _ = chat.say(admin, "!iwant as @bob plugins")
        assert reply == "plugins is not something to do as someone else; try !iwant as @bob list."
        assert chat.say(admin, "!iwant as @bob list")[0] == (
            "[@bob] You have no open requests. Start one with !iwant coffee."
        ), "nothing was stored for 'ignored' or 'plugins'"


REFUSED = (
    "!iwant coffee 25:00",
    "!iwant coffee 10:00 for 3 parsecs",
    "!iwant coffee 10:00 by 9:70",
    "!iwant coffee in 3 fortnights",
    "!iwant coffee until teatime",
    "!iwant lunch 11:30-25:00",
    "!iwant coffee 10:00 max",
    "!iwant coffee 10:00 max ²",
    "!iwant lunch 12:00 min 1",
    "!iwant cofee 10:00",
    "!iwant 🎉 10:00",
    "!iwant board games 17:00",
    "!iwant lunch yesterday",
    "!iwant lunch next week",
    "!iwant coffee 8:00",
    "!iwant coffee 10:00 by 11:00",
    "!iwant lunch 12:00 min 5 max 3",
)


@pytest.mark.parametrize("command", REFUSED)
def test_every_refusal_ends_with_a_whole_command_that_works(chat, command):
    with time_machine.travel(at(9, 0), tick=False):
        reply, _ = chat.say("alice", command)
        assert "!iwant " in reply, reply
        suggested = reply[reply.rindex("!iwant ") :].rstrip(".?")
        answer, _ = chat.say("bob", suggested)
    assert answer.startswith(("Waiting for", "Matched!")), (reply, suggested, answer)


def test_the_test_backend_writes_each_buttons_command_where_the_button_would_be(chat, monkeypatch):
    """errbot's Test backend has no buttons: the plugin writes each button's command under
    the text, leaves out one the text already says, and hands the backend no buttons."""
    adapter = chat.plugin.chat
    pressed: list[list[tuple[str, str]]] = []
    original = adapter.reply

    def reply(message, text, buttons=()):
        pressed.append([(b.label, b.command) for b in buttons])
        original(message, text, buttons)

    monkeypatch.setattr(adapter, "reply", reply)
    with time_machine.travel(at(9, 0), tick=False):
        reply_text, notes = chat.say("alice", "!iwant coffee 11:00")
        assert reply_text == (
            "Waiting for coffee company at 11:00–11:15 (Tue 1 Dec); you'll hear by 11:00.\n"
            "Cancel: !iwant cancel #1"
        )
        assert pressed[-1] == [] and notes == {}

        # A near miss: its suggestion is a button too, but the text says the command already.
        reply_text, notes = chat.say("bob", "!iwant coffee 10:00")
        suggested = "!iwant coffee 11:00 instead of #2"
        assert reply_text.splitlines() == [
            "Waiting for coffee company at 10:00–10:15 (Tue 1 Dec); you'll hear by 10:00.",
            f"Nearest: someone wants coffee at 11:00–11:15 (Tue 1 Dec); {suggested} meets them.",
            "Cancel: !iwant cancel #2",
        ]
        assert pressed[-1] == []
        assert reply_text.count(suggested) == 1 and notes == {}
