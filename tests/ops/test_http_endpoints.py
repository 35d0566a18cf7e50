"""/healthz, /metrics and ``!iwant status`` of a real errbot process, over real HTTP, on
the local PostgreSQL reached through a proxy the tests can cut (the database "stopped"
without stopping the server other tests use). One bot process serves the whole module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from ..multiprocess.harness import CuttableProxy
from ..support import truncate_postgres
from ..twobots.fakebot import FakeBot

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def proxy(pg_database: str) -> Iterator[CuttableProxy]:
    url = make_url(pg_database)
    p = CuttableProxy((url.host or "127.0.0.1", url.port or 5432))
    p.start()
    yield p
    p.close()


@pytest.fixture(scope="module")
def bot(
    pg_database: str, proxy: CuttableProxy, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FakeBot]:
    truncate_postgres(pg_database)
    tmp = tmp_path_factory.mktemp("ops")
    cfg = tmp / "plugins.cfg"
    cfg.write_text("[engine]\nstrategy = overlap\n[activities]\ncoffee = 15, 6\n")
    via_proxy = make_url(pg_database).set(port=proxy.port).render_as_string(hide_password=False)
    started = FakeBot(tmp / "bot", via_proxy, cfg)
    try:
        started.wait_healthy()
        yield started
    finally:
        started.stop()


def counter(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_healthz_says_ok_and_unknown_paths_say_where_to_go(bot: FakeBot) -> None:
    assert bot.get("/healthz") == (200, "ok\n")
    status, body = bot.get("/nothing")
    assert status == 404 and "/healthz" in body


def test_metrics_move_with_a_wish_and_a_delivery(bot: FakeBot) -> None:
    before = bot.metrics()
    assert counter(before, "iwant_database_up") == 1.0
    assert ("iwant_outbox_depth", (("platform", "telegram"),)) in before
    assert bot.ask("ann", "!iwant coffee in 30 min", room="-5").startswith("Waiting for coffee")
    assert bot.ask("ben", "!iwant coffee for 2h", room="-5").startswith("Matched!")
    bot.wait_for(lambda s: any(m["to"] == "ann" and "joins you" in m["text"] for m in s))

    def moved() -> dict | None:
        now = bot.metrics()
        delivered = counter(now, "iwant_deliveries_total", platform="telegram", result="delivered")
        base = counter(before, "iwant_deliveries_total", platform="telegram", result="delivered")
        return now if delivered >= base + 1 else None

    after = bot.until(moved)
    wishes = ("iwant_commands_total", "wish", "ok")
    assert counter(after, wishes[0], kind=wishes[1], outcome=wishes[2]) == (
        counter(before, wishes[0], kind=wishes[1], outcome=wishes[2]) + 2
    )
    assert counter(after, "iwant_submission_seconds_count") == (
        counter(before, "iwant_submission_seconds_count") + 2
    )
    assert counter(after, "iwant_matches_total") == counter(before, "iwant_matches_total") + 1
    # A refusal is counted as one, with the command word as its kind.
    refusal = bot.ask("ben", "!iwant cancel 999")
    assert len(refusal.splitlines()) == 1 and "!iwant" in refusal, refusal
    refused = bot.until(
        lambda: (
            counter(m := bot.metrics(), "iwant_commands_total", kind="cancel", outcome="refused")
            and m
        )
    )
    assert counter(refused, "iwant_commands_total", kind="cancel", outcome="refused") == 1


def test_status_for_an_admin_and_one_line_for_anyone_else(bot: FakeBot) -> None:
    def listed() -> str | None:
        answer = bot.ask("admin", "!iwant status")
        return answer if "Processes seen in the last minute: 1." in answer else None

    answer = bot.until(listed)
    lines = answer.splitlines()
    assert (
        lines[0].startswith("iwant ") and "storage sql (postgresql), database reachable" in lines[0]
    )
    assert lines[1].startswith("Outbox: ")
    assert lines[2] == "Last 429: none seen by a live process."
    assert lines[4].startswith("- ") and " telegram " in lines[4]
    refusal = bot.ask("mallory", "!iwant status")
    assert len(refusal.splitlines()) == 1 and "admin" in refusal, refusal


def test_the_database_stopped_is_a_503_naming_it_and_back_is_200(
    bot: FakeBot, proxy: CuttableProxy
) -> None:
    proxy.cut()
    try:
        status, body = bot.until(
            lambda: (answer := bot.get("/healthz"))[0] == 503 and answer, timeout=90
        )
        assert body == "unhealthy: the database is unreachable\n"
        assert counter(bot.metrics(), "iwant_database_up") == 0.0
        assert "temporarily unavailable" in bot.ask("ann", "!iwant list")
    finally:
        proxy.restore()
    bot.wait_healthy()
    samples = bot.metrics()
    assert counter(samples, "iwant_database_up") == 1.0
    assert counter(samples, "iwant_commands_total", kind="list", outcome="unavailable") == 1
    assert counter(samples, "iwant_database_unavailable_total", during="command") >= 1
