"""Our strategies pass the conformance kit, and the kit catches broken ones."""

import itertools
import random
import re
from dataclasses import replace
from datetime import timedelta

import pytest

from iwant_engine import hookimpl
from iwant_engine.model import Form, Join, Wait
from iwant_engine.strategies.overlap import decide as overlap_decide
from iwant_engine.testing import check_strategy


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
            chosen, need, people = [], wish.min_size, {wish.person}
            for c in sorted(candidates, key=lambda c: (c.deadline, c.request_id)):
                lo, hi = max(earliest, c.earliest), min(latest, c.latest)
                if c.person in people or hi - lo < ctx.length:
                    continue
                if not all(ctx.may_meet(c.person, p) for p in people):
                    continue
                if len(chosen) + 2 > min([wish.max_size, c.max_size]):
                    continue
                earliest, latest, need = lo, hi, max(need, c.min_size)
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
