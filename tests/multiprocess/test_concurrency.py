"""Four engine processes load one PostgreSQL at once; one of them is killed with SIGKILL."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from iwant_engine.storage.schema import Outbox

from ..support import START
from .harness import (
    Fleet,
    check_group_notes,
    check_invariants,
    check_no_waiting_request_fits_an_open_group,
    check_people,
    crowded_load,
    delivery_report,
    snapshot,
    split,
)

PROCESSES = 4
REFUSALS = ("You already want", "You already have 5 open requests")


def spawn_load(fleet: Fleet, commands: list, processes: int = PROCESSES) -> list:
    """Load processes; each delivers the platform's outbox every 5 commands (the plugin does
    after every command; every 5th keeps the claim contention and costs less time here)."""
    return [
        fleet.spawn(
            f"w{i}",
            role="load",
            clock=START.isoformat(),
            commands=part,
            deliver_every=5,
            max_seconds=240,
        )
        for i, part in enumerate(split(commands, processes))
    ]


def check_database(checker, outcomes: list[dict], slack: int = 0) -> dict:  # noqa: ANN001
    """SQL checks of everything the processes left; ``slack`` requests may be committed
    without the client having written the outcome down (it was killed in between)."""
    snap = snapshot(checker)
    accepted = [o for o in outcomes if o["kind"] == "accepted"]
    stored = {r.id: r for r in snap.requests}
    for o in accepted:
        assert o["request_id"] in stored, f"accepted request {o['request_id']} is not stored"
        assert stored[o["request_id"]].person == o["person"]
    assert len({o["request_id"] for o in accepted}) == len(accepted), "one id told to two people"
    unrecorded = len(stored) - len(accepted)
    assert 0 <= unrecorded <= slack, f"{unrecorded} stored requests nobody was told about"
    check_invariants(checker, START)
    check_people(snap, START, checker.settings.max_open_requests)
    check_no_waiting_request_fits_an_open_group(snap, START)
    notes = check_group_notes(snap)
    statuses = Counter(r.status for r in snap.requests)
    return {"stored": len(stored), "unrecorded": unrecorded, **notes, **statuses}


def test_four_processes_submit_2000_requests_and_every_invariant_holds(fleet, checker):
    commands = crowded_load(2000, START, seed=1)
    workers = spawn_load(fleet, commands)
    went = fleet.start(workers)
    fleet.wait(workers, timeout=300)
    summaries = [w.summary() for w in workers]
    duration = max(s["finished"] for s in summaries) - went
    # They really ran side by side: every one started before any finished.
    assert max(s["started"] for s in summaries) < min(s["finished"] for s in summaries)

    outcomes = [o for w in workers for o in w.outcomes()]
    kinds = Counter(o["kind"] for o in outcomes)
    assert len(outcomes) == len(commands)
    errors = [o for o in outcomes if o["kind"] not in ("accepted", "user_error")]
    assert not errors, errors[:5]
    refusals = [o for o in outcomes if o["kind"] == "user_error"]
    assert all(o["msg"].startswith(REFUSALS) for o in refusals), refusals[:5]
    matched = sum(1 for o in outcomes if o.get("matched"))
    assert kinds["accepted"] > 1000 and matched > 200, kinds

    db = check_database(checker, outcomes)
    assert db["groups"] > 200 and db["MATCHED"] > 2 * db.get("PENDING", 0), db

    # Each process delivered after each command, like the plugin; nothing is left over and no
    # row went out twice although four processes claimed rows of one platform at once.
    leftover: list[dict] = []
    checker.deliver(
        "text", lambda item: leftover.append({"id": item.id, "to": item.recipient, "by": "test"})
    )
    sent = [s for w in workers for s in w.sent()] + leftover
    report = delivery_report(snapshot(checker), sent)
    assert report["never_sent"] == [] and report["undelivered"] == [], report
    assert report["duplicates"] == {} and report["unknown_rows"] == [], report
    assert report["wrong_recipient"] == [], report
    per_process = {w.label: len(w.sent()) for w in workers}
    assert sum(per_process.values()) >= report["rows"] - len(leftover)
    print(
        f"\nconcurrency: {len(commands)} requests from {PROCESSES} processes in {duration:.1f} s "
        f"({len(commands) / duration:.0f} requests/s): {kinds['accepted']} accepted "
        f"({matched} matched at once), {kinds['user_error']} refused; database {db}; "
        f"outbox {report['rows']} rows, {report['sends']} sends by process {per_process} "
        f"+ {len(leftover)} left over, duplicates 0, lost 0"
    )


def test_sigkill_mid_load_loses_nothing_and_the_restart_delivers_what_is_owed(fleet, checker):
    commands = crowded_load(1600, START, seed=2)
    workers = spawn_load(fleet, commands)
    victim, others = workers[0], workers[1:]
    went = fleet.start(workers)
    end = time.monotonic() + 60
    while len(victim.outcomes()) < 150:  # a good part of the way into its 400 commands
        assert victim.alive() and time.monotonic() < end, victim.errors()
        time.sleep(0.01)
    fleet.kill(victim)
    killed_after = time.time() - went
    assert victim.proc.returncode == -9
    assert any(w.alive() for w in others), "the kill must land while the others still load"
    fleet.wait(others, timeout=300)
    done_by_victim = len(victim.outcomes())
    assert done_by_victim < len(victim.job["commands"]), "the victim was killed mid-load"

    # What the victim held when it died: rows leased to it, sent or not, are still owed.
    with Session(checker.storage.engine) as session:
        leased = session.scalars(
            select(Outbox.id).where(Outbox.delivered_at.is_(None), Outbox.claimed_until.isnot(None))
        ).all()

    # The restarted process comes back after the victim's lease (60 s) has run out.
    restarted = fleet.spawn(
        "w0-restarted",
        role="deliver",
        platform="text",
        clock=(START + timedelta(seconds=61)).isoformat(),
        idle_rounds=3,
    )
    fleet.start([restarted])
    fleet.wait([restarted], timeout=60)

    outcomes = [o for w in workers for o in w.outcomes()]
    assert not [o for o in outcomes if o["kind"] not in ("accepted", "user_error")]
    # The victim may have committed one request whose reply it never wrote down.
    db = check_database(checker, outcomes, slack=1)

    sent = [s for w in [*workers, restarted] for s in w.sent()]
    report = delivery_report(snapshot(checker), sent)
    assert report["never_sent"] == [] and report["undelivered"] == [], report
    assert report["unknown_rows"] == [] and report["wrong_recipient"] == [], report
    # At-least-once: the one row the victim may have sent in the instant before its ack is the
    # only one that can go out twice (the victim sends and acks one row at a time).
    victim_sent = victim.sent()
    in_doubt = victim_sent[-1]["id"] if victim_sent else None
    real_duplicates = {
        i: by
        for i, by in report["duplicates"].items()
        if not (i == in_doubt and by == [victim.label, restarted.label])
    }
    assert real_duplicates == {}, real_duplicates
    in_doubt_resent = len(report["duplicates"]) - len(real_duplicates)
    lost = len(report["never_sent"]) + len(report["undelivered"])
    print(
        f"\ncrash: {len(commands)} requests from {PROCESSES} processes; w0 SIGKILLed after "
        f"{killed_after:.1f} s with {done_by_victim}/{len(victim.job['commands'])} commands done "
        f"and {len(leased)} outbox rows leased to it; restart delivered "
        f"{restarted.summary()['delivered']}; database {db}; outbox {report['rows']} rows, "
        f"{report['sends']} sends; duplicates {len(report['duplicates'])} "
        f"(in-doubt resend of the row sent at the kill: {in_doubt_resent}), "
        f"lost {lost}"
    )
