"""Domain steps that write several rows of a kind at once, on every storage.

The SQL storage writes the rows of one kind in one statement on SQLite (a multi-row INSERT,
an UPDATE from a list of rows, in chunks of 16), and a new request together with the moves
of the requests it meets (``SQLWork._insert_moving``); these tests hold every storage to the
same stored rows, and SQLite to its statement count."""

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import event

from iwant_engine import Person
from iwant_engine.model import (
    Changes,
    Move,
    NewOutbox,
    NewRequest,
    PersonInfo,
    ResultChange,
    Status,
    StoredRequest,
    Wish,
)

from ..support import ALICE, BOB, CAROL, DAVE, at, drain, make_engine


def _requests(engine) -> dict[int, StoredRequest]:
    return {request.id: request for request, _ in engine.storage.snapshot()}


def _unreplied(engine, clock) -> list[int]:
    with engine.storage.transaction() as uow:
        waiting = uow.unreplied("text", clock.now() + timedelta(minutes=1), 100)
    return sorted(r.id for r in waiting)


def test_a_group_formed_at_once_keeps_each_members_request(engine, clock):
    # Three wait (answers not yet acknowledged, each its own window and event); the fourth
    # forms the group of four: one new request and three moves in one step.
    engine.submit(ALICE, "coffee 9:30-10:30 min 4", event_id="a", durable_reply=True)
    engine.submit(BOB, "coffee 9:45-10:45 min 4", event_id="b", durable_reply=True)
    engine.submit(CAROL, "coffee 10:00-11:00 min 4", event_id="c", durable_reply=True)
    before = _requests(engine)
    assert [before[i].result_id for i in (1, 2, 3)] == [None, None, None], "one row each"
    clock.advance(minutes=5)
    reply = engine.submit(DAVE, "coffee 10:00", event_id="d")
    assert reply.body.startswith("Matched! You meet Alice, Bob and Carol for coffee at 10:00"), (
        reply.body
    )
    after = _requests(engine)
    group = after[4].result_id
    for request_id in (1, 2, 3):  # only their result and status changed
        assert after[request_id] == replace(
            before[request_id], result_id=group, status=Status.MATCHED
        )
    dave = after[4]
    assert (dave.person, dave.event_key, dave.status) == ("text:@dave", "text:d", Status.MATCHED)
    assert (dave.earliest, dave.created_at, dave.min_size) == (at(10), at(9, 5), 2)
    assert _unreplied(engine, clock) == [1, 2, 3]
    assert group is not None
    with engine.storage.transaction() as uow:
        formed = uow.group(group)
    assert formed is not None and formed.result.status == Status.MATCHED
    assert (formed.result.start, formed.result.size) == (at(10), 4)
    assert [m.id for m in formed.members] == [1, 2, 3, 4]
    groups: list = []
    assert [who for who, _ in drain(engine, groups=groups)] == [
        "text:@alice",
        "text:@bob",
        "text:@carol",
    ]
    assert [members for members, _ in groups] == [
        ["text:@alice", "text:@bob", "text:@carol", "text:@dave"]
    ]


