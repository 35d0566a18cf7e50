"""Delivery pacing (issue 15): the budgets, their storage on every storage, and
``Engine.deliver`` keeping to them."""

from __future__ import annotations

import multiprocessing as mp
import re
from datetime import timedelta

import pytest

from iwant_engine import SendFailed, settings
from iwant_engine.pacing import Limit, PaceBook, Pacer, Scope, minimum_seconds
from iwant_engine.settings import SettingsError

from ..support import ALICE, BOB, CAROL, DAVE, FakeTime, make_engine


def pacer_on(book_pace, time: FakeTime) -> Pacer:  # noqa: ANN001
    return Pacer(book_pace, clock=time, sleep=time.sleep)


# -- limits and their settings -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rate", "burst"),
    [
        ("1/s", 1.0, 1),
        ("20/min", 20 / 60, 1),
        ("600/min burst 20", 10.0, 20),
        ("30 / s burst 5", 30, 5),
    ],
)
def test_limits_are_written_as_a_rate_and_a_burst(text, rate, burst):
    limit = Limit.parse(text)
    assert (limit.rate, limit.burst) == (pytest.approx(rate), burst)
    assert Limit.parse(str(limit)) == limit


@pytest.mark.parametrize("text", ["fast", "0/s", "5/hour", "1/s burst 0", ""])
def test_a_wrong_limit_is_refused(text):
    with pytest.raises(ValueError, match="limit"):
        Limit.parse(text)


def test_plugins_cfg_pacing_keeps_only_the_budgets_it_sets():
    assert settings.parse_cfg(settings.DEFAULT_CFG, {}).pacing == {}
    cfg = settings.parse_cfg(
        settings.DEFAULT_CFG + "[pacing]\nchat.room = 2/s burst 4\nchat.bot-wide_2 = 20/min\n", {}
    )
    assert cfg.pacing == {"chat.room": Limit(2.0, 4), "chat.bot-wide_2": Limit(20 / 60, 1)}
    with pytest.raises(SettingsError, match=r"chat.room = 'often': not a limit; write it like 1/s"):
        settings.parse_cfg(settings.DEFAULT_CFG + "[pacing]\nchat.room = often\n", {})


@pytest.mark.parametrize("key", ["room", "chat.room.big", "Chat.room", "chat.", ".room", "ch at.x"])
def test_a_pacing_key_is_platform_dot_budget(key):
    with pytest.raises(
        SettingsError,
        match=rf"\[pacing\] {re.escape(key)} = '1/s': write it as platform.budget, like ",
    ):
        settings.parse_cfg(settings.DEFAULT_CFG + f"[pacing]\n{key} = 1/s\n", {})


# -- reservations ----------------------------------------------------------------------------


def test_a_scope_lets_its_burst_through_then_one_send_per_interval():
    time = FakeTime()
    pacer = pacer_on(PaceBook().pace, time)
    chat = [Scope("t:b:chat:1", Limit(1.0, 2))]
    slots = [pacer.reserve(chat, within=10)[0] - time.now for _ in range(5)]
    assert slots == [0.0, 0.0, 1.0, 2.0, 3.0]


def test_a_send_waits_for_the_slowest_of_its_scopes_and_spends_all_of_them():
    time = FakeTime()
    pacer = pacer_on(PaceBook().pace, time)
    bot, one, two = (
        Scope("t:b:bot", Limit(2.0, 1)),
        Scope("t:b:chat:1", Limit(1.0, 1)),
        Scope("t:b:chat:2", Limit(1.0, 1)),
    )
    start = time.now
    got = [pacer.reserve(s, within=10)[0] - start for s in ([bot, one], [bot, one], [bot, two])]
    # chat 1 allows its second send at +1; the bot's own budget then puts chat 2 at +1.5.
    assert got == [0.0, 1.0, 1.5]


