"""Linked calendars in the engine (issue 27): linking privately, the state, removing, the
background refresh and its failures, and what busy time does to wishes. A test provider
(``tests/calendar_provider.py``) is registered through the real ``iwant_calendars`` hook."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from iwant_engine import Engine, UserError
from iwant_engine.calendars.provider import CalendarError

from ..calendar_provider import KEY, TestCalendar, make
from ..support import ALICE, BOB, START, at, drain


@pytest.fixture
def provider() -> TestCalendar:
    return TestCalendar()


@pytest.fixture
def engine(database_url, clock, provider, monkeypatch) -> Iterator[Engine]:
    monkeypatch.setenv("IWANT_SECRET_KEY", KEY)
    eng = make(database_url, clock, provider)
    yield eng
    eng.close()


def test_linking_checks_at_once_and_says_how_many_busy_blocks_this_week(engine, provider):
    provider.feeds["alice"] = [
        (at(12), at(12, 30)),
        (at(15), at(16)),
        (at(9, day=20), at(10, day=20)),
    ]
    reply = engine.calendar(ALICE, "test://cal.test/alice")
    assert reply == (
        "Calendar linked (test): 2 busy blocks this week. iwant sees only when you are busy, "
        "never what. !iwant calendar off removes it."
    )
    address, start, end, limits = provider.reads[0]
    assert (address, start, end) == ("test://cal.test/alice", START, START + timedelta(days=14))
    assert limits == engine.settings.fetch_limits
    state = engine.calendar(ALICE)
    assert state.startswith("Your calendar: test, test://cal.test/•••, linked 09:00 (Tue 1 Dec).")


def test_the_address_is_stored_sealed_and_exported_masked(engine, provider):
    provider.feeds["alice-secret-path"] = []
    engine.calendar(ALICE, "test://cal.test/alice-secret-path")
    stored = engine.storage.person_data(ALICE.id).calendar
    assert stored is not None and "alice-secret-path" not in stored.sealed
    exported = engine.export(ALICE)
    assert "alice-secret-path" not in exported
    assert json.loads(exported)["calendar"] == {
        "provider": "test",
        "address": "test://cal.test/•••",
        "linked_at": START.isoformat(),
        "last_read_at": START.isoformat(),
        "failing_since": None,
    }


def test_in_a_room_nothing_is_stored_and_the_person_is_told_to_revoke_it(engine, provider):
    provider.feeds["alice"] = []
    with pytest.raises(
        UserError, match="this room has now seen it. Nothing was stored. Please revoke"
    ):
        engine.calendar(ALICE, "test://cal.test/alice", room="C1")
    assert provider.reads == [], "not even read"
    assert engine.storage.person_data(ALICE.id).calendar is None


def test_without_the_secret_key_linking_is_refused_in_one_line(engine, provider, monkeypatch):
    monkeypatch.delenv("IWANT_SECRET_KEY")
    provider.feeds["alice"] = []
    with pytest.raises(UserError) as err:
        engine.calendar(ALICE, "test://cal.test/alice")
    assert str(err.value) == (
        "Calendars are not set up on this bot: its admin must set IWANT_SECRET_KEY first. "
        "Nothing was stored."
    )


@pytest.mark.parametrize(
    "args, says",
    [
        ("ftp://example.com/cal", "I can't read that kind of address; give your calendar's"),
        ("test://cal.test/missing", "I could not read that calendar: the calendar was not found"),
        ("test://cal.test/a test://cal.test/b", "Give one calendar address, like !iwant"),
    ],
)  # fmt: skip
def test_a_bad_address_is_one_line_with_a_working_example(engine, args, says):
    with pytest.raises(UserError) as err:
        engine.calendar(ALICE, args)
    assert str(err.value).startswith(says)
    assert "\n" not in str(err.value)
    assert "!iwant calendar https://calendar.example.com/private-1a2b3c/basic.ics" in str(err.value)
    assert engine.storage.person_data(ALICE.id).calendar is None


def test_off_removes_the_address_and_the_busy_blocks(engine, provider):
    provider.feeds["alice"] = [(at(12), at(13))]
    engine.calendar(ALICE, "test://cal.test/alice")
    assert engine.storage.busy(ALICE.id, at(0), at(23)) == [(at(12), at(13))]
    assert (
        engine.calendar(ALICE, "off") == "Calendar removed: its address and busy times are deleted."
    )
    assert engine.storage.busy(ALICE.id, at(0), at(23)) == []
    assert engine.calendar(ALICE, "off") == "You have no calendar linked; nothing to remove."
    assert engine.calendar(ALICE).startswith("You have no calendar linked.")


def test_forget_me_deletes_the_calendar(engine, provider):
    provider.feeds["alice"] = [(at(12), at(13))]
    engine.calendar(ALICE, "test://cal.test/alice")
    counts = engine.forget(ALICE.id)
    assert counts["calendars"] == 1
    assert engine.storage.person_data(ALICE.id).calendar is None
    assert engine.storage.busy(ALICE.id, at(0), at(23)) == []


# -- matching --------------------------------------------------------------------------------


def test_a_window_loses_its_busy_part_and_the_reply_says_so(engine, provider):
    provider.feeds["alice"] = [(at(12), at(12, 30))]
    engine.calendar(ALICE, "test://cal.test/alice")
    reply = engine.submit(ALICE, "lunch 12:00-13:30").body
    assert reply.splitlines()[0] == (
        "By your calendar: free 12:30–13:30; you have something 12:00–12:30."
    )
    assert reply.splitlines()[1].startswith(
        "Waiting for lunch company any time between 12:30 and 13:30"
    )
    [(request, _)] = engine.storage.snapshot()
    assert (request.earliest, request.latest) == (at(12, 30), at(13, 30))


def test_the_earliest_free_piece_that_holds_the_activity_is_kept(engine, provider):
    # 12:00-12:20 is free but too short for a 45-minute lunch; 12:50-14:00 holds it.
    provider.feeds["alice"] = [(at(12, 20), at(12, 50))]
    engine.calendar(ALICE, "test://cal.test/alice")
    reply = engine.submit(ALICE, "lunch 12:00-14:00").body
    assert reply.startswith("By your calendar: free 12:50–14:00; you have something 12:20–12:50.")


def test_a_wish_wholly_inside_busy_time_is_refused_with_the_next_free_time(engine, provider):
    provider.feeds["alice"] = [(at(11, 30), at(13, 30))]
    engine.calendar(ALICE, "test://cal.test/alice")
    with pytest.raises(UserError) as err:
        engine.submit(ALICE, "lunch 12:00")
    assert str(err.value) == (
        "By your calendar you have something 12:00–12:45, all of that time; you are free next "
        "at 13:30: !iwant lunch 13:30."
    )
    assert engine.storage.snapshot() == []
    assert engine.submit(ALICE, "lunch 13:30").body.startswith("Waiting for lunch company at 13:30")


def test_a_refusal_read_in_the_right_zone_is_not_read_again(engine, provider, monkeypatch):
    """A process that has not met Alice yet guesses her zone, and a refusal is checked
    against her stored one; when the guess was right the refusal stands, without the wish
    being read and her busy time fetched a second time."""
    provider.feeds["alice"] = [(at(11, 30), at(13, 30))]
    engine.calendar(ALICE, "test://cal.test/alice")
    engine.identity._zones.clear()  # as a process that has not met her
    reads: list[tuple[object, ...]] = []
    busy = engine.storage.busy
    monkeypatch.setattr(engine.storage, "busy", lambda *args: reads.append(args) or busy(*args))
    with pytest.raises(UserError, match="you are free next at 13:30"):
        engine.submit(ALICE, "lunch 12:00")
    assert len(reads) == 1


def test_the_next_free_time_is_found_past_a_wholly_busy_day(engine, provider):
    """Busy from 11:30 until 15:00 the next day: the first day's look finds nothing, the
    rest of the horizon is read for the answer."""
    provider.feeds["alice"] = [(at(11, 30), at(15, day=2))]
    engine.calendar(ALICE, "test://cal.test/alice")
    with pytest.raises(UserError) as err:
        engine.submit(ALICE, "lunch 12:00")
    assert str(err.value).endswith("you are free next at 15:00: !iwant lunch tomorrow 15:00.")


def test_a_wish_with_no_time_takes_the_next_free_slot(engine, provider):
    provider.feeds["alice"] = [(at(8), at(10, 10))]
    engine.calendar(ALICE, "test://cal.test/alice")
    reply = engine.submit(ALICE, "coffee").body
    assert (
        reply.splitlines()[0]
        == "By your calendar: free 10:10–11:10; you have something 09:00–10:00."
    )
    [(request, _)] = engine.storage.snapshot()
    assert (request.earliest, request.latest, request.deadline) == (
        at(10, 10),
        at(11, 10),
        at(10, 55),
    )


def test_busy_time_trims_a_two_person_match_and_the_other_sees_only_the_time(engine, provider):
    provider.feeds["alice"] = [(at(12), at(12, 30))]
    engine.calendar(ALICE, "test://cal.test/alice")
    engine.submit(ALICE, "lunch 12:00-13:30")
    reply = engine.submit(BOB, "lunch 11:30-14:00").body
    assert reply == "Matched! You meet Alice for lunch at 12:30–13:15 (Tue 1 Dec)."
    [(alice, note)] = drain(engine)
    assert alice == ALICE.id and "12:30–13:15" in note and "calendar" not in note


def test_a_standing_day_whose_time_is_busy_is_skipped_with_a_note(engine, provider, clock):
    clock.set(at(20))
    provider.feeds["alice"] = [(at(11, day=2), at(14, day=2)), (at(11, day=3), at(12, 30, day=3))]
    engine.calendar(ALICE, "test://cal.test/alice")
    reply = engine.submit(ALICE, "lunch 12:00 every day").body
    assert reply.splitlines()[-1] == (
        "Wed 2 Dec: By your calendar you have something 12:00–12:45, all of that time; you are "
        "free next at 14:00: !iwant lunch tomorrow 14:00."
    ), "the first day, made at once, is skipped"
    clock.set(at(12, day=2))  # Thursday's wish is made now, 12 hours ahead
    engine.sweep()
    [(who, note)] = drain(engine)
    assert who == ALICE.id and note == (
        "I did not make your standing lunch wish for Thu 3 Dec: By your calendar you have "
        "something 12:00–12:30, all of that time; you are free next at 12:30: "
        "!iwant lunch tomorrow 12:30."
    )
    assert [r for r, _ in engine.storage.snapshot()] == [], "no wish for a busy day"
    clock.set(at(12, day=3))  # Friday: free, made as usual
    engine.sweep()
    [(request, _)] = engine.storage.snapshot()
    assert request.earliest == at(12, day=4)


# -- the background refresh ------------------------------------------------------------------


def test_a_refresh_replaces_the_busy_blocks_when_due(engine, provider, clock):
    provider.feeds["alice"] = [(at(12), at(13))]
    engine.calendar(ALICE, "test://cal.test/alice")
    assert engine.refresh_calendars() == 0, "not due yet"
    provider.feeds["alice"] = [(at(15), at(16))]
    clock.set(at(9, 15))
    assert engine.refresh_calendars() == 1
    assert engine.storage.busy(ALICE.id, at(0), at(23)) == [(at(15), at(16))]
    assert engine.refresh_calendars() == 0, "the next one is 15 minutes later"


def test_a_failing_feed_keeps_its_last_good_copy_then_none_and_tells_once(engine, provider, clock):
    provider.feeds["alice"] = [(at(12, day=2), at(13, day=2))]
    engine.calendar(ALICE, "test://cal.test/alice")
    provider.feeds["alice"] = CalendarError("the calendar was not found (404)")
    clock.set(at(9, 15))
    assert engine.refresh_calendars() == 1
    assert engine.storage.busy(ALICE.id, at(0, day=2), at(23, day=2)) != [], "last good copy"
    assert "Failing since 09:15 (Tue 1 Dec); its last good copy is still used." in engine.calendar(
        ALICE
    )
    assert drain(engine) == []
    clock.set(at(9, 15, day=2))  # a day of failures
    assert engine.refresh_calendars() == 1
    assert engine.storage.busy(ALICE.id, at(0, day=2), at(23, day=2)) == [], "then none"
    [(who, note)] = drain(engine)
    assert who == ALICE.id and note.startswith(
        "I have not been able to read your calendar (test, test://cal.test/•••) since 09:15 "
        "(Tue 1 Dec), so I no longer use its busy times."
    )
    clock.set(at(9, 30, day=2))
    assert engine.refresh_calendars() == 1
    assert drain(engine) == [], "told once"
    provider.feeds["alice"] = [(at(15, day=2), at(16, day=2))]
    clock.set(at(9, 45, day=2))
    engine.refresh_calendars()
    assert engine.storage.busy(ALICE.id, at(0, day=2), at(23, day=2)) == [
        (at(15, day=2), at(16, day=2))
    ]
    assert "Failing" not in engine.calendar(ALICE)


def test_a_refresh_is_observed_ok_or_failed(engine, provider, clock):
    seen: list[str] = []

    class Watch:
        from iwant_engine import hookimpl

        @hookimpl
        def iwant_observe(self, event: str) -> None:
            seen.append(event)

    engine.pm.register(Watch())
    provider.feeds["alice"] = []
    provider.feeds["bob"] = []
    engine.calendar(ALICE, "test://cal.test/alice")
    engine.calendar(BOB, "test://cal.test/bob")
    provider.feeds["bob"] = CalendarError("timed out")
    clock.set(at(9, 15))
    engine.refresh_calendars()
    assert sorted(seen) == ["calendar_failed", "calendar_ok"]


def test_a_provider_that_raises_anything_never_stops_the_refresh(engine, provider, clock, caplog):
    provider.feeds["alice-secret"] = []
    engine.calendar(ALICE, "test://cal.test/alice-secret")

    def broken(*args: object) -> list:
        raise RuntimeError("boom at test://cal.test/alice-secret")

    provider.busy = broken  # type: ignore[method-assign]
    clock.set(at(9, 15))
    assert engine.refresh_calendars() == 1
    assert "alice-secret" not in caplog.text
    assert "Failing since 09:15" in engine.calendar(ALICE)


def test_a_claimed_calendar_is_not_read_by_another_refresh_until_its_lease_ends(
    engine, provider, clock
):
    provider.feeds["alice"] = []
    engine.calendar(ALICE, "test://cal.test/alice")
    clock.set(at(9, 15))
    with engine.storage.transaction() as uow:
        [claimed] = uow.due_calendars(at(9, 15), 10, at(9, 16))
    assert claimed.claimed_until == at(9, 16)
    assert engine.refresh_calendars() == 0, "leased to another process"
    clock.set(at(9, 16))
    assert engine.refresh_calendars() == 1, "the lease ran out"


def test_a_calendar_linked_in_another_process_counts_within_a_minute(
    sql_database_url, provider, clock, monkeypatch
):
    monkeypatch.setenv("IWANT_SECRET_KEY", KEY)
    one, other = make(sql_database_url, clock, provider), make(sql_database_url, clock, provider)
    try:
        other.submit(BOB, "coffee 9:00")  # it has read who has a calendar: nobody
        provider.feeds["bob"] = [(at(10), at(11))]
        one.calendar(BOB, "test://cal.test/bob")
        assert other.submit(BOB, "lunch 10:00-12:00").body.startswith("Waiting"), "not yet"
        other.cancel(BOB, "lunch")
        later = time.monotonic() + 61
        monkeypatch.setattr("iwant_engine.invites.time.monotonic", lambda: later)
        assert other.submit(BOB, "lunch 10:00-12:00").body.startswith(
            "By your calendar: free 11:00–12:00"
        )
    finally:
        one.close()
        other.close()


def test_on_postgresql_two_processes_claim_different_calendars_without_waiting(
    pg_database, provider, clock, monkeypatch
):
    import threading

    from ..support import truncate_postgres

    truncate_postgres(pg_database)
    monkeypatch.setenv("IWANT_SECRET_KEY", KEY)
    one, other = make(pg_database, clock, provider), make(pg_database, clock, provider)
    try:
        for who in (ALICE, BOB):
            provider.feeds[who.name.lower()] = []
            one.calendar(who, f"test://cal.test/{who.name.lower()}")
        clock.set(at(9, 15))
        got: list[str] = []
        with one.storage.transaction() as uow:
            first = uow.due_calendars(at(9, 15), 1, at(9, 20))  # held, not committed yet
            worker = threading.Thread(
                target=lambda: got.extend(c.person for c in _claim(other, at(9, 15)))
            )
            worker.start()
            worker.join(timeout=20)
            assert not worker.is_alive(), "the second claim skipped the locked row"
        assert [c.person for c in first] + got == [ALICE.id, BOB.id]
    finally:
        one.close()
        other.close()


def _claim(engine: Engine, now):
    with engine.storage.transaction() as uow:
        return uow.due_calendars(now, 10, now + timedelta(minutes=5))
