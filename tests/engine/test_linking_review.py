"""Linked accounts: defects a review found, kept as tests (two processes, zones, export)."""

import json
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from iwant_engine import FixedClock, Person, UserError

from ..support import ALICE, BOB, MEMORY, START, make_engine

ALICE_TG = Person("text:@alice2", "Alice (2nd account)")
PRAGUE = ZoneInfo("Europe/Prague")


def code_of(note):
    return re.search(r"[A-Z2-9]{4}-[A-Z2-9]{4}", note.body)[0]


def link(engine, main, other):
    engine.link(other, code_of(engine.link(main)))


def test_a_linked_accounts_standing_wish_is_made_in_the_persons_zone(tmp_path):
    clock = FixedClock(datetime(2026, 10, 19, 8, 0, tzinfo=PRAGUE))
    engine = make_engine(f"sqlite:///{tmp_path / 'db'}", clock)
    link(engine, ALICE, ALICE_TG)
    engine.set_timezone(ALICE_TG, "Europe/Prague")  # stored on the person (Alice)
    engine.submit(ALICE_TG, "lunch 12:00 every day")
    clock.set(datetime(2026, 10, 19, 23, 30, tzinfo=PRAGUE))
    engine.sweep()
    starts = sorted(
        r.earliest.astimezone(PRAGUE).strftime("%a %H:%M")
        for r, _ in engine.storage.snapshot()
        if r.event_key and r.event_key.startswith("standing:")
    )
    # Expected: both days at 12:00 Prague time.
    assert starts == ["Mon 12:00", "Tue 12:00"]


def test_export_from_either_account_has_the_standing_wishes():
    clock = FixedClock(START)
    engine = make_engine(MEMORY, clock)
    engine.submit(ALICE_TG, "lunch 12:00 every day")  # before linking
    link(engine, ALICE, ALICE_TG)
    for who in (ALICE, ALICE_TG):
        doc = json.loads(engine.export(who))
        assert doc["standing_wishes"], f"export of {who.id} lists no standing wish"


def test_a_process_that_believed_a_link_learns_it_was_forgotten(tmp_path):
    url = f"sqlite:///{tmp_path / 'db'}"
    clock = FixedClock(START)
    one, two = make_engine(url, clock), make_engine(url, clock)
    link(one, ALICE, ALICE_TG)
    two.submit(ALICE_TG, "coffee 10:00")  # process two learns: alice2 -> alice
    two.cancel(ALICE_TG, "coffee")
    one.forget(ALICE_TG.id)  # process one forgets both accounts
    # alice2 talks again (a new person now): the other process still files it as Alice's
    two.submit(ALICE_TG, "lunch 12:00")
    persons = {r.person for r, _ in two.storage.snapshot()}
    assert ALICE.id not in persons, "forgotten id written again by the other process"


def test_a_process_that_believed_a_link_learns_it_was_undone(tmp_path):
    url = f"sqlite:///{tmp_path / 'db'}"
    clock = FixedClock(START)
    one, two = make_engine(url, clock), make_engine(url, clock)
    link(one, ALICE, ALICE_TG)
    two.submit(ALICE_TG, "coffee 10:00")
    two.cancel(ALICE_TG, "coffee")
    assert one.unlink(ALICE_TG).startswith("Unlinked")
    two.submit(ALICE_TG, "lunch 12:00")  # after unlink: alice2's own wish
    assert [i.activity for i in one.open_requests(ALICE_TG)] == ["lunch"]
    assert one.open_requests(ALICE) == []


def test_export_has_the_notifications_addressed_to_the_account():
    engine = make_engine(MEMORY, FixedClock(START))
    link(engine, ALICE, ALICE_TG)
    engine.submit(ALICE_TG, "coffee 10:00")
    engine.submit(BOB, "coffee 10:00")  # "Bob joins you" queued for text:@alice2
    doc = json.loads(engine.export(ALICE_TG))
    assert doc["undelivered_notifications"], "the account's queued notification is not exported"


def test_crossed_codes_in_two_processes_link_one_way_only(tmp_path):
    url = f"sqlite:///{tmp_path / 'db'}"
    clock = FixedClock(START)
    one, two = make_engine(url, clock), make_engine(url, clock)
    code_a, code_b = code_of(one.link(ALICE)), code_of(two.link(BOB))
    real = one.storage.transaction
    calls = []

    def interleaved():
        calls.append(1)
        if len(calls) == 2:  # process one has done its checks; process two links now
            two.link(ALICE, code_b)
        return real()

    one.storage.transaction = interleaved
    with pytest.raises(UserError, match="This account is linked already"):
        one.link(BOB, code_a)  # Alice took Bob's code meanwhile: Bob's own is refused
    one.storage.transaction = real
    a, b = one.storage.person(ALICE.id), one.storage.person(BOB.id)
    assert (a.canonical, b.canonical) == (BOB.id, None), "no link cycle"
    assert one.submit(BOB, "coffee 10:00").body.startswith("Waiting")
