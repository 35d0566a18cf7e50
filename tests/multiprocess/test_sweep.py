"""Deadlines pass: two processes sweep at once, and each "nobody joined" is written once."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from iwant_engine.model import Status

from ..support import START
from .harness import check_invariants, snapshot, split

LONELY = 600  # each alone in a room of their own: expires at 9:30
PAIRS = 50  # two in a room: matched 10:00-10:15, DONE once that is over


def test_two_processes_sweeping_at_once_expire_each_request_exactly_once(fleet, checker):
    commands = [(f"text:@x{i}", f"X{i}", f"solo{i}", "coffee 10:00 by 9:30") for i in range(LONELY)]
    for j in range(PAIRS):
        commands += [
            (f"text:@a{j}", f"A{j}", f"duo{j}", "coffee 10:00 by 9:30"),
            (f"text:@b{j}", f"B{j}", f"duo{j}", "coffee 9:45-10:30"),
        ]
    loaders = [
        fleet.spawn(
            f"load{i}",
            role="load",
            clock=START.isoformat(),
            commands=part,
            deliver_every=0,
            max_seconds=240,
        )
        for i, part in enumerate(split(sorted(commands, key=lambda c: c[0][6:]), 4))
    ]
    fleet.start(loaders)
    fleet.wait(loaders, timeout=300)
    outcomes = [o for w in loaders for o in w.outcomes()]
    assert Counter(o["kind"] for o in outcomes) == {"accepted": len(commands)}

    fleet.reset_go()
    later = START.replace(hour=10, minute=30)  # after every deadline and every meeting
    sweepers = [
        fleet.spawn(f"sweep{i}", role="sweep", clock=later.isoformat(), max_seconds=120)
        for i in range(2)
    ]
    fleet.start(sweepers)
    fleet.wait(sweepers, timeout=150)
    summaries = {w.label: w.summary() for w in sweepers}

    assert sum(s["expired"] for s in summaries.values()) == LONELY, summaries
    assert sum(s["done"] for s in summaries.values()) == PAIRS, summaries
    snap = snapshot(checker)
    statuses = Counter(r.status for r in snap.requests)
    assert statuses == {Status.EXPIRED: LONELY, Status.DONE: 2 * PAIRS}, statuses
    check_invariants(checker, later)

    nobody = Counter(row.recipient for row in snap.outbox if row.body.startswith("Nobody joined"))
    assert set(nobody) == {f"text:@x{i}" for i in range(LONELY)}
    assert set(nobody.values()) == {1}, {k: v for k, v in nobody.items() if v > 1}
    others = [row for row in snap.outbox if not row.body.startswith("Nobody joined")]
    assert len(others) == PAIRS and all(row.body.startswith("B") for row in others)

    # A third sweep finds nothing left to do.
    checker.clock.set(later + timedelta(minutes=1))
    assert checker.sweep() == (0, 0)
    print(
        f"\nsweep: {LONELY} expired and {PAIRS} groups done by two processes at once: "
        f"{summaries}; 'nobody joined' rows {sum(nobody.values())}, duplicates 0"
    )
