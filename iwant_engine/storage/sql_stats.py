"""``Storage.stats`` in the SQL storage: aggregate queries that return plain numbers, so a
year of a busy bot is counted in the database, not carried to Python row by row.

Local hours and days: PostgreSQL converts each instant with ``AT TIME ZONE``; SQLite, which
knows no zones, adds the zone's UTC offset of the segment of the period the instant falls in
(the offsets and their changes are worked out here with ``zoneinfo``, hour by hour).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Date,
    Integer,
    and_,
    case,
    cast,
    distinct,
    exists,
    func,
    literal,
    literal_column,
    select,
    update,
)
from sqlalchemy.engine import Connection

from ..model import Answer, DayTally, StatsRows, Status, Tally
from .sql_rows import QUESTIONS, REQUESTS, RESULTS

MET = (str(Status.MATCHED), str(Status.DONE))
#: Periods longer than this count first-time pairs in one pass over every pair's groups.
LONG = timedelta(days=31)


def offsets(zone: ZoneInfo, since: datetime, until: datetime) -> list[tuple[datetime, int]]:
    """The zone's UTC offset in minutes from ``since`` on, and from each change of it
    before ``until``: [(from, minutes)], the first from ``since``."""
    found: list[tuple[datetime, int]] = []
    moment = since
    while moment < until + timedelta(hours=1):
        offset = zone.utcoffset(moment.replace(tzinfo=None))
        minutes = int(offset.total_seconds() // 60) if offset is not None else 0
        if not found or found[-1][1] != minutes:
            found.append((min(moment, until), minutes))
        moment += timedelta(hours=1)
    return found


class StatsWork:
    """Inside a unit of work (``SQLWork`` provides ``_run``)."""

    _run: Callable[..., Any]

    def mark_suggested(self, request_id: int) -> None:
        self._run(update(REQUESTS).where(REQUESTS.c.id == request_id).values(suggested=True))


class StatsReads:
    """Reads for ``!iwant stats`` (``SQLStorage`` provides ``_read`` and ``is_sqlite``)."""

    is_sqlite: bool
    _read: Callable[[], AbstractContextManager[Connection]]

    def stats(
        self, pools: Sequence[str] | None, since: datetime, until: datetime, zone: str
    ) -> StatsRows:
        r = REQUESTS
        where = [r.c.earliest >= since, r.c.earliest < until]
        if pools is not None:
            where.append(r.c.pool.in_(list(pools)))
        is_met = r.c.status.in_(MET)
        met_flag = case((is_met, 1), else_=0)
        local_hour, local_day = self._local(ZoneInfo(zone), since, until)
        long = until - since > LONG
        # First-time pairs, the longest query, run on a second connection meanwhile: each
        # query reads a snapshot of its own either way (READ COMMITTED; SQLite without a
        # transaction), so the figures are as consistent as one after the other, and the
        # database works on both at once.
        with ThreadPoolExecutor(1, thread_name_prefix="iwant-stats") as helper:
            looked_back = helper.submit(self._first_pairs_read, where, is_met, long)
            counted = self._counted(where, is_met, met_flag, local_hour, local_day)
            first_pairs, pair_people = looked_back.result()
        totals, formed, hours, days, activities, answered, (waits, median) = counted
        return StatsRows(
            wishes=Tally(int(totals[0]), totals[1]),
            met=Tally(int(totals[2]), totals[3]),
            groups=formed,
            answered=Tally(answered[0], answered[1]),
            reported_met=answered[2],
            waits=waits,
            median_wait_seconds=median,
            suggestions=Tally(int(totals[4]), totals[5]),
            first_pairs=Tally(first_pairs, pair_people),
            hours={int(h): Tally(int(n), p) for h, n, _, p in hours},
            days={
                (d if not isinstance(d, str) else datetime.fromisoformat(d).date()): DayTally(
                    int(n), int(m), p
                )
                for d, n, m, p in days
            },
            activities={a: Tally(int(n), p) for a, n, _, p in activities},
        )

    def _first_pairs_read(self, where: list[Any], is_met: Any, long: bool) -> tuple[int, int]:
        """``_first_pairs`` on a connection of its own."""
        with self._read() as conn:
            return self._first_pairs(conn, where, is_met, long)

    def _counted(
        self, where: list[Any], is_met: Any, met_flag: Any, local_hour: Any, local_day: Any
    ) -> tuple[Any, int, list[Any], list[Any], list[Any], Any, tuple[int, int | None]]:
        """Totals, groups formed, the tallies by local hour, day and activity, the answers,
        the waits."""
        r = REQUESTS
        with self._read() as conn:
            # Distinct people by grouping per person first (a hash aggregate), never
            # count(DISTINCT), which sorts every row of a long period.
            taken = case((and_(is_met, r.c.suggested), 1), else_=0)
            each = (
                select(
                    func.count().label("n"),
                    func.sum(met_flag).label("met"),
                    func.sum(taken).label("taken"),
                )
                .where(*where)
                .group_by(r.c.person)
                .subquery()
            )
            totals = conn.execute(
                select(
                    func.coalesce(func.sum(each.c.n), 0),
                    func.count(),
                    func.coalesce(func.sum(each.c.met), 0),
                    func.count(case((each.c.met > 0, 1))),
                    func.coalesce(func.sum(each.c.taken), 0),
                    func.count(case((each.c.taken > 0, 1))),
                )
            ).one()
            formed = conn.execute(
                select(func.count()).select_from(
                    select(r.c.result_id).where(*where, is_met).group_by(r.c.result_id).subquery()
                )
            ).scalar_one()
            hours = self._by(conn, local_hour, where, met_flag)
            days = self._by(conn, local_day, where, met_flag)
            activities = self._by(conn, r.c.activity, where, met_flag)
            groups = select(r.c.result_id).where(*where, is_met)
            answered = conn.execute(
                select(
                    func.count(distinct(QUESTIONS.c.result_id)),
                    func.count(distinct(QUESTIONS.c.person)),
                    func.count(
                        distinct(
                            case(
                                (
                                    QUESTIONS.c.answer.in_([str(Answer.ALL), str(Answer.SOME)]),
                                    QUESTIONS.c.result_id,
                                )
                            )
                        )
                    ),
                ).where(QUESTIONS.c.answer.is_not(None), QUESTIONS.c.result_id.in_(groups))
            ).one()
            waits = self._waits(conn, where, is_met)
        return totals, formed, hours, days, activities, answered, waits

    def _by(self, conn: Connection, key: Any, where: list[Any], met_flag: Any) -> list[Any]:
        """(key, wishes, met, people) per value of ``key``. PostgreSQL groups per (key,
        person) first, a hash aggregate; SQLite, which sorts either way, counts distinct
        people directly (measured faster there)."""
        if self.is_sqlite:
            people = func.count(distinct(REQUESTS.c.person))
            flat = select(key, func.count(), func.sum(met_flag), people).where(*where)
            return list(conn.execute(flat.group_by(literal_column("1"))).all())
        each = (
            select(
                key.label("k"),
                func.count().label("n"),
                func.sum(met_flag).label("met"),
            )
            .where(*where)
            .group_by(literal_column("1"), REQUESTS.c.person)
            .subquery()
        )
        rows = select(each.c.k, func.sum(each.c.n), func.sum(each.c.met), func.count())
        return list(conn.execute(rows.group_by(each.c.k)).all())

    def _local(self, zone: ZoneInfo, since: datetime, until: datetime) -> tuple[Any, Any]:
        """SQL expressions of the local hour (an integer) and day of ``earliest``."""
        earliest = REQUESTS.c.earliest
        if not self.is_sqlite:
            local = func.timezone(zone.key, func.timezone("UTC", earliest))
            return cast(func.extract("hour", local), Integer), cast(local, Date)
        segments = offsets(zone, since, until)
        shift: Any = literal(f"{segments[-1][1]:+d} minutes")
        for start, minutes in reversed(segments[1:]):
            shift = case((earliest >= start, shift), else_=literal(f"{minutes:+d} minutes"))
        if len(segments) > 1:  # the first segment: before the first change
            shift = case(
                (earliest < segments[1][0], literal(f"{segments[0][1]:+d} minutes")), else_=shift
            )
        local = func.datetime(earliest, shift)
        return cast(func.strftime("%H", local), Integer), func.date(local)

    def _waits(self, conn: Connection, where: list[Any], is_met: Any) -> tuple[int, int | None]:
        r = REQUESTS
        ranked = (
            select(
                r.c.result_id,
                r.c.created_at,
                func.row_number()
                .over(partition_by=r.c.result_id, order_by=(r.c.created_at, r.c.id))
                .label("rank"),
            )
            .where(*where, is_met)
            .subquery()
        )
        first, second = func.min(ranked.c.created_at), func.max(ranked.c.created_at)
        if not self.is_sqlite:
            seconds = func.round(func.extract("epoch", second - first))
        else:
            seconds = func.round((func.julianday(second) - func.julianday(first)) * 86400.0)
        waits = (
            select(cast(seconds, Integer).label("wait"))
            .where(ranked.c.rank <= 2)
            .group_by(ranked.c.result_id)
            .having(func.count() == 2)
            .subquery()
        )
        if not self.is_sqlite:
            count, median = conn.execute(
                select(
                    func.count(), func.percentile_disc(0.5).within_group(waits.c.wait)
                ).select_from(waits)
            ).one()
        else:  # the lower median's rank, (n + 1) / 2, in the same pass as n
            ranked = select(
                waits.c.wait,
                func.row_number().over(order_by=waits.c.wait).label("nth"),
                func.count().over().label("n"),
            ).subquery()
            found = conn.execute(
                select(ranked.c.n, ranked.c.wait).where(ranked.c.nth == (ranked.c.n + 1) // 2)
            ).first()
            count, median = (found[0], found[1]) if found is not None else (0, None)
        return count, None if median is None else int(median)

    def _first_pairs(
        self, conn: Connection, where: list[Any], is_met: Any, long: bool
    ) -> tuple[int, int]:
        """Pairs of people in a group of the period (both wishes in it) who had shared no
        formed group that met before it: how many, and how many people are in them.

        A short period looks back from each of its pairs (``NOT EXISTS``, by index: cheap
        while the pairs are few); a long one ranks every pair's groups once (one pass over
        all met requests, cheaper than a look back from each of hundreds of thousands)."""
        r = REQUESTS
        m = select(r.c.result_id, r.c.person).where(*where, is_met).subquery()
        a, b = m.alias("a"), m.alias("b")
        group = RESULTS.alias("g")
        together = a.join(b, and_(b.c.result_id == a.c.result_id, a.c.person < b.c.person))
        if long:
            x, y = REQUESTS.alias("x"), REQUESTS.alias("y")
            shared = (
                select(
                    x.c.person.label("p1"),
                    y.c.person.label("p2"),
                    x.c.result_id,
                    func.row_number()
                    .over(
                        partition_by=(x.c.person, y.c.person),
                        order_by=(group.c.start, x.c.result_id),
                    )
                    .label("nth"),
                )
                .select_from(
                    x.join(y, and_(y.c.result_id == x.c.result_id, x.c.person < y.c.person)).join(
                        group, group.c.id == x.c.result_id
                    )
                )
                .where(x.c.status.in_(MET), y.c.status.in_(MET), group.c.start.is_not(None))
                .subquery()
            )
            pairs = (
                select(a.c.person.label("p1"), b.c.person.label("p2"))
                .select_from(
                    together.join(
                        shared,
                        and_(
                            shared.c.result_id == a.c.result_id,
                            shared.c.p1 == a.c.person,
                            shared.c.p2 == b.c.person,
                        ),
                    )
                )
                .where(shared.c.nth == 1)
                .subquery()
            )
        else:
            x, y, earlier = REQUESTS.alias("x"), REQUESTS.alias("y"), RESULTS.alias("e")
            # The first person's earlier met groups (few), each probed for the second one
            # by the group's id: index lookups, never a scan of either person's history.
            # Their groups are in ``ix_requests_person_status`` (person, status, result_id):
            # no request's row is read for them.
            with_b = exists(
                select(1)
                .where(
                    y.c.result_id == x.c.result_id,
                    y.c.person == b.c.person,
                    y.c.status.in_(MET),
                )
                .correlate_except(y)
            )
            before = exists(
                select(1)
                .select_from(x.join(earlier, earlier.c.id == x.c.result_id))
                .where(
                    x.c.person == a.c.person,
                    x.c.status.in_(MET),
                    earlier.c.start < group.c.start,
                    with_b,
                )
            )
            pairs = (
                select(a.c.person.label("p1"), b.c.person.label("p2"))
                .select_from(together.join(group, group.c.id == a.c.result_id))
                .where(group.c.start.is_not(None), ~before)
                .subquery()
            )
        found = select(pairs.c.p1, pairs.c.p2).cte("found")
        people = select(found.c.p1.label("p")).union(select(found.c.p2)).subquery()
        count, people_count = conn.execute(
            select(
                select(func.count()).select_from(found).scalar_subquery(),
                select(func.count()).select_from(people).scalar_subquery(),
            )
        ).one()
        return count, people_count
