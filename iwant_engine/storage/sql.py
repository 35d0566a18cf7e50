"""The built-in SQL storage (SQLAlchemy 2 Core): SQLite by default, PostgreSQL for production.

It only stores: every rule of who meets whom is the engine's (``matching.py``). A unit of
work is one transaction. ``lock`` is ``pg_advisory_xact_lock`` on PostgreSQL (several locks
asked for in a row are taken in one statement, just before the next read or write) and
nothing on SQLite, where ``BEGIN IMMEDIATE`` already holds the database's write lock. The
reads that matching needs are one statement (``neighbourhood``); the writes of one domain
step are one statement on PostgreSQL (data-modifying CTEs) and on SQLite one per kind of
write for up to 16 rows (a multi-row INSERT, an UPDATE ... FROM a list of rows), a new
request and the moves of the requests it meets being one (an upsert). A waiting submission
costs five statements on SQLite and four on PostgreSQL, a pair formed or a group joined six
on SQLite, the commit included, for a person already stored (see docs/benchmarks.md).
SQLite 3.35 or later (RETURNING, UPDATE ... FROM). All times come from the caller's clock,
never from SQL.

The statements of that hot path (locks, the read, the writes of a domain step, a person's
row, SQLite's ``BEGIN IMMEDIATE``) are Core statements compiled once per dialect and run on
the driver's cursor (``compiled.py``); on PostgreSQL the locks and the read go to the server
in one round trip (psycopg's pipeline mode). Everything else goes through
``Connection.execute``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import select as sockets
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from sqlalchemy import (
    BigInteger,
    BindParameter,
    Executable,
    Select,
    and_,
    bindparam,
    cast,
    create_engine,
    delete,
    event,
    exists,
    func,
    insert,
    literal_column,
    null,
    or_,
    select,
    text,
    tuple_,
    union,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, InvalidatePoolError, OperationalError

from ..errors import DuplicateEvent, Unavailable
from ..hookspecs import hookimpl
from ..model import (
    LIVE,
    SUPERSEDED,
    Changes,
    Left,
    Neighbourhood,
    NewOutbox,
    OpenRequest,
    OutboxItem,
    PersonInfo,
    ResultChange,
    Status,
    StoredGroup,
    StoredRequest,
    StoredResult,
    Wish,
    invites_from_json,
    invites_to_json,
)
from ..pacing import PaceBook
from .compiled import Prepared, RowWrites, Runner
from .schema import NAME_MAX, UTCDateTime
from .sql_calendars import CalendarReads, CalendarWork
from .sql_digests import DigestReads, DigestWork
from .sql_links import LinkReads, LinkWork
from .sql_nearby import BoardReads, NearbyWork
from .sql_operations import OperationsStore
from .sql_pacing import PacingStore
from .sql_privacy import PrivacyReads, PrivacyWork
from .sql_questions import QuestionReads, QuestionWork
from .sql_rows import (
    IGNORES,
    MAX_WINDOW,
    OUTBOX,
    PEOPLE,
    REQUESTS,
    RESULT_COLUMNS,
    RESULTS,
    STATUS,
    request_of,
    result_columns,
    result_of,
    still_leased,
)
from .sql_standing import StandingReads, StandingWork
from .sql_stats import StatsReads, StatsWork
from .sqlite_checkpoints import Checkpointer

log = logging.getLogger(__name__)

ZERO = timedelta(0)
#: SQLite: at most this many connections are kept for the next units of work.
KEEP_CONNECTIONS = 4
REQUEST_COLUMNS = (
    "id", "person", "pool", "origin", "activity", "earliest", "latest", "deadline",
    "length_minutes", "max_size", "min_size", "created_at", "result_id", "status", "event_key",
    "account",
)  # fmt: skip
#: What a new request is inserted with from its wish (the columns ``person`` to ``created_at``).
WISH_COLUMNS = REQUEST_COLUMNS[1:12]
NEIGHBOUR_RESULT_COLUMNS = ("id", "status", "start", "end", "max_size", "size", "due_at")


def lock_key(*parts: str) -> int:
    """The 64-bit advisory lock key of ``parts`` (``("pool", pool, activity)``)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class SQLStorage(
    StandingReads, BoardReads, PrivacyReads, LinkReads, PacingStore, OperationsStore,
    QuestionReads, CalendarReads, StatsReads, DigestReads,
):  # fmt: skip
    """Requests, results, people, ignore lists and the outbox in one SQL database."""

    def __init__(self, url: str, pool_size: int = 5, default_timezone: str = "UTC") -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.engine = create_engine(
                url, connect_args={"timeout": 30, "check_same_thread": False}
            )
            event.listen(self.engine, "connect", sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_begin)
            # The log copied back by a thread of its own, not inside some submission's
            # COMMIT; units of work count their commits (``_sqlite_transaction``), and so do
            # SQLAlchemy's transactions (the sweep, deliveries).
            self._checkpoints: Checkpointer | None = Checkpointer(self._checkpoint_connection)
            event.listen(self.engine, "commit", lambda _conn: self._committed())
        else:
            self.engine = create_engine(
                url,
                pool_size=pool_size,
                max_overflow=pool_size,
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
                    "options": "-c lock_timeout=5000 "
                    "-c idle_in_transaction_session_timeout="
                    "15000 -c statement_timeout=30000",
                },
            )
            dialect = self.engine.dialect
            event.listen(
                self.engine, "checkout", lambda dbapi, _record, _proxy: pg_alive(dialect, dbapi)
            )
            self._checkpoints = None
        self._insert = sqlite_insert if self.is_sqlite else pg_insert
        # Reads that never write: on SQLite no BEGIN, so they take no write lock.
        self.reader = self.engine.execution_options(iwant_readonly=True)
        self._hot: _Hot | None = None
        # SQLite serves one process: its delivery budgets are kept here (see sql_pacing).
        self._book = PaceBook() if self.is_sqlite else None
        # SQLite: connections kept between units of work (``_sqlite_transaction``).
        self._kept: list[tuple[Connection, Runner]] = []
        self._keeping = threading.Lock()
        self._closed = False
        # PostgreSQL: result ids taken from the sequence ahead (``result_id``).
        self._result_ids: list[int] = []
        self._result_ids_lock = threading.Lock()

    def result_id(self, take: Callable[[], list[int]]) -> int:
        """PostgreSQL: an id for a new result, from those ``take`` drew from the results'
        sequence ahead (RESULT_IDS of them at once): a group forming then needs no round trip
        of its own for its result's id, whose row goes in the step's one statement."""
        with self._result_ids_lock:
            if not self._result_ids:
                self._result_ids = sorted(take(), reverse=True)
            return self._result_ids.pop()

    def hot(self) -> _Hot:
        """The hot statements compiled for this database (once, after the first connect)."""
        if self._hot is None:
            self._hot = _Hot(self.engine.dialect, self.is_sqlite)
        return self._hot

    # -- lifecycle ---------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision; safe with several processes."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(resources.files("iwant_engine") / "migrations"))
        with self._guard(), self.engine.begin() as conn:
            if not self.is_sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key("migrate")})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def close(self) -> None:
        self._closed = True  # a unit of work still running keeps no connection after this
        if self._checkpoints is not None:
            self._checkpoints.close()
        self.release_connections()
        self.engine.dispose()

    def _committed(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.committed()

    def _checkpoint_connection(self) -> Any:
        """SQLite: a driver connection of the checkpoint thread's own, made as the pool makes
        its connections but outside it: no unit of work's, so no pool event sees it (the
        benchmark counts the statements of connections checked out)."""
        dialect = self.engine.dialect
        args, kwargs = dialect.create_connect_args(self.engine.url)
        connection = dialect.connect(*args, **kwargs)
        sqlite_on_connect(connection, None)
        return connection

    def release_connections(self) -> None:
        """Give the connections kept for the next units of work back to the pool."""
        while self._kept:
            conn, _ = self._kept.pop()
            conn.close()

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
    def transaction(self) -> Iterator[SQLWork]:
        if self.is_sqlite:
            with self._sqlite_transaction() as work:
                yield work
            return
        with self._guard(), self.engine.connect() as conn:
            work = SQLWork(self, conn)
            try:
                with conn.begin():
                    yield work
                    work.flush()
            finally:
                work.runner.restore()  # before the connection goes back to the pool

    @contextmanager
    def _sqlite_transaction(self) -> Iterator[SQLWork]:
        """A unit of work on SQLite, on a connection kept from an earlier one when there is
        one: checking a connection out of the pool and back in costs more than the work of
        a typical submission's statements. Only SQLite: a kept connection skips the pool's
        checkout check (``pg_alive``), which PostgreSQL needs after an outage. A connection
        whose unit of work failed is closed, not kept.

        The transaction is SQLite's own, begun and ended on the work's cursor (no
        SQLAlchemy transaction around it, which costs as much again). A statement the work
        runs through SQLAlchemy (not a hot one) makes SQLAlchemy begin one of its own on
        paper; it is ended after the COMMIT, where ending it does nothing on the database."""
        with self._guard():
            try:
                conn, runner = self._kept.pop()
            except IndexError:
                conn = self.engine.connect().execution_options(iwant_own_begin=True)
                runner = Runner(conn)
            kept = False
            try:
                runner.command("BEGIN IMMEDIATE")
                try:
                    yield SQLWork(self, conn, runner)
                    runner.command("COMMIT")
                    self._committed()
                except BaseException:
                    with suppress(Exception):  # no transaction left, or the connection is gone
                        runner.command("ROLLBACK")
                    raise
                if conn.in_transaction():
                    conn.rollback()
                with self._keeping:
                    kept = not self._closed and len(self._kept) < KEEP_CONNECTIONS
                    if kept:
                        self._kept.append((conn, runner))
            finally:
                if not kept:
                    conn.close()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        # Ended with COMMIT, not the pool's ROLLBACK: psycopg forgets every prepared
        # statement of a connection on ROLLBACK, and the hot statements are prepared.
        if self.is_sqlite:  # no transaction at all (see _sqlite_begin)
            with self._guard(), self.reader.connect() as conn:
                yield conn
            return
        with self._guard(), self.reader.begin() as conn:
            yield conn

    # -- reads -------------------------------------------------------------------------------

    def person(self, person: str) -> PersonInfo | None:
        return self.people([person]).get(person)

    def people(self, ids: Iterable[str]) -> dict[str, PersonInfo]:
        with self._read() as conn:
            return _people(conn.execute, ids)

    def open_requests(self, person: str, now: datetime) -> list[OpenRequest]:
        with self._read() as conn:
            rows = conn.execute(
                select(
                    REQUESTS,
                    RESULTS.c.start,
                    RESULTS.c.end,
                    func.coalesce(RESULTS.c.status, REQUESTS.c.status).label("rs"),
                )
                .join(RESULTS, RESULTS.c.id == REQUESTS.c.result_id, isouter=True)
                .where(
                    REQUESTS.c.person == person,
                    _live(REQUESTS.c.status),
                    REQUESTS.c.latest > now,
                )
                .order_by(REQUESTS.c.earliest, REQUESTS.c.id)
            ).all()
            groups = [r.result_id for r in rows if r.rs == Status.MATCHED]
            names: dict[int, list[str]] = {}
            if groups:
                for result_id, who, name in conn.execute(
                    select(REQUESTS.c.result_id, REQUESTS.c.person, PEOPLE.c.display_name)
                    .join(PEOPLE, PEOPLE.c.id == REQUESTS.c.person, isouter=True)
                    .where(REQUESTS.c.result_id.in_(groups), REQUESTS.c.person != person)
                    .order_by(REQUESTS.c.id)
                ):
                    names.setdefault(result_id, []).append(name or who)
        return [
            OpenRequest(
                r.id,
                r.activity,
                Status(r.rs),
                r.earliest,
                r.latest,
                r.deadline,
                r.length_minutes,
                r.start,
                r.end,
                tuple(names.get(r.result_id, ())),
                r.pool,
            )
            for r in rows
        ]

    def ignored(self, person: str) -> list[str]:
        with self._read() as conn:
            return list(
                conn.scalars(
                    select(IGNORES.c.ignored)
                    .where(IGNORES.c.person == person)
                    .order_by(IGNORES.c.ignored)
                )
            )

    def request_by_event(self, event_key: str) -> StoredRequest | None:
        with self._read() as conn:
            row = conn.execute(select(REQUESTS).where(REQUESTS.c.event_key == event_key)).first()
        return None if row is None else request_of(row)

    def has_unreplied(self, platform: str, before: datetime) -> bool:
        with self._read() as conn:
            return conn.execute(_unreplied(platform, before).limit(1)).first() is not None

    def mark_replied(self, request_ids: Iterable[int], now: datetime) -> None:
        rows = [{"b_id": i, "b_now": now} for i in request_ids]
        if rows:
            with self._guard(), self.engine.begin() as conn:
                conn.execute(_MARK_REPLIED, rows)

    def has_due(self, now: datetime) -> bool:
        with self._read() as conn:
            if conn.scalar(_due_results(now).limit(1)) is not None:
                return True
            waiting = _due_waiting(now).with_only_columns(REQUESTS.c.id).limit(1)
            return conn.scalar(waiting) is not None

    def snapshot(self) -> list[tuple[StoredRequest, StoredResult]]:
        with self._read() as conn:
            rows = conn.execute(
                select(REQUESTS, *result_columns("r_"))
                .join(RESULTS, RESULTS.c.id == REQUESTS.c.result_id, isouter=True)
                .order_by(REQUESTS.c.id)
            ).all()
        pairs = [(request_of(r), r) for r in rows]
        return [(q, q.own_result() if r.r_id is None else result_of(r, "r_")) for q, r in pairs]

    def counts(self) -> dict[str, int]:
        with self._read() as conn:
            counts = {
                str(status): int(n)
                for status, n in conn.execute(
                    select(REQUESTS.c.status, func.count()).group_by(REQUESTS.c.status)
                )
            }
            counts["outbox_pending"] = int(
                conn.scalar(
                    select(func.count())
                    .select_from(OUTBOX)
                    .where(OUTBOX.c.delivered_at.is_(None), OUTBOX.c.failed_at.is_(None))
                )
                or 0
            )
        return counts

    # -- the outbox --------------------------------------------------------------------------

    def claim_outbox(
        self,
        platform: str,
        now: datetime,
        limit: int = 50,
        lease: timedelta = timedelta(seconds=60),
    ) -> list[OutboxItem]:
        due = and_(
            OUTBOX.c.platform == platform,
            OUTBOX.c.delivered_at.is_(None),
            OUTBOX.c.failed_at.is_(None),
            OUTBOX.c.next_attempt_at <= now,
        )
        with self._read() as conn:
            if conn.scalar(select(OUTBOX.c.id).where(due).limit(1)) is None:
                return []  # the common case for a poller: no write transaction at all
        free = or_(OUTBOX.c.claimed_until.is_(None), OUTBOX.c.claimed_until <= now)
        # One person's notes go in the order they were written: a row waits while an older
        # one to the same recipient is pending and not claimable now (given back by pacing,
        # retrying, or being sent by another process).
        older = _OLDER
        in_order = ~exists().where(
            older.c.recipient == OUTBOX.c.recipient,
            older.c.id < OUTBOX.c.id,
            older.c.delivered_at.is_(None),
            older.c.failed_at.is_(None),
            or_(older.c.next_attempt_at > now, older.c.claimed_until > now),
        )
        ids: Select[tuple[int]] = (
            select(OUTBOX.c.id).where(due, free, in_order).order_by(OUTBOX.c.id).limit(limit)
        )
        if not self.is_sqlite:
            ids = ids.with_for_update(skip_locked=True)
        with self._guard(), self.engine.begin() as conn:
            claimed = list(conn.scalars(ids))
            if not claimed:
                return []
            superseded = list(conn.scalars(_superseded(claimed, now)))
            if superseded:
                claimed = [i for i in claimed if i not in set(superseded)]
                if not claimed:
                    return []
            rows = conn.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id.in_(claimed))
                .values(claimed_until=now + lease, attempts=OUTBOX.c.attempts + 1)
                .returning(OUTBOX)
            ).all()
        items = [
            OutboxItem(
                r.id,
                r.recipient,
                r.body,
                list(r.buttons or []),
                r.origin,
                r.attempts,
                r.group_members,
                r.chart,
                invites_from_json(r.invites),
            )  # fmt: skip
            for r in rows
        ]
        return sorted(items, key=lambda item: item.id)

    def ack(self, outbox_id: int, now: datetime) -> None:
        with self._guard(), self.engine.begin() as conn:
            conn.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id == outbox_id)
                .values(delivered_at=now, claimed_until=None, error=None)
            )

    def fail(
        self,
        outbox_id: int,
        now: datetime,
        error: str,
        retry_at: datetime | None,
        lease: datetime | None = None,
    ) -> None:
        values: dict[str, Any] = {"error": error[:500], "claimed_until": None}
        if retry_at is None:
            values["failed_at"] = now
        else:
            values["next_attempt_at"] = retry_at
        with self._guard(), self.engine.begin() as conn:
            conn.execute(update(OUTBOX).where(still_leased(outbox_id, lease)).values(**values))


