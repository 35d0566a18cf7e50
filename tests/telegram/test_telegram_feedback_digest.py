""" "Did you meet?" answered with its buttons, and the weekly digest's chart sent as a photo
into the group, in a real errbot process on the Telegram backend against the Bot API
stand-in (issue 26).

As on Slack (tests/slack/test_slack_feedback_digest.py), the bot's database is filled before
it starts by an engine whose clock is in the past: a group of three that met three hours ago,
and a digest of the group chat switched on a week ago.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from telegram_harness import ErrbotProcess
from telegram_standin import JSON, BotApiStandin, wait_until

from iwant_engine import Engine, FixedClock, Person, settings

ALICE, BOB, CAROL = 4242, 5151, 6363
GROUP = -100123
NAMES = {ALICE: "Alice", BOB: "Bob", CAROL: "Carol"}


def seed(url: str) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    clock = FixedClock(now - timedelta(days=8))
    engine = Engine(dataclasses.replace(settings.load(environ={}), database_url=url), clock)
    try:
        engine.digest_setting(Person(f"telegram:{ALICE}", "Alice"), str(GROUP), "on", admin=True)
        clock.set(now - timedelta(hours=3))
        meet = (now - timedelta(hours=3) + timedelta(minutes=10)).strftime("%H:%M")
        for user, name in NAMES.items():
            engine.submit(Person(f"telegram:{user}", name), f"coffee {meet}", room=str(GROUP))
        while engine.deliver("telegram", lambda item: None).delivered:
            pass
    finally:
        engine.close()


@pytest.fixture
def iwant(standin: BotApiStandin, errbot_factory) -> ErrbotProcess:
    for user, name in NAMES.items():
        standin.add_user(user, name, name.lower())
    standin.add_group(GROUP, "Coffee lovers")
    bot = errbot_factory(env={"IWANT_TIMEZONE": "UTC"})
    seed(bot.env["IWANT_DATABASE_URL"])
    return bot.start()


def buttons(message: JSON) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return [b["text"] for row in rows for b in row]


def test_did_you_meet_buttons_answer_and_the_digest_photo_reaches_the_group(
    standin: BotApiStandin, iwant: ErrbotProcess
) -> None:
    question = standin.wait_for_text(ALICE, "Did you meet?", timeout=60)
    assert "Bob" in question["text"] and "Carol" in question["text"]
    assert "/iwant met #" not in question["text"], "buttons, not commands written out"
    assert buttons(question) == ["We all met", "Some of us met", "We didn't meet",
                                 "Don't ask me again"]  # fmt: skip
    seen = len(standin.texts(ALICE))
    standin.press(ALICE, question, "We all met")
    assert standin.wait_for_text(ALICE, "Thanks!", after=seen)["text"] == (
        "Thanks! Glad you all met."
    )

    bobs = standin.wait_for_text(BOB, "Did you meet?")
    seen = len(standin.texts(BOB))
    standin.press(BOB, bobs, "We didn't meet")
    assert standin.wait_for_text(BOB, "Thanks", after=seen)["text"] == (
        "Thanks. I won't count it as a meeting when I match you again."
    )

    wait_until(lambda: standin.photos(GROUP), 60, "the digest's chart in the group")
    (photo,) = standin.photos(GROUP)
    assert photo["content"].startswith(b"\x89PNG\r\n")
    caption = photo["caption"]
    assert caption.startswith("Weekly digest\niwant in this room, the last 7 days:")
    assert "- wishes: 3 from 3 people; groups formed: 1" in caption
    assert not [t for t in standin.texts(GROUP) if "Weekly digest" in t], "no text too"
