"""The strategies plugins.cfg chose, each asked for the wishes of its pools and activities,
and the near misses the suggestion plugins offer for a wish that waits."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from .errors import StrategyError
from .invariants import refusal, same_decision
from .matching import Strategy, Suggester
from .model import Candidate, Decision, MatchContext, Nearby, OpenGroup, Suggestion, Wish
from .settings import Settings

#: What the ``iwant_suggestions`` hook gives: every plugin's suggestions.
SuggestionHook = Callable[..., Sequence[Sequence[Suggestion]]]


class Matchmaker:
    """Asks the strategy serving a wish's pool and activity for a decision."""

    def __init__(
        self,
        settings: Settings,
        strategies: Mapping[str, Strategy],
        suggestions: SuggestionHook,
        strict: bool = False,
    ) -> None:
        """``strategies``: name -> decide function, every one ``settings`` use.
        ``suggestions``: the ``iwant_suggestions`` hook. ``strict`` (for the strategy kit): a
        decision that breaks an invariant, or that differs when asked again (the same
        inputs, or alike ones in another order: see ``other_orders``), raises
        ``StrategyError`` instead of being logged."""
        self.settings = settings
        self.strategies = strategies
        self.strict = strict
        self._suggestions = suggestions
        #: What the services call for each decision: ``ask``, or a test's wrapper of it (read
        #: at each call).
        self.decide: Strategy = self.ask

    def ask(
        self,
        wish: Wish,
        candidates: Sequence[Candidate],
        groups: Sequence[OpenGroup],
        ctx: MatchContext,
    ) -> Decision:
        """Ask the strategy that serves the wish's pool and activity, with its settings."""
        name = self.settings.strategy_for(wish.pool, wish.activity)
        ctx = replace(
            ctx, length=wish.length, settings=self.settings.strategy_settings.get(name, {})
        )
        decide = self.strategies[name]
        decision = decide(wish, candidates, groups, ctx)
        if self.strict:
            problem = refusal(decision, wish, candidates, groups, ctx)
            if problem is None:
                problem = _unsteady(decide, decision, wish, candidates, groups, ctx)
            if problem:
                raise StrategyError(f"strategy {name!r}: {problem}: {decision!r}")
        return decision

    def min_group_size(self, pool: str, activity: str) -> int:
        """The smallest group the strategy serving ``pool`` and ``activity`` forms."""
        strategy = self.strategies[self.settings.strategy_for(pool, activity)]
        return int(getattr(strategy, "min_group_size", 2))

    def suggest(self, wish: Wish, nearby: Nearby, ctx: MatchContext) -> list[Suggestion]:
        """Every ``iwant_suggestions`` plugin's near misses for ``wish``, together."""
        found = self._suggestions(wish=wish, nearby=nearby, ctx=ctx)
        return [s for each in found for s in each]

    @property
    def suggester(self) -> Suggester | None:
        """``suggest``, or None when plugins.cfg turns suggestions off."""
        return self.suggest if self.settings.suggestions else None


def _unsteady(
    decide: Strategy,
    decision: Decision,
    wish: Wish,
    candidates: Sequence[Candidate],
    groups: Sequence[OpenGroup],
    ctx: MatchContext,
) -> str | None:
    """Why ``decision`` is not the only one ``decide`` gives for these inputs, or None.

    Asked four times more: a choice at random between two candidates gives the same answer
    twice half the time, but five times in a row once in sixteen. The first time with the
    same inputs; then with the candidates and groups in other orders the engine could hand
    them in (``other_orders``), where the same group at the same time, its members in any
    order, is the same decision: a choice that takes the first of several alike candidates
    as handed is caught at once."""
    again = decide(wish, candidates, groups, ctx)
    if not same_decision(again, decision):
        return f"the same inputs gave a different decision when asked again ({again!r})"
    for others, other_groups in itertools.islice(other_orders(candidates, groups), 3):
        again = decide(wish, others, other_groups, ctx)
        if not same_decision(again, decision):
            return (
                "the same candidates handed in another order (alike ones swapped) gave a "
                f"different decision ({again!r})"
            )
    return None


T = TypeVar("T")


def other_orders(
    candidates: Sequence[Candidate], groups: Sequence[OpenGroup]
) -> Iterator[tuple[list[Candidate], list[OpenGroup]]]:
    """The same candidates and groups in other orders the engine could hand them in: the
    candidates stay ordered by window end and the groups by start, as documented, but among
    equals (a run of the same window end, or of the same start) any order goes. First each
    such run reversed, then shuffled with a seeded RNG, again and again."""
    rng = random.Random(20261201)
    yield (
        _within_runs(candidates, lambda c: c.latest, reversed),
        _within_runs(groups, lambda g: g.start, reversed),
    )

    def shuffled(run: list[T]) -> list[T]:
        rng.shuffle(run)
        return run

    while True:
        yield (
            _within_runs(candidates, lambda c: c.latest, shuffled),
            _within_runs(groups, lambda g: g.start, shuffled),
        )


def _within_runs(
    items: Sequence[T], key: Callable[[T], Any], reorder: Callable[[list[T]], Any]
) -> list[T]:
    """``items`` with each run of neighbours of equal ``key`` put in ``reorder``'s order."""
    out: list[T] = []
    for _, run in itertools.groupby(items, key=key):
        out.extend(reorder(list(run)))
    return out
