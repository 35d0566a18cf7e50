"""What every storage must do, run on a SQLite file and on PostgreSQL."""

import pytest

from iwant_engine import Person, SendFailed, UserError
from iwant_engine.model import Status

from ..support import ALICE, BOB, CAROL, DAVE, at, drain


def test_a_person_cannot_match_themselves(engine, clock):
    engine.submit(ALICE, "coffee 10:00")
    with pytest.raises(UserError, match="You already want coffee 10:00–10:15"):
        engine.submit(ALICE, "coffee 9:30-11:00")
    assert engine.submit(ALICE, "lunch 12:00").body.startswith("Waiting")


def test_open_request_cap(engine, clock):
    for hour in (10, 11, 12, 13, 14):
        engine.submit(ALICE, f"coffee {hour}:00")
    with pytest.raises(UserError, match="already have 5 open requests"):
        engine.submit(ALICE, "coffee 16:00")
    engine.cancel(ALICE, "1")
    engine.submit(ALICE, "coffee 16:00")


def test_max_group_size_is_the_smallest_max_among_members(engine, clock):
    engine.submit(ALICE, "lunch 12:00 max 2")
    engine.submit(BOB, "lunch 11:00-14:00")
    reply = engine.submit(CAROL, "lunch 11:00-14:00")
    assert reply.body.startswith("Waiting"), "the Alice+Bob group is full"
    reply = engine.submit(DAVE, "lunch 12:00")
    assert reply.body.startswith("Matched! You meet Carol for lunch at 12:00")


def test_joiner_must_fit_the_fixed_meeting(engine, clock):
    engine.submit(ALICE, "coffee 10:00")
    engine.submit(BOB, "coffee for 2h")
    reply = engine.submit(CAROL, "coffee 10:05-11:00")
    assert reply.body.startswith("Waiting"), "10:00 is outside Carol's window"


def test_pools_keep_rooms_apart_and_config_joins_them(database_url, clock):
    from ..support import make_engine

    eng = make_engine(
        database_url, clock, pools={"slack:C1": "pool:office", "telegram:-5": "pool:office"}
    )
    try:
        slack = Person("slack:U1", "Sam")
        tele = Person("telegram:42", "Tom")
        other = Person("slack:U2", "Sue")
        eng.submit(slack, "coffee 10:00", room="C1")
        assert eng.submit(other, "coffee 10:00", room="C9").body.startswith("Waiting")
        assert eng.submit(tele, "coffee 10:00", room="-5").body.startswith("Matched!")
        assert drain(eng, "telegram") == []
        assert [r for r, _ in drain(eng, "slack")] == ["slack:U1"]
    finally:
        eng.close()


def test_cancel_forms(engine, clock):
    engine.submit(ALICE, "coffee 10:00")
    engine.submit(ALICE, "lunch 12:00")
    with pytest.raises(UserError, match="You have 2 open requests; say which"):
        engine.cancel(ALICE)
    with pytest.raises(UserError, match="There is no request 3"):
        engine.cancel(ALICE, "3")
    with pytest.raises(UserError, match="no open tennis request"):
        engine.cancel(ALICE, "tennis")
    assert engine.cancel(ALICE, "lunch").body.startswith("Cancelled: lunch 12:00–12:45")
    assert engine.cancel(ALICE, "1").body.startswith("Cancelled: coffee 10:00–10:15")
    with pytest.raises(UserError, match="no open requests to cancel"):
        engine.cancel(ALICE)


def test_cancelling_someone_elses_or_an_ended_request_changes_nothing(engine, clock):
    engine.submit(ALICE, "coffee 10:00")
    with pytest.raises(UserError, match="not yours"):
        engine.cancel(BOB, "#1")
    with pytest.raises(UserError, match="not yours"):
        engine.cancel(BOB, "#999")
    assert engine.open_requests(ALICE)[0].status == Status.PENDING
    engine.cancel(ALICE, "#1")
    with pytest.raises(UserError, match="already ended"):
        engine.cancel(ALICE, "#1")


