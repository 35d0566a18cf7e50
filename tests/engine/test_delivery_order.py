"""Each person reads their notes in the order they were written, and a claimed row is
never given back, failed or sent twice once another process holds it (issue 15's paced
delivery; found in review, each test reproduces what went wrong)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from iwant_engine import Person, settings
from iwant_engine.pacing import Limit, Pacer, Scope

from ..support import ALICE, BOB, CAROL, FakeTime, drain, make_engine

LEASE = timedelta(seconds=60)


def test_stale_group_note_is_the_last_one_alice_reads(engine, clock):
    t = FakeTime()
    engine.pacer = Pacer(engine.storage.pace, clock=t, sleep=t.sleep)
    chat = Limit(1.0, 1)  # 1/s per chat, no burst (values only make the timing short)

    def scopes(item):
        return [Scope(f"text:b:chat:{item.recipient}", chat)]

    # Alice's chat has just been sent to (e.g. her reply / an earlier note): next slot at +1 s.
    engine.pacer.reserve(scopes(type("I", (), {"recipient": ALICE.id})()), within=10)

    sent = []
    send = lambda item: sent.append((item.recipient, item.body))  # noqa: E731

    engine.submit(ALICE, "coffee 10:00")
    engine.submit(BOB, "coffee 10:00")  # R1 to Alice: "Bob joins you" (topic group:G)
    r = engine.deliver("text", send, scopes=scopes)
    assert r.deferred == 1 and [w for w, _ in sent if w == ALICE.id] == []  # R1 given back

    clock.advance(seconds=0.8)
    t.sleep(0.8)
    engine.submit(CAROL, "coffee 10:00")  # R2 to Alice: "Carol joins ... group: A, B, C"
    r = engine.deliver("text", send, scopes=scopes)  # R1 not due yet; R2 takes R1's slot
    clock.advance(seconds=0.2)
    for _ in range(5):
        clock.advance(seconds=1)
        t.sleep(1)
        engine.deliver("text", send, scopes=scopes)

    to_alice = [body for who, body in sent if who == ALICE.id]
    assert "Carol" in to_alice[-1], f"Alice's last note is stale: {to_alice}"


def test_two_notes_to_alice_swap_order_in_one_round(engine, clock):
    t = FakeTime()
    engine.pacer = Pacer(engine.storage.pace, clock=t, sleep=t.sleep)
    bot, chat = Limit(8.0, 1), Limit(1.0, 1)

    def scopes(item):
        if item.group_members is not None:
            return []
        return [Scope("text:b:bot", bot), Scope(f"text:b:chat:{item.recipient}", chat)]

    engine.pacer.reserve([Scope(f"text:b:chat:{ALICE.id}", chat)], within=10)  # chat busy 1 s
    engine.submit(ALICE, "coffee 10:00")
    engine.submit(BOB, "coffee 10:00")  # note 1 to Alice (coffee)
    for i in range(9):  # other people's notes
        a, b = Person(f"text:@p{i}a", f"P{i}a"), Person(f"text:@p{i}b", f"P{i}b")
        engine.submit(a, f"coffee {11 + i}:00")
        engine.submit(b, f"coffee {11 + i}:00")
    engine.submit(ALICE, "tea 15:00")
    engine.submit(BOB, "tea 15:00")  # note 2 to Alice (tea)

    sent = []
    engine.deliver("text", lambda item: sent.append((item.recipient, item.body)), scopes=scopes)
    to_alice = [body for who, body in sent if who == ALICE.id]
    assert to_alice[:1] != [] and "coffee" in to_alice[0], f"order swapped: {to_alice}"


def test_release_after_lease_expiry_hands_the_row_out_twice(engine, clock):
    engine.submit(ALICE, "coffee 10:00")
    engine.submit(BOB, "coffee 10:00")
    a_lease = clock.now() + LEASE
    first = [
        i
        for i in engine.storage.claim_outbox("text", clock.now(), 50, LEASE)
        if i.group_members is None
    ]
    row = first[0]
    clock.advance(seconds=61)  # A's lease ran out (slow send)
    b = [i.id for i in engine.storage.claim_outbox("text", clock.now(), 50, LEASE)]
    assert row.id in b  # B holds it, lease to +121 s
    engine.storage.release(row.id, clock.now(), a_lease)  # A, late, defers it
    c = [i.id for i in engine.storage.claim_outbox("text", clock.now(), 50, LEASE)]
    assert row.id not in c, "claimed by C while B's lease runs: sent twice"


def test_release_after_a_slow_send_duplicates(engine, clock):
    t = FakeTime()
    engine.pacer = Pacer(engine.storage.pace, clock=t, sleep=t.sleep)
    for i, pair in enumerate([(ALICE, BOB), (Person("text:@c", "C"), Person("text:@d", "D"))]):
        engine.submit(pair[0], f"coffee {10 + i}:00")
        engine.submit(pair[1], f"coffee {10 + i}:00")

    def scopes(item):
        return [] if item.group_members else [Scope(f"text:b:chat:{item.recipient}", Limit(30, 5))]

    b_holds: list[int] = []

    def send(item):
        if item.recipient == ALICE.id:  # the slow one
            clock.advance(seconds=70)
            t.sleep(70)
            b_holds.extend(
                i.id
                for i in engine.storage.claim_outbox("text", clock.now(), 50, timedelta(seconds=60))
            )

    engine.deliver("text", send, scopes=scopes)
    assert b_holds, "process B holds the rest of A's batch now"
    c = [i.id for i in engine.storage.claim_outbox("text", clock.now(), 50, timedelta(seconds=60))]
    assert not set(c) & set(b_holds), f"rows {set(c) & set(b_holds)} handed to B and C at once"


class ProcessDied(BaseException):
    """A process killed in the middle of a delivery round: nothing of the round runs on."""


def test_rows_of_a_round_that_died_go_out_when_the_configured_lease_ends(database_url, clock):
    lease = settings.parse_cfg(settings.DEFAULT_CFG + "[limits]\ndelivery_lease_seconds = 15\n", {})
    engine = make_engine(database_url, clock, delivery_lease=lease.delivery_lease)
    try:
        engine.submit(ALICE, "coffee 10:00")
        engine.submit(BOB, "coffee 10:00")  # Alice's note: "Bob joins you"

        def die(item: object) -> None:
            raise ProcessDied

        with pytest.raises(ProcessDied):
            engine.deliver("text", die)
        clock.advance(seconds=14)
        assert drain(engine) == [], "a claimed row went out while its lease ran"
        clock.advance(seconds=2)
        assert [who for who, _ in drain(engine)] == [ALICE.id]
    finally:
        engine.close()


def test_a_lease_setting_out_of_range_is_refused_by_name():
    with pytest.raises(settings.SettingsError, match=r"delivery_lease_seconds = 5: must be 10"):
        settings.parse_cfg(settings.DEFAULT_CFG + "[limits]\ndelivery_lease_seconds = 5\n", {})
