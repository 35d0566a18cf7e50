"""The strategies plugins.cfg chose, each asked for the wishes of its pools and activities,
and the near misses the suggestion plugins offer for a wish that waits."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from .errors import StrategyError
from .invariants import refusal
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
        decision that breaks an invariant, or that differs when asked again, raises
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
        decision = self.strategies[name](wish, candidates, groups, ctx)
        if self.strict:
            problem = refusal(decision, wish, candidates, groups, ctx)
            # Asked again several times: a choice at random between two candidates gives the
            # same answer twice half the time, but five times in a row once in sixteen.
            again = (self.strategies[name](wish, candidates, groups, ctx) for _ in range(4))
            if problem is None and any(other != decision for other in again):
                problem = "the same inputs gave a different decision when asked again"
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
