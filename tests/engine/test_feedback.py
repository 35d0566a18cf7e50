""" "Did you meet?" (issue 26, parts 1, 2 and 6): asked once after a group's meeting, answered
with ``!iwant met``, read by the strategies, exported, forgotten and purged; every storage."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from iwant_engine import UserError
from iwant_engine.model import Outcome, PastMeeting
from iwant_engine.strategies import fresh_faces
from iwant_engine.testing import candidate, match_context, wish

from ..support import ALICE, BOB, CAROL, DAVE, at, make_engine, truncate_postgres


def questions(engine, platform: str = "text") -> dict[str, tuple[str, list[str]]]:
    """Deliver everything due; the "Did you meet?" rows by recipient: (body, button commands)."""
    asked: dict[str, tuple[str, list[str]]] = {}

    def send(item) -> None:
        if item.body.startswith("Did you meet?"):
            assert item.recipient not in asked, "one question per person and group"
            asked[item.recipient] = (item.body, [b["command"] for b in item.buttons])

    while engine.deliver(platform, send).delivered:
        pass
    return asked


def coffee_for_three(engine) -> int:
    """Alice, Bob, Carol and Dave meet at 10:00–10:15; Dave drops out. The group's number."""
    engine.submit(ALICE, "coffee 10:00")
    engine.submit(BOB, "coffee 9:30-11:00")
    engine.submit(CAROL, "coffee 9:30-11:00")
    engine.submit(DAVE, "coffee 9:30-11:00")
    engine.cancel(DAVE)
    group = engine.open_requests(ALICE)[0]
    assert group.others == ("Bob", "Carol")
    return next(r.result_id for r, _ in engine.storage.snapshot() if r.person == ALICE.id)


def test_each_member_still_in_the_group_is_asked_once_after_the_delay(engine, clock):
    group = coffee_for_three(engine)
    questions(engine)
    clock.set(at(10, 44))  # the meeting ended at 10:15; asked 30 minutes later
    engine.sweep()
    assert questions(engine) == {}
    clock.set(at(10, 45))
    engine.sweep()
    asked = questions(engine)
    assert sorted(asked) == [ALICE.id, BOB.id, CAROL.id], "Dave left the group: not asked"
    body, commands = asked[ALICE.id]
    assert body.startswith(
        f"Did you meet? coffee 10:00–10:15 (Tue 1 Dec) with Bob and Carol (group #{group})."
    )
    assert commands == [
        f"iwant met #{group} all",
        f"iwant met #{group} some",
        f"iwant met #{group} none",
        "iwant feedback off",
    ]
    clock.set(at(11, 30))
    engine.sweep()
    assert questions(engine) == {}, "at most one question per person and group"


def test_a_pair_gets_no_some_button_and_an_old_meeting_is_not_asked_about(engine, clock):
    engine.submit(ALICE, "coffee 10:00")
    engine.submit(BOB, "coffee 9:30-11:00")
    clock.set(at(10, 15, day=9))  # the bot was down for a week: the question would be stale
    engine.sweep()
    assert questions(engine) == {}
    engine.submit(ALICE, "tea 11:00")
    engine.submit(BOB, "tea 10:30-12:00")
    clock.set(at(12, 0, day=9))  # tea: 30 minutes
    engine.sweep()
    (_, commands), _ = questions(engine).values()
    assert [c.rsplit(" ", 1)[-1] for c in commands] == ["all", "none", "off"]


def test_nobody_who_switched_questions_off_is_asked(engine, clock):
    assert engine.feedback_setting(BOB) == (
        '"Did you meet?" questions are on for you (!iwant feedback on|off).'
    )
    assert engine.feedback_setting(BOB, "off").startswith("I won't ask you whether you met")
    assert engine.feedback_setting(BOB).startswith('"Did you meet?" questions are off')
    with pytest.raises(UserError, match="Say !iwant feedback off"):
        engine.feedback_setting(BOB, "maybe")
    engine.submit(BOB, "coffee 9:30-11:00")  # stored again: the setting stays
    engine.submit(ALICE, "coffee 10:00")
    clock.set(at(10, 45))
    engine.sweep()
    assert list(questions(engine)) == [ALICE.id]
    engine.feedback_setting(BOB, "on")
    engine.submit(ALICE, "tea 11:00")
    engine.submit(BOB, "tea 10:50-12:00")
    clock.set(at(12, 0))
    engine.sweep()
    assert sorted(questions(engine)) == [ALICE.id, BOB.id]


