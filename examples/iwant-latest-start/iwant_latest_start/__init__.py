"""``latest-start``: pair people, meeting as late as their windows allow (for night owls).

Settings (``[strategy:latest-start]`` in plugins.cfg): ``pairs_only = yes|no`` (default yes):
groups of exactly two, the way coffee-roulette bots pair people.
"""

from collections.abc import Mapping, Sequence

from iwant_engine import hookimpl
from iwant_engine.model import Candidate, Decision, Form, Join, MatchContext, OpenGroup, Wait, Wish


def decide(
    wish: Wish,
    candidates: Sequence[Candidate],
    groups: Sequence[OpenGroup],
    ctx: MatchContext,
    pairs_only: bool = True,
) -> Decision:
    if not pairs_only:
        for group in sorted(groups, key=lambda g: (-g.start.timestamp(), g.result_id)):
            fits = wish.fits(group.start) and len(group.members) < min(
                group.max_size, wish.max_size
            )
            if fits and all(ctx.may_meet(wish.person, m.person) for m in group.members):
                return Join(group.result_id)
    minute = ctx.now.replace(second=0, microsecond=0)
    best = None
    for c in candidates:
        if c.person == wish.person or not ctx.may_meet(wish.person, c.person):
            continue
        if max(wish.min_size, c.min_size) > 2:
            continue  # a pair can't satisfy someone who wants three or more
        lo = max(wish.earliest, c.earliest, minute)
        start = min(wish.latest, c.latest) - ctx.length
        if start >= lo and (best is None or (start, -c.request_id) > best[0]):
            best = ((start, -c.request_id), c.request_id)
    if best is None:
        return Wait()
    return Form((best[1],), best[0][0])


def factory(settings: Mapping[str, str]):
    unknown = set(settings) - {"pairs_only"}
    if unknown:
        raise ValueError(f"latest-start has no setting {', '.join(sorted(unknown))}")
    value = settings.get("pairs_only", "yes").lower()
    if value not in ("yes", "no"):
        raise ValueError(f"pairs_only = {value!r}: use yes or no")

    def chosen(wish, candidates, groups, ctx):
        return decide(wish, candidates, groups, ctx, pairs_only=value == "yes")

    chosen.max_group_size = 2  # it forms pairs (groups grow by joins): the kit checks pairs
    return chosen


@hookimpl
def iwant_strategies():
    return {"latest-start": factory}