def test_list_shows_numbers_in_the_persons_zone(engine, clock):
    engine.set_timezone(ALICE, "europe/prague")
    engine.submit(ALICE, "lunch 12:00")  # 12:00 Prague = 11:00 UTC
    engine.submit(BOB, "lunch 10:30-13:00")
    assert engine.list_text(ALICE).splitlines()[1] == (
        "1. lunch at 12:00–12:45 (Tue 1 Dec) with Bob"
    )
    assert engine.list_text(BOB).splitlines()[1] == "1. lunch at 11:00–11:45 (Tue 1 Dec) with Alice"
    with pytest.raises(UserError, match="don't know the time zone 'Mars/Base'"):
        engine.set_timezone(ALICE, "Mars/Base")


def test_platform_zone_is_the_default_and_tz_overrides_it(engine, clock):
    sam = Person("slack:U1", "Sam", timezone="America/New_York")
    reply = engine.submit(sam, "coffee 10:00")  # 10:00 New York = 15:00 UTC
    assert engine.open_requests(sam)[0].earliest == at(15, 0)
    assert "10:00–10:15" in reply.body
    engine.ignore(sam, BOB)
    engine.set_timezone(sam, "UTC")
    assert engine.storage.person(sam.id).platform_timezone == "America/New_York"
    engine.submit(sam, "lunch 12:00")
    assert engine.open_requests(sam)[0].earliest == at(12, 0)


def test_outbox_retries_with_backoff_then_gives_up(engine, clock):
    engine.submit(ALICE, "coffee 10:00")
    engine.submit(BOB, "coffee for 2h")  # a DM to Alice and a group conversation row

    def broken(item):
        raise ConnectionError("platform down")

    assert engine.deliver("text", broken).retried == 2
    assert engine.deliver("text", broken).retried == 0, "backoff: not due again at once"
    clock.advance(seconds=3)
    assert engine.deliver("text", broken).retried == 2
    sent = []
    clock.advance(seconds=10)
    assert engine.deliver("text", lambda i: sent.append(i.recipient)).delivered == 2
    assert sent[0] == "text:@alice" and sent[1].startswith("text:group:"), sent
    assert drain(engine) == [], "delivered once"
    # A row that keeps failing is given up after its last attempt, not retried forever.
    engine.submit(CAROL, "lunch 12:00")
    engine.submit(DAVE, "lunch 12:00")
    given_up = []
    for _ in range(12):
        clock.advance(minutes=11)
        given_up += engine.deliver("text", broken).undeliverable
    recipients = sorted(i.recipient for i in given_up)
    assert recipients[0] == "text:@carol" and recipients[1].startswith("text:group:")


def test_undeliverable_is_given_up_at_once_and_reported(engine, clock):
    engine.submit(ALICE, "coffee 10:00", room="general")
    engine.submit(BOB, "coffee for 2h", room="general")

    def blocked(item):
        raise SendFailed("403: the bot was blocked", permanent=True)

    report = engine.deliver("text", blocked)
    assert [(i.recipient.rstrip("0123456789"), i.origin) for i in report.undeliverable] == [
        ("text:@alice", "text:general"),
        ("text:group:", "text:general"),  # where the group formed (a big one is told there)
    ]
    clock.advance(hours=1)
    assert drain(engine) == []


def test_a_claimed_row_is_not_sent_twice_until_its_lease_ends(engine, clock):
    engine.submit(ALICE, "coffee 10:00")
    engine.submit(BOB, "coffee for 2h")
    claimed = [i.id for i in engine.storage.claim_outbox("text", clock.now())]
    assert len(claimed) == 2  # the DM to Alice and the group conversation
    assert engine.storage.claim_outbox("text", clock.now()) == []
    clock.advance(seconds=61)  # the claimer crashed: the rows come back
    assert [i.id for i in engine.storage.claim_outbox("text", clock.now())] == claimed


