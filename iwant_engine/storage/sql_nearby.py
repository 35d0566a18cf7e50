"""Near misses in the SQL storage: ``UnitOfWork.nearby`` as one indexed query.

Waiting requests and members of formed groups share the candidate index's prefix (pool,
activity, status, latest): one statement reads both kinds, each row with its result and
whether an ignore stands between its person and the asker. Mixed into ``SQLWork``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, exists, literal_column, or_, select
from sqlalchemy.engine import Connection

from ..model import NearbyRows, Status, StoredGroup, StoredRequest, StoredResult, Wish
from .sql_rows import (
    IGNORES,
    MAX_WINDOW,
    REQUESTS,
    RESULTS,
    request_of,
    result_columns,
    result_of,
)


def _apart(me: Any) -> Any:
    r, i = REQUESTS, IGNORES
    return exists().where(
        or_(
            and_(i.c.person == me, i.c.ignored == r.c.person),
            and_(i.c.person == r.c.person, i.c.ignored == me),
        )
    )


def _select(where_pool: Any, start: str, end: str) -> Any:
    """Waiting requests and members of formed groups of the pools ``where_pool`` admits,
    around the range from bind parameter ``start`` to ``end``, each row with its result and
    whether an ignore stands between its person and the reader (``me``)."""
    r, s = REQUESTS, RESULTS
    me: Any = bindparam("me")
    pending: Any = literal_column(f"'{Status.PENDING}'")
    matched: Any = literal_column(f"'{Status.MATCHED}'")
    return (
        select(r, *result_columns("r_"), _apart(me).label("apart"))
        .join(s, s.c.id == r.c.result_id, isouter=True)
        .where(
            where_pool,
            r.c.status.in_([pending, matched]),
            r.c.latest > bindparam(start),
            r.c.latest < bindparam("high_end"),
            r.c.earliest < bindparam(end),
            or_(
                and_(r.c.status == pending, r.c.person != me, r.c.deadline > bindparam("now")),
                and_(
                    r.c.status == matched,
                    s.c.status == matched,
                    s.c.start >= bindparam("not_before"),
                    s.c.start < bindparam(end),
                ),
            ),
        )
        .order_by(r.c.earliest, r.c.id)
        .limit(bindparam("limit"))
    )


@functools.cache
def _query() -> Any:
    r = REQUESTS
    where = and_(r.c.pool == bindparam("pool"), r.c.activity == bindparam("activity"))
    return _select(where, "low", "high")


@functools.cache
def _board_query() -> Any:
    return _select(REQUESTS.c.pool.in_(bindparam("pools", expanding=True)), "low", "high")


def _rows(rows: Any, reader: str, limit: int) -> NearbyRows:
    waiting: list[StoredRequest] = []
    groups: dict[int, tuple[StoredResult, list[StoredRequest]]] = {}
    apart: set[frozenset[str]] = set()
    for row in rows:
        request = request_of(row)
        if row.apart:
            apart.add(frozenset((reader, request.person)))
        if request.status == Status.PENDING:
            if len(waiting) < limit:
                waiting.append(request)
        elif request.result_id is None:  # no domain step leaves one MATCHED without a group
            continue
        elif request.result_id in groups or len(groups) < limit:
            groups.setdefault(request.result_id, (result_of(row, "r_"), []))[1].append(request)
    formed = sorted(
        (StoredGroup(res, tuple(sorted(ms, key=lambda m: m.id))) for res, ms in groups.values()),
        key=lambda g: (g.result.start, g.result.id),
    )
    return NearbyRows(tuple(waiting), tuple(formed), frozenset(apart))


class NearbyWork:
    """``nearby`` inside a unit of work (``SQLWork`` provides ``_run``)."""

    _run: Callable[..., Any]

    def nearby(self, wish: Wish, now: datetime, margin: timedelta, limit: int) -> NearbyRows:
        low, high = wish.earliest - margin, wish.latest + margin
        params = {
            "me": wish.person, "pool": wish.pool, "activity": wish.activity, "low": low,
            "high": high, "high_end": high + MAX_WINDOW, "now": now,
            "not_before": max(now, low), "limit": 4 * limit,
        }  # fmt: skip
        return _rows(self._run(_query(), params), wish.person, limit)


class BoardReads:
    """The room's board and a person's pools (``SQLStorage`` provides ``_read``)."""

    _read: Callable[[], AbstractContextManager[Connection]]

    def pools_of(self, person: str, since: datetime) -> list[str]:
        r = REQUESTS
        stmt = (
            select(r.c.pool)
            .where(r.c.person == person, r.c.created_at >= since)
            .group_by(r.c.pool)
            .order_by(r.c.pool)
        )
        with self._read() as conn:
            return list(conn.scalars(stmt))

    def board(
        self, pools: Iterable[str], start: datetime, end: datetime, now: datetime, reader: str,
        limit: int,
    ) -> NearbyRows:  # fmt: skip
        low = max(now, start)
        params = {
            "me": reader, "pools": list(pools), "low": low, "high": end,
            "high_end": end + MAX_WINDOW, "now": now, "not_before": low, "limit": 8 * limit,
        }  # fmt: skip
        with self._read() as conn:
            return _rows(conn.execute(_board_query(), params), reader, limit)
