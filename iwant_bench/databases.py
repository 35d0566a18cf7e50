"""Fresh databases for one run, their settings, the baseline table and bulk loading.

Every run gets databases of its own: a SQLite file in a temporary directory, and on
PostgreSQL ``CREATE DATABASE iwant_bench_<random>``, dropped at the end. Nothing a test or
a bot uses is touched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.engine import Engine as SAEngine
from sqlalchemy.engine import make_url

from iwant_engine.storage.schema import Outbox, Person, Request, Result
from iwant_engine.storage.sql import pg_alive, sqlite_on_connect

from .workload import WaitingRow

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
KINDS = ("sqlite", "postgresql")
SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def postgres_admin_url(url: str | None = None) -> str:
    chosen = url or os.environ.get("IWANT_TEST_POSTGRES_URL") or DEFAULT_PG_URL
    return (
        make_url(chosen).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    )


def postgres_problem(admin_url: str) -> str | None:
    """None when PostgreSQL answers at ``admin_url``, else why not (one line)."""
    try:
        eng = create_engine(admin_url, connect_args={"connect_timeout": 3})
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
        eng.dispose()
        return None
    except Exception as err:  # any failure means: not reachable
        return f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err) else ''}"


@dataclass
class BenchDatabase:
    """One fresh database; ``url`` is what the engine, the baseline and errbot use."""

    kind: str
    url: str
    label: str  # file path or database name, for the report
    _cleanup: Callable[[], None] | None = field(default=None, repr=False)

    @classmethod
    def create(cls, kind: str, pg_admin_url: str | None = None) -> BenchDatabase:
        if kind == "sqlite":
            directory = tempfile.mkdtemp(prefix="iwant-bench-")
            path = os.path.join(directory, "bench.db")
            return cls(
                kind,
                f"sqlite:///{path}",
                path,
                lambda: shutil.rmtree(directory, ignore_errors=True),
            )
        admin_url = postgres_admin_url(pg_admin_url)
        name = f"iwant_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()

        def drop() -> None:
            eng = create_engine(admin_url, isolation_level="AUTOCOMMIT")
            with eng.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            eng.dispose()

        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        return cls(kind, url, name, drop)

    def drop(self) -> None:
        if self._cleanup is not None:
            self._cleanup()
            self._cleanup = None


def database_settings(sa_engine: SAEngine) -> dict[str, str]:
    """The settings that decide what a commit costs, read from a pooled connection."""
    with sa_engine.connect() as conn:
        if sa_engine.dialect.name == "sqlite":
            sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
            return {
                "journal_mode": str(conn.exec_driver_sql("PRAGMA journal_mode").scalar()),
                "synchronous": SYNCHRONOUS.get(int(sync), str(sync)),
                "busy_timeout_ms": str(conn.exec_driver_sql("PRAGMA busy_timeout").scalar()),
                "foreign_keys": str(conn.exec_driver_sql("PRAGMA foreign_keys").scalar()),
                "sqlite_version": str(conn.exec_driver_sql("select sqlite_version()").scalar()),
            }
        names = (
            "server_version",
            "synchronous_commit",
            "fsync",
            "wal_sync_method",
            "full_page_writes",
            "commit_delay",
            "shared_buffers",
            "default_transaction_isolation",
        )
        return {n: str(conn.exec_driver_sql(f"SHOW {n}").scalar()) for n in names}


# -- the baseline ------------------------------------------------------------------------------

BASELINE = Table(
    "bench_baseline",
    MetaData(),
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("person", String(200), nullable=False),
    Column("pool", String(200), nullable=False),
    Column("origin", String(200)),
    Column("activity", String(100), nullable=False),
    Column("earliest", DateTime, nullable=False),
    Column("latest", DateTime, nullable=False),
    Column("deadline", DateTime, nullable=False),
    Column("length_minutes", Integer, nullable=False),
    Column("max_size", Integer, nullable=False),
    Column("min_size", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("result_id", Integer),
    Column("status", String(16), nullable=False),
)


def baseline_engine(url: str, pool_size: int) -> SAEngine:
    """A SQLAlchemy engine made exactly the way ``SQLStorage`` makes its own.

    SQLite: the storage's connect listener (``sqlite_on_connect``: journal mode, synchronous
    level, busy timeout) and ``BEGIN IMMEDIATE``; PostgreSQL: the same pool arguments and the
    same check of a pooled connection (``pg_alive``, no pre-ping). The run reads the settings
    back from both and reports whether they match.
    """
    if url.startswith("sqlite"):
        eng = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(eng, "connect", sqlite_on_connect)
        event.listen(eng, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
    else:
        eng = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_recycle=1800,
            connect_args={"connect_timeout": 5},
        )
        dialect = eng.dialect
        event.listen(eng, "checkout", lambda dbapi, _record, _proxy: pg_alive(dialect, dbapi))
    BASELINE.create(eng, checkfirst=True)
    return eng


def naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)


# -- bulk loading of waiting (or due) requests -------------------------------------------------


def load_waiting(
    sa_engine: SAEngine,
    rows: Iterable[WaitingRow],
    pool_of: Callable[[str, str], str],
    created_at: datetime,
    batch: int = 2000,
) -> int:
    """Insert waiting requests the way the engine stores them (one row each, no result).

    ``pool_of(person, room)`` gives the pool the engine would put the person's room in.
    Returns the number of requests inserted.
    """
    people_t, requests_t = Person.__table__, Request.__table__
    is_sqlite = sa_engine.dialect.name == "sqlite"
    if is_sqlite:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    add_people = dialect_insert(people_t).on_conflict_do_nothing()
    add_requests = insert(requests_t)
    done = 0
    chunk: list[WaitingRow] = []

    def flush() -> None:
        nonlocal done
        if not chunk:
            return
        with sa_engine.begin() as conn:
            people = {r.person: r.person.split(":", 1)[1] for r in chunk}
            conn.execute(
                add_people,
                [
                    {"id": p, "display_name": n, "timezone": None, "platform_timezone": None}
                    for p, n in people.items()
                ],
            )
            pools = [pool_of(r.person, r.room) for r in chunk]
            conn.execute(
                add_requests,
                [
                    {
                        "person": r.person,
                        "pool": pool,
                        "origin": f"{r.person.split(':', 1)[0]}:{r.room}",
                        "activity": r.activity,
                        "earliest": r.earliest,
                        "latest": r.latest,
                        "deadline": r.deadline,
                        "length_minutes": r.length_minutes,
                        "max_size": r.max_size,
                        "min_size": 2,
                        "created_at": created_at,
                        "replied_at": created_at,  # as the engine stores an answered one
                        "result_id": None,
                        "status": "PENDING",
                    }
                    for r, pool in zip(chunk, pools, strict=True)
                ],
            )
        done += len(chunk)
        chunk.clear()

    for row in rows:
        chunk.append(row)
        if len(chunk) >= batch:
            flush()
    flush()
    return done


def analyze(sa_engine: SAEngine) -> None:
    """After a bulk load on PostgreSQL: VACUUM ANALYZE, what autovacuum would do given time,
    so that it does not start in the middle of a measurement and planner statistics are fresh.

    SQLite is left as the engine ships it: it never runs ANALYZE there.
    """
    if sa_engine.dialect.name != "sqlite":
        with sa_engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("VACUUM ANALYZE")


Marker = tuple[int, int, int]


def marker(sa_engine: SAEngine) -> Marker:
    """The highest ids of results, requests and outbox rows right now."""
    with sa_engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(select(func.coalesce(func.max(t.c.id), 0))).scalar_one()
            for t in (Result.__table__, Request.__table__, Outbox.__table__)
        )


def delete_after(sa_engine: SAEngine, mark: Marker) -> None:
    """Remove every result, request and outbox row written after ``mark``."""
    results_id, requests_id, outbox_id = mark
    with sa_engine.begin() as conn:
        conn.execute(Outbox.__table__.delete().where(Outbox.__table__.c.id > outbox_id))
        conn.execute(Request.__table__.delete().where(Request.__table__.c.id > requests_id))
        conn.execute(Result.__table__.delete().where(Result.__table__.c.id > results_id))


def count_waiting(sa_engine: SAEngine) -> int:
    with sa_engine.connect() as conn:
        return conn.execute(
            select(func.count())
            .select_from(Request.__table__)
            .where(Request.__table__.c.status == "PENDING")
        ).scalar_one()
