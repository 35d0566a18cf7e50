"""The built-in SQL storage (SQLAlchemy 2): SQLite by default, PostgreSQL for production.

One command = one transaction. Matching for a (pool, activity) is serialised by a lock taken
inside that transaction: ``pg_advisory_xact_lock`` on PostgreSQL, the database write lock
(``BEGIN IMMEDIATE``) on SQLite. All times come from the caller's clock, never from SQL.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from importlib import resources
from zoneinfo import ZoneInfo

from sqlalchemy import Select, create_engine, event, func, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from .. import messages as msg
from ..errors import Unavailable, UserError
from ..invariants import refusal
from ..model import (
    LIVE,
    Candidate,
    Decision,
    Form,
    Join,
    MatchContext,
    OpenGroup,
    Status,
    Wish,
)
from ..plugins import hookimpl
from .schema import NAME_MAX, Ignore, Outbox, Person, Request, Result

log = logging.getLogger(__name__)

CANDIDATE_LIMIT = 200
# The grammar refuses windows longer than a day, so a candidate that can start by the wish's
# last start ends by then + MAX_WINDOW: a two-sided range on the candidate index, which keeps
# the cost flat however many requests wait further ahead.
MAX_WINDOW = timedelta(hours=24)
MAX_ATTEMPTS = 8
Strategy = Callable[[Wish, Sequence[Candidate], Sequence[OpenGroup], MatchContext], Decision]


@dataclass(frozen=True)
class PersonInfo:
    id: str
    name: str
    timezone: str | None
    platform_timezone: str | None


@dataclass(frozen=True)
class OpenRequest:
    request_id: int
    activity: str
    status: Status
    earliest: datetime
    latest: datetime
    deadline: datetime
    length_minutes: int
    start: datetime | None  # meeting, when matched
    end: datetime | None
    others: tuple[str, ...]  # names of the other members


@dataclass(frozen=True)
class OutboxItem:
    id: int
    recipient: str
    body: str
    buttons: list[dict[str, str]]
    origin: str | None
    attempts: int
    group_members: list[str] | None = None  # a group conversation for these people


@dataclass(frozen=True)
class SubmitOutcome:
    request_id: int
    reply: msg.Note


class _Lazy(Mapping[str, datetime]):
    """A mapping read from the database on first use: most strategies never look at the
    match history, so most submissions never pay for the query."""

    def __init__(self, load: Callable[[], dict[str, datetime]]) -> None:
        self._load, self._data = load, None

    def _get(self) -> dict[str, datetime]:
        if self._data is None:
            self._data = self._load()
        return self._data

    def __getitem__(self, key: str) -> datetime:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


def _lock_key(*parts: str) -> int:
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class SQLStorage:
    """Requests, results, people and the outbox in one SQL database."""

    def __init__(self, url: str, pool_size: int = 5, default_timezone: str = "UTC") -> None:
        self.url = url
        self.default_zone = ZoneInfo(default_timezone)
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.engine = create_engine(
                url, connect_args={"timeout": 30, "check_same_thread": False}
            )
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_begin)
        else:
            self.engine = create_engine(
                url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                pool_recycle=1800,
                # A process that hangs mid-transaction must not stall its pool for longer
                # than this: waiters give up on a lock after 5 s ("temporarily unavailable"),
                # and the server ends a session idle inside a transaction after 15 s.
                connect_args={
                    "connect_timeout": 5,
                    # A database that stops answering without closing the connection (a
                    # network partition) is noticed in about 15 s instead of never.
                    "keepalives": 1,
                    "keepalives_idle": 5,
                    "keepalives_interval": 2,
                    "keepalives_count": 3,
                    "tcp_user_timeout": 15000,
                    "options": "-c lock_timeout=5000 -c idle_in_transaction_session_timeout="
                    "15000 -c statement_timeout=30000",
                },
            )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._people: dict[str, tuple[str, str | None]] = {}  # person -> what was upserted
        # Reads that never write: on SQLite a plain BEGIN, so they take no write lock.
        self.reader = self.engine.execution_options(iwant_readonly=True)
        self._read_sessions = sessionmaker(self.reader, expire_on_commit=False)

    # -- lifecycle ---------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision; safe with several processes."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(resources.files("iwant_engine") / "migrations"))
        with self._guard(), self.engine.begin() as conn:
            if not self.is_sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key("migrate")})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn a lost database into ``Unavailable``; everything else propagates."""
        try:
            yield
        except OperationalError as err:
            if self.is_sqlite and "locked" not in str(err) and "unable to open" not in str(err):
                raise
            log.warning("database unavailable: %s", type(err.orig).__name__ if err.orig else err)
            raise Unavailable() from err
        except DBAPIError as err:
            if err.connection_invalidated:
                raise Unavailable() from err
            raise

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._guard(), self._sessions.begin() as session:
            yield session
        if len(self._people) > 100_000:
            self._people.clear()
        self._people.update(session.info.get("people", {}))  # only once committed

    def _lock(self, session: Session, *parts: str) -> None:
        if not self.is_sqlite:  # SQLite's BEGIN IMMEDIATE already holds the write lock
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(*parts)})

    # -- people ------------------------------------------------------------------------------

    def _upsert_person(
        self, session: Session, person: str, name: str, platform_timezone: str | None
    ) -> None:
        known = (name[:NAME_MAX], platform_timezone)
        if self._people.get(person) == known:
            return  # this process wrote these very values; people are never deleted
        session.info.setdefault("people", {})[person] = known
        values = {
            "id": person,
            "display_name": name[:NAME_MAX],
            "platform_timezone": platform_timezone,
        }
        insert = sqlite_insert if self.is_sqlite else pg_insert
        stmt = insert(Person).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[Person.id],
            set_={
                "display_name": stmt.excluded.display_name,
                "platform_timezone": stmt.excluded.platform_timezone,
            },
            # No row write (and no dead tuple on PostgreSQL) when nothing changed.
            where=(Person.display_name != stmt.excluded.display_name)
            | Person.platform_timezone.is_distinct_from(stmt.excluded.platform_timezone),
        )
        session.execute(stmt)

    def _ensure_person(self, session: Session, person: str, name: str) -> None:
        """The person's row, created if missing; what it holds (their platform zone) stays."""
        insert = sqlite_insert if self.is_sqlite else pg_insert
        values = {"id": person, "display_name": name[:NAME_MAX]}
        session.execute(insert(Person).values(**values).on_conflict_do_nothing())

    def person(self, person: str) -> PersonInfo | None:
        with self._guard(), self._read_sessions() as session:
            row = session.get(Person, person)
            return row and PersonInfo(row.id, row.display_name, row.timezone, row.platform_timezone)

    def set_timezone(self, person: str, name: str, zone: str | None) -> None:
        with self._tx() as session:
            self._ensure_person(session, person, name)
            session.execute(update(Person).where(Person.id == person).values(timezone=zone))

    def ignore(self, person: str, name: str, other: str, now: datetime) -> bool:
        """Record that ``person`` ignores ``other``; False if it was already so."""
        with self._tx() as session:
            self._ensure_person(session, person, name)
            if session.get(Ignore, (person, other)) is not None:
                return False
            session.add(Ignore(person=person, ignored=other, created_at=now))
            return True

    def unignore(self, person: str, other: str) -> bool:
        with self._tx() as session:
            row = session.get(Ignore, (person, other))
            if row is None:
                return False
            session.delete(row)
            return True

    def ignored(self, person: str) -> list[str]:
        with self._guard(), self._read_sessions() as session:
            return list(
                session.scalars(
                    select(Ignore.ignored).where(Ignore.person == person).order_by(Ignore.ignored)
                )
            )

    def _zone(self, person: Person | None) -> ZoneInfo:
        for name in (person and person.timezone, person and person.platform_timezone):
            if name:
                try:
                    return ZoneInfo(name)
                except (KeyError, ValueError):
                    continue
        return self.default_zone

    def _recipients(self, session: Session, ids: Sequence[str]) -> dict[str, msg.Recipient]:
        rows = session.scalars(select(Person).where(Person.id.in_(set(ids)))).all()
        found = {r.id: msg.Recipient(r.id, r.display_name, self._zone(r)) for r in rows}
        return {i: found.get(i, msg.Recipient(i, i, self.default_zone)) for i in ids}

    # -- submitting and matching -------------------------------------------------------------

    def submit(
        self,
        wish: Wish,
        name: str,
        platform_timezone: str | None,
        origin: str | None,
        strategy: Strategy,
        ctx: MatchContext,
        max_open: int,
    ) -> SubmitOutcome:
        now = ctx.now
        with self._tx() as session:
            self._lock(session, "person", wish.person)
            self._lock(session, "pool", wish.pool, wish.activity)
            self._upsert_person(session, wish.person, name, platform_timezone)
            mine = session.scalars(
                select(Request).where(
                    Request.person == wish.person, Request.status.in_(LIVE), Request.latest > now
                )
            ).all()
            if len(mine) >= max_open:
                raise UserError(
                    f"You already have {len(mine)} open requests, the most I keep for one person; "
                    "cancel one first (!iwant list, then !iwant cancel 2)."
                )
            me = session.get(Person, wish.person)
            zone = self._zone(me)
            for other in mine:
                if (
                    other.activity == wish.activity
                    and other.earliest < wish.latest
                    and wish.earliest < other.latest
                ):
                    raise UserError(
                        f"You already want {other.activity} "
                        f"{msg.slot(other.earliest, other.latest, zone)}; cancel it first with "
                        f"!iwant cancel {other.activity}."
                    )
            result = _solo(
                session, wish.pool, wish.activity, wish.max_size, Status.PENDING, wish.deadline, now
            )
            request = Request(
                person=wish.person,
                pool=wish.pool,
                origin=origin,
                activity=wish.activity,
                earliest=wish.earliest,
                latest=wish.latest,
                deadline=wish.deadline,
                length_minutes=int(wish.length.total_seconds() // 60),
                max_size=wish.max_size,
                min_size=wish.min_size,
                created_at=now,
                result_id=result.id,
                status=Status.PENDING,
            )
            session.add(request)
            session.flush()
            reply = self._match(session, request, wish, strategy, ctx)
            if reply is None:
                reply = msg.Note(
                    wish.person,
                    msg.waiting(
                        wish.activity,
                        wish.earliest,
                        wish.latest,
                        request.length_minutes,
                        wish.deadline,
                        zone,
                    ),
                    msg.cancel_button(request.id),
                )
            return SubmitOutcome(request.id, reply)

    def _apart(self, session: Session, people: set[str]) -> frozenset[frozenset[str]]:
        rows = session.execute(
            select(Ignore.person, Ignore.ignored).where(
                Ignore.person.in_(people), Ignore.ignored.in_(people)
            )
        ).all()
        return frozenset(frozenset(row) for row in rows)

    def _last_met(self, session: Session, person: str, others: set[str]) -> dict[str, datetime]:
        if not others:
            return {}
        mine = select(Request.result_id).where(
            Request.person == person, Request.status.in_((Status.MATCHED, Status.DONE))
        )
        rows = session.execute(
            select(Request.person, func.max(Result.start))
            .join(Result, Result.id == Request.result_id)
            .where(Request.result_id.in_(mine), Request.person.in_(others))
            .group_by(Request.person)
        ).all()
        return {who: when for who, when in rows if when is not None}

    def _candidates(
        self, session: Session, wish: Wish, request_id: int, now: datetime
    ) -> tuple[list[Candidate], list[OpenGroup]]:
        rows = session.scalars(
            select(Request)
            .where(
                Request.pool == wish.pool,
                Request.activity == wish.activity,
                Request.status == Status.PENDING,
                Request.latest >= wish.earliest + wish.length,
                Request.latest <= wish.latest - wish.length + MAX_WINDOW,
                Request.earliest <= wish.latest - wish.length,
                Request.deadline > now,
                Request.person != wish.person,
                Request.id != request_id,
            )
            .order_by(Request.latest, Request.id)
            .limit(CANDIDATE_LIMIT)
        ).all()
        candidates = [_candidate(r) for r in rows]
        group_rows: Sequence[Result] = session.scalars(
            select(Result)
            .where(
                Result.pool == wish.pool,
                Result.activity == wish.activity,
                Result.status == Status.MATCHED,
                Result.start >= max(now, wish.earliest),
                Result.start <= wish.latest - wish.length,
                Result.size < Result.max_size,
            )
            .order_by(Result.start, Result.id)
            .limit(CANDIDATE_LIMIT)
        ).all()
        groups = []
        if group_rows:
            members: dict[int, list[Candidate]] = {}
            for r in session.scalars(
                select(Request).where(Request.result_id.in_([g.id for g in group_rows]))
            ):
                members.setdefault(r.result_id, []).append(_candidate(r))
            groups = [
                OpenGroup(g.id, g.start, g.end, g.max_size, tuple(members.get(g.id, ())))
                for g in group_rows
                if g.start is not None and g.end is not None
            ]
        return candidates, groups

    def _match(
        self, session: Session, request: Request, wish: Wish, strategy: Strategy, ctx: MatchContext
    ) -> msg.Note | None:
        """Apply the strategy's decision for ``request``; the requester's reply if matched."""
        candidates, groups = self._candidates(session, wish, request.id, ctx.now)
        if not candidates and not groups:
            return None
        others = {c.person for c in candidates} | {m.person for g in groups for m in g.members}
        apart = self._apart(session, others | {wish.person})
        if apart:  # the engine, not the strategy, keeps out whom the requester ignores
            blocked = {p for pair in apart if wish.person in pair for p in pair} - {wish.person}
            candidates = [c for c in candidates if c.person not in blocked]
            groups = [g for g in groups if not any(m.person in blocked for m in g.members)]
            if not candidates and not groups:
                return None
        ctx = replace(
            ctx,
            last_met=_Lazy(lambda: self._last_met(session, wish.person, others)),
            apart=apart,
        )
        decision = strategy(wish, candidates, groups, ctx)
        problem = refusal(decision, wish, candidates, groups, ctx)
        if problem:
            log.error("strategy decision %r refused: %s; the request waits", decision, problem)
            return None
        if isinstance(decision, Join):
            return self._join(session, request, decision.result_id, ctx.now)
        if isinstance(decision, Form):
            return self._form(session, request, decision, wish, ctx.now)
        return None

    def _join(self, session: Session, request: Request, result_id: int, now: datetime) -> msg.Note:
        group = session.get(Result, result_id)
        assert group is not None and group.start is not None and group.end is not None
        session.execute(
            update(Result)
            .where(Result.id == request.result_id)
            .values(status=Status.INVALID, due_at=None, updated_at=now)
        )
        request.result_id, request.status = group.id, Status.MATCHED
        group.size += 1
        group.max_size = min(group.max_size, request.max_size)
        group.updated_at = now
        members = session.scalars(select(Request).where(Request.result_id == group.id)).all()
        people = self._recipients(session, [m.person for m in members])
        newcomer = people[request.person]
        for m in members:
            if m.id == request.id:
                continue
            r = people[m.person]
            self._outbox(
                session,
                m.person,
                msg.joined(
                    group.activity,
                    group.start,
                    group.end,
                    [newcomer.name],
                    [people[x.person].name for x in members],
                    r.zone,
                ),
                msg.cancel_button(m.id, "I can't make it"),
                m.origin,
                now,
            )
        return msg.Note(
            request.person,
            msg.matched_reply(
                group.activity,
                group.start,
                group.end,
                [people[m.person].name for m in members if m.id != request.id],
                newcomer.zone,
                joined_existing=True,
            ),
            msg.cancel_button(request.id, "I can't make it"),
        )

    def _form(
        self, session: Session, request: Request, decision: Form, wish: Wish, now: datetime
    ) -> msg.Note:
        others = session.scalars(
            select(Request).where(Request.id.in_(decision.request_ids)).order_by(Request.id)
        ).all()
        members = [*others, request]
        group = session.get(Result, request.result_id)
        assert group is not None
        session.execute(
            update(Result)
            .where(Result.id.in_([o.result_id for o in others]))
            .values(status=Status.INVALID, due_at=None, updated_at=now)
        )
        start, end = decision.start, decision.start + wish.length
        group.status, group.start, group.end = Status.MATCHED, start, end
        group.size, group.max_size = len(members), min(m.max_size for m in members)
        group.due_at, group.updated_at = end, now
        for m in members:
            m.result_id, m.status = group.id, Status.MATCHED
        people = self._recipients(session, [m.person for m in members])
        for m in others:
            self._outbox(
                session,
                m.person,
                msg.joined(
                    wish.activity,
                    start,
                    end,
                    [people[x.person].name for x in members if x.id != m.id],
                    [people[x.person].name for x in members],
                    people[m.person].zone,
                ),
                msg.cancel_button(m.id, "I can't make it"),
                m.origin,
                now,
            )
        by_platform: dict[str, list[str]] = {}
        for m in members:
            by_platform.setdefault(m.person.split(":", 1)[0], []).append(m.person)
        for platform, ids in by_platform.items():
            if len(ids) >= 2:  # one group conversation per platform, where it has one
                body = msg.group_hello(wish.activity, [people[i].name for i in ids])
                self._outbox(session, f"{platform}:group:{group.id}", body, [], None, now, ids)
        return msg.Note(
            request.person,
            msg.matched_reply(
                wish.activity,
                start,
                end,
                [people[o.person].name for o in others],
                people[request.person].zone,
                joined_existing=False,
            ),
            msg.cancel_button(request.id, "I can't make it"),
        )

    # -- listing and cancelling --------------------------------------------------------------

    def open_requests(self, person: str, now: datetime) -> list[OpenRequest]:
        with self._guard(), self._read_sessions() as session:
            rows = session.execute(
                select(Request, Result)
                .join(Result, Result.id == Request.result_id)
                .where(Request.person == person, Request.status.in_(LIVE), Request.latest > now)
                .order_by(Request.earliest, Request.id)
            ).all()
            group_ids = [res.id for _, res in rows if res.status == Status.MATCHED]
            names: dict[int, list[str]] = {}
            if group_ids:
                for rid, who, pname in session.execute(
                    select(Request.result_id, Request.person, Person.display_name)
                    .join(Person, Person.id == Request.person)
                    .where(Request.result_id.in_(group_ids), Request.person != person)
                    .order_by(Request.id)
                ):
                    names.setdefault(rid, []).append(pname or who)
            return [
                OpenRequest(
                    req.id,
                    req.activity,
                    Status(res.status),
                    req.earliest,
                    req.latest,
                    req.deadline,
                    req.length_minutes,
                    res.start,
                    res.end,
                    tuple(names.get(res.id, ())),
                )
                for req, res in rows
            ]

    def cancel(
        self, person: str, request_id: int, strategy: Strategy, ctx: MatchContext
    ) -> msg.Note:
        now = ctx.now
        with self._tx() as session:
            request = session.get(Request, request_id)
            if request is None or request.person != person:
                raise UserError("That request is not yours, so I left it alone; see !iwant list.")
            self._lock(session, "pool", request.pool, request.activity)
            session.refresh(request)
            if request.status not in LIVE:
                raise UserError(
                    f"Your {request.activity} request has already ended; see !iwant list."
                )
            group = session.get(Result, request.result_id)
            assert group is not None
            me = self._recipients(session, [person])[person]
            if group.status == Status.PENDING:
                group.status, group.due_at, group.updated_at = Status.CANCELLED, None, now
                request.status = Status.CANCELLED
                return msg.Note(
                    person,
                    f"Cancelled: {request.activity} "
                    f"{msg.slot(request.earliest, request.latest, me.zone)}.",
                )
            # Leaving a formed group: the request gets a result of its own, CANCELLED.
            own = _solo(
                session,
                request.pool,
                request.activity,
                request.max_size,
                Status.CANCELLED,
                None,
                now,
            )
            request.result_id, request.status = own.id, Status.CANCELLED
            assert group.start is not None and group.end is not None
            rest = session.scalars(
                select(Request).where(Request.result_id == group.id).order_by(Request.id)
            ).all()
            people = self._recipients(session, [m.person for m in rest])
            group.size, group.updated_at = len(rest), now
            group.max_size = min((m.max_size for m in rest), default=group.max_size)
            start, end = group.start, group.end
            need = max([2, *(m.min_size for m in rest)])
            if len(rest) >= need:
                for m in rest:
                    r = people[m.person]
                    self._outbox(
                        session,
                        m.person,
                        msg.dropped_out(
                            group.activity,
                            start,
                            end,
                            me.name,
                            [people[x.person].name for x in rest if x.id != m.id] + ["you"],
                            r.zone,
                        ),
                        msg.cancel_button(m.id, "I can't make it"),
                        m.origin,
                        now,
                    )
            else:
                self._dissolve(session, group, rest, me.name, strategy, ctx)
            return msg.Note(
                person,
                f"Cancelled: you left {group.activity} at "
                f"{msg.slot(start, end, me.zone)}; the others have been told.",
            )

    def _dissolve(
        self,
        session: Session,
        group: Result,
        rest: Sequence[Request],
        leaver: str,
        strategy: Strategy,
        ctx: MatchContext,
    ) -> None:
        """Too few are left for the group: each member waits on their own again (or has
        ended, if their deadline passed) and is matched afresh where possible."""
        now = ctx.now
        assert group.start is not None and group.end is not None
        start, end, activity = group.start, group.end, group.activity
        people = self._recipients(session, [m.person for m in rest])
        waiting = []
        for i, member in enumerate(rest):
            result = group if i == 0 else Result(pool=member.pool, activity=activity)
            result.start = result.end = None
            result.size, result.max_size, result.updated_at = 1, member.max_size, now
            if member.deadline <= now:
                result.status, result.due_at = Status.EXPIRED, None
            else:
                result.status, result.due_at = Status.PENDING, member.deadline
                waiting.append(member)
            if i:
                session.add(result)
                session.flush()
            member.result_id, member.status = result.id, result.status
        session.flush()
        for member in rest:
            zone = people[member.person].zone
            if member.status == Status.EXPIRED:
                body = msg.nobody_left(activity, start, end, leaver, zone)
                self._outbox(session, member.person, body, [], member.origin, now)
                continue
            session.refresh(member)
            if member.status != Status.PENDING:
                continue  # already matched afresh by an earlier member's rematch
            rematch = self._match(session, member, _wish(member), strategy, ctx)
            if rematch is None:
                body = msg.alone_again(activity, start, end, leaver, member.deadline, zone)
                buttons = msg.cancel_button(member.id)
            else:
                body, buttons = f"{leaver} dropped out. " + rematch.body, rematch.buttons
            self._outbox(session, member.person, body, buttons, member.origin, now)

    # -- sweeping: expiry and done-marking ---------------------------------------------------

    def sweep(self, now: datetime, batch: int = 500) -> tuple[int, int]:
        """Expire waiting requests whose deadline passed; mark finished meetings DONE.

        Pool locks come first, then rows, the same order as a submit takes them (a sweep that
        locked rows first could deadlock with a submit). A pool busy with a submit is left
        for the next round rather than waited for."""
        expired = done = 0
        with self._guard(), self.reader.connect() as conn:
            if conn.scalar(self._due_results(now).limit(1)) is None:
                return expired, done  # the common case for a poller: no write transaction
        while True:
            with self._tx() as session:
                keys = self._lock_due_pools(session, now, batch)
                due = self._claim_due(session, now, batch, keys) if keys else []
                for result in due:
                    if result.status == Status.PENDING:
                        expired += self._expire(session, result, now)
                    else:
                        result.status, result.due_at, result.updated_at = Status.DONE, None, now
                        session.execute(
                            update(Request)
                            .where(Request.result_id == result.id)
                            .values(status=Status.DONE)
                        )
                        done += 1
            if not due:
                return expired, done

    def _due_results(self, now: datetime) -> Select[tuple[int]]:
        return select(Result.id).where(Result.status.in_(LIVE), Result.due_at <= now)

    def _lock_due_pools(self, session: Session, now: datetime, batch: int) -> list[tuple[str, str]]:
        keys = [
            (pool, activity)
            for pool, activity in session.execute(
                select(Result.pool, Result.activity)
                .where(Result.status.in_(LIVE), Result.due_at <= now)
                .group_by(Result.pool, Result.activity)
                .order_by(Result.pool, Result.activity)
                .limit(batch)
            )
        ]
        if self.is_sqlite:  # BEGIN IMMEDIATE holds the whole database
            return keys
        try_lock = text("SELECT pg_try_advisory_xact_lock(:k)")
        return [k for k in keys if session.scalar(try_lock, {"k": _lock_key("pool", *k)})]

    def _claim_due(
        self, session: Session, now: datetime, batch: int, keys: list[tuple[str, str]]
    ) -> list[Result]:
        stmt = (
            select(Result)
            .where(
                Result.status.in_(LIVE),
                Result.due_at <= now,
                tuple_(Result.pool, Result.activity).in_(keys),
            )
            .order_by(Result.due_at, Result.id)
            .limit(batch)
        )
        if not self.is_sqlite:
            stmt = stmt.with_for_update(skip_locked=True)
        return list(session.scalars(stmt).all())

    def _expire(self, session: Session, result: Result, now: datetime) -> int:
        result.status, result.due_at, result.updated_at = Status.EXPIRED, None, now
        for req in session.scalars(select(Request).where(Request.result_id == result.id)):
            req.status = Status.EXPIRED
            zone = self._recipients(session, [req.person])[req.person].zone
            self._outbox(
                session,
                req.person,
                msg.expired(req.activity, req.earliest, req.latest, req.min_size, zone),
                [],
                req.origin,
                now,
            )
        return 1

    # -- the outbox --------------------------------------------------------------------------

    def _outbox(
        self,
        session: Session,
        recipient: str,
        body: str,
        buttons: list[dict[str, str]],
        origin: str | None,
        now: datetime,
        group_members: list[str] | None = None,
    ) -> None:
        session.add(
            Outbox(
                recipient=recipient,
                platform=recipient.split(":", 1)[0],
                body=body,
                buttons=buttons or None,
                origin=origin,
                created_at=now,
                next_attempt_at=now,
                attempts=0,
                group_members=group_members,
            )
        )

    def claim_outbox(
        self,
        platform: str,
        now: datetime,
        limit: int = 50,
        lease: timedelta = timedelta(seconds=60),
    ) -> list[OutboxItem]:
        """Rows due for ``platform``, leased to the caller for ``lease``."""
        if not self._any_due_outbox(platform, now):
            return []  # the common case for a poller: no write transaction at all
        with self._tx() as session:
            due = (
                select(Outbox.id)
                .where(
                    Outbox.platform == platform,
                    Outbox.delivered_at.is_(None),
                    Outbox.failed_at.is_(None),
                    Outbox.next_attempt_at <= now,
                    (Outbox.claimed_until.is_(None)) | (Outbox.claimed_until <= now),
                )
                .order_by(Outbox.id)
                .limit(limit)
            )
            if not self.is_sqlite:
                due = due.with_for_update(skip_locked=True)
            ids = list(session.scalars(due).all())
            if not ids:
                return []
            rows = session.scalars(
                update(Outbox)
                .where(Outbox.id.in_(ids))
                .values(claimed_until=now + lease, attempts=Outbox.attempts + 1)
                .returning(Outbox)
            ).all()
            return sorted(
                (
                    OutboxItem(
                        r.id,
                        r.recipient,
                        r.body,
                        r.buttons or [],
                        r.origin,
                        r.attempts,
                        r.group_members,
                    )
                    for r in rows
                ),
                key=lambda item: item.id,
            )

    def _any_due_outbox(self, platform: str, now: datetime) -> bool:
        with self._guard(), self.reader.connect() as conn:
            return (
                conn.scalar(
                    select(Outbox.id)
                    .where(
                        Outbox.platform == platform,
                        Outbox.delivered_at.is_(None),
                        Outbox.failed_at.is_(None),
                        Outbox.next_attempt_at <= now,
                    )
                    .limit(1)
                )
                is not None
            )

    def ack(self, outbox_id: int, now: datetime) -> None:
        with self._tx() as session:
            session.execute(
                update(Outbox)
                .where(Outbox.id == outbox_id)
                .values(delivered_at=now, claimed_until=None, error=None)
            )

    def fail(self, outbox_id: int, now: datetime, error: str, permanent: bool) -> bool:
        """Record a failed send; True when the row is given up as undeliverable."""
        with self._tx() as session:
            row = session.get(Outbox, outbox_id)
            if row is None:
                return True
            row.error, row.claimed_until = error[:500], None
            if permanent or row.attempts >= MAX_ATTEMPTS:
                row.failed_at = now
                return True
            row.next_attempt_at = now + timedelta(seconds=min(2**row.attempts, 600))
            return False

    def counts(self) -> dict[str, int]:
        """Rows per request status and undelivered outbox rows; for health and tests."""
        with self._guard(), self._read_sessions() as session:
            counts = dict(
                session.execute(select(Request.status, func.count()).group_by(Request.status)).all()
            )
            counts["outbox_pending"] = (
                session.scalar(
                    select(func.count())
                    .select_from(Outbox)
                    .where(Outbox.delivered_at.is_(None), Outbox.failed_at.is_(None))
                )
                or 0
            )
            return counts


def _sqlite_begin(conn: Connection) -> None:
    # BEGIN IMMEDIATE takes the write lock up front (no lock-upgrade deadlocks); pure reads
    # begin deferred and take none.
    readonly = conn.get_execution_options().get("iwant_readonly")
    conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def _sqlite_on_connect(dbapi_connection: object, _record: object) -> None:
    # Autocommit at the driver level, so that our "begin" listener controls the transaction
    # (BEGIN IMMEDIATE takes the write lock up front: no lock upgrade deadlocks).
    dbapi_connection.isolation_level = None  # type: ignore[attr-defined]
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _solo(
    session: Session,
    pool: str,
    activity: str,
    max_size: int,
    status: Status,
    due_at: datetime | None,
    now: datetime,
) -> Result:
    """A result of one request's own, stored (so it has an id)."""
    result = Result(
        pool=pool,
        activity=activity,
        status=status,
        max_size=max_size,
        size=1,
        due_at=due_at,
        updated_at=now,
    )
    session.add(result)
    session.flush()
    return result


def _candidate(r: Request) -> Candidate:
    return Candidate(
        r.id, r.person, r.earliest, r.latest, r.deadline, r.max_size, r.created_at, r.min_size
    )


def _wish(r: Request) -> Wish:
    return Wish(
        r.person,
        r.pool,
        r.activity,
        r.earliest,
        r.latest,
        r.deadline,
        timedelta(minutes=r.length_minutes),
        r.max_size,
        r.min_size,
    )


@hookimpl
def iwant_storages() -> dict[str, type[SQLStorage]]:
    return {"sql": SQLStorage}
