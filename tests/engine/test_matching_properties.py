"""Random request streams keep the matching invariants (hypothesis, SQLite file)."""

import contextlib
import random
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from iwant_engine import FixedClock, Person, UserError
from iwant_engine.model import Status
from iwant_engine.storage.schema import Request, Result

from ..support import START, make_engine

PEOPLE = [Person(f"text:@p{i}", f"P{i}") for i in range(4)]

step = st.one_of(
    st.tuples(
        st.just("submit"),
        st.integers(0, len(PEOPLE) - 1),
        st.sampled_from(["coffee", "coffee", "lunch"]),
        st.integers(0, 8),  # start, in quarter hours from now
        st.integers(0, 6),  # window, in quarter hours beyond the activity's length
        st.one_of(st.none(), st.integers(2, 4)),  # max
        st.booleans(),  # explicit "by"
        st.sampled_from([None, None, "r1"]),
    ),
    st.tuples(st.just("cancel"), st.integers(0, len(PEOPLE) - 1)),
    st.tuples(st.just("wait"), st.integers(1, 40)),  # minutes
)


def _command(activity, start_q, extra_q, max_size, by, clock):
    length = 15 if activity == "coffee" else 45
    start = clock.now() + timedelta(minutes=15 * start_q)
    end = start + timedelta(minutes=length + 15 * extra_q)
    words = [activity, f"{start:%H:%M}-{end:%H:%M}"]
    if by:
        words.append(f"by {(start - timedelta(minutes=5)):%H:%M}")
    if max_size:
        words.append(f"max {max_size}")
    return " ".join(words)


def check_invariants(engine, now):
    with Session(engine.storage.engine) as session:
        rows = session.execute(
            select(Request, Result).join(Result, Result.id == Request.result_id)
        ).all()
    by_result = {}
    for req, res in rows:
        assert req.status == res.status, f"request {req.id} is {req.status}, result {res.status}"
        assert res.status != Status.INVALID, "a request points to an invalidated result"
        by_result.setdefault(res.id, (res, []))[1].append(req)
    for res, members in by_result.values():
        if res.status in (Status.PENDING, Status.MATCHED):
            assert res.size == len(members)
        if res.status == Status.PENDING:
            assert len(members) == 1
        if res.status == Status.MATCHED:
            assert len(members) >= 2
            assert len(members) <= min(m.max_size for m in members), "group above its max"
            assert len({m.person for m in members}) == len(members), "a person twice"
            for m in members:
                assert m.earliest <= res.start and res.end <= m.latest, "window misses meeting"
                assert res.end - res.start == timedelta(minutes=m.length_minutes)
    minute = now.replace(second=0, microsecond=0)
    waiting = [req for req, res in rows if res.status == Status.PENDING and req.deadline > now]
    for i, a in enumerate(waiting):
        for b in waiting[i + 1 :]:
            if a.person == b.person or a.pool != b.pool or a.activity != b.activity:
                continue
            lo, hi = max(a.earliest, b.earliest, minute), min(a.latest, b.latest)
            assert hi - lo < timedelta(minutes=a.length_minutes), f"{a.id}, {b.id} fit but wait"


def run_stream(steps):
    clock = FixedClock(START)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'p.db'}", clock)
        try:
            matched_at = {}
            for s in steps:
                if s[0] == "submit":
                    _, who, activity, start_q, extra_q, max_size, by, room = s
                    with contextlib.suppress(UserError):
                        engine.submit(
                            PEOPLE[who],
                            _command(activity, start_q, extra_q, max_size, by, clock),
                            room,
                        )
                elif s[0] == "cancel":
                    items = engine.open_requests(PEOPLE[s[1]])
                    if items:
                        engine.cancel(PEOPLE[s[1]], f"#{items[0].request_id}")
                else:
                    clock.advance(minutes=s[1])
                    engine.sweep()
                check_invariants(engine, clock.now())
                # Deadlines respected: nobody is matched after their deadline.
                for p in PEOPLE:
                    for item in engine.open_requests(p):
                        if item.status == Status.MATCHED and item.request_id not in matched_at:
                            matched_at[item.request_id] = clock.now()
                            assert clock.now() <= item.deadline
        finally:
            engine.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=25))
def test_random_streams_keep_invariants(steps):
    run_stream(steps)


@pytest.mark.parametrize("seed", range(12))
def test_long_seeded_streams_keep_invariants(seed):
    # Hypothesis favours short streams; these long ones make crowded pools certain.
    rng = random.Random(seed)
    steps = []
    for _ in range(40):
        kind = rng.random()
        if kind < 0.6:
            steps.append(
                (
                    "submit",
                    rng.randrange(len(PEOPLE)),
                    rng.choice(["coffee", "lunch"]),
                    rng.randrange(9),
                    rng.randrange(7),
                    rng.choice([None, 2, 3]),
                    rng.random() < 0.3,
                    rng.choice([None, "r1"]),
                )
            )
        elif kind < 0.75:
            steps.append(("cancel", rng.randrange(len(PEOPLE))))
        else:
            steps.append(("wait", rng.randrange(1, 40)))
    run_stream(steps)
