"""``quorum``: nobody is confirmed until at least ``min_size`` people fit.

Setting ``min_size`` (default 3) is the smallest group for every request this strategy
serves; a request's own ``min N`` can raise it. Until a group that large fits, everyone
waits; at the deadline those still waiting are told it did not happen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial

from ..hookspecs import StrategyFactory, hookimpl
from ..model import Candidate, Decision, MatchContext, OpenGroup, Wish
from .overlap import greedy


def decide(
    wish: Wish,
    candidates: Sequence[Candidate],
    groups: Sequence[OpenGroup],
    ctx: MatchContext,
    *,
    min_size: int,
) -> Decision:
    return greedy(wish, candidates, groups, ctx, min_floor=min_size)


def factory(settings: Mapping[str, str]) -> Callable[..., Decision]:
    unknown = set(settings) - {"min_size"}
    if unknown:
        raise ValueError(f"quorum has no setting {', '.join(sorted(unknown))} (only min_size)")
    raw = settings.get("min_size", "3")
    if not raw.isdigit() or not 2 <= int(raw) <= 50:
        raise ValueError(f"min_size = {raw!r}: use a whole number from 2 to 50")
    chosen = partial(decide, min_size=int(raw))
    chosen.min_group_size = int(raw)  # type: ignore[attr-defined]  # stored on each request
    return chosen


@hookimpl
def iwant_strategies() -> dict[str, StrategyFactory]:
    return {"quorum": factory}
