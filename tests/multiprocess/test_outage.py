"""PostgreSQL becomes unreachable under load (through a proxy the test cuts), then returns."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

from sqlalchemy.engine import make_url

from iwant_engine import FixedClock, Person, Unavailable

from ..support import START, make_engine
from .harness import (
    check_group_notes,
    check_invariants,
    check_no_waiting_request_fits_an_open_group,
    check_people,
    crowded_load,
    delivery_report,
    snapshot,
    split,
)

LINE = "iwant is temporarily unavailable; nothing was saved, please try again in a minute."
PROCESSES = 4
CUT_SECONDS = 3.0  # refused: every connection closed, nothing listening
BLACKHOLE_SECONDS = 6.0  # listening but never answering: only connect_timeout ends a wait
HANG_LIMIT = 10.0  # no call may hang longer than this while the database is away


def timed(call):  # noqa: ANN001, ANN201
    t = time.monotonic()
    try:
        return call(), None, time.monotonic() - t
    except Exception as err:
        return None, err, time.monotonic() - t


def test_outage_under_load_answers_clearly_and_recovers_without_restart(
    fleet, checker, proxy, mp_url
):
    via_proxy = make_url(mp_url).set(port=proxy.port).render_as_string(hide_password=False)
    probe = make_engine(via_proxy, FixedClock(START), pool_size=2)
    ann, bea = Person("text:@probe-ann", "Ann"), Person("text:@probe-bea", "Bea")
    try:
        commands = crowded_load(500, START, seed=3)
        workers = [
            fleet.spawn(
                f"w{i}",
                url=via_proxy,
                role="load",
                clock=START.isoformat(),
                commands=part,
                deliver_every=5,
                unavailable_pause=0.25,  # a person waits a moment before trying again
                max_seconds=240,
            )
            for i, part in enumerate(split(commands, PROCESSES))
        ]
        went = fleet.start(workers)
        end = time.monotonic() + 120
        while sum(o["kind"] == "accepted" for w in workers for o in w.outcomes()) < 100:
            assert time.monotonic() < end and all(w.alive() for w in workers)
            time.sleep(0.05)
        assert probe.submit(ann, "coffee 10:00-11:00", "r1").body  # the probe works before

        # -- the database goes away: refused first ...
        cut_at = time.time()
        proxy.cut()
        _, refused, refused_s = timed(lambda: probe.submit(bea, "coffee 10:00-11:00", "r1"))
        assert isinstance(refused, Unavailable), repr(refused)
        assert str(refused) == LINE
        _, list_err, _ = timed(lambda: probe.list_text(ann))
        assert isinstance(list_err, Unavailable), repr(list_err)
        _, deliver_err, _ = timed(lambda: probe.deliver("text", lambda item: None))
        assert isinstance(deliver_err, Unavailable), repr(deliver_err)
        time.sleep(max(0.0, cut_at + CUT_SECONDS - time.time()))

        # ... then a black hole: connections are accepted and never answered.
        proxy.blackhole()
        _, holed, holed_s = timed(lambda: probe.submit(bea, "coffee 10:00-11:00", "r1"))
        assert isinstance(holed, Unavailable), repr(holed)
        assert holed_s < HANG_LIMIT, f"submit hung {holed_s:.1f} s on an unanswering database"
        time.sleep(max(0.0, cut_at + CUT_SECONDS + BLACKHOLE_SECONDS - time.time()))

        # -- it comes back; the same engine object works without a restart.
        proxy.restore()
        restored_at = time.time()
        note, err, back_s = timed(lambda: probe.submit(bea, "coffee 10:00-11:00", "r1"))
        assert err is None, repr(err)
        assert note.body.startswith(("Matched!", "You join", "Waiting")), note.body
        fleet.wait(workers, timeout=300)
    finally:
        probe.close()

    outcomes = [o for w in workers for o in w.outcomes()]
    kinds = Counter(o["kind"] for o in outcomes)
    assert len(outcomes) == len(commands)
    odd = [o for o in outcomes if o["kind"] not in ("accepted", "user_error", "unavailable")]
    assert not odd, odd[:5]  # never another exception, in submit or in delivery
    unavailable = [o for o in outcomes if o["kind"] == "unavailable"]
    assert unavailable and all(o["msg"] == LINE for o in unavailable)
    # Only while the database was away; the processes recovered by themselves.
    assert all(cut_at - 1 < o["t0"] < restored_at + 1 for o in unavailable), [
        (round(o["t0"] - cut_at, 2), round(o["dt"], 2)) for o in unavailable
    ]
    slowest = max(o["dt"] for o in outcomes)
    assert slowest < HANG_LIMIT, f"a submit took {slowest:.1f} s"
    before = sum(o["kind"] == "accepted" and o["t0"] < cut_at for o in outcomes)
    after = sum(o["kind"] == "accepted" and o["t0"] > restored_at for o in outcomes)
    assert before >= 100 and after > 0, (before, after)

    # Everything accepted before and after the outage is stored and matched correctly.
    snap = snapshot(checker)
    stored = {r.id: r for r in snap.requests}
    accepted = [o for o in outcomes if o["kind"] == "accepted"]
    for o in accepted:
        assert stored[o["request_id"]].person == o["person"]
    told = {o["request_id"] for o in accepted}
    probes = {r.id for r in snap.requests if r.person.startswith("text:@probe-")}
    assert len(probes) == 2, "the probe's refused submits stored nothing"
    # "Nothing was saved" can only be wrong for a COMMIT whose answer the cut swallowed: at
    # most one per process, and only for a request its sender was told failed.
    in_doubt = [r for i, r in stored.items() if i not in told and i not in probes]
    assert len(in_doubt) <= PROCESSES, in_doubt
    failed_people = {o["person"] for o in unavailable}
    assert all(r.person in failed_people for r in in_doubt)
    check_invariants(checker, START)
    check_people(snap, START, checker.settings.max_open_requests)
    check_no_waiting_request_fits_an_open_group(snap, START)
    notes = check_group_notes(snap)

    # Notifications: rows leased when the cut came are owed; after the lease, all go out.
    checker.clock.set(START + timedelta(seconds=61))
    leftover: list[dict] = []
    for _ in range(20):
        report = checker.deliver(
            "text",
            lambda i: leftover.append(
                {"id": i.id, "to": i.recipient, "by": "test", "t": float("inf")}
            ),
        )
        if not report.delivered:
            break
    sent = [s for w in workers for s in w.sent()] + leftover
    report = delivery_report(snapshot(checker), sent)
    assert report["never_sent"] == [] and report["undelivered"] == [], report
    assert report["unknown_rows"] == [] and report["wrong_recipient"] == [], report
    # A row sent just before the cut whose ack was lost goes out again after the lease
    # (at-least-once); at most one per process, and only one sent during the outage.
    assert len(report["duplicates"]) <= PROCESSES, report["duplicates"]
    for row in report["duplicates"]:
        first = min((s for s in sent if s["id"] == row), key=lambda s: s["t"])
        assert cut_at - 1 < first["t"] < restored_at + 1, (row, report["duplicates"][row])
    print(
        f"\noutage: {len(commands)} requests from {PROCESSES} processes through a proxy; "
        f"refused {CUT_SECONDS:.0f} s then black hole {BLACKHOLE_SECONDS:.0f} s; "
        f"{kinds['accepted']} accepted ({before} before, {after} after), "
        f"{kinds['user_error']} refused, {kinds['unavailable']} told 'unavailable'; "
        f"probe: Unavailable in {refused_s:.2f} s (refused) and {holed_s:.1f} s (black hole), "
        f"first submit after restore {back_s:.2f} s; slowest call {slowest:.1f} s; "
        f"in-doubt commits {len(in_doubt)}; {notes}; outbox {report['rows']} rows, "
        f"{len(leftover)} delivered after the lease, duplicates {len(report['duplicates'])}, "
        f"lost 0; proxy connections {proxy.connections}, cut {proxy.killed}; "
        f"run {time.time() - went:.1f} s"
    )


def test_a_process_hung_inside_a_transaction_blocks_the_others_only_briefly(fleet, checker):
    """A bot process hangs (GC pause, swap storm, debugger, a VM frozen) in the middle of a
    submit: its transaction holds the (pool, activity) lock and its connection stays open, so
    the server never ends the session by itself. Another process's submit to that pool must
    still answer within ~10 s (matched, or "temporarily unavailable"), not wait for as long
    as the hung process hangs."""
    ann, cat = Person("text:@ann", "Ann"), Person("text:@cat", "Cat")
    assert checker.submit(ann, "coffee 10:00-11:00", "r1").body.startswith("Waiting")
    marker = fleet.directory / "hung"
    hung = fleet.spawn(
        "hung",
        role="hang_in_submit",
        clock=START.isoformat(),
        commands=[("text:@bob", "Bob", "r1", "coffee 10:00-11:00")],
        hang_marker=str(marker),
        hang_seconds=120,
    )
    fleet.start([hung])
    end = time.monotonic() + 60
    while not marker.exists():
        assert hung.alive() and time.monotonic() < end, hung.errors()
        time.sleep(0.02)

    result: dict[str, object] = {}

    def submit() -> None:
        try:
            result["note"] = checker.submit(cat, "coffee 10:00-11:00", "r1")
        except Exception as err:  # judged below
            result["error"] = err

    thread = threading.Thread(target=submit, daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(HANG_LIMIT + 5)
    waited = time.monotonic() - started
    blocked = thread.is_alive()
    fleet.kill(hung)  # its session ends, its locks go, a blocked submit goes on
    thread.join(30)
    assert not blocked, (
        f"a submit to the pool waited {waited:.0f} s (and would wait as long as the hung "
        "process hangs) for the lock the hung process holds"
    )
    assert waited < HANG_LIMIT, f"a submit waited {waited:.1f} s"
    if "error" in result:
        assert isinstance(result["error"], Unavailable), repr(result["error"])
