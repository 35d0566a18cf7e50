""" "Did you meet?" in the SQL storage: the ``questions`` table, the groups still to ask about
and the history of shared groups with their answers.

Mixed into ``SQLWork`` (a unit of work) and ``SQLStorage``; when to ask, whom, and what an
answer means are the engine's (``feedback.py``, ``outcomes.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import Executable, and_, insert, select, update
from sqlalchemy.engine import Connection, Row

from ..model import Answer, Question, SharedGroup, Status, StoredGroup
from .sql_rows import PEOPLE, QUESTIONS, REQUESTS, RESULTS

MET_STATUSES = (str(Status.MATCHED), str(Status.DONE))


def question_of(row: Row[Any]) -> Question:
    return Question(
        row.result_id,
        row.person,
        row.asked_at,
        row.expires_at,
        None if row.answer is None else Answer(row.answer),
        tuple(row.absent or ()),
        row.answered_at,
    )


def _to_ask(ended: datetime, since: datetime) -> Any:
    return select(RESULTS.c.id).where(
        RESULTS.c.status == str(Status.DONE),
        RESULTS.c.asked_at.is_(None),
        RESULTS.c.end <= ended,
        RESULTS.c.end >= since,
    )


class QuestionWork:
    """Questions inside a unit of work (``SQLWork`` provides ``_run``, ``pg`` and
    ``_groups``)."""

    pg: bool
    _run: Callable[..., Any]
    _groups: Callable[[Sequence[int]], list[StoredGroup]]

    def shared_groups(self, person: str, others: Iterable[str]) -> list[SharedGroup]:
        wanted = set(others) - {person}
        if not wanted:
            return []
        r = REQUESTS
        mine = select(r.c.result_id).where(r.c.person == person, r.c.status.in_(MET_STATUSES))
        rows = self._run(
            select(r.c.person, r.c.result_id, RESULTS.c.start)
            .join(RESULTS, RESULTS.c.id == r.c.result_id)
            .where(
                r.c.result_id.in_(mine),
                r.c.person.in_(wanted),
                r.c.status.in_(MET_STATUSES),
                RESULTS.c.start.is_not(None),
            )
        ).all()
        if not rows:
            return []
        answers: dict[int, list[Question]] = {}
        ids = {row.result_id for row in rows}
        for q in self._run(select(QUESTIONS).where(QUESTIONS.c.result_id.in_(ids))):
            answers.setdefault(q.result_id, []).append(question_of(q))
        return [
            SharedGroup(who, rid, start, tuple(answers.get(rid, ()))) for who, rid, start in rows
        ]

    def to_ask(self, ended: datetime, since: datetime, limit: int) -> list[StoredGroup]:
        claim = _to_ask(ended, since).order_by(RESULTS.c.end, RESULTS.c.id).limit(limit)
        if self.pg:
            claim = claim.with_for_update(skip_locked=True)
        ids = list(self._run(claim).scalars())
        return self._groups(ids) if ids else []

    def question(self, result_id: int, person: str) -> Question | None:
        stmt = select(QUESTIONS).where(
            QUESTIONS.c.result_id == result_id, QUESTIONS.c.person == person
        )
        if self.pg:
            stmt = stmt.with_for_update()
        row = self._run(stmt).first()
        return None if row is None else question_of(row)

    def mark_asked(self, result_ids: Iterable[int], now: datetime) -> None:
        ids = list(result_ids)
        if ids:
            self._run(update(RESULTS).where(RESULTS.c.id.in_(ids)).values(asked_at=now))

    def add_questions(self, questions: Iterable[Question]) -> None:
        for q in questions:
            stored = select(QUESTIONS.c.id).where(
                and_(QUESTIONS.c.result_id == q.result_id, QUESTIONS.c.person == q.person)
            )
            if self._run(stored).first() is None:
                self._run(
                    insert(QUESTIONS).values(
                        result_id=q.result_id, person=q.person, asked_at=q.asked_at,
                        expires_at=q.expires_at, answer=None, absent=None, answered_at=None,
                    )
                )  # fmt: skip

    def save_answer(self, question: Question) -> None:
        q = question
        self._run(
            update(QUESTIONS)
            .where(QUESTIONS.c.result_id == q.result_id, QUESTIONS.c.person == q.person)
            .values(
                answer=None if q.answer is None else str(q.answer),
                absent=list(q.absent) or None,
                answered_at=q.answered_at,
            )
        )

    def set_feedback(self, person: str, off: bool) -> None:
        self._run(update(PEOPLE).where(PEOPLE.c.id == person).values(feedback_off=off))


class QuestionReads:
    """Reads that need no unit of work (``SQLStorage`` provides ``_read``)."""

    _read: Callable[[], AbstractContextManager[Connection]]

    def has_to_ask(self, ended: datetime, since: datetime) -> bool:
        stmt: Executable = _to_ask(ended, since).limit(1)
        with self._read() as conn:
            return conn.execute(stmt).first() is not None
