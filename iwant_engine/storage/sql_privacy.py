"""A person's data in the SQL storage: export, forget, retention (issue 14).

Mixed into ``SQLWork`` (``forget``, ``purge``, ``ask_to_forget``: inside a unit of work) and
``SQLStorage`` (``person_data``). Rare operations: plain Core statements, no hot-path tricks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Text, delete, exists, false, not_, or_, select, update
from sqlalchemy import cast as cast_
from sqlalchemy.engine import Connection

from ..model import (
    LIVE,
    OutboxItem,
    PersonData,
    PersonInfo,
    StoredRequest,
    StoredResult,
    invites_from_json,
    invites_to_json,
    renamed_invites,
)
from .sql_calendars import calendar_of
from .sql_questions import question_of
from .sql_rows import (
    BUSY,
    CALENDARS,
    CODES,
    IGNORES,
    OUTBOX,
    PEOPLE,
    QUESTIONS,
    REQUESTS,
    RESULTS,
    STANDING,
    request_of,
    result_columns,
    result_of,
)
from .sql_standing import standing_of


class PrivacyWork:
    """Forgetting and retention inside a unit of work (``SQLWork`` provides ``_run``)."""

    _run: Callable[..., Any]

    def forget(self, person: str, name: str, rename: Callable[[str], str]) -> dict[str, int]:
        r, other = REQUESTS, REQUESTS.alias("other")
        theirs = select(r.c.result_id).where(r.c.person == person)
        shared = exists().where(other.c.result_id == RESULTS.c.id, other.c.person != person)
        own = [
            i for (i,) in self._run(select(RESULTS.c.id).where(RESULTS.c.id.in_(theirs), ~shared))
        ]
        # Other people's answers that name them as absent: the groups they were in.
        answers = self._run(
            select(QUESTIONS.c.id, QUESTIONS.c.absent).where(
                QUESTIONS.c.result_id.in_(theirs), QUESTIONS.c.absent.is_not(None)
            )
        ).all()
        for row_id, absent in answers:
            if absent and person in absent:
                kept = [p for p in absent if p != person] or None
                self._run(update(QUESTIONS).where(QUESTIONS.c.id == row_id).values(absent=kept))
        counts = {
            "questions": self._run(delete(QUESTIONS).where(QUESTIONS.c.person == person)).rowcount,
            "requests": self._run(delete(r).where(r.c.person == person)).rowcount,
            "results": self._run(delete(RESULTS).where(RESULTS.c.id.in_(own))).rowcount
            if own
            else 0,
            "ignores": self._run(delete(IGNORES).where(IGNORES.c.person == person)).rowcount,
            "standing": self._run(delete(STANDING).where(STANDING.c.person == person)).rowcount,
            "outbox": self._run(delete(OUTBOX).where(OUTBOX.c.recipient == person)).rowcount,
        }
        # Group conversation rows list their members; other people's notifications name them.
        named = OUTBOX.c.body.contains(name, autoescape=True) if name else false()
        if name:  # the invites a row carries (JSON: the name as written, or escaped)
            as_text = cast_(OUTBOX.c.invites, Text)
            named = or_(
                named,
                as_text.contains(name, autoescape=True),
                as_text.contains(json.dumps(name)[1:-1], autoescape=True),
            )
        rows = self._run(
            select(OUTBOX.c.id, OUTBOX.c.body, OUTBOX.c.group_members, OUTBOX.c.invites).where(
                or_(OUTBOX.c.group_members.is_not(None), named)
            )
        ).all()
        for row_id, body, members, stored in rows:
            renamed = rename(body) if name else body
            carried = invites_from_json(stored)
            invites = renamed_invites(carried, rename) if name else carried
            if (members is None or person not in members) and (renamed, invites) == (
                body,
                carried,
            ):
                continue
            values: dict[str, Any] = {"body": renamed, "invites": invites_to_json(invites)}
            if members is not None:
                values["group_members"] = [m for m in members if m != person]
            self._run(update(OUTBOX).where(OUTBOX.c.id == row_id).values(**values))
            counts["outbox"] += 1
        self._run(delete(BUSY).where(BUSY.c.person == person))
        calendars = delete(CALENDARS).where(CALENDARS.c.person == person)
        counts["calendars"] = self._run(calendars).rowcount
        codes = delete(CODES).where(CODES.c.account == person)
        counts["link_codes"] = self._run(codes).rowcount
        counts["people"] = self._run(delete(PEOPLE).where(PEOPLE.c.id == person)).rowcount
        return counts

    def purge(self, before: datetime, limit: int) -> int:
        r = REQUESTS
        live = [str(s) for s in LIVE]
        old = select(r.c.id).where(not_(r.c.status.in_(live)), r.c.latest < before).limit(limit)
        ids = [i for (i,) in self._run(old)]
        deleted = self._run(delete(r).where(r.c.id.in_(ids))).rowcount if ids else 0
        used = exists().where(r.c.result_id == RESULTS.c.id)
        unused = select(RESULTS.c.id).where(~used, RESULTS.c.updated_at < before).limit(limit)
        results = [i for (i,) in self._run(unused)]
        if results:
            deleted += self._run(delete(RESULTS).where(RESULTS.c.id.in_(results))).rowcount
        asked = select(QUESTIONS.c.id).where(QUESTIONS.c.asked_at < before).limit(limit)
        questions = [i for (i,) in self._run(asked)]
        if questions:
            deleted += self._run(delete(QUESTIONS).where(QUESTIONS.c.id.in_(questions))).rowcount
        done = or_(OUTBOX.c.delivered_at < before, OUTBOX.c.failed_at < before)
        sent = [i for (i,) in self._run(select(OUTBOX.c.id).where(done).limit(limit))]
        if sent:
            deleted += self._run(delete(OUTBOX).where(OUTBOX.c.id.in_(sent))).rowcount
        deleted += self._run(
            delete(STANDING).where(STANDING.c.ended_at < before)
        ).rowcount  # ended standing wishes: few, no batch needed
        deleted += self._run(delete(CODES).where(CODES.c.expires_at < before)).rowcount
        # Busy blocks long past; a calendar failing for the whole retention, address and all.
        deleted += self._run(delete(BUSY).where(BUSY.c.end < before)).rowcount
        dead = select(CALENDARS.c.person).where(CALENDARS.c.failing_since < before).limit(limit)
        people = [p for (p,) in self._run(dead)]
        if people:
            deleted += self._run(delete(BUSY).where(BUSY.c.person.in_(people))).rowcount
            gone = delete(CALENDARS).where(CALENDARS.c.person.in_(people))
            deleted += self._run(gone).rowcount
        return int(deleted)

    def ask_to_forget(self, person: str, at: datetime | None) -> datetime | None:
        before = self._run(
            select(PEOPLE.c.forget_asked_at).where(PEOPLE.c.id == person)
        ).scalar_one_or_none()
        self._run(update(PEOPLE).where(PEOPLE.c.id == person).values(forget_asked_at=at))
        return cast("datetime | None", before)


class PrivacyReads:
    """Everything about one person, for an export (``SQLStorage`` provides ``_read``)."""

    _read: Callable[[], AbstractContextManager[Connection]]

    def person_data(self, person: str) -> PersonData:
        r, other = REQUESTS, REQUESTS.alias("other")
        with self._read() as conn:
            info = conn.execute(select(PEOPLE).where(PEOPLE.c.id == person)).first()
            rows = conn.execute(
                select(r, *result_columns("r_"), RESULTS.c.left_group)
                .join(RESULTS, RESULTS.c.id == r.c.result_id, isouter=True)
                .where(r.c.person == person)
                .order_by(r.c.id)
            ).all()
            # Groups the person left: the meeting, and the others then (those still stored).
            left = {row.result_id: row.left_group for row in rows if row.left_group}
            others = {i: rid for rid, g in left.items() for i in g.get("requests", [])}
            was_with = (
                conn.execute(
                    select(REQUESTS.c.id, REQUESTS.c.person, PEOPLE.c.display_name)
                    .join(PEOPLE, PEOPLE.c.id == REQUESTS.c.person, isouter=True)
                    .where(REQUESTS.c.id.in_(list(others)), REQUESTS.c.person != person)
                    .order_by(REQUESTS.c.id)
                ).all()
                if others
                else []
            )
            names = conn.execute(
                select(other.c.result_id, other.c.person, PEOPLE.c.display_name)
                .join(PEOPLE, PEOPLE.c.id == other.c.person, isouter=True)
                .where(
                    other.c.result_id.in_(select(r.c.result_id).where(r.c.person == person)),
                    other.c.person != person,
                )
                .order_by(other.c.id)
            ).all()
            ignores = conn.scalars(
                select(IGNORES.c.ignored).where(IGNORES.c.person == person).order_by("ignored")
            ).all()
            standing = conn.execute(
                select(STANDING).where(STANDING.c.person == person).order_by(STANDING.c.id)
            ).all()
            undelivered = conn.execute(
                select(OUTBOX)
                .where(
                    OUTBOX.c.recipient == person,
                    OUTBOX.c.delivered_at.is_(None),
                    OUTBOX.c.failed_at.is_(None),
                )
                .order_by(OUTBOX.c.id)
            ).all()
            questions = conn.execute(
                select(QUESTIONS)
                .where(QUESTIONS.c.person == person)
                .order_by(QUESTIONS.c.asked_at, QUESTIONS.c.id)
            ).all()
            calendar = conn.execute(select(CALENDARS).where(CALENDARS.c.person == person)).first()
        groups: dict[int, list[str]] = {}
        for result_id, who, name in names:
            groups.setdefault(result_id, []).append(name or who.split(":", 1)[-1])
        for request_id, who, name in was_with:
            groups.setdefault(others[request_id], []).append(name or who.split(":", 1)[-1])
        pairs: list[tuple[StoredRequest, StoredResult]] = [
            (q, q.own_result() if row.r_id is None else result_of(row, "r_"))
            for q, row in ((request_of(row), row) for row in rows)
        ]
        return PersonData(
            None
            if info is None
            else PersonInfo(
                info.id,
                info.display_name,
                info.timezone,
                info.platform_timezone,
                feedback_off=info.feedback_off,
            ),
            tuple(pairs),
            {k: tuple(v) for k, v in groups.items()},
            tuple(ignores),
            tuple(standing_of(w) for w in standing),
            tuple(
                OutboxItem(o.id, o.recipient, o.body, list(o.buttons or []), o.origin, o.attempts)
                for o in undelivered
            ),
            {
                rid: (datetime.fromisoformat(g["start"]), datetime.fromisoformat(g["end"]))
                for rid, g in left.items()
            },
            tuple(question_of(q) for q in questions),
            None if calendar is None else calendar_of(calendar),
        )
