"""Tables of the SQL storage, SQLAlchemy 2 typed models. Alembic migrations create them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

PERSON_MAX = 200
POOL_MAX = 200
NAME_MAX = 100
TEXT_MAX = 4000


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out; stored naive UTC on every database.

    On SQLite and PostgreSQL each way is one lookup in a memo (``_Memo``) instead of this
    decorator's ``process_*`` chained with the dialect's own processor (on SQLite a
    ``%``-format into a dict, and a regular expression back): every hot statement binds or
    reads a dozen of these, and the same few thousand instants (whole minutes, the rows of a
    neighbourhood) recur. The stored text on SQLite is exactly the dialect's own,
    ``YYYY-MM-DD HH:MM:SS.ffffff``, so rows written before compare alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        return None if value is None else _naive_utc(value)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name == "sqlite":
            return _SQLITE_TEXT.__getitem__
        if dialect.name == "postgresql":  # psycopg takes a naive datetime as it is
            return _NAIVE_UTC.__getitem__
        return super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        if dialect.name == "sqlite":
            return _FROM_SQLITE_TEXT.__getitem__
        if dialect.name == "postgresql":
            return _AWARE_UTC.__getitem__
        return super().result_processor(dialect, coltype)


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the storage")
    return value.astimezone(UTC).replace(tzinfo=None)


class _Memo(dict[Any, Any]):
    """A pure conversion with its answers kept: a hit is one C-level dict lookup.

    ``None`` converts to ``None``. Of aware datetimes only those in ``UTC`` are kept: another
    zone's that is the same instant is an equal key with the same answer, but within one
    zone two different instants of a clock change compare equal (they differ in ``fold``
    only), so they must not be keys. A naive one is never kept (its conversion raises).
    Emptied when it grows past ``SIZE`` entries."""

    SIZE = 20_000

    def __init__(self, convert: Callable[[Any], Any]) -> None:
        super().__init__()
        self.convert = convert

    def __missing__(self, key: Any) -> Any:
        value = None if key is None else self.convert(key)
        if isinstance(key, datetime) and key.tzinfo not in (None, UTC):
            return value
        if len(self) >= self.SIZE:
            self.clear()
        self[key] = value
        return value


_NAIVE_UTC = _Memo(_naive_utc)
_AWARE_UTC = _Memo(lambda naive: naive.replace(tzinfo=UTC))
_SQLITE_TEXT = _Memo(lambda aware: _naive_utc(aware).isoformat(" ", "microseconds"))
_FROM_SQLITE_TEXT = _Memo(lambda text: datetime.fromisoformat(text).replace(tzinfo=UTC))


class Base(DeclarativeBase):
    pass


class Person(Base):
    __tablename__ = "people"

    id: Mapped[str] = mapped_column(String(PERSON_MAX), primary_key=True)  # "platform:id"
    display_name: Mapped[str] = mapped_column(String(NAME_MAX))
    timezone: Mapped[str | None] = mapped_column(String(64))  # set by "!iwant tz"
    platform_timezone: Mapped[str | None] = mapped_column(String(64))  # e.g. Slack profile
    # When they asked "!iwant forget me", until they confirm (or it lapses).
    forget_asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A linked account: the person id it belongs to ("!iwant link"); NULL: its own person.
    canonical: Mapped[str | None] = mapped_column(String(PERSON_MAX))
    # Wrong link codes given by this account since ``link_failures_since`` (rate limit).
    link_failures: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    link_failures_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # "!iwant feedback off": never asked "Did you meet?".
    feedback_off: Mapped[bool] = mapped_column(Boolean, server_default=false())


class Result(Base):
    """A group's result (or a member's who left one); a waiting request has none."""

    __tablename__ = "results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pool: Mapped[str] = mapped_column(String(POOL_MAX))
    activity: Mapped[str] = mapped_column(String(NAME_MAX))
    status: Mapped[str] = mapped_column(String(16))
    start: Mapped[datetime | None] = mapped_column(UTCDateTime)  # meeting, once MATCHED
    end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    max_size: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    # When the sweeper must look at it: the meeting's end (MATCHED). A waiting request has
    # no result; its deadline is its own (``ix_requests_waiting``).
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A leaver's own result (CANCELLED): the group left, {"start", "end", "requests": the
    # others' request ids then}, for the person's export.
    left_group: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # When its members were asked "Did you meet?" (DONE groups only; NULL: not yet).
    asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_results_live_due", "status", "due_at"),
        # Groups whose members are still to be asked, by meeting end: asked ones leave it.
        Index(
            "ix_results_to_ask",
            "end",
            postgresql_where=text("status = 'DONE' AND asked_at IS NULL"),
            sqlite_where=text("status = 'DONE' AND asked_at IS NULL"),
        ),
        # Open groups of a pool and activity by meeting time. Only formed groups are in it:
        # groups done, dissolved or left cost no index entry.
        Index(
            "ix_results_open_groups",
            "pool",
            "activity",
            "start",
            postgresql_where=text("status = 'MATCHED'"),
            sqlite_where=text("status = 'MATCHED'"),
        ),
    )


class Request(Base):
    __tablename__ = "requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person: Mapped[str] = mapped_column(String(PERSON_MAX), ForeignKey("people.id"))
    pool: Mapped[str] = mapped_column(String(POOL_MAX))
    origin: Mapped[str | None] = mapped_column(String(POOL_MAX))  # room it was made in
    activity: Mapped[str] = mapped_column(String(NAME_MAX))
    earliest: Mapped[datetime] = mapped_column(UTCDateTime)
    latest: Mapped[datetime] = mapped_column(UTCDateTime)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    length_minutes: Mapped[int] = mapped_column(Integer)
    max_size: Mapped[int] = mapped_column(Integer)
    min_size: Mapped[int] = mapped_column(Integer, server_default=text("2"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A group's result (or a leaver's, see ``Result.left_group``); NULL while it waits alone,
    # and when it ended so: one row per waiting request, no result until a group forms.
    result_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("results.id"))
    status: Mapped[str] = mapped_column(String(16))  # mirrors its result's, for indexed lookups
    # "platform:event id" of the message that made it: a re-sent event stores nothing new.
    event_key: Mapped[str | None] = mapped_column(String(PERSON_MAX))
    # When the requester's answer was handed to the platform; NULL until then.
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The account that made it, when ``person`` is the person it is linked to.
    account: Mapped[str | None] = mapped_column(String(PERSON_MAX))
    # Made from a near miss ("instead of #12") and met someone: counted by ``!iwant stats``.
    suggested: Mapped[bool] = mapped_column(Boolean, server_default=false())

    __table_args__ = (
        # Candidate selection: same pool and activity, waiting, window ending after ours starts.
        Index("ix_requests_candidates", "pool", "activity", "status", "latest"),
        # A person's requests by status, with their groups: ``!iwant stats`` looks back over
        # two people's earlier groups in it alone.
        Index("ix_requests_person_status", "person", "status", "result_id"),
        Index("ix_requests_result", "result_id"),
        # The sweep's waiting requests by deadline (no result row holds it for them).
        Index(
            "ix_requests_waiting",
            "deadline",
            postgresql_where=text("status = 'PENDING'"),
            sqlite_where=text("status = 'PENDING'"),
        ),
        # ``!iwant stats``: a period of wishes by window start, of some pools or of all.
        Index("ix_requests_pool_earliest", "pool", "earliest"),
        Index("ix_requests_earliest", "earliest"),
        Index(
            "ix_requests_event_key",
            "event_key",
            unique=True,
            postgresql_where=text("event_key IS NOT NULL"),
            sqlite_where=text("event_key IS NOT NULL"),
        ),
        Index(
            "ix_requests_unreplied",
            "created_at",
            postgresql_where=text("replied_at IS NULL"),
            sqlite_where=text("replied_at IS NULL"),
        ),
    )


class Outbox(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recipient: Mapped[str] = mapped_column(String(PERSON_MAX))  # "platform:id"
    platform: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    buttons: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    origin: Mapped[str | None] = mapped_column(String(POOL_MAX))  # room to fall back to
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # undeliverable, given up
    error: Mapped[str | None] = mapped_column(String(500))
    group_members: Mapped[list[str] | None] = mapped_column(JSON)  # a group conversation
    topic: Mapped[str | None] = mapped_column(String(64))  # newest of a topic supersedes
    # A weekly digest's chart data, drawn as an image where the platform takes images.
    chart: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Calendar invites (``Invite.to_json``) that go with the note (issue 27).
    invites: Mapped[list[dict[str, object]] | None] = mapped_column(JSON)

    __table_args__ = (
        # Only undelivered rows are ever scanned; a partial index keeps it small on PostgreSQL.
        Index(
            "ix_outbox_due",
            "platform",
            "next_attempt_at",
            postgresql_where=text("delivered_at IS NULL AND failed_at IS NULL"),
            sqlite_where=text("delivered_at IS NULL AND failed_at IS NULL"),
        ),
        # A claim looks for a newer waiting note of the same topic to the same person.
        Index(
            "ix_outbox_topic",
            "recipient",
            "topic",
            postgresql_where=text("delivered_at IS NULL AND failed_at IS NULL"),
            sqlite_where=text("delivered_at IS NULL AND failed_at IS NULL"),
        ),
    )


class Ignore(Base):
    """``person`` never wants to be grouped with ``ignored``; the ignored person is not told."""

    __tablename__ = "ignores"

    person: Mapped[str] = mapped_column(String(PERSON_MAX), primary_key=True)
    ignored: Mapped[str] = mapped_column(String(PERSON_MAX), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_ignores_ignored", "ignored"),)


class StandingWish(Base):
    """A standing wish (``lunch 12:00 every weekday``); each day's wish is a request whose
    ``event_key`` is ``standing:<id>:<day>``, so it is made once however many processes run."""

    __tablename__ = "standing"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person: Mapped[str] = mapped_column(String(PERSON_MAX), ForeignKey("people.id"))
    pool: Mapped[str] = mapped_column(String(POOL_MAX))
    origin: Mapped[str | None] = mapped_column(String(POOL_MAX))
    activity: Mapped[str] = mapped_column(String(NAME_MAX))
    text: Mapped[str] = mapped_column(String(POOL_MAX))  # the wish without "every ..."
    days: Mapped[int] = mapped_column(Integer)  # bit d set: weekday d (0 = Monday)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_day: Mapped[date] = mapped_column(Date)
    create_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # NULL once ended
    paused_until: Mapped[date | None] = mapped_column(Date)
    skips: Mapped[str] = mapped_column(String(POOL_MAX), server_default="")  # ISO days
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_standing_create_at", "create_at"),
        Index("ix_standing_person", "person"),
    )


class LinkCode(Base):
    """A one-time code of ``!iwant link``: its SHA-256, the account that asked, until when."""

    __tablename__ = "link_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str] = mapped_column(String(PERSON_MAX))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PaceSlot(Base):
    """One delivery budget shared by a bot's processes (``iwant_engine.pacing``): the
    theoretical arrival time of the next send in the scope ``key``, wall-clock seconds."""

    __tablename__ = "pacing"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    at: Mapped[float] = mapped_column(Double)


class Question(Base):
    """ "Did you meet?" asked of ``person`` about the group ``result_id``: once per pair (the
    unique key), answered (``answer``: all, some, none) or not."""

    __tablename__ = "questions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    result_id: Mapped[int] = mapped_column(Integer)
    person: Mapped[str] = mapped_column(String(PERSON_MAX))
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answer: Mapped[str | None] = mapped_column(String(8))
    absent: Mapped[list[str] | None] = mapped_column(JSON)  # who did not come (person ids)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("result_id", "person", name="uq_questions_result_person"),
        Index("ix_questions_person", "person"),
        Index("ix_questions_asked_at", "asked_at"),
    )


class Calendar(Base):
    """A person's linked calendar: the provider, the address encrypted by the engine, its
    masked form, and the state of its background refresh (``claimed_until``: the lease of
    the process reading it)."""

    __tablename__ = "calendars"

    person: Mapped[str] = mapped_column(String(PERSON_MAX), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    sealed: Mapped[str] = mapped_column(Text)
    shown: Mapped[str] = mapped_column(String(300))
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_refresh_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    told_failing_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_calendars_next_refresh_at", "next_refresh_at"),)


class BusyBlock(Base):
    """One busy interval of a person's linked calendar, as its latest good read left it."""

    __tablename__ = "busy_blocks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person: Mapped[str] = mapped_column(String(PERSON_MAX))
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_busy_blocks_person_end", "person", "end"),)


class Digest(Base):
    """A room that gets the weekly digest (``!iwant digest on``), and when it is next due.
    A room setting: it names no person."""

    __tablename__ = "digests"

    room: Mapped[str] = mapped_column(String(POOL_MAX), primary_key=True)  # "platform:id"
    pool: Mapped[str] = mapped_column(String(POOL_MAX))
    next_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_digests_next_at", "next_at"),)


class ProcessBeat(Base):
    """A bot process's latest heartbeat (``!iwant status``), and the latest 429 it got."""

    __tablename__ = "processes"

    process: Mapped[str] = mapped_column(String(200), primary_key=True)  # "host:pid"
    platform: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_429_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_429_seconds: Mapped[float | None] = mapped_column(Double)
