"""Real errbot processes on the IWantTelegram backend (config.py, IWANT_BACKEND) against the
stand-in, with errbot's own commands and a test-only probe plugin."""

from __future__ import annotations

import signal
import time

import pytest
from telegram_harness import HERE, TOKEN, ErrbotProcess
from telegram_standin import BotApiStandin, wait_until

ALICE, BOB, CAROL = 4242, 5151, 6363
GROUP = -100123
PROBE = (HERE / "plugins",)


@pytest.fixture
def people(standin: BotApiStandin) -> BotApiStandin:
    standin.add_user(ALICE, "Alice", "alice", last_name="Liddell")
    standin.add_user(BOB, "Bob", "bob")
    standin.add_user(CAROL, "Carol", started=False)
    standin.add_group(GROUP, "Coffee lovers")
    return standin


def assert_token_not_logged(bot: ErrbotProcess) -> None:
    secret = TOKEN.split(":", 1)[1]
    assert secret not in bot.output()


def test_commands_in_private_and_group_chats(people: BotApiStandin, errbot_factory) -> None:
    bot = errbot_factory(extra_plugin_dirs=PROBE).start()
    assert "iwant" in [c["command"] for c in people.commands]

    people.user_says(ALICE, "!echo hello there")
    people.user_says(ALICE, "/echo slash form")
    people.user_says(BOB, "/echo@IWantTestBot in the group", chat_id=GROUP)
    people.user_says(BOB, "/echo@OtherBot not for us", chat_id=GROUP)
    people.user_says(BOB, "!probe_whoami", chat_id=GROUP)
    people.wait_for_text(ALICE, "hello there")
    people.wait_for_text(ALICE, "slash form")
    people.wait_for_text(GROUP, "in the group")
    who = people.wait_for_text(GROUP, "person=")["text"]
    assert "person=5151" in who and "nick=bob" in who and f"room={GROUP}" in who
    assert "roundtrip=5151" in who and "fullname=Bob" in who
    assert not any("not for us" in t for t in people.texts(GROUP))
    # Replies went only where the command was typed.
    assert people.texts(BOB) == []

    people.user_says(ALICE, "!help")
    people.wait_for_text(ALICE, "echo")
    people.user_says(ALICE, "!whoami")
    whoami = people.wait_for_text(ALICE, "fullname")["text"]
    assert "`4242`" in whoami and "`alice`" in whoami and "Alice Liddell" in whoami
    # Admins are numeric ids (IWANT_BOT_ADMINS=4242 in the harness).
    people.user_says(BOB, "!shutdown")
    people.user_says(ALICE, "!shutdown")
    people.wait_for_text(BOB, "requires bot-admin privileges")
    people.wait_for_text(ALICE, "--confirm")
    assert bot.stop(signal.SIGTERM) == 0  # SIGTERM is a clean shutdown too
    assert "Disconnect callback" in bot.output()
    assert_token_not_logged(bot)


def test_restart_neither_repeats_nor_loses_updates(people: BotApiStandin, errbot_factory) -> None:
    bot = errbot_factory().start()
    people.user_says(ALICE, "!echo one")
    people.wait_for_text(ALICE, "one")
    bot.stop(signal.SIGINT)  # a clean stop

    people.user_says(ALICE, "!echo two")  # while the bot is down
    people.user_says(BOB, "!echo three")
    bot.start()
    people.wait_for_text(ALICE, "two")
    people.wait_for_text(BOB, "three")
    bot.stop(signal.SIGKILL)  # a crash: nothing is flushed at exit

    people.user_says(ALICE, "!echo four")
    bot.start()
    people.wait_for_text(ALICE, "four")
    people.user_says(ALICE, "!echo five")
    people.wait_for_text(ALICE, "five")
    time.sleep(0.5)  # a repeat would come right after the restart; give it a moment
    assert people.texts(ALICE) == ["one", "two", "four", "five"]
    assert people.texts(BOB) == ["three"]
    assert_token_not_logged(bot)