def test_meeting_marked_done_after_it_ends(engine, clock):
    engine.submit(ALICE, "coffee 10:00")
    engine.submit(BOB, "coffee for 2h")
    clock.set(at(10, 14))
    assert engine.sweep() == (0, 0)
    clock.set(at(10, 15))
    assert engine.sweep() == (0, 1)
    assert engine.storage.counts()["DONE"] == 2


def test_many_waiting_form_one_group_up_to_the_max(engine, clock):
    people = [Person(f"text:@p{i}", f"P{i}") for i in range(8)]
    for p in people[:6]:
        engine.submit(p, "walk 11:00-12:00 max 4", room="r")
    # Waiting requests never see each other as they arrive one by one: each new one matches.
    sizes = sorted(len(r.others) + 1 for p in people[:6] for r in engine.open_requests(p))
    assert max(sizes) <= 4
    assert sum(1 for s in sizes if s == 1) <= 1


def test_a_stored_error_is_the_type_only_unless_the_sender_made_it_safe(engine, clock, monkeypatch):
    """Any exception's message may carry a secret (a token in a URL): only its type is
    stored. A ``SendFailed``'s text is its raiser's, made safe: stored as it is."""
    engine.submit(ALICE, "coffee 10:00")
    engine.submit(BOB, "coffee for 2h")

    def leaky(item):
        raise RuntimeError("401 for token xoxb-1234-secret-value")

    errors = []
    fail = engine.storage.fail

    def recording_fail(outbox_id, now, error, retry_at, lease=None):
        errors.append(error)
        fail(outbox_id, now, error, retry_at, lease)

    monkeypatch.setattr(engine.storage, "fail", recording_fail)
    engine.deliver("text", leaky)
    assert errors == ["RuntimeError", "RuntimeError"]

    def refused(item):
        raise SendFailed("not_in_channel (the bot left the room)")

    errors.clear()
    clock.advance(seconds=3)
    engine.deliver("text", refused)
    assert errors == ["not_in_channel (the bot left the room)"] * 2


def test_a_formed_group_gets_one_group_conversation_per_platform(engine, clock):
    sam, sue = Person("slack:U1", "Sam"), Person("slack:U2", "Sue")
    engine.submit(sam, "coffee 10:00", room="C1")
    engine.submit(sue, "coffee 10:00", room="C1")
    engine.submit(Person("slack:U3", "Sid"), "coffee 10:00", room="C1")  # joins: no new group
    groups: list = []
    direct = drain(engine, "slack", groups)
    # Sam's two notes (Sue joined, Sid joined) waited together: only the newer one is sent.
    assert [to for to, _ in direct] == ["slack:U1", "slack:U2"]
    assert groups == [
        (
            ["slack:U1", "slack:U2"],
            "Your coffee group: Sam and Sue, at 10:00–10:15 UTC time (Tue 1 Dec). Say hi and "
            "agree where to meet!",
        )
    ]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_zone_set_through_another_process_counts_at_once(kind, request, tmp_path, clock):
    """Two engines on one database, as two bot processes: the second has read Alice's zone
    before (its cache says UTC); her wish is still read in the zone she set through the first."""
    from ..support import make_engine, truncate_postgres

    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'two.db'}"
    else:
        url = request.getfixturevalue("pg_database")
        truncate_postgres(url)
    first, second = make_engine(url, clock), make_engine(url, clock)
    try:
        assert second.zone_of(ALICE).key == "UTC"
        first.set_timezone(ALICE, "Europe/Prague")
        reply = second.submit(ALICE, "coffee 12:00")
        assert reply.body.startswith("Waiting for coffee company at 12:00–12:15"), reply.body
        assert second.open_requests(ALICE)[0].earliest == at(11, 0), "12:00 in Prague"
        assert second.zone_of(ALICE).key == "Europe/Prague", "and the process learned it"
    finally:
        first.close()
        second.close()


