"""A Slack room and a Telegram group joined into one pool, served by separate processes."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from iwant_engine import FixedClock, Person, settings
from iwant_engine.model import Status

from ..support import START, make_engine
from .harness import check_invariants, delivery_report, hhmm, snapshot

POOLS = {"slack:C1": "pool:shared", "telegram:-5": "pool:shared"}
PAIRS = 60


def test_slack_and_telegram_people_in_one_pool_each_hear_from_their_own_process(
    fleet, checker, mp_url
):
    # What "[pools] shared = slack:C1, telegram:-5" in plugins.cfg means.
    cfg = settings.parse_cfg(settings.DEFAULT_CFG + "[pools]\nshared = slack:C1, telegram:-5\n", {})
    assert cfg.pools == POOLS

    # One Slack person and one Telegram person, each through the engine of their own bot.
    clock = FixedClock(START)
    slack = make_engine(mp_url, clock, pools=POOLS)
    telegram = make_engine(mp_url, clock, pools=POOLS)
    try:
        ann, tom = Person("slack:U0ANN", "Ann"), Person("telegram:4242", "Tom")
        assert slack.submit(ann, "coffee 10:00", "C1").body.startswith("Waiting")
        reply = telegram.submit(tom, "coffee 9:50-10:30", "-5")
        assert reply.body.startswith("Matched! You meet Ann for coffee at 10:00"), reply.body
        tim, sue = Person("telegram:77", "Tim"), Person("slack:U0SUE", "Sue")
        assert telegram.submit(tim, "lunch 12:00", "-5").body.startswith("Waiting")
        reply = slack.submit(sue, "lunch 11:30-13:00", "C1")
        assert reply.body.startswith("Matched! You meet Tim for lunch at 12:00"), reply.body
    finally:
        slack.close()
        telegram.close()

    # Then two bot processes at once, one per platform, each submitting its own people's
    # commands and delivering after each (as the plugin does), plus a second deliverer per
    # platform to contend for the same rows. Slot i (one minute apart, a 15 min coffee,
    # max 2) fits exactly one Slack and one Telegram person, whoever comes first.
    slots = [START.replace(hour=10, minute=30) + timedelta(minutes=i) for i in range(PAIRS)]
    # The Slack bot walks the slots forwards and the Telegram bot backwards, so each is first
    # in half of the pairs and notes are owed on both platforms.
    jobs = {
        "slack": [
            (f"slack:U{i}", f"S{i}", "C1", f"coffee {hhmm(t)} max 2") for i, t in enumerate(slots)
        ],
        "telegram": [
            (f"telegram:{100 + i}", f"T{i}", "-5", f"coffee {hhmm(t)} max 2")
            for i, t in reversed(list(enumerate(slots)))
        ],
    }
    stop = fleet.directory / "stop"
    common = {"clock": START.isoformat(), "pools": POOLS, "max_seconds": 240}
    bots = [
        fleet.spawn(
            f"{p}-bot", role="load", platform=p, commands=cmds, deliver_every=1, limit=5, **common
        )
        for p, cmds in jobs.items()
    ]
    deliverers = [
        fleet.spawn(
            f"{p}-deliverer",
            role="deliver",
            platform=p,
            limit=2,
            idle_rounds=5,
            stop=str(stop),
            **common,
        )
        for p in jobs
    ]
    fleet.start([*bots, *deliverers])
    fleet.wait(bots, timeout=300)
    stop.write_text("stop")
    fleet.wait(deliverers, timeout=60)

    outcomes = [o for b in bots for o in b.outcomes()]
    assert Counter(o["kind"] for o in outcomes) == {"accepted": 2 * PAIRS}, outcomes[:3]
    check_invariants(checker, START)
    snap = snapshot(checker)
    groups: dict[int, list[str]] = {}
    for r in snap.requests:
        assert r.pool == "pool:shared"
        assert r.status == Status.MATCHED, f"{r.person} {r.status}"
        groups.setdefault(r.result_id, []).append(r.person.split(":")[0])
    assert len(groups) == PAIRS + 2
    assert all(sorted(g) == ["slack", "telegram"] for g in groups.values()), groups

    workers = [*bots, *deliverers]
    sent = [s for w in workers for s in w.sent()]
    report = delivery_report(snap, sent)
    rows = {row.id: row for row in snapshot(checker).outbox}
    assert len(rows) == PAIRS + 2, "one note per pair, to whoever asked first"
    assert report["never_sent"] == [] and report["undelivered"] == [], report
    assert report["duplicates"] == {} and report["wrong_recipient"] == [], report
    for s in sent:  # each note went out from a process of its recipient's platform
        assert s["by"].split("-")[0] == s["to"].split(":")[0] == rows[s["id"]].platform, s
    to_ann = [s for s in sent if s["to"] == "slack:U0ANN"]
    to_tim = [s for s in sent if s["to"] == "telegram:77"]
    assert len(to_ann) == 1 and to_ann[0]["body"].startswith("Tom joins you for coffee")
    assert len(to_tim) == 1 and to_tim[0]["body"].startswith("Sue joins you for lunch")
    per_platform = Counter(row.platform for row in rows.values())
    assert min(per_platform.values()) > 5, per_platform  # both deliverers had work
    per_process = {w.label: len(w.sent()) for w in workers}
    print(
        f"\nplatforms: {2 * PAIRS + 4} requests, {len(groups)} Slack+Telegram groups; notes "
        f"{dict(per_platform)} delivered once each, by process {per_process}"
    )
