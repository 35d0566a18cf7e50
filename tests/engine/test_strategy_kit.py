"""Our strategies pass the conformance kit, and the kit catches broken ones."""

import itertools

import pytest

from iwant_engine import hookimpl
from iwant_engine.model import Form, Wait
from iwant_engine.strategies.overlap import decide as overlap_decide
from iwant_engine.testing import check_strategy


@pytest.mark.parametrize("name", ["overlap", "fresh-faces"])
def test_builtin_strategies_keep_every_invariant_and_leave_no_fitting_pair(name):
    check_strategy(name, liveness=True, max_examples=30, seeds=6)


def test_quorum_keeps_every_invariant():
    check_strategy("quorum", settings={"min_size": "3"}, max_examples=30, seeds=6)


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
        (Lazy(), "lazy", True, "fit each other but both wait", False),
    ],
)
def test_the_kit_reports_a_broken_strategy(plugin, name, liveness, says, shrink):
    with pytest.raises(AssertionError, match=says):
        check_strategy(
            name, plugins=[plugin], liveness=liveness, max_examples=30, seeds=6, shrink=shrink
        )


def test_a_lazy_strategy_is_still_safe():
    check_strategy("lazy", plugins=[Lazy()], max_examples=10, seeds=2)