def test_answers_and_what_bad_ones_get_back(engine, clock):
    group = coffee_for_three(engine)
    clock.set(at(10, 45))
    engine.sweep()
    assert engine.met(ALICE, f"#{group} all").body == "Thanks! Glad you all met."
    assert engine.met(ALICE, f"{group} none").body.startswith("Thanks. I won't count it")
    some = engine.met(BOB, f"#{group} some")
    assert some.body.startswith("Who didn't come? Choose one")
    assert [b["command"] for b in some.buttons] == [
        f"iwant met #{group} without Alice",
        f"iwant met #{group} without Carol",
    ]
    done = engine.met(BOB, f"#{group} without @alice, CAROL")
    assert done.body == "Thanks. Noted that Alice and Carol didn't come."
    bad = {
        "": "Say which group and how it went: !iwant met #12 all",
        "#x all": "'#x' is not a group number; try !iwant met #12 all",
        f"#{group}": f"Say how it went: !iwant met #{group} all (or: none, or without NAME).",
        f"#{group} maybe": "Say how it went",
        f"#{group} all of us": "Say how it went",
        f"#{group} without": f"Say who didn't come: !iwant met #{group} without NAME.",
        f"#{group} without Zed": f"'Zed' was not in group #{group} (it had Alice, Bob); try",
        f"#{group + 1000} all": f"I didn't ask you about group #{group + 1000}",
    }
    for args, expected in bad.items():
        with pytest.raises(UserError) as err:
            engine.met(CAROL, args)
        assert str(err.value).startswith(expected), (args, str(err.value))
    with pytest.raises(UserError, match="I didn't ask you about group"):
        engine.met(DAVE, f"#{group} all")  # he left: never asked
    clock.set(at(10, 45, day=8))
    with pytest.raises(UserError, match=f"The question about group #{group} has expired"):
        engine.met(CAROL, f"#{group} all")


def test_the_history_reaches_strategies_with_its_outcomes(engine, clock):
    group = coffee_for_three(engine)
    clock.set(at(10, 45))
    engine.sweep()
    engine.met(ALICE, f"#{group} without Carol")
    seen = []
    decide = engine.decide

    def watch(w, candidates, groups, ctx):
        seen.append((dict(ctx.history), dict(ctx.last_met)))
        return decide(w, candidates, groups, ctx)

    engine.decide = watch
    engine.submit(BOB, "walk 12:00-12:30")
    engine.submit(CAROL, "walk 12:40-13:10")  # Bob and Carol do not fit; both fit Alice
    engine.submit(ALICE, "walk 12:00-13:10")
    history, last_met = seen[-1]
    assert history == {
        BOB.id: (PastMeeting(at(10), Outcome.MET),),
        CAROL.id: (PastMeeting(at(10), Outcome.NOT_MET),),
    }, "Dave left the coffee group; Carol did not come, Alice said"
    assert last_met == {BOB.id: at(10)}


def test_a_pair_that_did_not_meet_does_not_count_as_met_for_fresh_faces(database_url, clock):
    eng = make_engine(database_url, clock, strategy="fresh-faces")
    try:
        eng.submit(ALICE, "coffee 9:00-9:30")
        eng.submit(BOB, "coffee 9:00-9:30")  # Alice and Bob meet 09:00...
        clock.set(at(9, 45))
        eng.sweep()
        group = next(r.result_id for r, _ in eng.storage.snapshot() if r.person == BOB.id)
        eng.met(BOB, f"#{group} none")  # ...but they didn't
        # Bob and Carol do not fit each other; both fit Alice, both never met: the most urgent
        # deadline (Bob's) wins, as it would not had they met (see test_strategies).
        eng.submit(BOB, "coffee 9:50-10:05")
        eng.submit(CAROL, "coffee 10:15-10:30")
        reply = eng.submit(ALICE, "coffee 9:50-10:30 max 2")
        assert reply.body == "Matched! You meet Bob for coffee at 09:50–10:05 (Tue 1 Dec)."
    finally:
        eng.close()


