"""The ``Engine`` front: what a test or a benchmark swaps on it reaches the services behind it."""

from __future__ import annotations

import dataclasses

import pytest

from iwant_engine import FixedClock, UserError

from ..support import ALICE, BOB, CAROL, at


def test_a_new_clock_reaches_every_service(engine, clock):
    later = FixedClock(at(9, day=2))
    engine.clock = later
    engine.submit(ALICE, "coffee 10:00")
    assert engine.open_requests(ALICE)[0].earliest == at(10, day=2), "read on the new day"
    later.set(at(10, 15, day=2))
    assert engine.sweep() == (1, 0), "the sweep expires it by the new clock"
    assert clock.now() == at(9), "the old clock is left alone"


def test_new_settings_reach_every_service(engine):
    engine.settings = dataclasses.replace(engine.settings, max_open_requests=1)
    engine.submit(ALICE, "coffee 10:00")
    with pytest.raises(UserError, match="open requests"):
        engine.submit(ALICE, "lunch 12:00")


def test_suggestions_follow_the_settings(engine):
    engine.submit(ALICE, "coffee 10:00")
    engine.settings = dataclasses.replace(engine.settings, suggestions=False)
    quiet = engine.submit(BOB, "coffee 10:30")
    engine.settings = dataclasses.replace(engine.settings, suggestions=True)
    offered = engine.submit(CAROL, "coffee 10:40")
    assert "Nearest" not in quiet.body and "Nearest" in offered.body


def test_a_wrapper_of_decide_sees_every_decision(engine):
    seen = []
    decide = engine.decide

    def watched(wish, candidates, groups, ctx):
        seen.append(wish.person)
        return decide(wish, candidates, groups, ctx)

    engine.decide = watched
    engine.submit(ALICE, "coffee 10:00")
    engine.submit(BOB, "coffee 10:00")
    assert seen == [BOB.id], "asked once there was a candidate"
    assert list(engine.open_requests(BOB)[0].others) == ["Alice"]