def test_a_slot_too_far_away_is_not_reserved():
    time = FakeTime()
    pacer = pacer_on(PaceBook().pace, time)
    chat = [Scope("t:b:chat:1", Limit(1.0, 1))]
    assert pacer.reserve(chat, within=0.5) == (time.now, True)
    assert pacer.reserve(chat, within=0.5) == (time.now + 1.0, False)
    assert pacer.reserve(chat, within=0.5) == (time.now + 1.0, False), "nothing was spent"
    time.sleep(1.0)
    assert pacer.reserve(chat, within=0.5) == (time.now, True)


def test_a_429_pauses_the_scope_then_sends_resume_at_the_rate_not_in_a_burst():
    time = FakeTime()
    pacer = pacer_on(PaceBook().pace, time)
    bot = [Scope("t:b:bot", Limit(10.0, 3))]
    pacer.pause(bot, 5.0)
    slots = [pacer.reserve(bot, within=10)[0] - time.now for _ in range(3)]
    assert slots == pytest.approx([5.0, 5.1, 5.2])


def test_minimum_seconds_is_set_by_the_busiest_scope():
    limits = {"bot": Limit(30.0, 30), "chat:1": Limit(1.0, 3)}
    assert minimum_seconds({"bot": 90, "chat:1": 3}, limits) == pytest.approx(2.0)
    assert minimum_seconds({"bot": 10, "chat:1": 13}, limits) == pytest.approx(10.0)
    assert minimum_seconds({}, limits) == 0.0


# -- every storage keeps the budgets -------------------------------------------------------------


def test_storage_pace_keeps_numbers_per_key(engine):
    seen: list[dict[str, float]] = []

    def step(values: dict[str, float]) -> dict[str, float]:
        seen.append(dict(values))
        return {k: values.get(k, 0.0) + 1.5 for k in ("a", "b")}

    engine.storage.pace(["b", "a"], step)
    engine.storage.pace(["a"], step)
    assert seen == [{}, {"a": 1.5}]


def test_deliver_paces_one_chat_and_gives_later_rows_back_unspent(engine, clock):
    """Three notes to Alice's chat (one in 5 s, burst 2): her first two go now, the third
    is given back for 5 s (its attempt not counted) while everyone else's go, and it goes
    once its time comes. Nothing slept: a far slot is not waited for."""
    time = FakeTime()
    engine.pacer = Pacer(engine.storage.pace, clock=time, sleep=time.sleep)
    limit = Limit(0.2, 2)
    for activity in ("coffee", "tea", "walk"):  # three groups: three notes to Alice's chat
        engine.submit(ALICE, f"{activity} 10:00")
        engine.submit(BOB, f"{activity} 10:00")
    engine.submit(CAROL, "lunch 12:00")
    engine.submit(DAVE, "lunch 12:00")

    def scopes(item):  # noqa: ANN001, ANN202
        if item.recipient != ALICE.id:
            return []
        return [Scope(f"text:bot:chat:{item.recipient}", limit)]

    sent: list[str] = []

    def send(item) -> None:  # noqa: ANN001
        sent.append(item.recipient)

    first = engine.deliver("text", send, scopes=scopes)
    assert sent.count(ALICE.id) == 2
    assert first.deferred == 1
    assert CAROL.id in sent
    everyone_else = len(sent) - 2
    assert engine.deliver("text", send, scopes=scopes).delivered == 0, "not due yet"
    clock.advance(seconds=5)
    time.sleep(5.0)
    later = engine.deliver("text", send, scopes=scopes)
    assert (later.delivered, later.deferred) == (1, 0)
    assert sent.count(ALICE.id) == 3 and len(sent) == everyone_else + 3
    assert time.slept == [5.0], "no send waited for its slot"
    assert engine.storage.counts()["outbox_pending"] == 0


def test_a_rate_limit_in_one_engine_pauses_another_on_postgresql(pg_database, clock):
    from ..support import truncate_postgres

    truncate_postgres(pg_database)
    one, two = make_engine(pg_database, clock), make_engine(pg_database, clock)
    try:
        time = FakeTime()
        for eng in (one, two):
            eng.pacer = Pacer(eng.storage.pace, clock=time, sleep=time.sleep)
        bot = Scope("test:7:bot", Limit(30.0, 15))
        one.pause_sending([bot], 3.0)
        slot, reserved = two.pacer.reserve([bot], within=10)
        assert reserved and slot == pytest.approx(time.now + 3.0)
    finally:
        one.close()
        two.close()


