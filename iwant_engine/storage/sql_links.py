"""Linked accounts in the SQL storage (``!iwant link``): codes, the rate limit of wrong
codes, and re-keying an account's rows to the person it joins.

Mixed into ``SQLWork`` (``LinkWork``) and ``SQLStorage`` (``LinkReads``); every rule (who may
link, the code, the limit) is the engine's.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, select, update
from sqlalchemy.engine import Connection

from .sql_rows import CODES, IGNORES, PEOPLE, REQUESTS


class LinkWork:
    """Linking inside a unit of work (``SQLWork`` provides ``_run``)."""

    _run: Callable[..., Any]

    def add_link_code(self, code_hash: str, account: str, expires_at: datetime) -> None:
        self._run(insert(CODES).values(code_hash=code_hash, account=account, expires_at=expires_at))

    def link_codes(self, now: datetime) -> list[tuple[str, str]]:
        rows = self._run(select(CODES.c.code_hash, CODES.c.account).where(CODES.c.expires_at > now))
        return [(code, account) for code, account in rows]

    def drop_link_code(self, code_hash: str) -> None:
        self._run(delete(CODES).where(CODES.c.code_hash == code_hash))

    def link_failures(self, account: str, now: datetime, window: timedelta, add: bool) -> int:
        row = self._run(
            select(PEOPLE.c.link_failures, PEOPLE.c.link_failures_since).where(
                PEOPLE.c.id == account
            )
        ).first()
        count, first = (row[0] or 0, row[1]) if row else (0, None)
        if first is None or first <= now - window:
            count, first = 0, now
        if add:
            count, first = count + 1, first if count else now
            self._run(
                update(PEOPLE)
                .where(PEOPLE.c.id == account)
                .values(link_failures=count, link_failures_since=first)
            )
        return int(count)

    def link(self, account: str, person: str) -> bool:
        people, i = PEOPLE, IGNORES
        other = people.alias("other")
        free = (
            update(people)
            .where(
                people.c.id == account,
                people.c.canonical.is_(None),
                ~exists().where(other.c.canonical == account),
                exists().where(other.c.id == person, other.c.canonical.is_(None)),
            )
            .values(canonical=person)
        )
        if self._run(free).rowcount != 1:
            return False
        zone = self._run(select(people.c.timezone).where(people.c.id == account)).scalar()
        if zone is not None:
            self._run(
                update(people)
                .where(people.c.id == person, people.c.timezone.is_(None))
                .values(timezone=zone)
            )
        self._run(
            update(REQUESTS)
            .where(REQUESTS.c.person == account)
            .values(person=person, account=func.coalesce(REQUESTS.c.account, account))
        )
        # Ignore entries: the account's become the person's, without duplicates or self-pairs.
        theirs = select(i.c.ignored).where(i.c.person == person).scalar_subquery()
        self._run(delete(i).where(i.c.person == account, i.c.ignored.in_(theirs)))
        self._run(delete(i).where(i.c.person == account, i.c.ignored == person))
        self._run(update(i).where(i.c.person == account).values(person=person))
        ignorers = select(i.c.person).where(i.c.ignored == person).scalar_subquery()
        self._run(delete(i).where(i.c.ignored == account, i.c.person.in_(ignorers)))
        self._run(delete(i).where(and_(i.c.ignored == account, i.c.person == person)))
        self._run(update(i).where(i.c.ignored == account).values(ignored=person))
        return True

    def unlink(self, account: str) -> list[str]:
        people = PEOPLE
        own = self._run(select(people.c.canonical).where(people.c.id == account)).scalar()
        if own is not None:
            done = [account]
        else:
            done = sorted(
                self._run(select(people.c.id).where(people.c.canonical == account)).scalars()
            )
        if done:
            self._run(update(people).where(people.c.id.in_(done)).values(canonical=None))
        return done


class LinkReads:
    """The accounts of a person (``SQLStorage`` provides ``_read``)."""

    _read: Callable[[], AbstractContextManager[Connection]]

    def accounts(self, person: str) -> list[str]:
        stmt = select(PEOPLE.c.id).where(PEOPLE.c.canonical == person).order_by(PEOPLE.c.id)
        with self._read() as conn:
            return list(conn.scalars(stmt))
