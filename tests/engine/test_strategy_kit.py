"""Our strategies pass the conformance kit, and the kit catches broken ones."""

import itertools

import pytest

from iwant_engine import hookimpl
from iwant_engine.model import Form, Wait
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
        (Moody(), "moody", False, "different decision the second time", False),
        (Lazy(), "lazy", True, "fit each other .* but all wait", False),
    ],
)
def test_the_kit_reports_a_broken_strategy(plugin, name, liveness, says, shrink):
    with pytest.raises(AssertionError, match=says):
        check_strategy(
            name, plugins=[plugin], liveness=liveness, max_examples=30, seeds=6, shrink=shrink
        )


def test_a_lazy_strategy_is_still_safe():
    check_strategy("lazy", plugins=[Lazy()], liveness=False, max_examples=10, seeds=2)


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
    with pytest.raises(AssertionError, match="fit each other .* but all wait"):
        check_strategy(
            "greedy-without-retry",
            plugins=[GreedyWithoutRetry()],
            max_examples=60,
            seeds=6,
            shrink=False,
        )