def test_the_same_platform_event_twice_stores_one_request(engine, clock):
    first = engine.submit(ALICE, "coffee 10:00", event_id="C1:1700000000.000100")
    assert first.body.startswith("Waiting for coffee company at 10:00–10:15")
    again = engine.submit(ALICE, "coffee 10:00", event_id="C1:1700000000.000100")
    assert again.body == (
        "I have that one already: coffee 10:00–10:15 (Tue 1 Dec), waiting; you'll hear by 10:00."
    )
    assert again.request_id == first.request_id
    assert len(engine.open_requests(ALICE)) == 1
    reply = engine.submit(BOB, "coffee 10:00", event_id="C1:1700000000.000200")
    assert reply.body.startswith("Matched! You meet Alice")
    again = engine.submit(ALICE, "coffee 10:00", event_id="C1:1700000000.000100")
    assert again.body.startswith("I have that one already: coffee at 10:00–10:15 (Tue 1 Dec)")
    assert again.body.endswith("with Bob.")
    assert engine.storage.counts()["MATCHED"] == 2


def test_an_answer_never_acknowledged_goes_out_as_a_direct_message_once(engine, clock):
    lost = engine.submit(ALICE, "coffee 10:00", durable_reply=True)
    sent = engine.submit(BOB, "lunch 12:00", durable_reply=True)
    engine.replied([sent.request_id])  # Bob's answer reached him; Alice's process died
    clock.advance(seconds=29)
    engine.answer_again("text")
    assert drain(engine) == [], "not before the grace period"
    clock.advance(seconds=2)
    engine.answer_again("text")
    notes = drain(engine)
    assert notes == [
        (
            "text:@alice",
            "In case my answer did not reach you: your request is coffee 10:00–10:15 "
            "(Tue 1 Dec), waiting; you'll hear by 10:00.",
        )
    ]
    clock.advance(minutes=5)
    engine.answer_again("text")
    assert drain(engine) == [], "once"
    assert lost.request_id is not None
    engine.replied([lost.request_id])  # a late acknowledgement changes nothing
    engine.answer_again("text")
    assert drain(engine) == []


def test_an_ended_request_gets_no_late_answer(engine, clock):
    engine.submit(ALICE, "coffee 9:30", durable_reply=True)
    clock.advance(minutes=40)
    engine.sweep()
    assert engine.answer_again("text") == 0
    notes = drain(engine)
    assert [body for _, body in notes] == [
        "Nobody joined you for coffee between 09:30 and 09:45 (Tue 1 Dec). Maybe next time!"
    ]


def test_a_commit_whose_acknowledgement_was_lost_is_found_by_its_event_key(
    engine, clock, monkeypatch
):
    """The server committed, the connection dropped before the client heard: the person is
    told what was saved, not "nothing was saved"."""
    from contextlib import contextmanager

    from iwant_engine import Unavailable

    real = engine.storage.transaction
    calls = []

    @contextmanager
    def lossy():
        with real() as uow:
            yield uow
        calls.append(1)
        if len(calls) == 1:
            raise Unavailable()

    monkeypatch.setattr(engine.storage, "transaction", lossy)
    note = engine.submit(ALICE, "coffee 10:00", event_id="-5:77")
    assert note.body == ("Saved: coffee 10:00–10:15 (Tue 1 Dec), waiting; you'll hear by 10:00."), (
        note.body
    )
    assert len(engine.open_requests(ALICE)) == 1
    with pytest.raises(Unavailable):  # without a key nobody can tell: nothing claimed
        calls.clear()
        engine.submit(BOB, "coffee 11:00")


def test_a_redelivered_event_of_an_ended_request_says_it_ended(engine, clock):
    engine.submit(ALICE, "coffee 10:00", event_id="e1")
    engine.cancel(ALICE, "coffee")
    again = engine.submit(ALICE, "coffee 10:00", event_id="e1")
    assert again.body == "I have that one already: coffee 10:00–10:15 (Tue 1 Dec), cancelled."
    assert again.buttons == []


