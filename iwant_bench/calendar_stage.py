"""1c: submissions by people with linked calendars (issue 27) beside the same stream by people
without, and the baseline, in alternating chunks (as 1 and 1b).

Each person of the calendar stream has a busy week of 40 events stored as the background
refresh leaves them (busy blocks in the storage); a submission then reads them and trims its
window. Target: engine / baseline with calendars within 10% of the figure without.
"""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert

from iwant_engine.model import LinkedCalendar

from . import databases as dbs
from .measure import CHUNK, Driver, Run, Taken, summary
from .progress import bar
from .workload import DAY0, Op, Shape

EVENTS_PER_WEEK = 40


def busy_week(rng: random.Random, start: datetime) -> list[tuple[datetime, datetime]]:
    """40 meetings over the five working days from ``start``: 8 a day between 08:00 and
    18:00, 30 or 60 minutes each, on the half hour."""
    blocks = []
    for day in range(5):
        base = start + timedelta(days=day)
        for slot in rng.sample(range(20), EVENTS_PER_WEEK // 5):
            begin = base + timedelta(hours=8, minutes=30 * slot)
            blocks.append((begin, begin + timedelta(minutes=rng.choice((30, 60)))))
    return sorted(blocks)


def link_calendars(run: Run, people: list[str], seed: int) -> int:
    """Store a linked calendar with a busy week for each of ``people``; busy blocks stored."""
    rng = random.Random(seed)
    stored = 0
    now = run.clock.now()
    with run.engine.storage.transaction() as uow:
        for person in people:
            blocks = busy_week(rng, DAY0)
            calendar = LinkedCalendar(
                person, "ics", "sealed", "https://calendar.example/•••", now,
                now + timedelta(days=1), last_ok_at=now,
            )  # fmt: skip
            uow.save_calendar(calendar, blocks)
            stored += len(blocks)
    run.engine.requests.calendar_changed()  # stored behind the engine's back: read them now
    return stored


def _row(run: Run, op: Op) -> dict[str, Any]:
    assert op.earliest and op.latest and op.deadline
    return {
        "person": op.person, "pool": run.pool_of(op.person, op.room),
        "origin": f"{op.person.split(':', 1)[0]}:{op.room}", "activity": op.activity,
        "earliest": dbs.naive(op.earliest), "latest": dbs.naive(op.latest),
        "deadline": dbs.naive(op.deadline), "length_minutes": op.length_minutes,
        "max_size": op.max_size or run.max_sizes[op.activity], "min_size": 2,
        "created_at": dbs.naive(op.at), "result_id": None, "status": "PENDING",
    }  # fmt: skip


def calendars_on_off(run: Run, count: int) -> dict[str, Any]:
    """The realistic stream twice in pools of their own, once by people with linked calendars
    and once by people without, and the baseline INSERT + COMMIT of the same requests."""
    workloads = {
        mode: run.workload(
            27, Shape(rooms=tuple(f"cal-{mode}{i:02d}" for i in range(12)), prefix=f"{mode}-")
        )
        for mode in ("with", "without")
    }
    streams = {mode: w.ops(count) for mode, w in workloads.items()}
    people = [p for members in workloads["with"].members.values() for p in members]
    blocks = link_calendars(run, people, 27)
    base = dbs.baseline_engine(run.db.url, run.settings.pool_size)
    add = insert(dbs.BASELINE)
    driver = Driver(run)
    taken = {mode: Taken() for mode in streams}
    baseline: list[float] = []
    try:
        with bar(2 * count, f"{run.db.kind}: calendars with/without", run.show_progress) as prog:
            for i in range(0, count, CHUNK):
                for mode, ops in streams.items():
                    taken[mode].run(driver, ops[i : i + CHUNK])
                    prog.update(len(ops[i : i + CHUNK]))
                for op in streams["without"][i : i + CHUNK]:
                    if op.kind == "submit":
                        row = _row(run, op)
                        start = time.perf_counter()
                        with base.begin() as conn:
                            conn.execute(add, row)
                        baseline.append(time.perf_counter() - start)
    finally:
        driver.close()
        base.dispose()
    out: dict[str, Any] = {"busy_blocks": blocks, "people_with_calendars": len(people)}
    base_stats = summary(baseline)
    out["baseline"] = base_stats
    for mode, part in taken.items():
        stats = part.figures()
        stats["engine_over_baseline"] = round(stats["per_second"] / base_stats["per_second"], 3)
        out[mode] = stats
    out["with_over_without"] = round(out["with"]["per_second"] / out["without"]["per_second"], 3)
    return out
