"""Part of the sweep stage: what making standing wishes' days costs (issue 16).

``count`` people each have one standing wish (``lunch 12:00 every day`` and the like, in
twelve rooms, so many of them pair up as the days are made); the clock is set just after
their next day's wishes are due, and ``Engine.sweep_standing`` is timed until every one is
made. Each day's wish goes through ``matching.submit`` like a typed one (its own locks, read
and write), so this is the poller's work on a morning when ``count`` people have standing
wishes.
"""

from __future__ import annotations

import math
import random
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from iwant_engine import standing
from iwant_engine.model import Person, PersonInfo, Standing

from .workload import DAY0

if TYPE_CHECKING:
    from .measure import Run

TEXTS = ("lunch 12:00", "lunch 12:30", "coffee 10:00", "coffee 15:00-16:00", "walk 17:00")
ROOMS = tuple(f"standing{i:02d}" for i in range(12))
LOAD_BATCH = 500


def make_standing_days(run: Run, count: int) -> dict[str, Any]:
    """Store ``count`` standing wishes, then time making the wishes of their next day."""
    engine, rng = run.engine, random.Random(run.seed + 16)
    day = DAY0 + timedelta(days=3)  # clear of every other stage's days
    zone = engine.zones.default
    lead = engine.settings.standing_lead
    due = standing.day_start(day, zone) - lead
    for first in range(0, count, LOAD_BATCH):
        with engine.storage.transaction() as uow:
            for i in range(first, min(first + LOAD_BATCH, count)):
                person = f"bench:standing{i}"
                text = rng.choice(TEXTS)
                pool = engine.pool_for(Person(person, person), rng.choice(ROOMS))
                uow.add_person(PersonInfo(person, f"S{i}"))
                uow.add_standing(
                    Standing(
                        0, person, pool, None, text.split()[0], text, frozenset(range(7)),
                        due - timedelta(days=1), day, due,
                    )
                )  # fmt: skip
    before = dict(engine.storage.counts())
    run.clock.set(due + timedelta(minutes=1))
    start = time.perf_counter()
    looked_at = engine.sweep_standing()
    seconds = time.perf_counter() - start
    after = dict(engine.storage.counts())
    made = sum(after.get(s, 0) - before.get(s, 0) for s in ("PENDING", "MATCHED"))
    return {
        "standing": count,
        "looked_at": looked_at,
        "made": made,
        "matched": after.get("MATCHED", 0) - before.get("MATCHED", 0),
        "seconds": round(seconds, 3),
        "per_second": round(made / seconds, 1) if seconds else math.nan,
    }
