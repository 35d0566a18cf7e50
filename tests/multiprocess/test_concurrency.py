"""Four engine processes load one PostgreSQL at once; one of them is killed with SIGKILL."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from iwant_engine.model import Status
from iwant_engine.storage.schema import Outbox
from iwant_engine.testing import waiting_group

from ..support import START
from .harness import (
    Fleet,
    check_group_notes,
    check_invariants,
    check_no_waiting_request_fits_an_open_group,
    check_people,
    crowded_load,
    delivery_report,
    is_answer_again,
    row_request_id,
    snapshot,
    split,
)

PROCESSES = 4
REFUSALS = ("You already want", "You already have 5 open requests")


def spawn_load(fleet: Fleet, commands: list, extra: dict[int, dict] | None = None) -> list:
    """Load processes; each delivers the platform's outbox every 5 commands (the plugin does
    after every command; every 5th keeps the claim contention and costs less time here)."""
    return [
        fleet.spawn(
            f"w{i}",
            role="load",
            clock=START.isoformat(),
            commands=part,
            **{"deliver_every": 5, "max_seconds": 240, **(extra or {}).get(i, {})},
        )
        for i, part in enumerate(split(commands, PROCESSES))
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
    assert all(o["msg"].startswith(REFUSALS) for o in refusals), [
        o["msg"] for o in refusals if not o["msg"].startswith(REFUSALS)
    ][:5]
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
    assert sum(per_process.values()) >= report["rows"] - report["superseded"] - len(leftover)
    print(
        f"\nconcurrency: {len(commands)} requests from {PROCESSES} processes in {duration:.1f} s "
        f"({len(commands) / duration:.0f} requests/s): {kinds['accepted']} accepted "
        f"({matched} matched at once), {kinds['user_error']} refused; database {db}; "
        f"outbox {report['rows']} rows, {report['sends']} sends by process {per_process} "
        f"+ {len(leftover)} left over, duplicates 0, lost 0"
    )


def test_sigkill_mid_load_loses_nothing_and_the_restart_delivers_what_is_owed(fleet, checker):
    """Two of four loading processes die by SIGKILL while the others go on:

    - w0 in the middle of a delivery round, stuck in a send (the platform never answered),
      holding the lease of rows it claimed: that send never completed, so its rows are owed;
    - w1 at whatever it was doing once it had done 100 of its 200 commands (a submit, most
      likely, whose transaction the server rolls back when the connection drops).

    A restarted process serving the same platform comes back after the lease (60 s) and must
    deliver every owed row; no row may be lost or sent twice, except the one row w1 may have
    sent in the instant before its ack (at-least-once: it can be resent, counted apart)."""
    commands = crowded_load(800, START, seed=2)
    marker = fleet.directory / "w0.hang"
    hang = {"hang_after": 100, "hang_marker": str(marker), "deliver_every": 10}
    workers = spawn_load(fleet, commands, {0: hang})
    hung, shot = workers[0], workers[1]
    went = fleet.start(workers)
    end = time.monotonic() + 200
    kills = {}
    while len(kills) < 2:
        assert time.monotonic() < end, "the victims never reached the moment to be killed"
        for victim, due in ((shot, len(shot.outcomes()) >= 100), (hung, marker.exists())):
            if victim.label not in kills and due:
                others_alive = [w.label for w in workers if w is not victim and w.alive()]
                assert others_alive, "a kill must land while others still load"
                fleet.kill(victim)
                kills[victim.label] = time.time() - went
        for w in (hung, shot):
            assert w.label in kills or w.alive(), w.errors()
        time.sleep(0.01)
    assert hung.proc.returncode == shot.proc.returncode == -9
    survivors = workers[2:]
    fleet.wait(survivors, timeout=300)
    for w in (hung, shot):
        assert len(w.outcomes()) < len(w.job["commands"]), f"{w.label} was killed mid-load"

    # What the dead held: rows leased to them, not delivered, still owed.
    with Session(checker.storage.engine) as session:
        leased = session.scalars(
            select(Outbox.id).where(Outbox.delivered_at.is_(None), Outbox.claimed_until.isnot(None))
        ).all()
    assert int(marker.read_text()) in leased, "the row w0 was sending is still owed"

    # The restarted process comes back after the lease of the dead ones has run out.
    restarted = fleet.spawn(
        "restarted",
        role="deliver",
        platform="text",
        clock=(START + timedelta(seconds=61)).isoformat(),
        idle_rounds=3,
    )
    fleet.start([restarted])
    fleet.wait([restarted], timeout=60)
    assert restarted.summary()["delivered"] >= len(leased) >= 1

    outcomes = [o for w in workers for o in w.outcomes()]
    assert not [o for o in outcomes if o["kind"] not in ("accepted", "user_error")]
    # A victim may have committed one request whose reply it never wrote down.
    db = check_database(checker, outcomes, slack=2)

    sent = [s for w in [*workers, restarted] for s in w.sent()]
    report = delivery_report(snapshot(checker), sent)
    assert report["never_sent"] == [] and report["undelivered"] == [], report
    assert report["unknown_rows"] == [] and report["wrong_recipient"] == [], report
    shot_sent = shot.sent()
    in_doubt = shot_sent[-1]["id"] if shot_sent else None
    real_duplicates = {
        i: by
        for i, by in report["duplicates"].items()
        if not (i == in_doubt and by == [shot.label, restarted.label])
    }
    assert real_duplicates == {}, real_duplicates
    in_doubt_resent = len(report["duplicates"]) - len(real_duplicates)
    lost = len(report["never_sent"]) + len(report["undelivered"])
    # Answers: every accepted request's answer reached its person, from the command or, for
    # those the killed processes never acknowledged, by direct message from the restart.
    snap = snapshot(checker)
    again = [row_request_id(row) for row in snap.outbox if is_answer_again(row)]
    recorded = {o["request_id"] for o in outcomes if o["kind"] == "accepted"}
    unanswered = [r.id for r in snap.requests if r.id not in recorded and r.id not in again]
    assert unanswered == [], "a stored request whose person was never answered"
    assert len(again) == len(set(again)), "an answer repeated twice"
    twice = sum(1 for i in again if i in recorded)
    waiting_sets = waiting_group(
        [r for r in snap.requests if r.status == Status.PENDING and r.deadline > START],
        set(),
        START,
    )
    assert waiting_sets is None, waiting_sets
    print(
        f"\ncrash: {len(commands)} requests from {PROCESSES} processes; SIGKILL w0 (hung in a "
        f"send) at {kills[hung.label]:.1f} s after {len(hung.outcomes())}/200 commands, w1 at "
        f"{kills[shot.label]:.1f} s after {len(shot.outcomes())}/200; {len(leased)} outbox rows "
        f"were leased to the dead; the restart delivered {restarted.summary()['delivered']}; "
        f"database {db}; outbox {report['rows']} rows, {report['sends']} sends; duplicates "
        f"{len(report['duplicates'])} (in-doubt resend of w1's last send: {in_doubt_resent}), "
        f"lost {lost}; answers: {len(recorded)} by the command, {len(again)} by direct message "
        f"after the crash ({len(again) - twice} never given, {twice} given but not yet "
        f"acknowledged: answered twice), 0 unanswered; fitting sets left waiting: 0"
    )
