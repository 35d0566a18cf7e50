"""``overlap``: join the earliest open group that fits, else form the largest group that
shares a slot of the activity's length, earliest slot first, most urgent deadlines first.

``greedy`` is the shared core of the built-in strategies: they differ only in the order in
which they consider groups and candidates, and in the smallest group they accept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..hookspecs import StrategyFactory, hookimpl
from ..model import Candidate, Decision, Form, Join, MatchContext, OpenGroup, Wait, Wish


def greedy(
    wish: Wish,
    candidates: Sequence[Candidate],
    groups: Sequence[OpenGroup],
    ctx: MatchContext,
    candidate_order: Callable[[Candidate], Any] = lambda c: (c.deadline, c.request_id),
    group_order: Callable[[OpenGroup], Any] = lambda g: (g.start, g.result_id),
    min_floor: int = 2,
) -> Decision:
    """Join the first fitting group, else greedily form a group in ``candidate_order``.

    When the greedy group falls short of a member's ``min`` (someone who wants at least 3
    narrowed the slot so that others no longer fit), every slot is tried with the most
    demanding members left out: a ``min 3`` wish never keeps a fitting pair apart."""
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
    order = sorted(candidates, key=candidate_order)
    chosen: list[int] = []
    cap, need, people = wish.max_size, max(wish.min_size, min_floor), {wish.person}
    for c in order:
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
    if not chosen:
        return Wait()
    if len(chosen) + 1 >= need:
        return Form(tuple(chosen), earliest)
    return _any_slot(wish, order, ctx, max(wish.min_size, min_floor))


#: Partial groups tried per slot before the search gives up on that slot.
SEARCH_BUDGET = 5000


def _any_slot(wish: Wish, order: Sequence[Candidate], ctx: MatchContext, floor: int) -> Decision:
    """The earliest slot (a start where the wish or a candidate becomes free) that holds a
    valid group: members in ``order``, the first valid set a depth-first search meets,
    then grown with everyone else who fits."""
    minute = ctx.now.replace(second=0, microsecond=0)
    first = max(wish.earliest, minute)
    starts = sorted({first, *(c.earliest for c in order if first < c.earliest)})
    for start in starts:
        if not wish.fits(start):
            break
        free = [
            c
            for c in order
            if c.earliest <= start
            and start + ctx.length <= c.latest
            and c.person != wish.person
            and ctx.may_meet(wish.person, c.person)
        ]
        found = _search(wish, free, ctx, floor)
        if found:
            return Form(tuple(c.request_id for c in found), start)
    return Wait()


def _search(
    wish: Wish, free: Sequence[Candidate], ctx: MatchContext, floor: int
) -> list[Candidate] | None:
    """Members for a fixed slot: one request a person, nobody ignored, the group within
    every member's ``min`` and ``max``; None when there is no such group (or the search
    ran out of budget)."""
    budget = SEARCH_BUDGET

    def fits(c: Candidate, chosen: list[Candidate], cap: int) -> bool:
        return all(
            c.person != m.person and ctx.may_meet(c.person, m.person) for m in chosen
        ) and len(chosen) + 2 <= min(cap, c.max_size)

    def dfs(i: int, chosen: list[Candidate], cap: int, need: int) -> list[Candidate] | None:
        nonlocal budget
        budget -= 1
        if chosen and len(chosen) + 1 >= need:
            return chosen
        if budget <= 0 or len(chosen) + 1 + (len(free) - i) < need:
            return None
        for j in range(i, len(free)):
            c = free[j]
            if not fits(c, chosen, cap) or max(need, c.min_size) > min(cap, c.max_size):
                continue
            found = dfs(j + 1, [*chosen, c], min(cap, c.max_size), max(need, c.min_size))
            if found:
                return found
        return None

    found = dfs(0, [], wish.max_size, floor)
    if not found:
        return None
    cap = min([wish.max_size, *(c.max_size for c in found)])
    for c in free:  # everyone else who fits joins, as the greedy pass would take them
        if c not in found and c.min_size <= len(found) + 2 and fits(c, found, cap):
            found.append(c)
            cap = min(cap, c.max_size)
    return sorted(found, key=free.index)


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