def test_fresh_faces_and_the_kit_builders_read_outcomes():
    long_ago = at(10, day=1) - timedelta(days=7)
    alice = wish("alice", "coffee", "10:00-11:00", max=2)
    bob, carol = candidate("bob", "10:00-10:30", id=1), candidate("carol", "10:00-10:45", id=2)
    ctx = match_context(
        history={"bob": [(long_ago, "not met")], "carol": [(long_ago, Outcome.MET)]}
    )
    assert ctx.last_met == {"kit:@carol": long_ago}
    assert ctx.history["kit:@bob"] == (PastMeeting(long_ago, Outcome.NOT_MET),)
    assert fresh_faces.decide(alice, [bob, carol], [], ctx).request_ids == (1,)
    met_both = match_context(history={"bob": [(long_ago, "met")], "carol": [("08:00", "met")]})
    assert fresh_faces.decide(alice, [bob, carol], [], met_both).request_ids == (1,)
    recent_bob = match_context(history={"bob": [("08:00", "unknown")]})
    assert fresh_faces.decide(alice, [bob, carol], [], recent_bob).request_ids == (2,)


def test_answers_are_exported_forgotten_and_purged(engine, clock):
    group = coffee_for_three(engine)
    clock.set(at(10, 45))
    engine.sweep()
    engine.met(BOB, f"#{group} without Alice")
    engine.feedback_setting(CAROL, "off")
    doc = json.loads(engine.export(BOB))
    assert doc["did_you_meet_questions"] == "on"
    assert doc["did_you_meet"] == [
        {
            "group": group,
            "asked_at": at(10, 45).isoformat(),
            "expires_at": at(10, 45, day=8).isoformat(),
            "answer": "some",
            "did_not_come": ["Alice"],
            "answered_at": at(10, 45).isoformat(),
        }
    ]
    carol = json.loads(engine.export(CAROL))
    assert carol["did_you_meet_questions"] == "off"
    assert [q["answer"] for q in carol["did_you_meet"]] == [None]
    engine.forget_me(ALICE, "me")
    done = engine.forget_me(ALICE, "me confirm")
    assert "1 questions whether you met" in done.body
    assert json.loads(engine.export(BOB))["did_you_meet"][0]["did_not_come"] == []
    assert ALICE.id not in engine.export(BOB)
    clock.set(at(10, 46) + engine.settings.retention)
    engine.privacy.purge(force=True)
    assert json.loads(engine.export(BOB))["did_you_meet"] == []
    assert json.loads(engine.export(CAROL))["did_you_meet"] == []


def test_two_processes_ask_about_a_group_once(sql_database_url, clock):
    first = make_engine(sql_database_url, clock)
    second = make_engine(sql_database_url, clock)
    try:
        first.submit(ALICE, "coffee 10:00")
        first.submit(BOB, "coffee 9:30-11:00")
        clock.set(at(10, 45))
        first.sweep()  # marks the group DONE and asks
        assert second.feedback.ask() == 0
        assert sorted(questions(second)) == [ALICE.id, BOB.id]
        assert first.feedback.ask() == 0
    finally:
        first.close()
        second.close()


def test_a_claimed_group_is_skipped_by_another_process(pg_database, clock):
    """PostgreSQL only: SQLite serialises writers, so there is no second claim to skip."""
    truncate_postgres(pg_database)
    first = make_engine(pg_database, clock)
    second = make_engine(pg_database, clock)
    try:
        first.submit(ALICE, "coffee 10:00")
        first.submit(BOB, "coffee 9:30-11:00")
        clock.set(at(10, 45))
        first.requests.expire(clock.now())
        ended = clock.now() - first.settings.feedback_after
        since = ended - first.settings.feedback_expiry
        with first.storage.transaction() as uow:
            assert len(uow.to_ask(ended, since, 10)) == 1
            assert second.feedback.ask() == 0, "the group is claimed: skipped, not waited for"
        assert second.feedback.ask() == 2
        assert first.feedback.ask() == 0
    finally:
        first.close()
        second.close()
