"""End to end: the iwant plugin in a real errbot process on the Telegram backend, people
talking to it through the Bot API stand-in, at real (current) times."""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from telegram_harness import TOKEN, ErrbotProcess
from telegram_standin import JSON, BotApiStandin, wait_until

ALICE, BOB, CAROL, DAVE = 4242, 5151, 6363, 7474
GROUP = -100123


def midday_zone() -> str:
    """A fixed-offset zone where it is about noon now, so that "in 40 min" and "by" times
    never cross midnight, whatever time the tests run."""
    offset = 12 - datetime.now(UTC).hour  # -11 … +12 hours
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc/GMT-3 is UTC+3


ZONE_NAME = midday_zone()
ZONE = ZoneInfo(ZONE_NAME)


def clock(minutes_from_now: float) -> str:
    return (datetime.now(ZONE) + timedelta(minutes=minutes_from_now)).strftime("%H:%M")


@pytest.fixture
def people(standin: BotApiStandin) -> BotApiStandin:
    standin.add_user(ALICE, "Alice", "alice")
    standin.add_user(BOB, "Bob", "bob")
    standin.add_user(CAROL, "Carol", "carol")
    standin.add_user(DAVE, "Dave", started=False)  # never opened a chat with the bot
    standin.add_group(GROUP, "Coffee lovers")
    return standin


@pytest.fixture
def iwant(people: BotApiStandin, errbot_factory) -> ErrbotProcess:
    return errbot_factory(env={"IWANT_TIMEZONE": ZONE_NAME}).start()


def buttons(message: JSON) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return [b["text"] for row in rows for b in row]


def mentions(message: JSON, *names: str) -> bool:
    return all(name in message["text"] for name in names)


def test_worked_example_between_telegram_users(people: BotApiStandin, iwant) -> None:
    # Alice: coffee in 40 min, tell me by 20 min from now.
    deadline = clock(20)
    people.user_says(ALICE, f"/iwant coffee in 40 min by {deadline}")
    waiting = people.wait_for_text(ALICE, "waiting")
    assert deadline in waiting["text"]
    assert buttons(waiting) == ["Cancel"]

    # Bob: free for the next two hours, so Alice's slot fits inside: they are matched.
    people.user_says(BOB, "!iwant coffee for 2h")
    bob_reply = people.wait_for_text(BOB, "Alice")
    alice_note = people.wait_for_text(ALICE, "Bob", after=1)
    start = clock(40)
    assert start in bob_reply["text"] or clock(41) in bob_reply["text"]
    assert "joins you" in alice_note["text"]
    assert buttons(alice_note) == ["I can't make it"]

    # Carol fits the formed group's slot and joins it; both are told.
    people.user_says(CAROL, f"!iwant coffee {clock(30)}-{clock(90)}")
    carol_reply = people.wait_for_text(CAROL, "Alice")
    assert "Bob" in carol_reply["text"]
    people.wait_for_text(ALICE, "Carol", after=2)
    people.wait_for_text(BOB, "Carol", after=1)

    # Bob drops out with the button on his confirmation: Alice and Carol are told.
    people.press(BOB, bob_reply, "I can't make it")
    people.wait_for_text(ALICE, "dropped out", after=3)
    people.wait_for_text(CAROL, "dropped out", after=1)
    assert "Bob" in people.sent(ALICE)[-1]["text"]

    # Nobody got anything twice; nobody else got anything.
    time.sleep(1.2)  # a poller tick (1 s): a repeated notification would show up now
    assert len(people.sent(ALICE)) == 4 and len(people.sent(CAROL)) == 2
    assert people.texts(GROUP) == []
    people.user_says(BOB, "!iwant list")
    assert "no open requests" in people.wait_for_text(BOB, "requests", after=2)["text"]


def test_cancel_button_on_a_confirmation(people: BotApiStandin, iwant) -> None:
    people.user_says(ALICE, "/iwant tea in 1h")
    waiting = people.wait_for_text(ALICE, "waiting")
    people.press(ALICE, waiting, "Cancel")
    people.wait_for_text(ALICE, "cancel", after=1)
    wait_until(lambda: not buttons(people.message(ALICE, waiting["message_id"])))
    assert len(people.answered_queries) == 1
    people.user_says(ALICE, "!iwant list")
    assert "no open requests" in people.wait_for_text(ALICE, "requests", after=2)["text"]


def test_someone_elses_button_changes_nothing(people: BotApiStandin, iwant) -> None:
    people.user_says(ALICE, "/iwant@IWantTestBot lunch in 2h", chat_id=GROUP)
    waiting = people.wait_for_text(GROUP, "waiting")
    assert buttons(waiting) == ["Cancel"]

    people.press(BOB, waiting, "Cancel")  # Bob presses Alice's button
    refusal = people.wait_for_text(GROUP, "not yours")
    assert refusal["message_id"] > waiting["message_id"]
    assert buttons(people.message(GROUP, waiting["message_id"])) == ["Cancel"]
    assert not people.calls_to("editMessageReplyMarkup")
    people.user_says(ALICE, "!iwant list")
    assert "lunch" in people.wait_for_text(ALICE, "requests")["text"]

    people.press(ALICE, waiting, "Cancel")  # her own press works
    wait_until(lambda: len(people.sent(GROUP)) == 3, what="the cancellation reply")
    people.user_says(ALICE, "!iwant list")
    assert "no open requests" in people.wait_for_text(ALICE, "no open", after=1)["text"]