def test_an_event_redelivered_after_its_time_passed_gets_the_first_answer(engine, clock):
    engine.submit(ALICE, "coffee 10:00", event_id="e2")
    clock.advance(minutes=61)  # 10:01: "coffee 10:00" read now would be in the past
    again = engine.submit(ALICE, "coffee 10:00", event_id="e2")
    assert again.body.startswith("I have that one already: coffee 10:00–10:15"), again.body


def test_a_member_taken_along_by_anothers_rematch_hears_why(engine, clock):
    engine.submit(ALICE, "coffee 10:00-10:45 min 3")
    engine.submit(BOB, "coffee 10:00-10:45")
    assert engine.submit(CAROL, "coffee 10:00").body.startswith("Matched!")
    engine.submit(DAVE, "coffee 10:30")
    drain(engine)
    engine.cancel(CAROL, "coffee")  # too few for Alice's min 3: the group is dissolved
    notes = dict(drain(engine))
    assert notes["text:@alice"].startswith("Carol dropped out. Matched! You meet"), notes
    assert notes["text:@bob"].startswith("Carol dropped out. "), notes
    assert "10:30–10:45" in notes["text:@bob"], notes
    assert notes["text:@dave"].startswith("Bob and Alice join you for coffee at 10:30"), notes


def test_of_several_waiting_notes_about_who_is_in_a_group_only_the_newest_is_sent(engine, clock):
    """A lunch rush: Bob, Carol and Dave join Alice before any note went out. Alice hears
    once, with the whole group, not three times; a note sent before a later join stays sent,
    and a note of another kind (someone dropped out) is never dropped."""
    engine.submit(ALICE, "coffee 10:00")
    engine.submit(BOB, "coffee 10:00")
    engine.submit(CAROL, "coffee 10:00")
    engine.submit(DAVE, "coffee 10:00")
    notes = drain(engine)
    assert [r for r, _ in notes] == [ALICE.id, BOB.id, CAROL.id]
    assert dict(notes)[ALICE.id] == (
        "Dave joins you for coffee at 10:00–10:15 (Tue 1 Dec). The group: Alice, Bob, Carol "
        "and Dave."
    )
    assert engine.storage.counts()["outbox_pending"] == 0
    eve = Person("text:@eve", "Eve")
    engine.cancel(BOB, "1")
    engine.submit(eve, "coffee 10:00")
    later = drain(engine)
    alice = [body for r, body in later if r == ALICE.id]
    assert len(alice) == 2 and alice[0].startswith("Bob dropped out of coffee")
    assert alice[1].startswith("Eve joins you for coffee")


def test_a_neighbourhood_holds_the_ignores_among_its_people_and_no_others(engine, clock):
    from datetime import timedelta

    from iwant_engine.model import Wish

    erin, frank = Person("text:@erin", "Erin"), Person("text:@frank", "Frank")
    engine.ignore(BOB, CAROL)  # two candidates: they wait apart, and stay apart for Alice
    engine.ignore(erin, ALICE)  # a candidate who ignores the one asking
    engine.ignore(ALICE, DAVE)  # someone with no wish here: not part of the neighbourhood
    engine.ignore(frank, BOB)  # the same
    assert engine.submit(BOB, "coffee 10:00-10:30").body.startswith("Waiting")
    assert engine.submit(CAROL, "coffee 10:00-10:30").body.startswith("Waiting")
    assert engine.submit(erin, "coffee 11:00-11:30").body.startswith("Waiting")
    wish = Wish(
        ALICE.id, engine.pool_for(ALICE, None), "coffee", at(10, 0), at(11, 30), at(11, 15),
        timedelta(minutes=15), 6,
    )  # fmt: skip
    with engine.storage.transaction() as uow:
        hood = uow.neighbourhood(wish, clock.now(), 50)
    assert sorted(c.person for c in hood.candidates) == [BOB.id, CAROL.id, erin.id]
    assert hood.apart == {frozenset((BOB.id, CAROL.id)), frozenset((erin.id, ALICE.id))}


