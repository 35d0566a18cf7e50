"""Built-in strategies, strategy choice per pool and activity, ignore lists."""

import pytest

from iwant_engine import Person, SettingsError

from ..support import ALICE, BOB, CAROL, DAVE, at, drain, make_engine


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'iwant.db'}"


def test_strategy_per_activity_and_pool(sqlite_url, clock):
    eng = make_engine(
        sqlite_url,
        clock,
        strategy_rules={"lunch": "quorum", "text:team": "fresh-faces"},
        strategy_settings={"quorum": {"min_size": "3"}},
    )
    try:
        assert eng.settings.strategy_for("text:dm", "lunch") == "quorum"
        assert eng.settings.strategy_for("text:team", "lunch") == "fresh-faces"
        assert eng.settings.strategy_for("text:dm", "coffee") == "overlap"
        # lunch needs three; coffee does not.
        assert eng.submit(ALICE, "lunch 12:00").body.startswith("Waiting")
        assert eng.submit(BOB, "lunch 11:00-13:00").body.startswith("Waiting")
        assert eng.submit(ALICE, "coffee 10:00").body.startswith("Waiting")
        assert eng.submit(BOB, "coffee 9:30-11:00").body.startswith("Matched!")
        reply = eng.submit(CAROL, "lunch 11:30-12:45")
        assert reply.body == "Matched! You meet Alice and Bob for lunch at 12:00–12:45 (Tue 1 Dec)."
    finally:
        eng.close()


def test_quorum_not_reached_says_so_at_the_deadline(sqlite_url, clock):
    eng = make_engine(sqlite_url, clock, strategy="quorum")
    try:
        eng.submit(ALICE, "lunch 12:00 by 11:00")
        eng.submit(BOB, "lunch 12:00 by 11:00")
        clock.set(at(11, 0))
        assert eng.sweep() == (2, 0)
        told = dict(drain(eng))
        assert told == {
            p.id: "Fewer than 3 people could make lunch between 12:00 and 12:45 (Tue 1 Dec), "
            "so it is not happening. Maybe next time!"
            for p in (ALICE, BOB)
        }
    finally:
        eng.close()


def test_min_n_on_a_request_with_the_default_strategy(engine, clock):
    engine.submit(ALICE, "walk 17:00 min 3")
    assert engine.submit(BOB, "walk 17:00").body.startswith("Waiting")
    assert engine.submit(CAROL, "walk 17:00").body.startswith("Matched! You meet Alice and Bob")


def test_fresh_faces_prefers_people_never_met(sqlite_url, clock):
    eng = make_engine(sqlite_url, clock, strategy="fresh-faces")
    try:
        eng.submit(ALICE, "coffee 9:00-9:30")
        eng.submit(BOB, "coffee 9:00-9:30")  # Alice and Bob meet 09:00
        clock.set(at(9, 40))
        assert eng.sweep() == (0, 1)
        # Bob and Carol do not fit each other; both fit Alice. Bob's deadline is more urgent.
        eng.submit(BOB, "coffee 9:45-10:00")
        eng.submit(CAROL, "coffee 10:15-10:30")
        reply = eng.submit(ALICE, "coffee 9:45-10:30 max 2")
        assert reply.body == "Matched! You meet Carol for coffee at 10:15–10:30 (Tue 1 Dec)."
    finally:
        eng.close()


def test_overlap_takes_the_most_urgent_deadline(sqlite_url, clock):
    eng = make_engine(sqlite_url, clock)
    try:
        eng.submit(BOB, "coffee 9:45-10:00")
        eng.submit(CAROL, "coffee 10:15-10:30")
        reply = eng.submit(ALICE, "coffee 9:45-10:30 max 2")
        assert reply.body == "Matched! You meet Bob for coffee at 09:45–10:00 (Tue 1 Dec)."
    finally:
        eng.close()


def test_ignore_lists_keep_people_apart_and_are_private(engine, clock):
    assert engine.ignore(ALICE, BOB).startswith("You won't be grouped with Bob")
    assert engine.ignore(ALICE, BOB).startswith("You already ignore Bob")
    engine.submit(ALICE, "coffee 10:00")
    assert engine.submit(BOB, "coffee 9:30-11:00").body.startswith("Waiting")
    assert drain(engine) == [], "Bob is not told anything"
    # Carol joins Alice; Bob may not join that group either (Alice ignores him).
    assert engine.submit(CAROL, "coffee 10:00 max 3").body.startswith("Matched! You meet Alice")
    drain(engine)
    assert engine.open_requests(BOB)[0].others == ()
    assert engine.submit(DAVE, "coffee 10:00 max 2").body.startswith("Matched! You meet Bob")
    assert engine.ignored(ALICE) == [BOB.id]
    assert engine.unignore(ALICE, BOB) == "You can be grouped with Bob again."
    assert engine.ignored(ALICE) == []


def test_ignoring_works_both_ways(engine, clock):
    engine.ignore(BOB, ALICE)
    engine.submit(ALICE, "coffee 10:00")
    assert engine.submit(BOB, "coffee 10:00").body.startswith("Waiting")


def test_unknown_strategy_or_bad_setting_stops_start_with_one_line(sqlite_url, clock):
    with pytest.raises(SettingsError, match="unknown strategy 'nope'; installed: fresh-faces"):
        make_engine(sqlite_url, clock, strategy_rules={"lunch": "nope"})
    with pytest.raises(SettingsError, match=r"\[strategy:quorum\]: min_size = 'x'"):
        make_engine(
            sqlite_url, clock, strategy="quorum", strategy_settings={"quorum": {"min_size": "x"}}
        )
    with pytest.raises(SettingsError, match="overlap takes no settings"):
        make_engine(sqlite_url, clock, strategy_settings={"overlap": {"speed": "fast"}})


def test_cross_platform_people_are_different_people(engine, clock):
    slack_alice = Person("slack:U1", "Alice")
    engine.submit(ALICE, "coffee 10:00")
    assert engine.submit(slack_alice, "coffee 10:00").body.startswith("Waiting")
