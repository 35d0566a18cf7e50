"""Standing wishes with two processes on one PostgreSQL: each day's wish is made once."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from iwant_engine import Person
from iwant_engine.model import Status

from ..support import START
from .harness import check_invariants, snapshot

PAIRS = 30  # two people a room, both "lunch 12:00 every day": a group of two each day
DAYS = 7


def test_two_processes_make_each_days_wish_once_and_pair_them(fleet, checker):
    for j in range(PAIRS):
        for who in ("a", "b"):
            person = Person(f"text:@{who}{j}", f"{who.upper()}{j}")
            reply = checker.submit(person, "lunch 12:00 every day", room=f"room{j}")
            assert reply.body.startswith("Standing wish 1: lunch 12:00, every day."), reply.body
    # Each day's wishes are made at 12:00 the day before (UTC here): sweep after each.
    clocks = [(START + timedelta(days=d)).replace(hour=12, minute=30) for d in range(DAYS)]
    sweepers = [
        fleet.spawn(
            f"standing{i}",
            role="sweep_standing",
            clock=START.isoformat(),
            clocks=[c.isoformat() for c in clocks],
            batch=5,
            max_seconds=120,
        )
        for i in range(2)
    ]
    fleet.start(sweepers)
    fleet.wait(sweepers, timeout=150)
    summaries = [w.summary() for w in sweepers]
    assert all(s["looked_at"] > 0 for s in summaries), summaries

    snap = snapshot(checker)
    keys = Counter(r.event_key for r in snap.requests)
    assert set(keys.values()) == {1}
    per_person = Counter(r.person for r in snap.requests)
    assert set(per_person.values()) == {DAYS + 1}, "today's, then one a day for a week"
    assert len(per_person) == 2 * PAIRS
    assert {r.status for r in snap.requests} == {Status.MATCHED}
    groups = Counter(r.result_id for r in snap.requests)
    assert set(groups.values()) == {2} and len(groups) == PAIRS * (DAYS + 1)
    pools: dict[int, set[str]] = {}
    for r in snap.requests:
        pools.setdefault(r.result_id, set()).add(r.pool)
    assert all(len(p) == 1 for p in pools.values()), "pairs stay within their room"
    checker.clock.set(clocks[-1])
    check_invariants(checker, clocks[-1])
