"""The invariants every matching decision must keep, checked by the engine for every strategy.

``refusal`` is pure; the engine (``matching._match``) calls it before carrying out a
decision, and a strict engine (the strategy kit's) raises instead of logging a refusal.
"""

from __future__ import annotations

from collections.abc import Sequence

from .model import Candidate, Decision, Form, Join, MatchContext, OpenGroup, Wait, Wish


def refusal(
    decision: Decision,
    wish: Wish,
    candidates: Sequence[Candidate],
    groups: Sequence[OpenGroup],
    ctx: MatchContext,
) -> str | None:
    """Why ``decision`` breaks an invariant, or None when it is sound."""
    if isinstance(decision, Wait):
        return None
    if isinstance(decision, Join):
        group = next((g for g in groups if g.result_id == decision.result_id), None)
        if group is None:
            return "joins a group that was not offered"
        if not wish.fits(group.start) or group.end - group.start != wish.length:
            return "the group's meeting is not inside the new request's window"
        size = len(group.members) + 1
        if size > min(group.max_size, wish.max_size):
            return "the group would exceed its max size"
        if size < wish.min_size:
            return "the group would stay below the new request's min size"
        if any(not ctx.may_meet(wish.person, m.person) for m in group.members):
            return "a member ignores the new person, or is ignored by them"
        return None
    if isinstance(decision, Form):
        offered = {c.request_id: c for c in candidates}
        ids = decision.request_ids
        if not ids or len(set(ids)) != len(ids) or any(i not in offered for i in ids):
            return "forms a group with requests that were not offered"
        start = decision.start
        if start < ctx.now.replace(second=0, microsecond=0) or start.second or start.microsecond:
            return "the meeting starts in the past or not on a whole minute"
        chosen = [offered[i] for i in ids]
        if not wish.fits(start) or any(
            not (c.earliest <= start and start + wish.length <= c.latest) for c in chosen
        ):
            return "the meeting is not inside every member's window"
        if any(c.deadline <= ctx.now for c in chosen) or wish.deadline < ctx.now:
            return "a member's deadline has passed"
        if len({c.person for c in chosen} | {wish.person}) != len(chosen) + 1:
            return "a person would be in the group twice"
        size = len(chosen) + 1
        if size > min([wish.max_size, *(c.max_size for c in chosen)]):
            return "the group would exceed its max size"
        if size < max([wish.min_size, *(c.min_size for c in chosen)]):
            return "the group would stay below a member's min size"
        persons = [wish.person, *(c.person for c in chosen)]
        if any(not ctx.may_meet(a, b) for i, a in enumerate(persons) for b in persons[i + 1 :]):
            return "two members of the group ignore one another"
        return None
    return f"unknown decision type {type(decision).__name__}"


def same_decision(a: Decision, b: Decision) -> bool:
    """Whether ``a`` and ``b`` decide the same: the same group at the same time (members in
    any order: the engine stores them by request), the same group joined, or both wait."""
    if isinstance(a, Form) and isinstance(b, Form):
        return sorted(a.request_ids) == sorted(b.request_ids) and a.start == b.start
    return a == b
