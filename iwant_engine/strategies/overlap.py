"""``overlap``: join the earliest open group that fits, else form the largest group that
shares a slot of the activity's length, earliest slot first, most urgent deadlines first."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ..model import Candidate, Decision, Form, Join, MatchContext, OpenGroup, Wait, Wish
from ..plugins import hookimpl


def decide(
    wish: Wish, candidates: Sequence[Candidate], groups: Sequence[OpenGroup], ctx: MatchContext
) -> Decision:
    for group in groups:  # ordered by start: the earliest meeting that fits wins
        size_cap = min(group.max_size, wish.max_size)
        if wish.fits(group.start) and len(group.members) + 1 <= size_cap:
            return Join(group.result_id)
    # Greedy: most urgent deadline first; keep a candidate if a common slot still exists.
    earliest = max(wish.earliest, ctx.now.replace(second=0, microsecond=0))
    latest = wish.latest
    if latest - earliest < ctx.length:
        return Wait()
    cap, chosen, people = wish.max_size, [], {wish.person}
    for c in sorted(candidates, key=lambda c: (c.deadline, c.request_id)):
        if c.person in people or len(chosen) + 2 > min(cap, c.max_size):
            continue
        lo, hi = max(earliest, c.earliest), min(latest, c.latest)
        if hi - lo >= ctx.length:
            earliest, latest, cap = lo, hi, min(cap, c.max_size)
            chosen.append(c.request_id)
            people.add(c.person)
    if not chosen:
        return Wait()
    return Form(tuple(chosen), earliest)


def factory(settings: Mapping[str, str]) -> Callable[..., Decision]:
    if settings:
        raise ValueError(f"overlap takes no settings, got: {', '.join(sorted(settings))}")
    return decide


@hookimpl
def iwant_strategies() -> dict[str, Callable[..., Decision]]:
    return {"overlap": factory}
