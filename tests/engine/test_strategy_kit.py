"""Our strategies pass the conformance kit, and the kit catches broken ones."""

import itertools
import random
import re
from dataclasses import replace
from datetime import timedelta

import pytest

from iwant_engine import hookimpl
from iwant_engine.errors import StrategyError
from iwant_engine.model import Form, Join, Wait
from iwant_engine.strategies.overlap import decide as overlap_decide
from iwant_engine.strategies.overlap import greedy
from iwant_engine.testing import (
    Coverage,
    candidate,
    check_strategy,
    match_context,
    replay,
    tie,
    wish,
)


@pytest.mark.parametrize(
    ("name", "settings"), [("overlap", {}), ("fresh-faces", {}), ("quorum", {"min_size": "3"})]
)
def test_builtin_strategies_keep_every_invariant_and_leave_no_fitting_group(name, settings):
    check_strategy(name, settings=settings, max_examples=30, seeds=6)


class Greedy:
    """Groups everyone offered, whatever their max: breaks "no group above its max"."""

    @hookimpl
    def iwant_strategies(self):
        def decide(wish, candidates, groups, ctx):
            if not candidates:
                return Wait()
            start = max([wish.earliest, *(c.earliest for c in candidates)])
            return Form(tuple(c.request_id for c in candidates), start)

        return {"greedy": lambda settings: decide}


class Moody:
    """Decides differently each time it is asked: breaks determinism."""

    @hookimpl
    def iwant_strategies(self):
        flips = itertools.cycle([True, False])

        def decide(wish, candidates, groups, ctx):
            return overlap_decide(wish, candidates, groups, ctx) if next(flips) else Wait()

        return {"moody": lambda settings: decide}


class Lazy:
    """Never matches anyone: keeps the safety invariants, fails liveness."""

    @hookimpl
    def iwant_strategies(self):
        return {"lazy": lambda settings: lambda *args: Wait()}


@pytest.mark.parametrize(
    ("plugin", "name", "liveness", "says", "shrink"),
    [
        (Greedy(), "greedy", False, "strategy 'greedy'", True),
        (Moody(), "moody", False, "different decision when asked again", False),
        (Lazy(), "lazy", True, "fit each other .* but all wait", False),
    ],
)
def test_the_kit_reports_a_broken_strategy(plugin, name, liveness, says, shrink):
    with pytest.raises(AssertionError, match=says):
        check_strategy(
            name, plugins=[plugin], liveness=liveness, max_examples=30, seeds=6, shrink=shrink
        )


def test_a_lazy_run_without_liveness_is_safe_but_exercises_too_little_to_pass():
    with pytest.raises(AssertionError, match="exercised too little to mean anything"):
        check_strategy("lazy", plugins=[Lazy()], liveness=False, max_examples=10, seeds=2)


def test_the_kit_counts_what_it_exercised():
    coverage = check_strategy("overlap", max_examples=20, seeds=4)
    assert coverage.forms[3] >= 1 and coverage.joins >= 1 and coverage.rematches >= 1
    assert "groups formed: " in str(coverage)


class GreedyWithoutRetry:
    """The greedy pass alone, as it was: a ``min 3`` wish narrows the slot, the pair after it
    no longer fits it, and everyone waits."""

    @hookimpl
    def iwant_strategies(self):
        def decide(wish, candidates, groups, ctx):
            earliest, latest = max(wish.earliest, ctx.now), wish.latest
            chosen, need, people, cap = [], wish.min_size, {wish.person}, wish.max_size
            for c in sorted(candidates, key=lambda c: (c.deadline, c.request_id)):
                lo, hi = max(earliest, c.earliest), min(latest, c.latest)
                if c.person in people or hi - lo < ctx.length:
                    continue
                if not all(ctx.may_meet(c.person, p) for p in people):
                    continue
                if len(chosen) + 2 > min(cap, c.max_size):
                    continue
                earliest, latest, need = lo, hi, max(need, c.min_size)
                cap = min(cap, c.max_size)
                chosen.append(c.request_id)
                people.add(c.person)
            if not chosen or len(chosen) + 1 < need:
                return Wait()
            return Form(tuple(chosen), earliest.replace(second=0, microsecond=0))

        return {"greedy-without-retry": lambda settings: decide}