# -- linked calendars (issue 27) ---------------------------------------------------------------


def _calendar(person: str, due, **fields):
    from iwant_engine.model import LinkedCalendar

    return LinkedCalendar(person, "ics", "sealed-bytes", "webcal://host/•••", at(9), due, **fields)


def test_a_calendar_is_saved_replaced_and_dropped_with_its_busy_blocks(engine, clock):
    storage = engine.storage
    with storage.transaction() as uow:
        uow.save_calendar(_calendar(ALICE.id, at(10)), [(at(12), at(13)), (at(8), at(9))])
    assert storage.busy(ALICE.id, at(0), at(23)) == [(at(8), at(9)), (at(12), at(13))]
    assert storage.calendar_people() == [ALICE.id]
    assert storage.busy(ALICE.id, at(9), at(12)) == [], "touching ends do not overlap"
    with storage.transaction() as uow:
        uow.save_calendar(_calendar(ALICE.id, at(11), last_ok_at=at(10)))  # blocks stay
        assert uow.calendar(ALICE.id) == _calendar(ALICE.id, at(11), last_ok_at=at(10))
    assert len(storage.busy(ALICE.id, at(0), at(23))) == 2
    with storage.transaction() as uow:
        uow.save_calendar(_calendar(ALICE.id, at(11)), [(at(15), at(16))])
    assert storage.busy(ALICE.id, at(0), at(23)) == [(at(15), at(16))]
    assert storage.person_data(ALICE.id).calendar == _calendar(ALICE.id, at(11))
    with storage.transaction() as uow:
        assert uow.drop_calendar(ALICE.id) is True
        assert uow.drop_calendar(ALICE.id) is False
    assert storage.busy(ALICE.id, at(0), at(23)) == []
    assert storage.person_data(ALICE.id).calendar is None
    assert storage.calendar_people() == []


def test_due_calendars_are_leased_to_one_caller_until_the_lease_ends(engine, clock):
    storage = engine.storage
    with storage.transaction() as uow:
        uow.save_calendar(_calendar(ALICE.id, at(10)))
        uow.save_calendar(_calendar(BOB.id, at(9, 30)))
        uow.save_calendar(_calendar(CAROL.id, at(11)))
    assert not storage.has_due_calendars(at(9, 29))
    assert storage.has_due_calendars(at(10))
    with storage.transaction() as uow:
        claimed = uow.due_calendars(at(10), 10, at(10, 5))
    assert [(c.person, c.claimed_until) for c in claimed] == [
        (BOB.id, at(10, 5)), (ALICE.id, at(10, 5)),
    ]  # fmt: skip
    assert not storage.has_due_calendars(at(10, 4))
    with storage.transaction() as uow:
        assert uow.due_calendars(at(10, 4), 10, at(10, 9)) == []
        assert [c.person for c in uow.due_calendars(at(10, 5), 1, at(10, 9))] == [BOB.id]


def test_forget_and_retention_delete_calendars(engine, clock):
    storage = engine.storage
    with storage.transaction() as uow:
        uow.save_calendar(_calendar(ALICE.id, at(10)), [(at(8), at(9))])
        uow.save_calendar(_calendar(BOB.id, at(10), failing_since=at(9)), [(at(12), at(13))])
        uow.save_calendar(_calendar(CAROL.id, at(10)), [(at(8), at(9)), (at(12), at(13))])
    with storage.transaction() as uow:
        assert uow.forget(ALICE.id, "Alice", lambda body: body)["calendars"] == 1
    assert storage.person_data(ALICE.id).calendar is None
    assert storage.busy(ALICE.id, at(0), at(23)) == []
    with storage.transaction() as uow:
        assert uow.purge(at(10), 100) == 3  # Carol's past block; Bob's calendar and its block
    assert storage.person_data(BOB.id).calendar is None
    assert storage.busy(BOB.id, at(0), at(23)) == []
    assert storage.busy(CAROL.id, at(0), at(23)) == [(at(12), at(13))]
    assert storage.person_data(CAROL.id).calendar is not None


