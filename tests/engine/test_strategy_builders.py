"""The kit's helpers for hand-written strategy tests: builders of what decide is handed,
and replaying a scripted scenario (or a failure the kit printed) through a real engine."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from iwant_engine import hookimpl
from iwant_engine.model import Form, Join, Status, Wait
from iwant_engine.strategies.overlap import decide as overlap
from iwant_engine.testing import (
    START,
    at,
    candidate,
    check_strategy,
    kit_engine,
    match_context,
    open_group,
    person,
    play,
    replay,
    run_stream,
    seeded_steps,
    transcript_line,
    wish,
)

from .test_strategy_kit import Broken, Greedy, GreedyWithoutRetry, ignores_ignore_lists


class Recording:
    """``overlap``, under the name ``recording``, keeping every call's arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    @hookimpl
    def iwant_strategies(self):
        def decide(wish, candidates, groups, ctx):
            # The match history is read while deciding (it is read lazily, in the transaction).
            call = (wish, list(candidates), list(groups), replace(ctx, last_met=dict(ctx.last_met)))
            if not self.calls or self.calls[-1] != call:  # a strict engine asks again
                self.calls.append(call)
            return overlap(wish, candidates, groups, ctx)

        return {"recording": lambda settings: decide}


def test_the_builders_make_what_a_real_engine_hands_to_decide():
    recording = Recording()
    with kit_engine("recording", plugins=[recording]) as (engine, clock):
        engine.submit(person("bob"), "coffee 10:30-11:30 max 4")  # nothing offered: not asked
        clock.advance(minutes=5)
        engine.submit(person("erin"), "coffee 10:00-11:00", "r1")  # another pool: not asked
        engine.submit(person("alice"), "coffee 10:00-11:00 min 3 max 4")  # waits: min 3
        engine.submit(person("carol"), "coffee 10:00-10:45 by 10:20")  # forms a group of 3
        clock.advance(minutes=10)
        engine.submit(person("dave"), "coffee 10:15-11:15")  # joins it

    assert [call[0] for call in recording.calls] == [
        wish("alice", "coffee", "10:00-11:00", min=3, max=4),
        wish("carol", "coffee", "10:00-10:45", by="10:20"),
        wish("dave", "coffee", "10:15-11:15"),
    ]
    bob = candidate("bob", "10:30-11:30", id=1, max=4)
    alice = candidate("alice", "10:00-11:00", id=3, min=3, max=4, created="09:05")
    carol = candidate("carol", "10:00-10:45", id=4, by="10:20", created="09:05")
    offered = [(candidates, groups) for _, candidates, groups, _ in recording.calls]
    assert offered == [
        ([bob], []),
        ([alice, bob], []),  # by window end
        ([], [open_group("10:30", [bob, alice, carol], id=1)]),  # bob's result became theirs
    ]
    assert [call[3] for call in recording.calls] == [
        match_context(now="09:05"),
        match_context(now="09:05"),
        match_context(now="09:15"),
    ]


def test_overlap_fed_by_builders_forms_the_largest_group_at_the_earliest_common_minute():
    alice = wish("alice", "coffee", "10:00-11:00", max=3)
    bob = candidate("bob", "10:30-11:30", id=1)
    carol = candidate("carol", "10:00-10:50", id=2, by="10:10")  # the most urgent: first
    dave = candidate("dave", "10:00-11:00", id=3)
    decision = overlap(alice, [bob, carol, dave], [], match_context(now="09:00"))
    # The most urgent deadline first (carol), then dave; max 3 leaves bob out.
    assert decision == Form((2, 3), at("10:00"))


def test_overlap_fed_by_builders_keeps_people_who_ignore_each_other_apart():
    alice = wish("alice", "coffee", "10:00-11:00")
    bob = candidate("bob", "10:00-11:00", id=1)
    carol = candidate("carol", "10:00-11:00", id=2)
    ctx = match_context(now="09:00", apart=[("bob", "carol")])
    assert overlap(alice, [bob, carol], [], ctx) == Form((1,), at("10:00"))


def test_overlap_fed_by_builders_joins_a_group_only_within_every_max_and_min():
    bob = candidate("bob", "10:00-11:00", id=1)
    carol = candidate("carol", "10:00-11:00", id=2)
    group = open_group("10:30", [bob, carol], id=7)
    ctx = match_context(now="09:40")
    assert overlap(wish("alice", "coffee", "10:15-11:00"), [], [group], ctx) == Join(7)
    assert overlap(wish("alice", "coffee", "10:15-11:00", max=2), [], [group], ctx) == Wait()
    full = open_group("10:30", [bob, carol], id=7, max=2)
    assert overlap(wish("alice", "coffee", "10:15-11:00"), [], [full], ctx) == Wait()
    four = wish("alice", "coffee", "10:15-11:00", min=4)
    assert overlap(four, [], [group], ctx) == Wait()