def test_a_step_with_many_rows_of_each_kind_is_stored_whole(engine, clock):
    people = [Person(f"text:@p{i:02}", f"P{i:02}") for i in range(20)]
    for i, person in enumerate(people):  # twenty requests waiting apart, in rooms of their own
        engine.submit(person, "coffee 10:00-11:00", room=f"r{i}", durable_reply=True)
    before = _requests(engine)
    assert sorted(before) == list(range(1, 21))
    assert {r.result_id for r in before.values()} == {None}, "a waiting request is one row"
    now = clock.now()

    def stored(i: int) -> ResultChange:
        return ResultChange(None, f"text:r{i}", "coffee", Status.MATCHED, at(10), at(10, 15),
                            6, 2, at(10, 15))  # fmt: skip

    with engine.storage.transaction() as uow:  # two groups, and 17 results to retire
        own = [uow.add_result(stored(i), now) for i in range(19)]
    assert len(set(own)) == 19 and all(i > 0 for i in own)
    results = [  # the two groups, each with values of its own
        ResultChange(
            own[g],
            f"text:r{g}",
            "coffee",
            Status.MATCHED,
            at(10, 15 * g),
            at(10, 15 * g + 15),
            4 + g,
            3 + g,
            at(10, 15 * g + 15),
        )
        for g in (0, 1)
    ]
    fresh = ResultChange(None, "text:r10", "coffee", Status.CANCELLED, None, None, 5, 1, None)
    moves = [Move(i + 1, own[0], Status.MATCHED) for i in (0, 2, 3)]
    moves += [Move(i + 1, own[1], Status.MATCHED) for i in (1, 4, 5, 6)]
    moves += [Move(11, fresh, Status.CANCELLED)]
    moves += [Move(i + 1, None, Status.EXPIRED) for i in range(12, 20)]
    retired = [(own[i], Status.INVALID) for i in range(2, 10)]
    retired += [(own[i], Status.EXPIRED) for i in range(10, 16)]
    retired += [(own[i], Status.CANCELLED) for i in (16, 17, 18)]  # 17 rows: more than 16
    outbox = [
        NewOutbox(
            people[i].id,
            f"note {i}",
            [{"label": f"b{i}", "value": f"!iwant cancel {i}"}] if i % 2 else [],
            f"text:r{i}" if i % 3 else None,
            [people[i].id, people[(i + 1) % 20].id] if i % 5 == 0 else None,
        )
        for i in range(20)
    ]
    replied = list(range(1, 19))  # 18 of the 20 answers acknowledged
    with engine.storage.transaction() as uow:
        assert uow.apply(Changes(results, None, moves, retired, outbox, replied), now) is None
    after = _requests(engine)
    expected: dict[int, tuple[int | None, Status]] = {i: (None, Status.PENDING) for i in before}
    expected.update({m.request_id: (m.result, m.status) for m in moves if m.result != fresh})
    new_result = after[11].result_id
    assert new_result is not None and new_result not in own
    expected[11] = (new_result, Status.CANCELLED)
    assert {i: (r.result_id, r.status) for i, r in after.items()} == expected
    for i, request in after.items():  # nothing else of a request changed
        assert request == replace(before[i], result_id=request.result_id, status=request.status)
    with engine.storage.transaction() as uow:
        groups = {i: uow.group(own[i]) for i in range(19)}
        made = uow.group(new_result)
    for g, change in enumerate(results):
        group = groups[g]
        assert group is not None
        assert vars(group.result) == vars(change)
    assert [m.id for m in groups[0].members] == [1, 3, 4]  # type: ignore[union-attr]
    assert [m.id for m in groups[1].members] == [2, 5, 6, 7]  # type: ignore[union-attr]
    statuses = {
        i: (g.result.status, g.result.due_at) for i, g in groups.items() if g and i not in (0, 1)
    }
    assert statuses == {
        **{i: (Status.INVALID, None) for i in range(2, 10)},
        **{i: (Status.EXPIRED, None) for i in range(10, 16)},
        **{i: (Status.CANCELLED, None) for i in (16, 17, 18)},
    }
    assert made is not None and vars(made.result) == {**vars(fresh), "id": new_result}
    assert [m.id for m in made.members] == [11]
    waiting = [(q.id, r) for q, r in engine.storage.snapshot() if q.result_id is None]
    assert [i for i, _ in waiting] == [8, 9, 10, *range(12, 21)]
    assert {(r.id, r.status, r.size) for _, r in waiting} == {
        (0, Status.PENDING, 1),
        (0, Status.EXPIRED, 1),
    }
    assert _unreplied(engine, clock) == [19, 20]
    items = engine.storage.claim_outbox("text", now, limit=50)
    assert [(o.recipient, o.body, o.buttons, o.origin, o.group_members) for o in items] == [
        (o.recipient, o.body, o.buttons, o.origin, o.group_members) for o in outbox
    ]
    assert [o.id for o in items] == sorted(o.id for o in items)


def test_a_waiting_request_expires_and_is_cancelled_as_one_row(engine, clock):
    engine.submit(ALICE, "coffee 10:00-10:30", durable_reply=True)
    engine.submit(BOB, "lunch 12:00", durable_reply=True)
    engine.cancel(BOB, "lunch")
    clock.set(at(10, 31))
    assert engine.storage.has_due(clock.now())
    engine.sweep()
    pairs = {q.person: (q.result_id, q.status, r.status) for q, r in engine.storage.snapshot()}
    assert pairs == {
        ALICE.id: (None, Status.EXPIRED, Status.EXPIRED),
        BOB.id: (None, Status.CANCELLED, Status.CANCELLED),
    }
    assert not engine.storage.has_due(clock.now())