def test_the_kit_finds_the_min_3_wish_that_keeps_a_pair_apart_by_itself():
    with pytest.raises(AssertionError, match="fit each other .* but all wait") as caught:
        check_strategy(
            "greedy-without-retry",
            plugins=[GreedyWithoutRetry()],
            max_examples=60,
            seeds=6,
            shrink=False,
        )
    # An author can replay it: the steps as a person would have typed them.
    text = str(caught.value)
    assert "after these steps" in text
    assert re.search(r"\n  \d\d:\d\d P\d( in r1)?: coffee \d\d:\d\d-\d\d:\d\d", text), text


def _overlap(wish, candidates, groups, ctx):
    return overlap_decide(wish, candidates, groups, ctx)


def early_start(wish, candidates, groups, ctx):
    """A group of three or more meets a minute before one member's window opens."""
    decision = _overlap(wish, candidates, groups, ctx)
    if isinstance(decision, Form) and len(decision.request_ids) >= 2:
        return Form(decision.request_ids, decision.start - timedelta(minutes=1))
    return decision


def join_past_own_max(wish, candidates, groups, ctx):
    """Joins an offered group even when that makes it larger than the joiner's own max."""
    for g in groups:
        if wish.fits(g.start) and len(g.members) + 1 <= g.max_size:
            return Join(g.result_id)
    return _overlap(wish, candidates, groups, ctx)


def pair_despite_min(wish, candidates, groups, ctx):
    """Pairs people although one of them asked for at least three."""
    for c in candidates:
        start = max(wish.earliest, c.earliest, ctx.now.replace(second=0, microsecond=0))
        fits = wish.fits(start) and start + ctx.length <= c.latest
        if fits and c.person != wish.person and ctx.may_meet(wish.person, c.person):
            return Form((c.request_id,), start)
    return Wait()


def random_choice(wish, candidates, groups, ctx):
    """Picks at random among candidates that fit: the same inputs, another decision."""
    fitting = []
    for c in candidates:
        start = max(wish.earliest, c.earliest, ctx.now.replace(second=0, microsecond=0))
        if (
            wish.fits(start)
            and start + ctx.length <= c.latest
            and ctx.may_meet(wish.person, c.person)
        ) and max(wish.min_size, c.min_size) <= 2:
            fitting.append((c.request_id, start))
    if len(fitting) < 2:
        return _overlap(wish, candidates, groups, ctx)
    chosen, start = random.choice(fitting)
    return Form((chosen,), start)


def everyone_offered(wish, candidates, groups, ctx):
    """Forms a group of every candidate that fits, whatever their max."""
    start = max([wish.earliest, ctx.now.replace(second=0, microsecond=0)])
    fit = [
        c.request_id
        for c in candidates
        if c.earliest <= start and start + ctx.length <= c.latest and c.person != wish.person
    ]
    return Form(tuple(fit), start) if fit and wish.fits(start) else Wait()


def outside_window(wish, candidates, groups, ctx):
    """Meets at the start of the new wish's window even when a partner is not free yet."""
    others = [c for c in candidates if ctx.may_meet(wish.person, c.person)]
    if not others:
        return Wait()
    start = max(wish.earliest, ctx.now.replace(second=0, microsecond=0))
    return Form((others[0].request_id,), start)


def ignores_ignore_lists(wish, candidates, groups, ctx):
    """Forms groups as overlap does, but as if nobody ignored anyone."""
    return overlap_decide(wish, candidates, groups, replace(ctx, apart=frozenset()))


class Broken:
    """Registers one broken decide function under the name ``broken``."""

    def __init__(self, decide) -> None:
        self.decide = decide

    @hookimpl
    def iwant_strategies(self):
        return {"broken": lambda settings: self.decide}


@pytest.mark.parametrize(
    "decide",
    [
        early_start,
        join_past_own_max,
        pair_despite_min,
        random_choice,
        everyone_offered,
        outside_window,
        ignores_ignore_lists,
    ],
)
def test_the_kit_catches_each_broken_strategy_with_its_defaults(decide):
    with pytest.raises(AssertionError) as caught:
        check_strategy("broken", plugins=[Broken(decide)], shrink=False)
    print(f"{decide.__name__}: {str(caught.value).splitlines()[0][:160]}")


# -- ties: a choice among alike candidates -------------------------------------------------


def _alike(c):
    """What a person asked, all of it: candidates equal in this are alike."""
    return (c.deadline, c.earliest, c.latest, c.max_size, c.min_size)


