"""``fresh-faces``: like ``overlap``, but people you have met least recently come first.

From the match history (``ctx.last_met``, which leaves out groups reported as not met): people
never met before are preferred, then those met longest ago; among equals the most urgent
deadline wins. An open group is ranked
by the most recent meeting with any of its members.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from ..hookspecs import StrategyFactory, hookimpl
from ..model import Candidate, Decision, MatchContext, OpenGroup, Wish
from .overlap import greedy

NEVER = datetime.min.replace(tzinfo=UTC)


def decide(
    wish: Wish, candidates: Sequence[Candidate], groups: Sequence[OpenGroup], ctx: MatchContext
) -> Decision:
    met = ctx.last_met
    return greedy(
        wish,
        candidates,
        groups,
        ctx,
        candidate_order=lambda c: (met.get(c.person, NEVER), c.deadline, c.request_id),
        group_order=lambda g: (
            max((met.get(m.person, NEVER) for m in g.members), default=NEVER),
            g.start,
            g.result_id,
        ),
    )


def factory(settings: Mapping[str, str]) -> Callable[..., Decision]:
    if settings:
        raise ValueError(f"fresh-faces takes no settings, got: {', '.join(sorted(settings))}")
    return decide


@hookimpl
def iwant_strategies() -> dict[str, StrategyFactory]:
    return {"fresh-faces": factory}