def test_builder_defaults_and_time_forms():
    one_slot = wish("alice", "lunch", "12:00")
    assert (one_slot.earliest, one_slot.latest) == (at("12:00"), at("12:45"))
    assert one_slot.deadline == at("12:00") and one_slot.max_size == 8
    assert one_slot.pool == "kit:dm" and one_slot.person == "kit:@alice"
    late = wish("alice", "coffee", "23:30-00:30")
    assert late.latest == datetime(2026, 12, 2, 0, 30, tzinfo=UTC)
    other_day = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    assert wish("slack:U1", "coffee", (other_day, other_day.replace(hour=9))).earliest == other_day
    assert person("slack:U1").id == "slack:U1"
    ctx = match_context(activity="lunch", last_met={"bob": other_day}, settings={"a": "1"})
    assert ctx.length == one_slot.length and ctx.last_met == {"kit:@bob": other_day}
    with pytest.raises(ValueError, match="HH:MM"):
        at("25:00")
    with pytest.raises(ValueError, match="two or more"):
        open_group("10:00", [candidate("bob", id=1)], id=1)


def test_a_scripted_scenario_replays_through_a_real_engine():
    # DESIGN.md's worked example, as chat lines.
    outcome = replay(
        "overlap",
        """
        09:00 alice: coffee 10:00 by 9:30
        09:20 bob: coffee for 1h
        09:45 carol: coffee 9:50-10:30
        09:46 bob: cancel
        """,
    )
    assert outcome.groups == ["10:00 coffee: alice, carol"]
    assert outcome.replies[1] == "Matched! You meet alice for coffee at 10:00–10:15 (Tue 1 Dec)."
    assert outcome.replies[2] == "You join alice and bob for coffee at 10:00–10:15 (Tue 1 Dec)."
    assert outcome.told[0] == ("alice", "bob joins you for coffee at 10:00–10:15 (Tue 1 Dec).")
    assert [who for who, text in outcome.told if "bob dropped out" in text] == ["alice", "carol"]


def test_a_script_line_moves_the_clock_and_the_sweep_runs():
    outcome = replay(
        "overlap",
        [
            "09:00 alice in r1: coffee 10:00 by 9:30",
            "09:31 bob in r1: coffee 10:00",  # alice's deadline passed at 09:30
            "09:31 carol: coffee 10:00",  # another pool: not with bob
            "09:31 (60 minutes pass)",
        ],
    )
    assert outcome.meetings == ()
    assert outcome.told[0][0] == "alice" and outcome.told[0][1].startswith("Nobody joined you")
    assert outcome.replies[3] is None


def test_meetings_in_a_replay_are_real_groups_with_their_status():
    outcome = replay(
        "overlap",
        "09:00 alice: coffee 09:30-10:00\n09:01 bob: coffee 09:30-10:00\n09:50 P1: coffee",
    )
    (meeting,) = outcome.meetings
    assert (meeting.start, meeting.end) == (at("09:30"), at("09:45"))
    assert meeting.people == ("alice", "bob") and meeting.status == Status.DONE


def test_a_script_line_that_is_not_one_says_what_a_line_is():
    with pytest.raises(ValueError, match="'HH:MM name: what they said'"):
        replay("overlap", "alice wants coffee")


def test_a_replayed_kit_stream_leaves_exactly_the_data_the_kit_run_left():
    steps = seeded_steps(3)
    lines, now = [], START
    for step in steps:  # only time passing moves the kit's clock
        lines.append(transcript_line(step, now))
        now += timedelta(minutes=step[1]) if step[0] == "wait" else timedelta()
    with kit_engine("overlap") as (engine, clock):
        run_stream(engine, clock, steps, liveness=True)
        expected = engine.storage.snapshot()
    assert any(" in r1: " in line for line in lines) and any("pass)" in line for line in lines)
    with kit_engine("overlap") as (engine, clock):
        play(engine, clock, lines)
        assert engine.storage.snapshot() == expected


@pytest.mark.parametrize(
    ("plugin", "name", "liveness", "shrink"),
    [
        (Greedy(), "greedy", False, True),  # a stream hypothesis shrank
        (Broken(ignores_ignore_lists), "broken", False, False),  # with ignore lines
        (GreedyWithoutRetry(), "greedy-without-retry", True, False),  # liveness, seeded
    ],
)
def test_the_steps_of_a_kit_failure_replay_to_the_same_failure(plugin, name, liveness, shrink):
    with pytest.raises(AssertionError) as caught:
        check_strategy(
            name, plugins=[plugin], liveness=liveness, max_examples=60, seeds=6, shrink=shrink
        )
    failure, _, steps = str(caught.value).partition("\n")
    transcript = steps.split(":\n", 1)[1]  # below "after these steps (... last):"
    with pytest.raises(type(caught.value)) as again:
        replay(name, transcript, plugins=[plugin], liveness=liveness)
    assert str(again.value).partition("\n")[0] == failure
    assert str(again.value).endswith(transcript)