def _reserve_many(url: str, count: int, out) -> None:  # noqa: ANN001
    from iwant_engine import FixedClock

    from ..support import START

    eng = make_engine(url, FixedClock(START))
    scope = [Scope("test:b:chat:1", Limit(200.0, 2))]
    try:
        out.put([eng.pacer.reserve(scope, within=60)[0] for _ in range(count)])
    finally:
        eng.close()


def test_two_processes_on_postgresql_never_take_the_same_slot(pg_database):
    from ..support import truncate_postgres

    truncate_postgres(pg_database)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    workers = [ctx.Process(target=_reserve_many, args=(pg_database, 40, out)) for _ in range(2)]
    for w in workers:
        w.start()
    slots = sorted(out.get(timeout=60) + out.get(timeout=60))
    for w in workers:
        w.join(30)
    assert len(slots) == 80
    # GCRA: n slots in a row span at least (n - burst) intervals, whoever reserved them.
    interval = 1 / 200.0
    for i in range(2, len(slots)):
        assert slots[i] - slots[i - 2] >= interval - 1e-6, (i, slots[i - 2 : i + 1])


def test_a_released_row_keeps_its_place_for_its_chat(engine, clock):
    engine.submit(ALICE, "coffee 10:00")
    engine.submit(BOB, "coffee 10:00")
    item = engine.storage.claim_outbox("text", clock.now())[0]
    engine.storage.release(item.id, clock.now() + timedelta(seconds=5))
    assert engine.storage.claim_outbox("text", clock.now()) == []
    clock.advance(seconds=5)
    again = engine.storage.claim_outbox("text", clock.now())
    assert [(i.id, i.attempts) for i in again] == [(item.id, item.attempts)]


def test_budgets_untouched_for_an_hour_are_dropped_at_retention_time(engine):
    now = engine.pacer.clock()
    engine.storage.pace(["old", "new"], lambda _at: {"old": now - 7200, "new": now + 1})
    assert engine.purge() == 1
    seen: list[dict[str, float]] = []
    engine.storage.pace(["old", "new"], lambda at: seen.append(at) or {})
    assert seen == [{"new": pytest.approx(now + 1)}]


def test_a_send_refused_with_retry_after_is_tried_again_then_not_before(engine, clock):
    engine.submit(ALICE, "coffee 10:00")
    engine.submit(BOB, "coffee 10:00")

    def refuse(item) -> None:  # noqa: ANN001
        raise SendFailed("429", retry_after=7.0)

    assert engine.deliver("text", refuse).retried == 2
    clock.advance(seconds=6)
    assert engine.deliver("text", refuse).retried == 0, "the platform asked for 7 s"
    clock.advance(seconds=1)
    sent: list[str] = []
    assert engine.deliver("text", lambda item: sent.append(item.recipient)).delivered == 2


@pytest.mark.parametrize(
    "error",
    [SendFailed("429", retry_after=601.0), SendFailed("429", retry_after=0.0)],
    ids=["too long", "zero"],
)
def test_a_retry_after_out_of_range_is_not_believed(engine, clock, error):
    engine.submit(ALICE, "coffee 10:00")
    engine.submit(BOB, "coffee 10:00")

    def refuse(item) -> None:  # noqa: ANN001
        raise error

    assert engine.deliver("text", refuse).retried == 2
    clock.advance(seconds=2)  # the backoff after a first attempt, not what the error said
    assert engine.deliver("text", refuse).retried == 2


def test_only_a_send_failed_says_when_to_try_again(engine, clock):
    class Throttled(Exception):
        retry_after = 300.0

    engine.submit(ALICE, "coffee 10:00")
    engine.submit(BOB, "coffee 10:00")

    def refuse(item) -> None:  # noqa: ANN001
        raise Throttled("429")

    assert engine.deliver("text", refuse).retried == 2
    clock.advance(seconds=2)
    assert engine.deliver("text", refuse).retried == 2, "its retry_after is not read"
