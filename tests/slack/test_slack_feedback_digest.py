""" "Did you meet?" answered with its buttons, and the weekly digest's chart uploaded into
the room, in a real errbot process on the Slack backend against the stand-in (issue 26).

The bot's database is filled before it starts, by an engine whose clock is set in the past: a
group of three that met three hours ago, and a digest of #general switched on a week ago. The
bot's first poller rounds then find the group's meeting over (so they ask) and the digest due
(so they send it), on the real clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from slack_harness import (
    ADMIN,
    ALICE,
    BOB,
    CAROL,
    GENERAL,
    PROJECT_CONFIG,
    BotProcess,
    make_workspace,
)
from slack_standin import SlackStandIn

from iwant_engine import Engine, FixedClock, Person, settings

A_DM, B_DM = SlackStandIn.dm_of(ALICE), SlackStandIn.dm_of(BOB)
NAMES = {ALICE: "Alice Novak", BOB: "Bob Smith", CAROL: "Carol Tanaka"}


def seed(url: str) -> None:
    """A digest of #general switched on 8 days ago; Alice, Bob and Carol met for coffee in
    it 3 hours ago (their notifications already delivered)."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    clock = FixedClock(now - timedelta(days=8))
    engine = Engine(dataclasses.replace(settings.load(environ={}), database_url=url), clock)
    try:
        engine.digest_setting(Person(f"slack:{ADMIN}", "Ada Admin"), GENERAL, "on", admin=True)
        clock.set(now - timedelta(hours=3))
        meet = (now - timedelta(hours=3) + timedelta(minutes=10)).strftime("%H:%M")
        for user, name in NAMES.items():
            engine.submit(Person(f"slack:{user}", name), f"coffee {meet}", room=GENERAL)
        while engine.deliver("slack", lambda item: None).delivered:
            pass
    finally:
        engine.close()


def running(tmp_path: Path, refuse_uploads: bool = False) -> Iterator[BotProcess]:
    """The bot on a seeded database; with ``refuse_uploads``, Slack refuses every file
    upload from the start."""
    standin = make_workspace()
    if refuse_uploads:
        standin.fail("files.getUploadURLExternal", 100, error="restricted_action")
    process = BotProcess(standin, tmp_path, config=PROJECT_CONFIG, env={"IWANT_TIMEZONE": "UTC"})
    seed(process.env["IWANT_DATABASE_URL"])
    process.start()
    try:
        standin.wait_connected(1)
        yield process
    finally:
        process.stop()
        standin.stop()


@pytest.fixture
def iwant(tmp_path: Path) -> Iterator[BotProcess]:
    yield from running(tmp_path)


@pytest.fixture
def refusing_files(tmp_path: Path) -> Iterator[BotProcess]:
    yield from running(tmp_path, refuse_uploads=True)


def test_did_you_meet_buttons_answer_and_the_digest_chart_reaches_the_room(iwant) -> None:
    s = iwant.standin
    question = s.wait_message(A_DM, "Did you meet?", timeout=60)
    assert "Carol Tanaka" in question.text and "Bob Smith" in question.text
    assert [b["text"]["text"] for b in question.buttons()] == [
        "We all met",
        "Some of us met",
        "We didn't meet",
        "Don't ask me again",
    ]
    seen = len(s.messages_in(A_DM))
    s.wait_ack(s.click(ALICE, question, "We all met"))
    assert s.wait_message(A_DM, "Thanks!", after=seen).text == "Thanks! Glad you all met."

    bobs = s.wait_message(B_DM, "Did you meet?")
    seen = len(s.messages_in(B_DM))
    s.wait_ack(s.click(BOB, bobs, "Some of us met"))
    who = s.wait_message(B_DM, "Who didn't come?", after=seen)
    assert [b["text"]["text"] for b in who.buttons()] == [
        "Alice Novak didn't come",
        "Carol Tanaka didn't come",
    ]
    seen = len(s.messages_in(B_DM))
    s.wait_ack(s.click(BOB, who, "Carol Tanaka didn't come"))
    assert s.wait_message(B_DM, "Noted", after=seen).text == (
        "Thanks. Noted that Carol Tanaka didn't come."
    )

    (chart,) = s.wait_for(lambda: s.files_in(GENERAL), 60, "the digest's chart in #general")
    assert chart.filename == "iwant-digest.png" and chart.content.startswith(b"\x89PNG\r\n")
    assert chart.initial_comment is not None
    assert chart.initial_comment.startswith("Weekly digest\niwant in this room, the last 7 days:")
    assert "- wishes: 3 from 3 people; groups formed: 1" in chart.initial_comment
    assert not [m for m in s.messages_in(GENERAL) if "Weekly digest" in m.text], "no text too"


def test_a_room_that_refuses_files_gets_the_digest_as_text(refusing_files) -> None:
    s = refusing_files.standin
    digest = s.wait_message(GENERAL, "Weekly digest", timeout=60)
    assert digest.text.startswith("Weekly digest\niwant in this room, the last 7 days:")
    assert s.files_in(GENERAL) == []
