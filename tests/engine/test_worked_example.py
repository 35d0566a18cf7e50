"""DESIGN.md's worked example, step by step, on SQLite and PostgreSQL."""

from iwant_engine.model import Status

from ..support import ALICE, BOB, CAROL, at, drain


def test_alice_and_bob_meet_carol_joins_bob_cancels(engine, clock):
    clock.set(at(9, 0))
    reply = engine.submit(ALICE, "coffee 10:00 by 9:30")
    assert reply.body == (
        "Waiting for coffee company at 10:00–10:15 (Tue 1 Dec); you'll hear by 09:30."
    )
    assert reply.buttons == [{"label": "Cancel", "command": "iwant cancel #1"}]
    assert drain(engine) == []

    clock.set(at(9, 20))
    reply = engine.submit(BOB, "coffee for 1h")
    assert reply.body == "Matched! You meet Alice for coffee at 10:00–10:15 (Tue 1 Dec)."
    assert drain(engine) == [
        ("text:@alice", "Bob joins you for coffee at 10:00–10:15 (Tue 1 Dec).")
    ]

    clock.set(at(9, 45))
    reply = engine.submit(CAROL, "coffee 9:50-10:30")
    assert reply.body == "You join Alice and Bob for coffee at 10:00–10:15 (Tue 1 Dec)."
    told = dict(drain(engine))
    assert set(told) == {"text:@alice", "text:@bob"}
    assert all(
        body.startswith("Carol joins you for coffee at 10:00–10:15") for body in told.values()
    )

    reply = engine.cancel(BOB)
    assert reply.body.startswith("Cancelled: you left coffee at 10:00–10:15")
    told = dict(drain(engine))
    assert set(told) == {"text:@alice", "text:@carol"}
    assert all(
        body.startswith("Bob dropped out of coffee at 10:00–10:15") for body in told.values()
    )
    # The group keeps its time; Alice and Carol still meet.
    (mine,) = engine.open_requests(ALICE)
    assert mine.status == Status.MATCHED and mine.others == ("Carol",)
    assert mine.start == at(10, 0)

    clock.set(at(10, 16))
    assert engine.sweep() == (0, 1)
    assert engine.open_requests(ALICE) == []


def test_bob_too_late_alice_already_told(engine, clock):
    clock.set(at(9, 0))
    engine.submit(ALICE, "coffee 10:00 by 9:30")
    clock.set(at(9, 30))
    assert engine.sweep() == (1, 0)
    assert drain(engine) == [
        (
            "text:@alice",
            "Nobody joined you for coffee between 10:00 and 10:15 (Tue 1 Dec). Maybe next time!",
        )
    ]
    clock.set(at(9, 40))
    reply = engine.submit(BOB, "coffee for 1h")
    assert reply.body.startswith("Waiting for coffee company any time between 09:40 and 10:40")
    assert drain(engine) == []
    clock.set(at(9, 50))
    assert engine.sweep() == (0, 0)  # nothing is told twice
    assert drain(engine) == []


def test_last_member_waits_again_then_is_matched_by_a_newcomer(engine, clock):
    clock.set(at(9, 0))
    engine.submit(ALICE, "coffee 10:00 by 9:30")
    clock.set(at(9, 10))
    engine.submit(BOB, "coffee for 2h")
    drain(engine)
    engine.cancel(BOB)
    assert drain(engine) == [
        (
            "text:@alice",
            "Bob dropped out of coffee at 10:00–10:15 (Tue 1 Dec); you're waiting for company "
            "again and will hear by 09:30.",
        )
    ]
    clock.set(at(9, 20))
    reply = engine.submit(CAROL, "coffee 9:30-11:00")
    assert reply.body == "Matched! You meet Alice for coffee at 10:00–10:15 (Tue 1 Dec)."


def test_last_member_past_deadline_is_told_nobody_is_left(engine, clock):
    clock.set(at(9, 0))
    engine.submit(ALICE, "coffee 10:00 by 9:30")
    clock.set(at(9, 10))
    engine.submit(BOB, "coffee for 2h")
    drain(engine)
    clock.set(at(9, 40))
    engine.cancel(BOB)
    (note,) = drain(engine)
    assert note[0] == "text:@alice" and "nobody is left" in note[1]
    assert engine.open_requests(ALICE) == []
    clock.set(at(9, 50))
    engine.sweep()
    assert drain(engine) == []
