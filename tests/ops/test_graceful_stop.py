"""SIGTERM (docker stop, systemctl stop) with a delivery in flight, with real errbot
processes on PostgreSQL and a slow platform: the send in flight completes, the rest of what
the process had claimed is handed back at once (not after the 60-s lease), its answers are
acknowledged, it leaves the list of live processes and exits within 10 s. A second process
then delivers everything else: nothing lost, nothing twice."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import create_engine, text

from ..support import truncate_postgres
from ..twobots.fakebot import FakeBot

pytestmark = pytest.mark.slow
PEOPLE = ["p1", "p2", "p3", "p4", "p5"]  # each joiner is announced to everyone before


def rows(url: str, sql: str) -> list[tuple]:
    eng = create_engine(url)
    try:
        with eng.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        eng.dispose()


def test_sigterm_finishes_the_send_in_flight_and_hands_back_the_rest(pg_database, tmp_path):
    truncate_postgres(pg_database)
    cfg = tmp_path / "plugins.cfg"
    cfg.write_text("[engine]\nstrategy = overlap\n[activities]\ncoffee = 15, 6\n")
    slow = FakeBot(tmp_path / "slow", pg_database, cfg, FAKECHAT_SEND_SECONDS="0.5")
    other: FakeBot | None = None
    try:
        slow.wait_healthy()
        for person in PEOPLE:
            assert slow.ask(person, "!iwant coffee for 2h", room="-5").startswith(
                ("Waiting", "Matched!", "You join")
            )
        slow.wait_for(lambda s: any("pid" in m for m in s))  # a note is out, more to come

        slow.terminate()
        # Within docker stop's 10 s by design (the send in flight gets up to 8 s, STOP_WAIT_
        # SECONDS); waited for longer here, as a busy machine's teardown may take more.
        assert slow.proc.wait(timeout=60) == 0
        assert "a delivery still runs after" not in slow.log_path.read_text(), (
            "the send in flight ended within the stop's wait"
        )
        sent = [(m["to"], m["text"]) for m in slow.sent() if "pid" in m]
        # Direct messages only: a group conversation row is done unsent on a text platform.
        outbox = "SELECT recipient, claimed_until FROM outbox WHERE group_members IS NULL AND "
        acked = rows(pg_database, outbox + "delivered_at IS NOT NULL AND error IS NULL")
        assert sorted(f"telegram:{to}" for to, _ in sent) == sorted(r for r, _ in acked), (
            "what was sent, the send in flight too, is acknowledged; nothing else"
        )
        pending = rows(pg_database, outbox + "delivered_at IS NULL AND failed_at IS NULL")
        assert pending, "the slow platform had not sent everything"
        assert all(claimed is None for _, claimed in pending), "what it held was handed back"
        unanswered = rows(pg_database, "SELECT count(*) FROM requests WHERE replied_at IS NULL")
        assert unanswered == [(0,)], "its answers were acknowledged: nobody gets one again"
        assert rows(pg_database, "SELECT count(*) FROM processes") == [(0,)]

        other = FakeBot(tmp_path / "other", pg_database, cfg)
        undelivered = outbox + "delivered_at IS NULL AND failed_at IS NULL"
        other.until(lambda: rows(pg_database, undelivered) == [], timeout=90)
        # Each row was sent once, or superseded unsent by a newer note on its topic.
        everything = sent + [(m["to"], m["text"]) for m in other.sent()]
        acked = rows(pg_database, outbox + "delivered_at IS NOT NULL AND error IS NULL")
        assert sorted(f"telegram:{to}" for to, _ in everything) == sorted(r for r, _ in acked)
        assert max(Counter(everything).values()) == 1, "nothing sent twice"
        newest = [t for to, t in everything if to == "p1"][-1]
        assert "telegram p5" in newest, "p1 heard of everyone who joined"
    finally:
        for bot in (slow, other):
            if bot is not None:
                if bot.proc.poll() is None:
                    bot.stop()
                else:
                    bot.log.close()