# -- SQLite only ---------------------------------------------------------------------------


@pytest.fixture
def sqlite_engine(tmp_path, clock) -> Iterator:
    eng = make_engine(f"sqlite:///{tmp_path / 'iwant.db'}", clock)
    yield eng
    eng.close()


def _traced(engine) -> list[str]:
    """The statements SQLite runs from now on (as the benchmark counts them)."""
    statements: list[str] = []

    def on_checkout(dbapi_connection, *_args) -> None:
        dbapi_connection.set_trace_callback(statements.append)

    engine.storage.release_connections()  # so that every connection used is checked out anew
    event.listen(engine.storage.engine, "checkout", on_checkout)
    return statements


def test_on_sqlite_a_waiting_request_is_four_statements(sqlite_engine, clock):
    engine = sqlite_engine
    engine.submit(ALICE, "lunch 12:00")
    engine.cancel(ALICE, "lunch")
    statements = _traced(engine)
    assert engine.submit(ALICE, "coffee 10:00").body.startswith("Waiting")
    words = [" ".join(s.split()[:3]) for s in statements]
    assert words == ["BEGIN IMMEDIATE", words[1], "INSERT INTO requests", "COMMIT"], statements
    assert words[1].startswith("WITH"), "the neighbourhood"


def test_on_sqlite_a_formed_pair_is_six_statements(sqlite_engine, clock):
    engine = sqlite_engine
    for person in (ALICE, BOB):  # known people: no row of theirs to write
        engine.submit(person, "lunch 12:00")
        engine.cancel(person, "lunch")
    engine.submit(ALICE, "coffee 10:00")
    statements = _traced(engine)
    assert engine.submit(BOB, "coffee 10:00").body.startswith("Matched!")
    words = [" ".join(s.split()[:3]) for s in statements]
    assert words == [
        "BEGIN IMMEDIATE",
        words[1],  # the neighbourhood
        "INSERT INTO results",  # the group's (Alice waited as one row)
        "INSERT INTO requests",  # Bob's request, and Alice's moved into the group
        "INSERT INTO outbox",  # Alice's note and the group conversation's
        "COMMIT",
    ], statements
    assert "ON CONFLICT (id) DO UPDATE" in statements[3]
    assert statements[4].count("), (") == 1


def test_on_sqlite_a_group_of_three_formed_at_once_is_six_statements(sqlite_engine, clock):
    engine = sqlite_engine
    for person in (ALICE, BOB, CAROL):
        engine.submit(person, "lunch 12:00")
        engine.cancel(person, "lunch")
    engine.submit(ALICE, "coffee 10:00 min 3")
    engine.submit(BOB, "coffee 10:00 min 3")
    statements = _traced(engine)
    assert engine.submit(CAROL, "coffee 10:00").body.startswith("Matched!")
    words = [" ".join(s.split()[:3]) for s in statements]
    assert words[2:5] == [
        "INSERT INTO results",  # the group's
        "INSERT INTO requests",  # Carol's, with both moves
        "INSERT INTO outbox",  # Alice, Bob, the group conversation
    ], statements
    assert len(words) == 6 and words[-1] == "COMMIT", statements
    assert statements[3].count("), (") == 2
    assert statements[4].count("), (") == 2


def test_on_sqlite_a_move_of_a_request_not_stored_fails_the_step(sqlite_engine, clock):
    engine = sqlite_engine
    engine.submit(ALICE, "coffee 10:00")
    before = _requests(engine)
    wish = Wish(BOB.id, "text:dm", "coffee", at(10), at(10, 15), at(10), timedelta(minutes=15), 6)
    group = ResultChange(None, "text:dm", "coffee", Status.MATCHED, at(10), at(10, 15), 6, 2, None)
    with (
        pytest.raises(KeyError, match="no request 99 to move"),
        engine.storage.transaction() as uow,
    ):
        uow.add_person(PersonInfo(BOB.id, BOB.name))
        formed = uow.add_result(group, clock.now())
        new = NewRequest(wish, None, clock.now(), Status.MATCHED, formed)
        moves = [Move(1, formed, Status.MATCHED), Move(99, formed, Status.MATCHED)]
        uow.apply(Changes(request=new, moves=moves), clock.now())
    assert _requests(engine) == before
    assert engine.storage.person(BOB.id) is None  # rolled back as a whole