class SQLWork(
    StandingWork, NearbyWork, PrivacyWork, LinkWork, QuestionWork, CalendarWork, StatsWork,
    DigestWork,
):  # fmt: skip
    """A unit of work: one transaction on one connection."""

    def __init__(self, storage: SQLStorage, conn: Connection, runner: Runner | None = None) -> None:
        self.storage, self.conn = storage, conn
        self.pg = not storage.is_sqlite
        self.hot = storage.hot()
        self.runner = runner or Runner(conn)
        self._locks: list[int] = []  # asked for, taken before the next statement
        # PostgreSQL: new results (``add_result``) not written yet, with their ids: written
        # in the next step's statement, or before any other statement.
        self._results: list[dict[str, Any]] = []

    def _take_locks(self) -> None:
        if self._locks:
            keys, self._locks = self._locks, []
            self.runner.execute(self.hot.locks[len(keys)], {f"k{i}": k for i, k in enumerate(keys)})
        if self._results:
            self.flush()

    def flush(self) -> None:
        """Write the new results not written yet (PostgreSQL)."""
        rows, self._results = self._results, []
        if rows:
            self.runner.executemany(self.hot.insert_result_id, rows)

    def _run(self, stmt: Executable, params: Any = None) -> Any:
        self._take_locks()
        return self.conn.execute(stmt, params)

    # -- locks and reads ---------------------------------------------------------------------

    def lock(self, *key: str) -> None:
        if self.pg:
            self._locks.append(lock_key(*key))

    def neighbourhood(
        self, wish: Wish, now: datetime, limit: int, margin: timedelta = ZERO
    ) -> Neighbourhood:
        query = self.hot.neighbourhood(limit)
        # On PostgreSQL the transaction's BEGIN, the pending locks and the read go in one
        # round trip (pipeline); the server runs the read after the locks are held, on a
        # snapshot taken then (READ COMMITTED: each statement's own).
        with self.runner.pipeline():
            self._take_locks()
            self.runner.execute(query, _neighbourhood_params(wish, now, margin))
        rows = self.runner.fetch(query)
        me: PersonInfo | None = None
        mine: list[StoredRequest] = []
        candidates: list[StoredRequest] = []
        members: dict[int, tuple[StoredResult, list[StoredRequest]]] = {}
        people: dict[str, PersonInfo] = {}
        ignored: list[tuple[str, str]] = []
        # Columns: kind, REQUEST_COLUMNS (1-16), other (17: the ignored one, or the person's
        # canonical id), NEIGHBOUR_RESULT_COLUMNS (18-24), the person's name, zone and platform
        # zone (25-27). A row of the person has one of their live requests, or none (id NULL).
        for r in rows:
            kind = r[0]
            if kind == _ME:
                me = PersonInfo(r[2], r[25], r[26], r[27], r[17])
                if r[1] is not None:
                    mine.append(_request_at(r))
                continue
            if kind == _IGNORE:
                ignored.append((r[2], r[17]))
                continue
            request = _request_at(r)
            if r[25] is not None:
                people[r[2]] = PersonInfo(r[2], r[25], r[26], r[27])
            if kind == _CANDIDATE:
                candidates.append(request)
            else:
                group = StoredResult(
                    r[18], r[3], r[5], STATUS[r[19]], r[20], r[21], r[22], r[23], r[24]
                )
                members.setdefault(r[13], (group, []))[1].append(request)
        if me is not None:
            people[me.id] = me
        here = {wish.person, *(c.person for c in candidates)}
        here.update(m.person for _, ms in members.values() for m in ms)
        apart = {frozenset(pair) for pair in ignored if pair[1] in here}
        groups = sorted(
            (
                StoredGroup(res, tuple(sorted(ms, key=lambda m: m.id)))
                for res, ms in members.values()
            ),
            key=lambda g: (g.result.start, g.result.id),
        )
        mine.sort(key=lambda m: (m.earliest, m.id))
        candidates.sort(key=lambda c: (c.latest, c.id))
        return Neighbourhood(
            me, tuple(mine), tuple(candidates), tuple(groups), people, frozenset(apart)
        )

    def request(self, request_id: int) -> StoredRequest | None:
        row = self._run(select(REQUESTS).where(REQUESTS.c.id == request_id)).first()
        return None if row is None else request_of(row)

    def group(self, result_id: int) -> StoredGroup | None:
        found = self._groups([result_id])
        return found[0] if found else None

    def _groups(self, result_ids: Sequence[int]) -> list[StoredGroup]:
        """Results with their members, in the order of ``result_ids``."""
        rows = self._run(
            select(REQUESTS, *result_columns("r_"))
            .select_from(RESULTS.join(REQUESTS, REQUESTS.c.result_id == RESULTS.c.id, isouter=True))
            .where(RESULTS.c.id.in_(result_ids))
            .order_by(REQUESTS.c.id)
        ).all()
        found: dict[int, tuple[StoredResult, list[StoredRequest]]] = {}
        for r in rows:
            entry = found.setdefault(r.r_id, (result_of(r, "r_"), []))
            if r.id is not None:
                entry[1].append(request_of(r))
        return [StoredGroup(found[i][0], tuple(found[i][1])) for i in result_ids if i in found]

    def people(self, ids: Iterable[str]) -> dict[str, PersonInfo]:
        return _people(self._run, ids)

    def unreplied(self, platform: str, before: datetime, limit: int) -> list[StoredRequest]:
        stmt = _unreplied(platform, before).limit(limit)
        if self.pg:
            stmt = stmt.with_for_update(skip_locked=True)
        return [request_of(r) for r in self._run(stmt)]

    def due(self, now: datetime, limit: int) -> list[StoredGroup]:
        # Pool locks first, then rows: the order a submit takes them (rows first could
        # deadlock with a submit). A pool busy with a submit is left for the next round.
        both = union(
            select(RESULTS.c.pool, RESULTS.c.activity).where(
                _live(RESULTS.c.status), RESULTS.c.due_at <= now
            ),
            _due_waiting(now).with_only_columns(REQUESTS.c.pool, REQUESTS.c.activity),
        ).subquery()
        keys = [
            (pool, activity)
            for pool, activity in self._run(
                select(both.c.pool, both.c.activity)
                .order_by(both.c.pool, both.c.activity)
                .limit(limit)
            )
        ]
        if not keys:
            return []
        if self.pg:
            tries = self._run(
                select(*(func.pg_try_advisory_xact_lock(lock_key("pool", *k)) for k in keys))
            ).one()
            keys = [k for k, got in zip(keys, tries, strict=True) if got]
            if not keys:
                return []
        claim = (
            _due_results(now)
            .where(tuple_(RESULTS.c.pool, RESULTS.c.activity).in_(keys))
            .order_by(RESULTS.c.due_at, RESULTS.c.id)
            .limit(limit)
        )
        waiting = (
            _due_waiting(now)
            .where(tuple_(REQUESTS.c.pool, REQUESTS.c.activity).in_(keys))
            .order_by(REQUESTS.c.deadline, REQUESTS.c.id)
            .limit(limit)
        )
        if self.pg:
            claim = claim.with_for_update(skip_locked=True)
            waiting = waiting.with_for_update(skip_locked=True)
        ids = list(self._run(claim).scalars())
        found = self._groups(ids) if ids else []
        alone = (request_of(r) for r in self._run(waiting))
        found += [StoredGroup(q.own_result(), (q,)) for q in alone]
        found.sort(key=_by_due)
        return found[:limit]

    # -- writes ------------------------------------------------------------------------------

    def apply(self, changes: Changes, now: datetime) -> int | None:
        try:
            return self._apply(changes, now)
        except IntegrityError as err:
            if "event_key" in str(err.orig):
                raise DuplicateEvent(changes.request.event_key if changes.request else "") from err
            raise

    def _apply(self, changes: Changes, now: datetime) -> int | None:
        new, self._results = self._results, []  # PostgreSQL: into the step's statement
        self._take_locks()
        run, hot = self.runner, self.hot
        if changes.replied:
            replied = [{"b_id": i, "b_now": now} for i in changes.replied]
            if self.pg:
                run.executemany(hot.mark_replied.one, replied)
            else:
                _write(run, hot.mark_replied, replied)
        results = [_result_values(change, now, change.id) for change in changes.results]
        request = None
        if changes.request is not None:
            nr, w = changes.request, changes.request.wish
            request = (
                {
                    "person": w.person,
                    "pool": w.pool,
                    "origin": nr.origin,
                    "activity": w.activity,
                    "earliest": w.earliest,
                    "latest": w.latest,
                    "deadline": w.deadline,
                    "length_minutes": int(w.length.total_seconds() // 60),
                    "max_size": w.max_size,
                    "min_size": w.min_size,
                    "created_at": nr.created_at,
                    "status": nr.status,
                    "event_key": nr.event_key,
                    "replied_at": nr.created_at if nr.replied else None,
                    "account": nr.account,
                },
                nr.result,
            )
        moves = [
            {"b_id": m.request_id, "b_result": m.result, "b_status": m.status}
            for m in changes.moves
            if not isinstance(m.result, ResultChange)
        ]
        fresh = [m for m in changes.moves if isinstance(m.result, ResultChange)]
        retired = [
            {"b_id": result_id, "b_status": status, "b_now": now}
            for result_id, status in changes.retired
        ]
        charted = [o for o in changes.outbox if o.chart is not None]  # a digest: rare
        if charted:
            self._run(insert(OUTBOX), [_outbox_values(o, now) for o in charted])
        outbox = [
            {
                "recipient": o.recipient,
                "platform": o.platform,
                "body": o.body,
                "buttons": o.buttons or None,
                "origin": o.origin,
                "created_at": now,
                "next_attempt_at": now,
                "attempts": 0,
                "group_members": o.group_members,
                "topic": o.topic,
                "invites": invites_to_json(o.invites),
            }
            for o in changes.outbox
            if o.chart is None
        ]
        # A request moved to a new result (leaving a group, a dissolved group): that result
        # first, so that every move points to a stored one. Never on a submission's path.
        for move in fresh:
            assert isinstance(move.result, ResultChange)
            target = self._new_result(move.result, now, move.left)
            moves.append({"b_id": move.request_id, "b_result": target, "b_status": move.status})
        if self.pg:
            return self._apply_prepared(new, results, request, moves, retired, outbox, now)
        # SQLite: one statement per kind of write, its rows in one (RowWrites, up to 16).
        if results:
            _write(run, hot.update_result, results)
        request_id = None
        if request is not None:
            values, result = request
            if isinstance(result, ResultChange):
                result = self._new_result(result, now)
            row = {**values, "result_id": result}
            if moves and len(moves) < hot.insert_moving.most and _distinct(moves):
                request_id, moves = self._insert_moving(row, moves), []
            else:
                request_id = int(run.scalar(hot.insert_request, row))
        if moves:
            _write(run, hot.move, moves)
        if retired:
            _write(run, hot.retire, retired)
        if outbox:
            run.write(hot.insert_outbox, outbox)
        return request_id

    def _insert_moving(self, row: dict[str, Any], moves: list[dict[str, Any]]) -> int:
        """SQLite: insert the new request ``row`` and move the stored requests of ``moves``
        in one statement (a group formed: the new request and its partners). Each move is a
        row of that INSERT with the id of its request, which is taken, so ``ON CONFLICT (id)
        DO UPDATE`` sets that request's result_id and status and nothing else (the new
        request's values only fill in the columns that may not be NULL, and are dropped). A
        move of a request that is not stored would insert its row instead; its made-up
        ``created_at`` shows that, and the step fails (rolled back) rather than store it."""
        rows = [{**row, "id": None}]
        rows += [
            {
                **row,
                "id": m["b_id"],
                "result_id": m["b_result"],
                "status": m["b_status"],
                "event_key": None,
                "created_at": _NOT_STORED,
            }
            for m in moves
        ]
        stmt = self.hot.insert_moving.statement(len(rows))
        self.runner.execute_rows(stmt, rows)
        moved = {m["b_id"] for m in moves}
        new: list[int] = []
        for request_id, created_at in self.runner.fetch(stmt):
            if request_id not in moved:
                new.append(request_id)
            elif created_at == _NOT_STORED:
                raise KeyError(f"no request {request_id} to move")
        (request_id,) = new
        return int(request_id)

    def add_result(self, result: ResultChange, now: datetime) -> int:
        if not self.pg:
            return self._new_result(result, now)
        take = functools.partial(self.runner.rows, self.hot.result_ids, {})
        values = {
            **_result_values(result, now),
            "id": self.storage.result_id(lambda: [int(row[0]) for row in take()]),
        }
        self._results.append(values)
        return int(values["id"])

    def _new_result(self, change: ResultChange, now: datetime, left: Left | None = None) -> int:
        """Insert a result; ``left``: the group a member leaving it left (``Move.left``)."""
        self._take_locks()
        values = _result_values(change, now)
        if left is None:
            return int(self.runner.scalar(self.hot.insert_result, values))
        values["left_group"] = {  # a member leaving a formed group: rare, a plain statement
            "start": left.start.isoformat(),
            "end": left.end.isoformat(),
            "requests": list(left.requests),
        }
        return int(self._run(_INSERT_RESULT.values(values)).scalar_one())

    def _apply_prepared(
        self,
        new: list[dict[str, Any]],
        results: list[dict[str, Any]],
        request: tuple[dict[str, Any], int | ResultChange | None] | None,
        moves: list[dict[str, Any]],
        retired: list[dict[str, Any]],
        outbox: list[dict[str, Any]],
        now: datetime,
    ) -> int | None:
        """PostgreSQL: the writes of a domain step as one statement of fixed text, its rows
        passed as arrays, so the server keeps it prepared (see ``PG_STEP``); a request alone
        (one that waits) as a plain INSERT. ``new``: results added (``add_result``), the one
        of a group forming in the statement (plain values: cheaper than arrays), any more
        before it."""
        if len(new) > 1:  # no domain step forms two groups
            self.runner.executemany(self.hot.insert_result_id, new[:-1])
            new = new[-1:]
        if request is not None and isinstance(request[1], ResultChange):
            request = (request[0], self._new_result(request[1], now))  # no domain step's
        if request is not None and not (new or results or moves or retired or outbox):
            values, target = request
            row = {**values, "result_id": target}
            return int(self.runner.scalar(self.hot.insert_request, row))
        params = {
            "now": _naive(now),
            **{f"n_{name}": _naive(new[0][name]) if new else None for name in _NEW_RESULT},
            "u_id": [r["b_id"] for r in results],
            **{
                f"u_{name}": [_naive(r[name]) for r in results]
                for name in ("status", "start", "end", "max_size", "size", "due_at")
            },
            "m_id": [m["b_id"] for m in moves],
            "m_result": [m["b_result"] for m in moves],
            "m_status": [str(m["b_status"]) for m in moves],
            "t_id": [r["b_id"] for r in retired],
            "t_status": [str(r["b_status"]) for r in retired],
            **{
                f"o_{name}": [o[name] for o in outbox]
                for name in ("recipient", "platform", "body", "origin")
            },
            "o_buttons": [_json(o["buttons"]) for o in outbox],
            "o_members": [_json(o["group_members"]) for o in outbox],
            "o_topic": [o["topic"] for o in outbox],
            "o_invites": [_json(o["invites"]) for o in outbox],
            "with_request": request is not None,
        }
        values, target = request if request is not None else ({}, None)
        for name in (*WISH_COLUMNS, "event_key", "replied_at", "account"):
            params[name] = _naive(values.get(name))
        params["status"] = str(values.get("status", Status.PENDING))
        params["result_id"] = target
        rows = self.runner.rows(self.hot.pg_step, params)
        return int(rows[0][0]) if rows else None

    def save_person(self, person: PersonInfo, *, keep_timezone: bool = True) -> None:
        self._take_locks()
        stmt = self.hot.save_person if keep_timezone else self.hot.save_person_zone
        self.runner.execute(stmt, _person_values(person))

    def add_person(self, person: PersonInfo) -> None:
        self._take_locks()
        self.runner.execute(self.hot.add_person, _person_values(person))

    def set_timezone(self, person: str, zone: str | None) -> None:
        self._run(update(PEOPLE).where(PEOPLE.c.id == person).values(timezone=zone))

    def add_ignore(self, person: str, ignored: str, now: datetime) -> bool:
        stmt = self.storage._insert(IGNORES).values(person=person, ignored=ignored, created_at=now)
        returning = stmt.on_conflict_do_nothing().returning(IGNORES.c.person)
        return self._run(returning).first() is not None

    def remove_ignore(self, person: str, ignored: str) -> bool:
        stmt = delete(IGNORES).where(IGNORES.c.person == person, IGNORES.c.ignored == ignored)
        return self._run(stmt.returning(IGNORES.c.person)).first() is not None


# -- statements --------------------------------------------------------------------------------

_ME, _CANDIDATE, _MEMBER, _IGNORE = range(4)
# "SELECT pg_advisory_xact_lock(:k0), ..." for 1 to 4 keys at once.
_LOCKS = {
    n: select(
        *(func.pg_advisory_xact_lock(bindparam(f"k{i}", type_=BigInteger())) for i in range(n))
    )
    for n in range(1, 5)
}


def _live(status: Any) -> Any:
    """``status IN ('PENDING', 'MATCHED')`` with the values in the SQL text: a statement
    with an expanding IN list would be rendered anew on every execution."""
    return status.in_([literal_column(f"'{s}'") for s in LIVE])


def _unreplied(platform: str, before: datetime) -> Select[Any]:
    """Requests of ``platform``'s people made before ``before`` whose answer never went out."""
    return (
        select(REQUESTS)
        .where(
            REQUESTS.c.replied_at.is_(None),
            REQUESTS.c.created_at < before,
            func.coalesce(REQUESTS.c.account, REQUESTS.c.person).startswith(
                platform + ":", autoescape=True
            ),
        )
        .order_by(REQUESTS.c.created_at, REQUESTS.c.id)
    )


#: The outbox's other rows, for a row's older and newer ones. Made once: an alias builds its
#: column collection anew each time it is made (0.6 ms a statement, every delivery round).
_OLDER = OUTBOX.alias("older")
_NEWER = OUTBOX.alias("newer")


def _superseded(claimed: list[int], now: datetime) -> Any:
    """Of the ``claimed`` rows, those with a topic and a newer undelivered row of the same
    recipient and topic: marked delivered (``SUPERSEDED``) instead of sent; their ids."""
    newer = _NEWER
    return (
        update(OUTBOX)
        .where(
            OUTBOX.c.id.in_(claimed),
            OUTBOX.c.topic.is_not(None),
            exists().where(
                newer.c.recipient == OUTBOX.c.recipient,
                newer.c.topic == OUTBOX.c.topic,
                newer.c.id > OUTBOX.c.id,
                newer.c.delivered_at.is_(None),
                newer.c.failed_at.is_(None),
            ),
        )
        .values(delivered_at=now, error=SUPERSEDED)
        .returning(OUTBOX.c.id)
    )


#: PostgreSQL: result ids drawn from the sequence at once (``SQLStorage.result_id``).
RESULT_IDS = 32


def _by_due(group: StoredGroup) -> tuple[datetime, int, int]:
    result = group.result
    assert result.due_at is not None
    return result.due_at, result.id, group.members[0].id if group.members else 0


def _due_results(now: datetime) -> Select[tuple[int]]:
    return select(RESULTS.c.id).where(_live(RESULTS.c.status), RESULTS.c.due_at <= now)


def _due_waiting(now: datetime) -> Select[Any]:
    """Waiting requests (no result stored) whose deadline passed (``ix_requests_waiting``)."""
    return select(REQUESTS).where(
        REQUESTS.c.status == str(Status.PENDING), REQUESTS.c.deadline <= now
    )


def _naive(value: Any) -> Any:
    """An aware datetime as the naive UTC value the tables hold, a status as its text;
    anything else as it is."""
    if isinstance(value, Status):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _outbox_values(o: NewOutbox, now: datetime) -> dict[str, Any]:
    """An outbox row's values, for a plain insert (one with a chart)."""
    return {
        "recipient": o.recipient, "platform": o.platform, "body": o.body,
        "buttons": o.buttons or None, "origin": o.origin, "created_at": now,
        "next_attempt_at": now, "attempts": 0, "group_members": o.group_members,
        "topic": o.topic, "chart": o.chart, "invites": invites_to_json(o.invites),
    }  # fmt: skip


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


# PostgreSQL's writes of a domain step: fixed text whatever the number of rows (arrays and
# unnest), so each is prepared once per connection. Each row changes at most once in a step,
# so no two parts of one statement touch the same row (they all see one snapshot).
_REQUEST_FIELDS = (
    "CAST(:person AS varchar), CAST(:pool AS varchar), CAST(:origin AS varchar), "
    "CAST(:activity AS varchar), CAST(:earliest AS timestamp), CAST(:latest AS timestamp), "
    "CAST(:deadline AS timestamp), CAST(:length_minutes AS int), CAST(:max_size AS int), "
    "CAST(:min_size AS int), CAST(:created_at AS timestamp), CAST(:status AS varchar), "
    "CAST(:event_key AS varchar), CAST(:replied_at AS timestamp), CAST(:account AS varchar)"
)
_REQUEST_INSERT = (
    "INSERT INTO requests (person, pool, origin, activity, earliest, latest, deadline, "
    "length_minutes, max_size, min_size, created_at, status, event_key, replied_at, account, "
    "result_id) "
)
PG_STEP = text(
    'WITH g AS (INSERT INTO results (id, pool, activity, status, start, "end", max_size, size, '
    "due_at, updated_at) SELECT CAST(:n_id AS int), CAST(:n_pool AS varchar), "
    "CAST(:n_activity AS varchar), CAST(:n_status AS varchar), CAST(:n_start AS timestamp), "
    "CAST(:n_end AS timestamp), CAST(:n_max_size AS int), CAST(:n_size AS int), "
    "CAST(:n_due_at AS timestamp), CAST(:n_updated_at AS timestamp) "
    "WHERE CAST(:n_id AS int) IS NOT NULL), "
    'u AS (UPDATE results SET status = x.status, start = x.start, "end" = x.e, '
    "max_size = x.max_size, size = x.size, due_at = x.due_at, "
    "updated_at = CAST(:now AS timestamp) "
    "FROM unnest(CAST(:u_id AS int[]), CAST(:u_status AS varchar[]), "
    "CAST(:u_start AS timestamp[]), CAST(:u_end AS timestamp[]), CAST(:u_max_size AS int[]), "
    "CAST(:u_size AS int[]), CAST(:u_due_at AS timestamp[])) "
    "AS x(id, status, start, e, max_size, size, due_at) WHERE results.id = x.id), "
    "m AS (UPDATE requests SET result_id = y.result_id, status = y.status "
    "FROM unnest(CAST(:m_id AS int[]), CAST(:m_result AS int[]), "
    "CAST(:m_status AS varchar[])) AS y(id, result_id, status) WHERE requests.id = y.id), "
    "t AS (UPDATE results SET status = z.status, due_at = NULL, "
    "updated_at = CAST(:now AS timestamp) "
    "FROM unnest(CAST(:t_id AS int[]), CAST(:t_status AS varchar[])) AS z(id, status) "
    "WHERE results.id = z.id), "
    "o AS (INSERT INTO outbox (recipient, platform, body, buttons, origin, created_at, "
    "next_attempt_at, attempts, group_members, topic, invites) "
    "SELECT w.recipient, w.platform, w.body, CAST(w.buttons AS json), w.origin, "
    "CAST(:now AS timestamp), CAST(:now AS timestamp), 0, CAST(w.members AS json), w.topic, "
    "CAST(w.invites AS json) "
    "FROM unnest(CAST(:o_recipient AS varchar[]), CAST(:o_platform AS varchar[]), "
    "CAST(:o_body AS text[]), CAST(:o_buttons AS text[]), CAST(:o_origin AS varchar[]), "
    "CAST(:o_members AS text[]), CAST(:o_topic AS varchar[]), CAST(:o_invites AS text[])) "
    "AS w(recipient, platform, body, buttons, origin, members, topic, invites)) "
    + _REQUEST_INSERT
    + f"SELECT {_REQUEST_FIELDS}, CAST(:result_id AS int) WHERE CAST(:with_request AS boolean) "
    "RETURNING id"
)


def _distinct(rows: list[dict[str, Any]]) -> bool:
    """Whether no two of ``rows`` change the same row (``b_id``), as ``Changes`` promises."""
    return len({row["b_id"] for row in rows}) == len(rows)


def _write(run: Runner, stmt: RowWrites, rows: list[dict[str, Any]]) -> None:
    """Update the rows ``b_id`` of ``rows`` with ``stmt``; an id given twice (no domain step
    does that) is updated once per row, in order, as one statement a row would."""
    if _distinct(rows):
        run.write(stmt, rows)
    else:
        run.executemany(stmt.one, rows)


def _result_values(
    change: ResultChange, now: datetime, result_id: int | None = None
) -> dict[str, Any]:
    """A result's column values; with ``result_id``, as parameters of ``_UPDATE_RESULT``."""
    values = {name: getattr(change, name) for name in RESULT_COLUMNS if name != "id"}
    values["updated_at"] = now
    if result_id is not None:
        values["b_id"] = result_id
    return values


def _person_values(person: PersonInfo) -> dict[str, Any]:
    return {
        "id": person.id,
        "display_name": person.name[:NAME_MAX],
        "timezone": person.timezone,
        "platform_timezone": person.platform_timezone,
    }


# Statements built once; their values come as parameters (several rows: executemany).
_INSERT_RESULT = insert(RESULTS).returning(RESULTS.c.id)
_INSERT_REQUEST = insert(REQUESTS).returning(REQUESTS.c.id)
_INSERT_OUTBOX = insert(OUTBOX)
_UPDATE_RESULT = update(RESULTS).where(RESULTS.c.id == bindparam("b_id"))
_MOVE = (
    update(REQUESTS)
    .where(REQUESTS.c.id == bindparam("b_id"))
    .values(result_id=bindparam("b_result"), status=bindparam("b_status"))
)
_MARK_REPLIED = (
    update(REQUESTS)
    .where(REQUESTS.c.id == bindparam("b_id"), REQUESTS.c.replied_at.is_(None))
    .values(replied_at=bindparam("b_now"))
)
_RETIRE = (
    update(RESULTS)
    .where(RESULTS.c.id == bindparam("b_id"))
    .values(status=bindparam("b_status"), due_at=None, updated_at=bindparam("b_now"))
)


def _insert_rows(table: Any, keys: Sequence[str]) -> Callable[[int], Any]:
    """``INSERT INTO table (keys) VALUES (...), (...)`` for ``n`` rows (see ``RowWrites``)."""

    def build(n: int) -> Any:
        return insert(table).values(
            [{k: bindparam(f"{k}_{i}", type_=table.c[k].type) for k in keys} for i in range(n)]
        )

    return build


def _update_rows(
    table: Any, sets: dict[str, str], fixed: dict[str, Any] | None = None, *where: Any
) -> Callable[[int], Any]:
    """For ``n`` rows, each a ``b_id`` and the values of ``sets`` (column: the row's key):
    ``UPDATE table SET column = v.key, ... FROM (SELECT ? AS b_id, ? AS key, ... UNION ALL
    ...) AS v WHERE table.id = v.b_id``, with ``fixed`` values and ``where`` as well (see
    ``RowWrites``). An id given twice would update its row once: callers give each once."""
    keyed = {"b_id": "id", **{key: column for column, key in sets.items()}}

    def build(n: int) -> Any:
        rows = union_all(
            *(
                select(
                    *(
                        bindparam(f"{key}_{i}", type_=table.c[column].type).label(key)
                        for key, column in keyed.items()
                    )
                )
                for i in range(n)
            )
        ).subquery("v")
        values = {column: rows.c[key] for column, key in sets.items()}
        return (
            update(table)
            .where(table.c.id == rows.c.b_id, *where)
            .values({**values, **(fixed or {})})
        )

    return build


def _request_with_moves(n: int) -> Any:
    """SQLite: a new request and the moves of ``n - 1`` stored ones in one upsert (see
    ``SQLWork._insert_moving``)."""
    stmt = sqlite_insert(REQUESTS).values(
        [
            {k: bindparam(f"{k}_{i}", type_=REQUESTS.c[k].type) for k in _MOVING_VALUES}
            for i in range(n)
        ]
    )
    moved = {"result_id": stmt.excluded.result_id, "status": stmt.excluded.status}
    return stmt.on_conflict_do_update(index_elements=[REQUESTS.c.id], set_=moved).returning(
        REQUESTS.c.id, REQUESTS.c.created_at
    )


#: The ``created_at`` of a move's row in ``_insert_moving``: never a stored request's.
_NOT_STORED = datetime(1, 1, 1, tzinfo=UTC)

_RESULT_VALUES = [name for name in RESULT_COLUMNS if name != "id"] + ["updated_at"]
_NEW_RESULT = ("id", *_RESULT_VALUES)
_REQUEST_VALUES = [*WISH_COLUMNS, "status", "event_key", "replied_at", "account", "result_id"]
_MOVING_VALUES = ["id", *_REQUEST_VALUES]
_OUTBOX_VALUES = [
    "recipient", "platform", "body", "buttons", "origin", "created_at", "next_attempt_at",
    "attempts", "group_members", "topic", "invites",
]  # fmt: skip
_PERSON_VALUES = ["id", "display_name", "timezone", "platform_timezone"]


class _Hot:
    """The statements of the hot path (a submission, and the writes of every domain step),
    each a Core statement above compiled once for this storage's dialect (``Prepared``)."""

    def __init__(self, dialect: Any, is_sqlite: bool) -> None:
        def prepare(stmt: Any, keys: Sequence[str] | None = None) -> Prepared:
            return Prepared(stmt, dialect, column_keys=keys)

        def rows(one: Prepared, build: Callable[[int], Any]) -> RowWrites:
            return RowWrites(one, build, dialect)

        self._dialect = dialect
        self.locks = {n: prepare(stmt) for n, stmt in _LOCKS.items()}
        self.insert_result = prepare(_INSERT_RESULT, _RESULT_VALUES)
        self.insert_result_id = prepare(insert(RESULTS), ["id", *_RESULT_VALUES])
        self.result_ids = prepare(
            text(
                "SELECT nextval(pg_get_serial_sequence('results', 'id')) "
                f"FROM generate_series(1, {RESULT_IDS})"
            )
        )
        self.insert_request = prepare(_INSERT_REQUEST, _REQUEST_VALUES)
        # Several rows of one kind: one statement on SQLite (RowWrites); PostgreSQL writes
        # a domain step's rows in PG_STEP instead.
        self.insert_outbox = rows(
            prepare(_INSERT_OUTBOX, _OUTBOX_VALUES), _insert_rows(OUTBOX, _OUTBOX_VALUES)
        )
        self.update_result = rows(
            prepare(_UPDATE_RESULT, _RESULT_VALUES),
            _update_rows(RESULTS, {name: name for name in _RESULT_VALUES}),
        )
        self.insert_moving = rows(self.insert_request, _request_with_moves)
        self.move = rows(
            prepare(_MOVE),
            _update_rows(REQUESTS, {"result_id": "b_result", "status": "b_status"}),
        )
        self.retire = rows(
            prepare(_RETIRE),
            _update_rows(RESULTS, {"status": "b_status", "updated_at": "b_now"}, {"due_at": None}),
        )
        self.mark_replied = rows(
            prepare(_MARK_REPLIED),
            _update_rows(REQUESTS, {"replied_at": "b_now"}, None, REQUESTS.c.replied_at.is_(None)),
        )
        self.pg_step = prepare(PG_STEP)
        upsert = (sqlite_insert if is_sqlite else pg_insert)(PEOPLE)
        keep = {
            "display_name": upsert.excluded.display_name,
            "platform_timezone": upsert.excluded.platform_timezone,
        }
        every = {**keep, "timezone": upsert.excluded.timezone}
        self.save_person = prepare(
            upsert.on_conflict_do_update(index_elements=[PEOPLE.c.id], set_=keep), _PERSON_VALUES
        )
        self.save_person_zone = prepare(
            upsert.on_conflict_do_update(index_elements=[PEOPLE.c.id], set_=every), _PERSON_VALUES
        )
        self.add_person = prepare(upsert.on_conflict_do_nothing(), _PERSON_VALUES)
        self._neighbourhood: dict[int, Prepared] = {}

    def neighbourhood(self, limit: int) -> Prepared:
        found = self._neighbourhood.get(limit)
        if found is None:
            found = self._neighbourhood[limit] = Prepared(
                _neighbourhood_query(limit), self._dialect
            )
        return found


def _neighbourhood_params(wish: Wish, now: datetime, margin: timedelta) -> dict[str, Any]:
    """The ranges of the candidates and groups read, widened by ``margin`` for near misses."""
    last_start = wish.latest - wish.length + margin
    return {
        "person": wish.person,
        "pool": wish.pool,
        "activity": wish.activity,
        "now": now,
        "first_end": wish.earliest + wish.length - margin,
        "last_start": last_start,
        "last_end": last_start + MAX_WINDOW,
        "first_start": max(now, wish.earliest - margin),
    }


@functools.cache
def _neighbourhood_query(limit: int) -> Any:
    """One statement for everything ``neighbourhood`` returns: rows of one shape, tagged by
    ``kind`` (members of open groups, the person with each of their live requests,
    candidates, whom all of these people ignore). Built once; ``_neighbourhood_params``
    fills it in.

    Its SQL stays under psycopg's 4,096 characters (short aliases, types only in the first
    branch), so PostgreSQL gets it as a prepared statement instead of planning it anew each
    time, which costs more than running it."""
    person: BindParameter[str] = bindparam("person")
    pool: BindParameter[str] = bindparam("pool")
    activity: BindParameter[str] = bindparam("activity")
    now, first_end, last_start, last_end, first_start = (
        bindparam(name, type_=UTCDateTime())
        for name in ("now", "first_end", "last_start", "last_end", "first_start")
    )
    q, g, p, i = REQUESTS.alias("q"), RESULTS.alias("g"), PEOPLE.alias("p"), IGNORES.alias("i")
    cand = (
        select(q)
        .where(
            q.c.pool == pool,
            q.c.activity == activity,
            q.c.status == literal_column(f"'{Status.PENDING}'"),
            q.c.latest >= first_end,
            q.c.latest <= last_end,
            q.c.earliest <= last_start,
            q.c.deadline > now,
            q.c.person != person,
        )
        .order_by(q.c.latest, q.c.id)
        .limit(limit)
        .cte("c")
    )
    gids = (
        select(g.c.id)
        .where(
            g.c.pool == pool,
            g.c.activity == activity,
            g.c.status == literal_column(f"'{Status.MATCHED}'"),
            g.c.start >= first_start,
            g.c.start <= last_start,
            g.c.size < g.c.max_size,
        )
        .order_by(g.c.start, g.c.id)
        .limit(limit)
        .cte("gs")
    )
    in_groups = q.c.result_id.in_(select(gids.c.id))
    people_cols = (p.c.display_name, p.c.timezone, p.c.platform_timezone)
    blank: Any = literal_column("NULL")

    def row(kind: int, requests: Any, other: Any, results: Any, people: Any) -> Any:
        return select(literal_column(str(kind)), *requests, other, *results, *people)

    members = (
        select(
            literal_column(str(_MEMBER)).label("kind"),
            *(q.c[name] for name in REQUEST_COLUMNS),
            cast(null(), PEOPLE.c.id.type).label("other"),
            *(g.c[name].label("r_" + name) for name in NEIGHBOUR_RESULT_COLUMNS),
            p.c.display_name.label("p_name"),
            p.c.timezone.label("p_tz"),
            p.c.platform_timezone.label("p_ptz"),
        )
        .select_from(q.join(g, g.c.id == q.c.result_id).join(p, p.c.id == q.c.person, isouter=True))
        .where(in_groups)
    )
    no_request = [blank] * len(REQUEST_COLUMNS)
    no_result = [blank] * len(NEIGHBOUR_RESULT_COLUMNS)
    # The person, once per live request of theirs (with its columns), or once with none.
    live = and_(q.c.person == p.c.id, _live(q.c.status), q.c.latest > now)
    me = (
        row(
            _ME,
            [q.c.id, p.c.id, *(q.c[name] for name in REQUEST_COLUMNS[2:])],
            p.c.canonical,
            no_result,
            people_cols,
        )
        .select_from(p.outerjoin(q, live))
        .where(p.c.id == person)
    )
    candidates = row(
        _CANDIDATE, [cand.c[name] for name in REQUEST_COLUMNS], blank, no_result, people_cols
    ).select_from(cand.join(p, p.c.id == cand.c.person, isouter=True))
    everyone = union_all(
        select(cast(person, PEOPLE.c.id.type)),
        select(cand.c.person),
        select(q.c.person).where(in_groups),
    ).cte("e")
    # Whom these people ignore (``neighbourhood`` keeps the pairs of two of them): one list
    # of them to look up costs less than a second one to check against.
    ignores = row(
        _IGNORE, [blank, i.c.person, *no_request[2:]], i.c.ignored, no_result, [blank] * 3
    ).where(i.c.person.in_(select(everyone.c[0])))
    return union_all(members, me, candidates, ignores)


def _request_at(r: Sequence[Any]) -> StoredRequest:
    """A request from a neighbourhood row: REQUEST_COLUMNS are its columns 1 to 16."""
    return StoredRequest(
        r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
        STATUS[r[14]], r[15], r[16],
    )  # fmt: skip


def _people(execute: Callable[[Executable], Any], ids: Iterable[str]) -> dict[str, PersonInfo]:
    """The stored people among ``ids``, read with ``execute`` (a connection's, or a unit of
    work's, which takes its pending locks first)."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = execute(select(PEOPLE).where(PEOPLE.c.id.in_(wanted)))
    return {
        r.id: PersonInfo(
            r.id, r.display_name, r.timezone, r.platform_timezone, r.canonical, r.feedback_off
        )
        for r in rows
    }


def _sqlite_begin(conn: Connection) -> None:
    # BEGIN IMMEDIATE takes the write lock up front (no lock-upgrade deadlocks). Reads run
    # without a transaction: each is one statement, a consistent snapshot of its own.
    # Sent on the driver's connection like the hot statements (``Runner``): listeners of
    # before_cursor_execute still see it, an error is SQLAlchemy's ("database is locked").
    options = conn.get_execution_options()
    if not options.get("iwant_readonly") and not options.get("iwant_own_begin"):
        Runner(conn).command("BEGIN IMMEDIATE")


def sqlite_on_connect(dbapi_connection: Any, _record: object) -> None:
    # Autocommit at the driver level, so that our "begin" listener controls the transaction
    # (BEGIN IMMEDIATE takes the write lock up front: no lock upgrade deadlocks).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def pg_alive(dialect: Any, dbapi_connection: Any) -> None:
    """PostgreSQL's check of a pooled connection, instead of the pool's pre-ping (a round trip
    per unit of work). A connection the server closed or wrote to while it sat in the pool
    (a restart, a terminated session: its FATAL message, then the close) has something to
    read; only such a one is asked (``SELECT 1``). One that does not answer is replaced, and
    every connection pooled before it with it. A server that vanished without closing
    anything is noticed by the first statement, as it would be by the ping (keepalives,
    ``tcp_user_timeout``): the unit of work fails as unavailable and stores nothing."""
    try:
        pgconn = dbapi_connection.pgconn
        if pgconn.status == 0 and not _readable(pgconn.socket):
            return  # CONNECTION_OK, nothing arrived since its last use
        dialect.do_ping(dbapi_connection)
    except Exception as err:
        raise InvalidatePoolError(f"connection lost while pooled: {err}") from err


def _readable(fd: int) -> bool:
    """Whether the socket has something to read (or was closed), without waiting. ``poll``,
    not ``select``: a busy process's descriptors may number past select's 1024."""
    poller = sockets.poll()
    poller.register(fd, sockets.POLLIN)
    return bool(poller.poll(0))


@hookimpl
def iwant_storages() -> dict[str, Callable[..., SQLStorage]]:
    return {"sql": SQLStorage}