def random_among_equals(wish, candidates, groups, ctx):
    """overlap, but among alike candidates (the same window, deadline, min and max) a random
    one comes first: with ``max 2`` a pair forms with any of them, at random."""
    return greedy(wish, candidates, groups, ctx, lambda c: (*_alike(c), random.random()))


def first_handed_among_equals(wish, candidates, groups, ctx):
    """overlap without its request-id tie-break: among alike candidates, the first handed."""
    return greedy(wish, candidates, groups, ctx, _alike)


def _pairs(wish, candidates, ctx):
    """(start, candidate) of each candidate the wish can pair with, earliest start first."""
    minute = ctx.now.replace(second=0, microsecond=0)
    fit = []
    for c in candidates:
        if c.person == wish.person or not ctx.may_meet(wish.person, c.person):
            continue
        if max(wish.min_size, c.min_size) > 2:
            continue
        start = max(wish.earliest, c.earliest, minute)
        if start + ctx.length <= min(wish.latest, c.latest):
            fit.append((start, c))
    return sorted(fit, key=lambda f: (f[0], *_alike(f[1])))  # stable: ties as handed


def pair_at_random_among_equals(wish, candidates, groups, ctx):
    """Pairs with the earliest alike partner, chosen at random among the alike ones."""
    fit = _pairs(wish, candidates, ctx)
    if not fit:
        return Wait()
    best = [f for f in fit if (f[0], *_alike(f[1])) == (fit[0][0], *_alike(fit[0][1]))]
    start, chosen = random.choice(best)
    return Form((chosen.request_id,), start)


pair_at_random_among_equals.max_group_size = 2


def pair_first_handed(wish, candidates, groups, ctx):
    """Pairs with the earliest partner; among alike ones the first as handed."""
    fit = _pairs(wish, candidates, ctx)
    return Form((fit[0][1].request_id,), fit[0][0]) if fit else Wait()


pair_first_handed.max_group_size = 2

AT_RANDOM = "different decision when asked again|handed in another order"
BY_ORDER = "the same candidates handed in another order .alike ones swapped. gave a different"


@pytest.mark.parametrize(
    ("decide", "says"),
    [
        (random_among_equals, AT_RANDOM),
        (first_handed_among_equals, BY_ORDER),
        (pair_at_random_among_equals, AT_RANDOM),
        (pair_first_handed, BY_ORDER),
    ],
)
def test_the_kit_catches_a_choice_among_equals_at_random_or_by_the_order_handed(decide, says):
    with pytest.raises(AssertionError, match=says) as caught:
        check_strategy("broken", plugins=[Broken(decide)], shrink=False)
    print(f"{decide.__name__}: {str(caught.value).splitlines()[0][:200]}")


def test_a_choice_by_the_order_handed_fails_at_the_first_tie():
    """Bob and carol keep apart and wait for the same slot; dave can take one of them."""
    script = """
        09:00 bob: ignore carol
        09:00 bob in r1: coffee 10:00-11:00
        09:01 carol in r1: coffee 10:00-11:00
        09:02 dave in r1: coffee 10:00-11:00 max 2
    """
    with pytest.raises(StrategyError, match=BY_ORDER):
        replay("broken", script, plugins=[Broken(pair_first_handed)])
    # A strategy that breaks the tie on what it is handed (overlap: the request id) passes.
    assert replay("overlap", script).groups == ["10:00 coffee: bob, dave"]


def test_a_tie_is_a_choice_among_alike_candidates_the_group_cannot_all_take():
    bob, carol = candidate("bob", id=1), candidate("carol", id=2)
    ctx = match_context(now="09:00")
    assert tie(wish("alice", max=2), [bob, carol], ctx)
    assert not tie(wish("alice"), [bob, carol], ctx)  # all three can meet
    assert tie(wish("alice"), [bob, carol], match_context(apart=[("bob", "carol")]))
    assert tie(wish("alice"), [bob, carol], ctx, largest=2)  # a strategy forming pairs
    assert not tie(wish("alice", max=2), [bob, candidate("carol", "10:30-11:30", id=2)], ctx)
    assert not tie(wish("alice", max=2), [bob], ctx)
    assert not tie(wish("alice", max=2), [bob, candidate("bob", id=2)], ctx)  # one person


def test_the_builtin_strategies_meet_ties_and_the_kit_requires_them():
    coverage = check_strategy("overlap", max_examples=10, seeds=4)
    assert coverage.ties >= Coverage.MINIMUM["ties"]
    assert "ties among alike candidates" in str(coverage)
