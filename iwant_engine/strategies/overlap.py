"""``overlap``: join the earliest open group that fits, else form the largest group that
shares a slot of the activity's length, earliest slot first, most urgent deadlines first.

``greedy`` is the shared core of the built-in strategies: they differ only in the order in
which they consider groups and candidates, and in the smallest group they accept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..hookspecs import StrategyFactory
from ..model import Candidate, Decision, Form, Join, MatchContext, OpenGroup, Wait, Wish
from ..plugins import hookimpl


def greedy(
    wish: Wish,
    candidates: Sequence[Candidate],
    groups: Sequence[OpenGroup],
    ctx: MatchContext,
    candidate_order: Callable[[Candidate], Any] = lambda c: (c.deadline, c.request_id),
    group_order: Callable[[OpenGroup], Any] = lambda g: (g.start, g.result_id),
    min_floor: int = 2,
) -> Decision:
    """Join the first fitting group, else greedily form a group in ``candidate_order``."""
    for group in sorted(groups, key=group_order):
        size = len(group.members) + 1
        if (
            wish.fits(group.start)
            and max(wish.min_size, min_floor) <= size <= min(group.max_size, wish.max_size)
            and all(ctx.may_meet(wish.person, m.person) for m in group.members)
        ):
            return Join(group.result_id)
    minute = ctx.now.replace(second=0, microsecond=0)
    earliest, latest = max(wish.earliest, minute), wish.latest
    if latest - earliest < ctx.length:
        return Wait()
    chosen: list[int]
    cap, need, chosen, people = wish.max_size, max(wish.min_size, min_floor), [], {wish.person}
    for c in sorted(candidates, key=candidate_order):
        if c.person in people or len(chosen) + 2 > min(cap, c.max_size):
            continue
        if not all(ctx.may_meet(c.person, p) for p in people):
            continue
        lo, hi = max(earliest, c.earliest), min(latest, c.latest)
        if hi - lo >= ctx.length:
            earliest, latest, cap = lo, hi, min(cap, c.max_size)
            need = max(need, c.min_size)
            chosen.append(c.request_id)
            people.add(c.person)
    if not chosen or len(chosen) + 1 < need:
        return Wait()
    return Form(tuple(chosen), earliest)


def decide(
    wish: Wish, candidates: Sequence[Candidate], groups: Sequence[OpenGroup], ctx: MatchContext
) -> Decision:
    return greedy(wish, candidates, groups, ctx)


def factory(settings: Mapping[str, str]) -> Callable[..., Decision]:
    if settings:
        raise ValueError(f"overlap takes no settings, got: {', '.join(sorted(settings))}")
    return decide


@hookimpl
def iwant_strategies() -> dict[str, StrategyFactory]:
    return {"overlap": factory}
