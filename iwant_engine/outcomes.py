"""What came of a past group for two of its members, from the answers to "Did you meet?"."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from .model import Answer, Outcome, PastMeeting, Question, SharedGroup


def pair_outcome(a: str, b: str, answers: Iterable[Question]) -> Outcome:
    """Whether ``a`` and ``b`` met: NOT_MET when either said nobody met or anyone said one of
    them did not come (a no-show is more likely than a false report of one), MET when
    someone else's answer says the group met, else UNKNOWN."""
    met = False
    for q in answers:
        if q.answer is None:
            continue
        if (q.answer is Answer.NONE and q.person in (a, b)) or {a, b} & set(q.absent):
            return Outcome.NOT_MET
        if q.answer is not Answer.NONE:
            met = True
    return Outcome.MET if met else Outcome.UNKNOWN


def history(person: str, shared: Iterable[SharedGroup]) -> dict[str, tuple[PastMeeting, ...]]:
    """The groups ``person`` shared with each other person, newest first, with outcomes."""
    found: dict[str, list[tuple[datetime, int, PastMeeting]]] = {}
    for g in shared:
        meeting = PastMeeting(g.start, pair_outcome(person, g.other, g.answers))
        found.setdefault(g.other, []).append((g.start, g.result_id, meeting))
    return {
        other: tuple(m for *_, m in sorted(rows, key=lambda r: r[:2], reverse=True))
        for other, rows in found.items()
    }


def last_met(past: Mapping[str, tuple[PastMeeting, ...]]) -> dict[str, datetime]:
    """The latest meeting with each person that was not reported as missed."""
    return {
        other: max(m.start for m in meetings if m.outcome is not Outcome.NOT_MET)
        for other, meetings in past.items()
        if any(m.outcome is not Outcome.NOT_MET for m in meetings)
    }
