"""``Storage.stats`` of the memory storage: the same counts ``sql_stats.py`` makes with
aggregate queries, made in Python from the rows (the conformance suite compares them)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from itertools import combinations
from statistics import median_low
from zoneinfo import ZoneInfo

from ..model import (
    Answer,
    DayTally,
    Question,
    StatsRows,
    Status,
    StoredRequest,
    StoredResult,
    Tally,
)

MET = (Status.MATCHED, Status.DONE)


def count_stats(
    requests: Iterable[StoredRequest],
    results: Mapping[int, StoredResult],
    questions: Iterable[Question],
    suggested: set[int],
    pools: Sequence[str] | None,
    since: datetime,
    until: datetime,
    zone: str,
) -> StatsRows:
    everything = list(requests)
    rows = [
        r for r in everything if since <= r.earliest < until and (pools is None or r.pool in pools)
    ]
    met = [r for r in rows if r.status in MET]
    tz = ZoneInfo(zone)

    hours: dict[int, list[str]] = defaultdict(list)
    days: dict[date, list[StoredRequest]] = defaultdict(list)
    activities: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        local = r.earliest.astimezone(tz)
        hours[local.hour].append(r.person)
        days[local.date()].append(r)
        activities[r.activity].append(r.person)

    groups: dict[int, list[StoredRequest]] = defaultdict(list)
    for r in met:
        if r.result_id is not None:  # a met request is in a group: always
            groups[r.result_id].append(r)
    waits = []
    for members in groups.values():
        if len(members) >= 2:
            one, two = sorted(members, key=lambda m: (m.created_at, m.id))[:2]
            waits.append(round((two.created_at - one.created_at).total_seconds()))

    answers = [q for q in questions if q.answer is not None and q.result_id in groups]
    taken = [r for r in met if r.id in suggested]

    # Every earlier formed group of each pair: ``first_pairs`` counts a pair of a group in
    # the period that shared none before it.
    starts: dict[frozenset[str], list[datetime]] = defaultdict(list)
    shared: dict[int, list[str]] = defaultdict(list)
    for r in everything:
        if r.status in MET and r.result_id is not None:
            shared[r.result_id].append(r.person)
    for result_id, people in shared.items():
        start = results[result_id].start
        if start is not None:
            for a, b in combinations(sorted(set(people)), 2):
                starts[frozenset((a, b))].append(start)
    first: list[frozenset[str]] = []
    for result_id, members in groups.items():
        start = results[result_id].start
        people = sorted({m.person for m in members})
        for a, b in combinations(people, 2):
            pair = frozenset((a, b))
            if start is not None and not any(s < start for s in starts[pair]):
                first.append(pair)

    return StatsRows(
        wishes=Tally(len(rows), len({r.person for r in rows})),
        met=Tally(len(met), len({r.person for r in met})),
        groups=len(groups),
        answered=Tally(len({q.result_id for q in answers}), len({q.person for q in answers})),
        reported_met=len({q.result_id for q in answers if q.answer in (Answer.ALL, Answer.SOME)}),
        waits=len(waits),
        median_wait_seconds=median_low(waits) if waits else None,
        suggestions=Tally(len(taken), len({r.person for r in taken})),
        first_pairs=Tally(len(first), len({p for pair in first for p in pair})),
        hours={h: Tally(len(p), len(set(p))) for h, p in hours.items()},
        days={
            d: DayTally(len(rs), sum(r.status in MET for r in rs), len({r.person for r in rs}))
            for d, rs in days.items()
        },
        activities={a: Tally(len(p), len(set(p))) for a, p in activities.items()},
    )
