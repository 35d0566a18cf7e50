"""Deadlines pass: two processes sweep at once, and each "nobody joined" is written once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

from sqlalchemy import create_engine, text

from iwant_engine import FixedClock, Person
from iwant_engine.model import Status
from iwant_engine.storage.sql import lock_key

from ..support import START, make_engine
from .harness import check_invariants, snapshot, split

LONELY = 300  # each alone in a room of their own: expires at 9:30
PAIRS = 30  # two in a room: matched 10:00-10:15, DONE once that is over
BATCH = 40  # Engine.sweep() claims 500 at a time; smaller batches make two sweepers take turns


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
        fleet.spawn(
            f"sweep{i}", role="sweep", clock=later.isoformat(), batch=BATCH, max_seconds=120
        )
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
    # Nobody in a pair is told nobody joined; each lonely person hears nothing else.
    lonely = {f"text:@x{i}" for i in range(LONELY)}
    assert all(
        row.body.startswith("Nobody joined") for row in snap.outbox if row.recipient in lonely
    )
    # They swept at the same time (how they share the work is the storage's business).
    runs = list(summaries.values())
    assert runs[0]["started"] < runs[1]["finished"] and runs[1]["started"] < runs[0]["finished"]

    # A third sweep finds nothing left to do.
    checker.clock.set(later + timedelta(minutes=1))
    assert checker.sweep() == (0, 0)
    print(
        f"\nsweep: {LONELY} expired and {PAIRS} groups done by two processes at once: "
        f"{summaries}; 'nobody joined' rows {sum(nobody.values())}, duplicates 0"
    )


def test_a_sweep_and_a_submit_on_the_same_pool_do_not_deadlock(mp_url, checker):
    """Ann waits for coffee, deadline 9:30. A sweeping process whose clock says 9:30:00 and a
    bot process whose clock says 9:29:59 work on her pool at once. (Two processes' clocks
    differ by that much easily; and a bot reads its clock before it queues for the pool lock,
    so under load its "now" is older than a sweeper's anyway.) For the bot, Ann is still a
    candidate; for the sweeper she is due.

    The sweeper locks the due result rows (FOR UPDATE SKIP LOCKED) and only then waits for the
    pool lock; the bot holds the pool lock and then updates Ann's result row to match her:
    each waits for the other, and PostgreSQL aborts one after deadlock_timeout (1 s), which
    reaches the person as "temporarily unavailable" or fails the sweep.

    To make the interleaving certain, the test holds the pool lock itself until both are
    queued behind it (bot first), then lets go."""
    bot = make_engine(mp_url, FixedClock(START))
    sweeper = make_engine(mp_url, FixedClock(START.replace(minute=30)))
    admin = create_engine(mp_url)
    try:
        ann, bob = Person("text:@ann", "Ann"), Person("text:@bob", "Bob")
        assert bot.submit(ann, "coffee 10:00 by 9:30", "r1").body.startswith("Waiting")
        bot.clock.set(START.replace(minute=29, second=59))
        key = lock_key("pool", "text:r1", "coffee")
        outcome: dict[str, object] = {}

        def run(name: str, call) -> None:  # noqa: ANN001
            try:
                outcome[name] = call()
            except Exception as err:  # reported by the assertions below
                outcome[name] = err

        with admin.connect() as holder, admin.connect() as watcher:
            holder.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
            submit = threading.Thread(
                target=run, args=("submit", lambda: bot.submit(bob, "coffee 9:50-10:30", "r1"))
            )
            sweep = threading.Thread(target=run, args=("sweep", sweeper.sweep))
            submit.start()
            _wait_for_lock_waiters(watcher, 1)
            sweep.start()
            _wait_for_lock_waiters(watcher, 2, unless=lambda: not sweep.is_alive())
            time.sleep(1.3)  # past deadlock_timeout, so the sweeper's own check finds no cycle
            holder.commit()  # lets go of the pool lock: the bot is first in the queue
            submit.join(30)
            sweep.join(30)
        assert not submit.is_alive() and not sweep.is_alive()
        problems = {k: repr(v) for k, v in outcome.items() if isinstance(v, Exception)}
        assert problems == {}, f"a sweep and a submit on one pool collided: {problems}"
        reply = outcome["submit"].body
        nobody = [r for r in snapshot(checker).outbox if r.body.startswith("Nobody joined")]
        if reply.startswith("Matched!"):  # Bob met Ann before the sweeper could expire her
            assert nobody == []
        else:  # the sweeper was first: Ann heard nobody joined, and Bob waits
            assert reply.startswith("Waiting") and len(nobody) == 1
        check_invariants(checker, START.replace(minute=30))
    finally:
        bot.close()
        sweeper.close()
        admin.dispose()


def _wait_for_lock_waiters(conn, n: int, unless=lambda: False) -> None:  # noqa: ANN001
    """Until ``n`` sessions wait for an advisory lock (or ``unless()``: a sweeper that does
    not wait for a busy pool at all is fine too)."""
    end = time.monotonic() + 20
    while not unless():
        waiting = conn.execute(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        ).scalar_one()
        conn.rollback()
        if waiting >= n:
            return
        assert time.monotonic() < end, f"only {waiting} of {n} waiting for the pool lock"
        time.sleep(0.02)
