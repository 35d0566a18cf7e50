"""The stats stage (issue 26): ``Storage.stats`` on a database of ``count`` finished requests.

The rows are made by the database itself, in one ``INSERT ... SELECT`` per table over a
series (``generate_series`` on PostgreSQL, a recursive CTE on SQLite), so a million take
seconds, not the hours a million submissions would. They are a year of a busy bot: 50
rooms, five activities, one person per 50 requests, wishes in pairs of people chosen apart
that met (7 in 10, DONE, with a "Did you meet?" answer for one group in 5 and a near miss
taken in one in 50) or expired each alone. The statistics are then read as ``!iwant stats``
reads them, each query ``REPEATS`` times: one room over a week, every room over a week, a
month and a year.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

if TYPE_CHECKING:
    from .measure import Run

ROOMS = 50
ACTIVITIES = ("coffee", "lunch", "tea", "walk", "tennis")
REPEATS = 7
#: The period's end: clear of the days every other stage uses.
END = datetime(2031, 1, 1, 12, 0, tzinfo=UTC)
YEAR_MINUTES = 365 * 24 * 60
ZONE = "Europe/Prague"
QUERIES = {
    "room_week": (["text:stats7"], timedelta(days=7)),
    "all_week": (None, timedelta(days=7)),
    "all_month": (None, timedelta(days=30)),
    "all_year": (None, timedelta(days=365)),
}


def _first_free_id(conn: Any, table: str, pg: bool) -> int:
    """The first id of ``table`` that the rows loaded here may take. On PostgreSQL above the
    sequence's too: an engine holds result ids it drew from the sequence and has not used
    yet (``SQLStorage.result_id``), which a row given ``MAX(id) + 1`` would take from it."""
    stored = int(conn.scalar(text(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")))
    if not pg:
        return stored
    drawn = int(conn.scalar(text(f"SELECT nextval(pg_get_serial_sequence('{table}', 'id'))")))
    return max(stored, drawn)


def _sql(pg: bool, count: int, people: int) -> dict[str, str]:
    """The statements that make the rows, with the series' variable ``g`` (0..count-1) for
    requests and ``k`` (0..count/2-1) for slots of two wishes."""
    slots = count // 2
    # Rooms and activities from other digits of k than "met" (k % 10): every room has both.
    activity = "CASE ({x} / 3) % 5 " + " ".join(
        f"WHEN {i} THEN '{a}'" for i, a in enumerate(ACTIVITIES)
    ) + " END"  # fmt: skip
    # Minutes before END of slot k: the slots spread over a year.
    offset = f"((CAST({{k}} AS bigint) * {YEAR_MINUTES}) / {slots} + 1)"
    if pg:

        def series(n: int, name: str) -> str:
            return f"generate_series(0, {n - 1}) AS s({name})"

        def minus(minutes: str) -> str:
            return f"(CAST(:end AS timestamp) - make_interval(mins => CAST({minutes} AS int)))"

        def plus(moment: str, minutes: int) -> str:
            return f"({moment} + interval '{minutes} minutes')"

        div = "/"
    else:

        def series(n: int, name: str) -> str:
            return (
                f"(WITH RECURSIVE t({name}) AS (SELECT 0 UNION ALL SELECT {name} + 1 FROM t "
                f"WHERE {name} < {n - 1}) SELECT {name} FROM t) AS s"
            )

        def minus(minutes: str) -> str:
            return f"(datetime(:end, '-' || ({minutes}) || ' minutes') || '.000000')"

        def plus(moment: str, minutes: int) -> str:
            return f"(datetime({moment}, '+{minutes} minutes') || '.000000')"

        div = "/"
    k = f"(g {div} 2)"
    # The two people of a slot: unrelated numbers of k, so that pairs rarely repeat.
    first = f"((CAST({k} AS bigint) * 7919) % {people})"
    second = f"((CAST({k} AS bigint) * 104729 + 7) % {people})"
    first_k = f"((CAST(k AS bigint) * 7919) % {people})"
    earliest_k = minus(offset.format(k="k"))
    earliest_g = minus(offset.format(k=k))
    met = f"({k} % 10 < 7)"
    return {
        "people": (
            "INSERT INTO people (id, display_name, link_failures, feedback_off) "
            f"SELECT 'bench:s' || p, 'S' || p, 0, false FROM {series(people, 'p')}"
        ),
        "results": (
            'INSERT INTO results (id, pool, activity, status, start, "end", max_size, size, '
            "due_at, updated_at, asked_at) "
            f"SELECT :result0 + k, 'text:stats' || ((k / 7) % {ROOMS}), {activity.format(x='k')}, "
            "CASE WHEN k % 10 < 7 THEN 'DONE' ELSE 'EXPIRED' END, "
            f"CASE WHEN k % 10 < 7 THEN {earliest_k} END, "
            f"CASE WHEN k % 10 < 7 THEN {plus(earliest_k, 30)} END, 6, "
            f"CASE WHEN k % 10 < 7 THEN 2 ELSE 1 END, NULL, {earliest_k}, {earliest_k} "
            f"FROM {series(slots, 'k')}"
        ),
        # An expired slot's second wish has a result of its own.
        "alone": (
            'INSERT INTO results (id, pool, activity, status, start, "end", max_size, size, '
            "due_at, updated_at) "
            f"SELECT :result0 + {slots} + k, 'text:stats' || ((k / 7) % {ROOMS}), "
            f"{activity.format(x='k')}, 'EXPIRED', NULL, NULL, 6, 1, NULL, {earliest_k} "
            f"FROM {series(slots, 'k')} WHERE k % 10 >= 7"
        ),
        "requests": (
            "INSERT INTO requests (id, person, pool, origin, activity, earliest, latest, "
            "deadline, length_minutes, max_size, min_size, created_at, result_id, status, "
            "replied_at, suggested) "
            f"SELECT :request0 + g, 'bench:s' || (CASE WHEN g % 2 = 0 THEN {first} "
            f"WHEN {second} = {first} THEN ({second} + 1) % {people} ELSE {second} END), "
            f"'text:stats' || (({k} / 7) % {ROOMS}), NULL, {activity.format(x=k)}, "
            f"{earliest_g}, {plus(earliest_g, 60)}, {plus(earliest_g, 30)}, 30, 6, 2, "
            # The second wish of a pair comes up to 36 minutes after the first.
            f"{minus(offset.format(k=k) + f' + 60 - (g % 2) * ({k} % 13) * 3')}, "
            f"CASE WHEN {met} OR g % 2 = 0 THEN :result0 + {k} ELSE :result0 + {slots} + {k} "
            f"END, CASE WHEN {met} THEN 'DONE' ELSE 'EXPIRED' END, {earliest_g}, "
            f"{met} AND {k} % 50 = 0 AND g % 2 = 1 "
            f"FROM {series(count, 'g')}"
        ),
        "questions": (
            "INSERT INTO questions (result_id, person, asked_at, expires_at, answer, "
            "answered_at) "
            f"SELECT :result0 + k, 'bench:s' || {first_k}, "
            f"{earliest_k}, "
            f"{plus(earliest_k, 10080)}, CASE WHEN k % 15 = 0 THEN 'none' ELSE 'all' END, "
            f"{plus(earliest_k, 60)} FROM {series(slots, 'k')} "
            "WHERE k % 10 < 7 AND k % 5 = 0"
        ),
    }


def stats_queries(run: Run, count: int) -> dict[str, Any]:
    """Load ``count`` finished requests, then time ``Storage.stats``; medians in ms."""
    storage = run.engine.storage
    sa = run.sa_engine
    pg = sa.dialect.name == "postgresql"
    people = max(10, count // 50)
    end = END.replace(tzinfo=None)
    started = time.perf_counter()
    with sa.begin() as conn:
        if pg:  # the storage's connections stop a statement after some seconds; a load runs on
            conn.execute(text("SET LOCAL statement_timeout = 0"))
        request0, result0 = (_first_free_id(conn, table, pg) for table in ("requests", "results"))
        params = {"end": end if pg else end.isoformat(" "), "request0": request0,
                  "result0": result0}  # fmt: skip
        for statement in _sql(pg, count, people).values():
            conn.execute(text(statement), params)
        if pg:  # the sequences go on after the ids given here
            for table in ("requests", "results"):
                conn.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT MAX(id) FROM {table}))"
                ))  # fmt: skip
    with sa.connect() as conn:  # fresh statistics, as a production database's autovacuum has
        if pg:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        else:
            conn.execute(text("ANALYZE"))
            conn.commit()
    load_s = time.perf_counter() - started
    out: dict[str, Any] = {"requests": count, "people": people, "rooms": ROOMS,
                           "load_s": round(load_s, 1)}  # fmt: skip
    for name, (pools, period) in QUERIES.items():
        times, rows = [], None
        for _ in range(REPEATS):
            began = time.perf_counter()
            rows = storage.stats(pools, END - period, END, ZONE)
            times.append((time.perf_counter() - began) * 1000)
        assert rows is not None
        out[name] = {
            "median_ms": round(statistics.median(times), 1),
            "max_ms": round(max(times), 1),
            "wishes": rows.wishes.count,
            "groups": rows.groups,
        }
    return out
