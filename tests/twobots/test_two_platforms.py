"""Two real errbot processes, one per platform, on one PostgreSQL database: a pool joined
across platforms matches a Slack person with a Telegram person, and each process tells only
its own person."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from ..support import truncate_postgres
from .fakebot import FakeBot

REPO = Path(__file__).resolve().parents[2]
ERRBOT = Path(sys.executable).with_name("errbot")


@pytest.fixture
def bots(pg_database, tmp_path):
    truncate_postgres(pg_database)
    cfg = tmp_path / "plugins.cfg"
    cfg.write_text(
        "[engine]\nstrategy = overlap\n[activities]\ncoffee = 15, 6\n"
        "[pools]\noffice = slack:C1, telegram:-5\n"
    )
    started = [
        FakeBot(tmp_path / p, pg_database, cfg, platform=p, IWANT_POLL_SECONDS="0.5")
        for p in ("slack", "telegram")
    ]
    yield started
    for bot in started:
        bot.stop()


def test_a_joined_pool_matches_across_platforms_and_each_bot_tells_its_own(bots):
    slack, telegram = bots
    slack.say("U1", "!iwant coffee in 30 min", room="C1")
    slack.wait_for(lambda sent: any(m["text"].startswith("Waiting for coffee") for m in sent))
    telegram.say("42", "!iwant coffee for 2h", room="-5")
    sent = telegram.wait_for(lambda sent: any("Matched!" in m["text"] for m in sent))
    assert sent[0] == {"to": "-5", "text": sent[0]["text"]}
    assert sent[0]["text"].startswith("Matched! You meet slack U1 for coffee at")
    notes = slack.wait_for(lambda sent: any("joins you" in m["text"] for m in sent))
    dm = [m for m in notes if "joins you" in m["text"]]
    assert [m["to"] for m in dm] == ["U1"]
    assert dm[0]["text"].startswith("telegram 42 joins you for coffee at")
    time.sleep(1.5)  # a few poller rounds: nothing more, and nothing crosses platforms
    assert [m["to"] for m in telegram.sent()] == ["-5"]
    assert len([m for m in slack.sent() if "joins you" in m["text"]]) == 1


def test_one_person_linked_across_two_processes(bots, pg_database):
    """Ann on Slack and on Telegram: linked through two bot processes on one database."""
    import re

    from sqlalchemy import create_engine, select

    from iwant_engine.storage.schema import Base

    slack, telegram = bots

    def reply(bot: FakeBot, person: str, text: str, expect: str, room: str | None = None) -> str:
        seen = len(bot.sent())
        bot.say(person, text, room=room)
        sent = bot.wait_for(lambda s: any(expect in m["text"] for m in s[seen:]))
        return next(m["text"] for m in sent[seen:] if expect in m["text"])

    code = re.search(r"[A-Z2-9]{4}-[A-Z2-9]{4}", reply(slack, "U1", "!iwant link", "link code"))
    assert code is not None
    for _ in range(5):  # someone guessing is refused, then stopped
        reply(telegram, "66", "!iwant link AAAA-AAAA", "wrong or has expired")
    assert "5 wrong codes" in reply(telegram, "66", f"!iwant link {code[0]}", "wrong codes")
    linked = reply(telegram, "42", f"!iwant link {code[0]}", "Linked")
    assert linked.startswith("Linked: this account and slack U1 on slack are one person now")

    reply(slack, "U1", "!iwant tz Europe/Prague", "time zone is now")
    assert "Europe/Prague" in reply(telegram, "42", "!iwant tz", "time zone")
    reply(slack, "U1", "!iwant ignore U9", "won't be grouped")
    reply(telegram, "42", "!iwant coffee in 30 min", "Waiting for coffee", room="-5")
    # Never grouped with herself, and not with the person she ignores from Slack.
    reply(slack, "U1", "!iwant coffee in 30 min", "You already want coffee", room="C1")
    reply(slack, "U9", "!iwant coffee in 30 min", "Waiting for coffee", room="C1")
    matched = reply(telegram, "77", "!iwant coffee for 2h", "Matched!", room="-5")
    assert "slack U1" in matched and "slack U9" not in matched
    telegram.wait_for(lambda s: any(m["to"] == "42" and "joins you" in m["text"] for m in s))
    assert not any("joins you" in m["text"] for m in slack.sent()), "told where she asked"

    exported = reply(telegram, "42", "!iwant export", "iwant-export/1")
    doc = json.loads(exported.split("```\n", 1)[1].rsplit("\n```", 1)[0])
    assert doc["linked_accounts"] == ["slack:U1"] and doc["requests"][0]["with"] == ["telegram 77"]
    assert doc["ignores"] == ["slack:U9"]  # whom she ignores is hers
    assert "telegram:77" not in exported, "of others, only display names"

    reply(slack, "U1", "!iwant forget me", "forget me confirm")
    assert reply(slack, "U1", "!iwant forget me confirm", "Done:").startswith("Done: I deleted")
    telegram.wait_for(
        lambda s: any(m["to"] == "77" and "Someone dropped out" in m["text"] for m in s)
    )
    sa = create_engine(pg_database)
    try:
        with sa.connect() as conn:
            stored = repr([conn.execute(select(t)).all() for t in Base.metadata.sorted_tables])
    finally:
        sa.dispose()
    assert "slack:U1" not in stored and "telegram:42" not in stored
