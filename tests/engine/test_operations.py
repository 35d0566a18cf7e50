"""What an operator asks of the engine, on every storage: heartbeats of bot processes, the
outbox's depth and oldest row, ``!iwant status``, a delivery that stops mid-round, and the
``iwant_observe`` hook that metrics count."""

from __future__ import annotations

import pytest

from iwant_engine import hookimpl, standing

from ..support import ALICE, BOB, CAROL, START, drain


def test_heartbeats_list_the_live_processes_and_forget_a_stopped_one(engine, clock):
    engine.beat("host-a:11", "slack", START)
    clock.advance(seconds=30)
    engine.beat("host-b:22", "telegram", START, last_429=(clock.now(), 7.5))
    clock.advance(seconds=10)
    lines = engine.status_text().splitlines()
    assert lines[2] == "Last 429: 10 s ago on telegram (host-b:22), paused 7.5 s."
    assert lines[3] == "Processes seen in the last minute: 2."
    assert lines[4].startswith("- host-a:11 slack ") and lines[4].endswith("up 40 s, seen 40 s ago")
    assert lines[5].startswith("- host-b:22 telegram ")

    clock.advance(seconds=25)  # host-a last seen 65 s ago
    assert "Processes seen in the last minute: 1." in engine.status_text()
    engine.stopped("host-b:22")
    assert engine.status_text().splitlines()[2:] == [
        "Last 429: none seen by a live process.",
        "Processes seen in the last minute: 0.",
    ]


def test_status_names_the_storage_and_the_outbox_never_the_url(engine, clock):
    engine.submit(ALICE, "coffee 10:00")
    clock.advance(minutes=5)
    engine.submit(BOB, "coffee for 2h")  # Alice is told: one row waits
    clock.advance(seconds=42)
    first, outbox = engine.status_text().splitlines()[:2]
    kind = engine.settings.storage
    assert first.startswith("iwant ") and f", storage {kind}" in first
    assert first.endswith("database reachable.")
    assert "://" not in first
    assert outbox.startswith("Outbox: text ") and outbox.endswith("(oldest 42 s).")


def test_outbox_depths_per_platform_with_the_oldest_row(engine, clock):
    assert engine.outbox_depths() == []
    engine.submit(ALICE, "coffee 10:00")
    clock.advance(minutes=1)
    written = clock.now()
    engine.submit(BOB, "coffee for 2h")
    clock.advance(minutes=1)
    engine.submit(CAROL, "coffee 9:50-10:30")
    depths = engine.outbox_depths()
    assert [(d.platform, d.oldest) for d in depths] == [("text", written)]
    assert depths[0].depth >= 3  # Alice, then Alice and Bob are told
    drain(engine)
    assert engine.outbox_depths() == []
    assert engine.problem() is None


def test_a_stopping_delivery_sends_the_row_in_flight_and_hands_back_the_rest(engine, clock):
    engine.submit(ALICE, "coffee 10:00")
    engine.submit(BOB, "coffee for 2h")
    engine.submit(CAROL, "coffee 9:50-10:30")
    sent: list[str] = []

    def send(item) -> None:
        engine.stop_delivering()  # SIGTERM arrives while this row is being sent
        sent.append(item.recipient)

    report = engine.deliver("text", send)
    assert len(sent) == 1 and report.delivered == 1
    assert report.deferred >= 1, "the rest was claimed, then handed back"
    assert engine.deliver("text", send).delivered == 0, "a stopped engine claims nothing"
    # Handed back due at once: another process's claim (here the storage's) gets them now.
    again = engine.storage.claim_outbox("text", clock.now())
    assert len(again) == report.deferred


class Seen:
    def __init__(self) -> None:
        self.events: list[str] = []

    @hookimpl
    def iwant_observe(self, event: str) -> None:
        self.events.append(event)


def test_matches_and_standing_days_are_observed(engine, clock):
    seen = Seen()
    engine.pm.register(seen)
    engine.submit(ALICE, "coffee 10:00")
    assert seen.events == []
    engine.submit(BOB, "coffee for 2h")
    assert seen.events == ["matched"]
    engine.submit(CAROL, "lunch 12:00 every weekday")  # today's day is made at once
    assert seen.events == ["matched", "standing_made"]


def test_a_standing_day_rolled_back_is_never_counted(engine, clock, monkeypatch):
    """A day's wish is counted once its unit of work has committed: when the transaction
    that made it fails afterwards (here: scheduling the standing wish's next day), nothing is
    stored and nothing is counted, on the command's path and on the sweep's alike."""
    seen = Seen()
    engine.pm.register(seen)

    def broken(*_args, **_kwargs):
        raise RuntimeError("the disk went away")

    real = standing.scheduled
    monkeypatch.setattr(standing, "scheduled", broken)
    with pytest.raises(RuntimeError):
        engine.submit(CAROL, "lunch 12:00 every weekday")  # today's day, made and rolled back
    assert seen.events == []
    assert engine.open_requests(CAROL) == []

    monkeypatch.setattr(standing, "scheduled", real)
    clock.advance(hours=4)  # 13:00 UTC Tuesday: today's lunch has passed, Wednesday's is due
    engine.submit(CAROL, "lunch 12:00 every weekday")
    assert seen.events == ["standing_made"]
    seen.events.clear()
    clock.advance(hours=23, minutes=30)  # Wednesday 12:30: Thursday's is due, for the sweep
    monkeypatch.setattr(standing, "scheduled", broken)
    with pytest.raises(RuntimeError):
        engine.sweep()
    assert seen.events == []
    monkeypatch.setattr(standing, "scheduled", real)
    engine.sweep()
    assert seen.events == ["standing_made"]
    # Thursday 3 December's, made once (Wednesday's ended at its deadline, at noon).
    assert [r.earliest.day for r in engine.open_requests(CAROL)] == [3]