def test_stats_count_alike_on_every_storage(engine, clock):
    """``Storage.stats``: the SQL aggregates and the memory storage's Python agree, local hours
    on both sides of a daylight-saving change included."""
    from datetime import UTC, datetime, timedelta

    from iwant_engine.model import DayTally, Tally

    erin, fay = Person("text:@erin", "Erin"), Person("text:@fay", "Fay")
    clock.set(datetime(2026, 10, 20, 9, 0, tzinfo=UTC))  # summer time in Prague (UTC+2)
    engine.submit(ALICE, "coffee 10:00", room="r1")
    clock.advance(minutes=10)
    engine.submit(BOB, "coffee 10:00", room="r1")  # Alice and Bob meet: a first-time pair
    clock.set(at(9, 0))  # 1 December, winter time (UTC+1)
    engine.submit(ALICE, "coffee 10:00", room="r1")
    clock.advance(minutes=30)
    waiting = engine.submit(BOB, "coffee 10:30", room="r1")
    near = waiting.body.splitlines()[1]
    assert near.endswith("!iwant coffee 10:00 instead of #4 meets them."), near
    engine.submit(BOB, "coffee 10:00 instead of #4", room="r1")  # a near miss taken
    engine.submit(CAROL, "lunch 12:00", room="r1")
    clock.advance(minutes=5)
    engine.submit(DAVE, "lunch 12:00", room="r1")
    engine.submit(erin, "tennis 15:00", room="r1")
    engine.submit(fay, "coffee 10:00", room="elsewhere")
    clock.set(at(13, 30))
    engine.sweep()
    group = next(r.result_id for r, _ in engine.storage.snapshot() if r.activity == "lunch")
    engine.met(CAROL, f"#{group} all")
    engine.met(DAVE, f"#{group} none")

    since = at(0) - timedelta(days=60)
    rows = engine.storage.stats(["text:r1"], since, at(23), "Europe/Prague")
    assert rows.wishes == Tally(8, 5), "Bob's replaced wish counts; Fay's room does not"
    assert rows.met == Tally(6, 4)
    assert rows.groups == 3
    assert rows.answered == Tally(1, 2)
    assert rows.reported_met == 1
    assert (rows.waits, rows.median_wait_seconds) == (3, 600), "waits of 10, 30 and 5 min"
    assert rows.suggestions == Tally(1, 1)
    assert rows.first_pairs == Tally(2, 4), "Alice and Bob met in October already"
    assert rows.hours == {
        12: Tally(2, 2),  # 20 October 10:00 UTC
        11: Tally(3, 2),  # 1 December 10:00 UTC, and Bob's 10:30 (replaced)
        13: Tally(2, 2),
        16: Tally(1, 1),
    }
    assert rows.days == {
        datetime(2026, 10, 20).date(): DayTally(2, 2, 2),
        datetime(2026, 12, 1).date(): DayTally(6, 4, 5),
    }
    assert rows.activities == {"coffee": Tally(5, 2), "lunch": Tally(2, 2), "tennis": Tally(1, 1)}
    week = engine.storage.stats(["text:r1"], at(0) - timedelta(days=7), at(23), "UTC")
    assert week.first_pairs == Tally(1, 2), "a week looks back: only Carol and Dave are new"
    assert (week.waits, week.median_wait_seconds) == (2, 300), "the lower of two middles"
    assert week.hours == {10: Tally(3, 2), 12: Tally(2, 2), 15: Tally(1, 1)}
    assert engine.storage.stats(None, since, at(23), "UTC").wishes == Tally(9, 6)
    empty = engine.storage.stats(["text:nowhere"], since, at(23), "UTC")
    assert (empty.wishes, empty.median_wait_seconds, empty.hours) == (Tally(0, 0), None, {})