def test_person_who_never_started_the_bot(people: BotApiStandin, iwant) -> None:
    # Dave asks in the group; Bob matches him there; Dave's direct message cannot be sent.
    people.user_says(DAVE, "/iwant@IWantTestBot walk in 30 min", chat_id=GROUP)
    people.wait_for_text(GROUP, "waiting")
    people.user_says(BOB, "/iwant walk for 2h", chat_id=GROUP)
    people.wait_for_text(GROUP, "Dave")
    told = people.wait_for_text(GROUP, "direct")
    assert "Dave" in told["text"]
    refused = [c for c in people.calls_to("sendMessage") if c.params.get("chat_id") == DAVE]
    assert [c.status for c in refused] == [403]
    time.sleep(2.5)  # poller ticks: an undeliverable notification is not retried
    assert len([c for c in people.calls_to("sendMessage") if c.params["chat_id"] == DAVE]) == 1
    assert len([t for t in people.texts(GROUP) if "direct" in t]) == 1


def test_flood_storm_delays_but_does_not_lose_or_repeat(people: BotApiStandin, iwant) -> None:
    people.user_says(ALICE, "/iwant coffee in 30 min")
    people.wait_for_text(ALICE, "waiting")
    # More 429s than one send waits out: the backend raises, the plugin retries later.
    people.fail("sendMessage", 429, retry_after=1, times=4, chat_id=ALICE)
    people.user_says(BOB, "/iwant coffee for 2h")
    people.wait_for_text(BOB, "Alice")
    people.wait_for_text(ALICE, "Bob", after=1, timeout=30)
    to_alice = [c.status for c in people.calls_to("sendMessage") if c.params["chat_id"] == ALICE]
    assert to_alice == [200, 429, 429, 429, 429, 200]  # 1 + 3 retries, then the outbox's
    time.sleep(1.2)  # a poller tick
    assert len(people.sent(ALICE)) == 2


def test_restart_neither_repeats_nor_loses(people: BotApiStandin, iwant) -> None:
    people.user_says(ALICE, "/iwant coffee in 30 min")
    people.wait_for_text(ALICE, "waiting")
    iwant.stop(signal.SIGINT)

    people.user_says(BOB, "/iwant coffee for 2h")  # while the bot is down
    iwant.start()
    people.wait_for_text(BOB, "Alice")
    people.wait_for_text(ALICE, "Bob", after=1)
    time.sleep(1.2)  # a poller tick
    assert len(people.sent(ALICE)) == 2 and len(people.sent(BOB)) == 1
    assert TOKEN.split(":", 1)[1] not in iwant.output()


def test_an_update_offered_again_after_a_crash_stores_nothing_new(
    people: BotApiStandin, errbot_factory
) -> None:
    bot = errbot_factory(env={"IWANT_TIMEZONE": ZONE_NAME}).start()
    update = people.user_says(ALICE, "/iwant coffee in 40 min")
    first = people.wait_for_text(ALICE, "Waiting for coffee")
    bot.stop(signal.SIGKILL)
    # As if it died after its commit and before saving the offset: Telegram offers the
    # update again to the next run.
    for saved in bot.data_dir.glob("telegram-*-offset.json"):
        saved.unlink()
    people.redeliver(update)
    bot.start()
    again = people.wait_for_text(ALICE, "I have that one already")
    assert clock(40) in again["text"] or clock(41) in again["text"], again["text"]
    assert first["text"].split("at ")[1][:5] in again["text"]
    people.user_says(ALICE, "/iwant list")
    listed = people.wait_for_text(ALICE, "Your open requests")
    assert "1. coffee" in listed["text"] and "2. " not in listed["text"]


def test_a_near_miss_taken_with_its_button(people: BotApiStandin, iwant) -> None:
    """Bob and Carol meet in 90 minutes; Alice asks for 40 minutes from now and is offered
    their group (50 minutes outside her window) with a button that joins it instead."""
    people.user_says(BOB, "!iwant coffee in 90 min")
    people.wait_for_text(BOB, "waiting")
    people.user_says(CAROL, "!iwant coffee in 90 min")
    people.wait_for_text(CAROL, "Bob")
    people.user_says(ALICE, "/iwant coffee in 40 min")
    waiting = people.wait_for_text(ALICE, "Nearest")
    assert "a group of 2 meets for coffee" in waiting["text"]
    assert not mentions(waiting, "Bob") and not mentions(waiting, "Carol")  # counts only
    labels = buttons(waiting)
    assert labels[0] == "Cancel" and labels[1].startswith("Coffee ")
    people.press(ALICE, waiting, labels[1])
    joined = people.wait_for_text(ALICE, "You join", after=1)
    assert mentions(joined, "Bob", "Carol", "is cancelled", labels[1].split()[-1])
    people.wait_for_text(BOB, "Alice", after=1)
    people.wait_for_text(CAROL, "Alice", after=1)


def test_export_arrives_as_a_json_document_in_private(people: BotApiStandin, iwant) -> None:
    people.user_says(ALICE, f"!iwant coffee {clock(30)}-{clock(90)}")
    people.wait_for_text(ALICE, "waiting")
    people.user_says(ALICE, "!iwant export", chat_id=GROUP)
    people.wait_for_text(GROUP, "as a file, privately")
    (doc,) = wait_until(lambda: people.documents(ALICE), what="the export document")
    assert doc["file_name"] == "iwant-export.json" and doc["mime_type"] == "application/json"
    assert doc["caption"]
    exported = json.loads(doc["content"])
    assert exported["requests"], exported
    assert people.documents(GROUP) == []  # never in the group
    assert not any("```" in text for text in people.texts(ALICE))  # not also as text
