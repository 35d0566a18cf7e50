"""What every part of the SQL storage shares: the tables as Core ``Table`` handles, and
requests and results read back from rows into the engine's types."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.engine import Row

from ..model import Status, StoredRequest, StoredResult
from .schema import (
    BusyBlock,
    Calendar,
    Digest,
    Ignore,
    LinkCode,
    Outbox,
    PaceSlot,
    Person,
    ProcessBeat,
    Question,
    Request,
    Result,
    StandingWish,
)

REQUESTS = cast(Table, Request.__table__)
RESULTS = cast(Table, Result.__table__)
PEOPLE = cast(Table, Person.__table__)
OUTBOX = cast(Table, Outbox.__table__)
IGNORES = cast(Table, Ignore.__table__)
STANDING = cast(Table, StandingWish.__table__)
CODES = cast(Table, LinkCode.__table__)
PACING = cast(Table, PaceSlot.__table__)
PROCESSES = cast(Table, ProcessBeat.__table__)
QUESTIONS = cast(Table, Question.__table__)
CALENDARS = cast(Table, Calendar.__table__)
BUSY = cast(Table, BusyBlock.__table__)
DIGESTS = cast(Table, Digest.__table__)
# The grammar refuses windows longer than a day, so a request that can start by some time
# ends by then + MAX_WINDOW: a two-sided range on the candidate index, which keeps a read's
# cost flat however many requests wait further ahead.
MAX_WINDOW = timedelta(hours=24)
RESULT_COLUMNS = ("id", "pool", "activity", "status", "start", "end", "max_size", "size", "due_at")
#: A stored status text as the engine's ``Status``: a dict lookup costs less than ``Status(text)``.
STATUS: dict[str, Status] = {s.value: s for s in Status}


def still_leased(outbox_id: int, lease: datetime | None) -> Any:
    """The outbox row ``outbox_id``; with ``lease``, only while it is still leased until then
    (a row another process has claimed since is left to it)."""
    mine = OUTBOX.c.id == outbox_id
    return mine if lease is None else mine & (OUTBOX.c.claimed_until == lease)


def result_columns(prefix: str) -> list[Any]:
    """The result's columns, labelled ``prefix`` + name (beside a request's in one row)."""
    return [RESULTS.c[name].label(prefix + name) for name in RESULT_COLUMNS]


def request_of(r: Row[Any]) -> StoredRequest:
    """A request from a row of ``select(REQUESTS, ...)``."""
    return StoredRequest(
        r.id, r.person, r.pool, r.origin, r.activity, r.earliest, r.latest, r.deadline,
        r.length_minutes, r.max_size, r.min_size, r.created_at, r.result_id, STATUS[r.status],
        r.event_key, r.account,
    )  # fmt: skip


def result_of(r: Row[Any], prefix: str) -> StoredResult:
    """A result from a row holding ``result_columns(prefix)``."""
    m = r._mapping
    return StoredResult(
        m[prefix + "id"], m[prefix + "pool"], m[prefix + "activity"], STATUS[m[prefix + "status"]],
        m[prefix + "start"], m[prefix + "end"], m[prefix + "max_size"], m[prefix + "size"],
        m[prefix + "due_at"],
    )  # fmt: skip