def test_flood_control_on_replies(people: BotApiStandin, errbot_factory) -> None:
    errbot_factory().start()
    people.fail("sendMessage", 429, retry_after=1, times=2, chat_id=ALICE)
    people.user_says(ALICE, "!echo patience")
    people.wait_for_text(ALICE, "patience", timeout=15)
    statuses = [c.status for c in people.calls_to("sendMessage")]
    assert statuses == [429, 429, 200]
    assert people.texts(ALICE) == ["patience"]


def test_polling_recovers_from_errors_and_dropped_connections(
    people: BotApiStandin, errbot_factory
) -> None:
    errbot_factory().start()
    # (Every kind of failure is covered in process; here: that the real process recovers.)
    people.fail("getUpdates", 502)
    people.drop("getUpdates", delay=0.3)
    people.user_says(ALICE, "!echo first")  # ends the current long poll
    people.wait_for_text(ALICE, "first")
    wait_until(lambda: all(r.times == 0 for r in people.rules), 20, "the failures to be used")
    people.user_says(ALICE, "!echo second")
    people.wait_for_text(ALICE, "second", timeout=20)
    assert people.texts(ALICE) == ["first", "second"]


def test_buttons_act_as_the_presser(people: BotApiStandin, errbot_factory) -> None:
    errbot_factory(extra_plugin_dirs=PROBE).start()
    # In a private chat: the owner presses, the command runs as them, buttons go away.
    people.user_says(ALICE, "!probe_buttons")
    menu = people.wait_for_text(ALICE, "Pick one")
    labels = [b["text"] for row in menu["reply_markup"]["inline_keyboard"] for b in row]
    assert labels == ["Echo", "Long"]
    people.press(ALICE, menu, "Echo")
    people.wait_for_text(ALICE, "pressed")
    wait_until(
        lambda: "reply_markup" not in people.message(ALICE, menu["message_id"]),
        what="the buttons to be removed",
    )
    assert len(people.answered_queries) == 1

    # In a group: Bob presses the menu Alice asked for; it runs as Bob, in the group, and
    # the message keeps its buttons.
    people.user_says(ALICE, "/probe_buttons@IWantTestBot", chat_id=GROUP)
    group_menu = people.wait_for_text(GROUP, "Pick one")
    people.press(BOB, group_menu, "Long")
    reply = people.wait_for_text(GROUP, "long long")
    assert reply["text"].split() == ["long"] * 20
    assert people.message(GROUP, group_menu["message_id"]).get("reply_markup")
    assert len(people.calls_to("editMessageReplyMarkup")) == 1
    wait_until(lambda: len(people.answered_queries) == 2, what="both presses answered")


def test_undeliverable_person_raises_the_marked_exception(
    people: BotApiStandin, errbot_factory
) -> None:
    errbot_factory(extra_plugin_dirs=PROBE).start()
    people.user_says(ALICE, f"!probe_dm {CAROL}")  # Carol never started the bot
    people.user_says(ALICE, f"!probe_dm {BOB}")
    people.fail("sendMessage", 502, chat_id=BOB)
    people.user_says(ALICE, f"!probe_dm {BOB}")
    people.wait_for_text(ALICE, "TelegramUndeliverable undeliverable=True")
    wait_until(lambda: len(people.texts(ALICE)) == 3, what="three probe replies")
    assert sorted(people.texts(ALICE)) == sorted(
        [
            "failed: TelegramUndeliverable undeliverable=True",
            "sent",
            "failed: TelegramSendError undeliverable=False",
        ]
    )
    assert people.texts(BOB) == ["direct hello"]


def test_rejected_token_stops_the_process(people: BotApiStandin, errbot_factory) -> None:
    bot = errbot_factory(env={"TELEGRAM_TOKEN": "123456789:WRONG-token"})
    with pytest.raises(AssertionError, match="exited with 2"):
        bot.start(timeout=30)
    assert [c.status for c in people.calls] == [401]
    assert "WRONG-token" not in bot.output()
    assert "rejected the bot token" in bot.output()
