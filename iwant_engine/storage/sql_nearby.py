"""Near misses in the SQL storage: ``UnitOfWork.nearby`` as one indexed query.

Waiting requests and members of formed groups share the candidate index's prefix (pool,
activity, status, latest): one statement reads both kinds, each row with its result and
whether an ignore stands between its person and the asker. Mixed into ``SQLWork``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, exists, literal_column, or_, select

from ..model import NearbyRows, Status, StoredGroup, StoredRequest, StoredResult, Wish
from .schema import Ignore, Request, Result

REQUESTS = cast(Table, Request.__table__)
RESULTS = cast(Table, Result.__table__)
IGNORES = cast(Table, Ignore.__table__)
#: No window is longer than a day (the grammar refuses longer ones): a two-sided range on
#: the index however many requests wait further ahead.
MAX_WINDOW = timedelta(hours=24)


@functools.cache
def _query() -> Any:
    from .sql import _result_columns  # noqa: PLC0415  (sql.py mixes this module in)

    r, s, i = REQUESTS, RESULTS, IGNORES
    me: Any = bindparam("me")
    apart = exists().where(
        or_(
            and_(i.c.person == me, i.c.ignored == r.c.person),
            and_(i.c.person == r.c.person, i.c.ignored == me),
        )
    )
    pending: Any = literal_column(f"'{Status.PENDING}'")
    matched: Any = literal_column(f"'{Status.MATCHED}'")
    return (
        select(r, *_result_columns("r_"), apart.label("apart"))
        .join(s, s.c.id == r.c.result_id)
        .where(
            r.c.pool == bindparam("pool"),
            r.c.activity == bindparam("activity"),
            r.c.status.in_([pending, matched]),
            r.c.latest > bindparam("low"),
            r.c.latest < bindparam("high_end"),
            r.c.earliest < bindparam("high"),
            or_(
                and_(r.c.status == pending, r.c.person != me, r.c.deadline >= bindparam("now")),
                and_(
                    r.c.status == matched,
                    s.c.status == matched,
                    s.c.start >= bindparam("not_before"),
                    s.c.start < bindparam("high"),
                ),
            ),
        )
        .order_by(r.c.earliest, r.c.id)
        .limit(bindparam("limit"))
    )


class NearbyWork:
    """``nearby`` inside a unit of work (``SQLWork`` provides ``_run``)."""

    _run: Callable[..., Any]

    def nearby(self, wish: Wish, now: datetime, margin: timedelta, limit: int) -> NearbyRows:
        from .sql import _request, _result  # noqa: PLC0415

        low, high = wish.earliest - margin, wish.latest + margin
        params = {
            "me": wish.person, "pool": wish.pool, "activity": wish.activity, "low": low,
            "high": high, "high_end": high + MAX_WINDOW, "now": now,
            "not_before": max(now, low), "limit": 4 * limit,
        }  # fmt: skip
        waiting: list[StoredRequest] = []
        groups: dict[int, tuple[StoredResult, list[StoredRequest]]] = {}
        apart: set[frozenset[str]] = set()
        for row in self._run(_query(), params):
            request = _request(row)
            if row.apart:
                apart.add(frozenset((wish.person, request.person)))
            if request.status == Status.PENDING:
                if len(waiting) < limit:
                    waiting.append(request)
            elif request.result_id in groups or len(groups) < limit:
                groups.setdefault(request.result_id, (_result(row, "r_"), []))[1].append(request)
        formed = sorted(
            (
                StoredGroup(res, tuple(sorted(ms, key=lambda m: m.id)))
                for res, ms in groups.values()
            ),
            key=lambda g: (g.result.start, g.result.id),
        )
        return NearbyRows(tuple(waiting), tuple(formed), frozenset(apart))
