"""Near misses and the board (issue 13) through the engine, on every storage."""

from __future__ import annotations

import pytest

from iwant_engine import Person, UserError

from ..support import ALICE, BOB, CAROL, DAVE, at, drain, make_engine

ERIN = Person("text:@erin", "Erin")


def lines(note) -> list[str]:
    return (note if isinstance(note, str) else note.body).splitlines()


def test_a_window_that_overlaps_too_little_and_taking_the_suggestion(engine, clock):
    engine.submit(BOB, "coffee 10:10-10:40")
    note = engine.submit(ALICE, "coffee 10:00-10:20")
    assert lines(note)[1] == (
        "Nearest: someone wants coffee at 10:10–10:25 (Tue 1 Dec); "
        "!iwant coffee 10:10 instead of #2 meets them."
    )
    assert note.buttons[1] == {
        "label": "Coffee 10:10",
        "command": "iwant coffee 10:10 instead of #2",
    }
    taken = engine.submit(ALICE, "coffee 10:10 instead of #2")
    assert taken.body == (
        "Matched! You meet Bob for coffee at 10:10–10:25 (Tue 1 Dec). "
        "Your coffee wish 10:00–10:20 (Tue 1 Dec) is cancelled."
    )
    assert drain(engine) == [(BOB.id, "Alice joins you for coffee at 10:10–10:25 (Tue 1 Dec).")]
    assert lines(engine.list_text(ALICE))[1:2] == ["1. coffee at 10:10–10:25 (Tue 1 Dec) with Bob"]


def test_wishes_up_to_an_hour_away_nearest_first(engine, clock):
    engine.submit(BOB, "coffee 11:00")
    engine.submit(CAROL, "coffee 10:30-11:00")
    engine.submit(DAVE, "coffee 11:30")  # 75 minutes away: no near miss
    assert lines(engine.submit(ALICE, "coffee 10:00"))[1:] == [
        "Nearest: someone wants coffee at 10:30–10:45 (Tue 1 Dec); "
        "!iwant coffee 10:30 instead of #4 meets them.",
        "Nearest: someone wants coffee at 11:00–11:15 (Tue 1 Dec); "
        "!iwant coffee 11:00 instead of #4 meets them.",
    ]


def test_a_group_just_outside_the_window_joined_by_its_command(engine, clock):
    engine.submit(BOB, "coffee 10:30")
    engine.submit(CAROL, "coffee 10:30")
    drain(engine)
    note = engine.submit(ALICE, "coffee 10:00")
    assert lines(note)[1] == (
        "Nearest: a group of 2 meets for coffee at 10:30–10:45 (Tue 1 Dec); "
        "!iwant coffee 10:30 instead of #3 joins it."
    )
    taken = engine.submit(ALICE, "coffee 10:30 instead of #3")
    assert taken.body.startswith("You join Bob and Carol for coffee at 10:30–10:45 (Tue 1 Dec).")
    assert sorted(r for r, _ in drain(engine)) == [BOB.id, CAROL.id]


def test_a_group_full_only_for_my_max(engine, clock):
    engine.submit(BOB, "coffee 10:00")
    engine.submit(CAROL, "coffee 10:00")
    note = engine.submit(ALICE, "coffee 10:00 max 2")
    assert lines(note)[1] == (
        "Nearest: a group of 2 meets for coffee at 10:00–10:15 (Tue 1 Dec), full for your max "
        "2; !iwant coffee 10:00 max 3 instead of #3 joins it."
    )
    taken = engine.submit(ALICE, "coffee 10:00 max 3 instead of #3")
    assert taken.body.startswith("You join Bob and Carol for coffee at 10:00–10:15")


def test_a_suggestion_that_became_impossible_says_so_and_offers_the_next(engine, clock):
    engine.submit(BOB, "coffee 10:30 max 3")
    engine.submit(CAROL, "coffee 10:30")
    assert "a group of 2 meets for coffee at 10:30" in engine.submit(ALICE, "coffee 10:00").body
    engine.submit(ERIN, "coffee 11:00-11:30")
    engine.submit(DAVE, "coffee 10:30")  # the group is full now
    drain(engine)
    late = engine.submit(ALICE, "coffee 10:30 instead of #3")
    assert lines(late) == [
        "That is not possible any more: that group is full now. Your coffee wish 10:00–10:15 "
        "(Tue 1 Dec) stays as it was.",
        "Nearest: someone wants coffee at 11:00–11:15 (Tue 1 Dec); "
        "!iwant coffee 11:00 instead of #3 meets them.",
    ]
    assert drain(engine) == [], "nothing changed for anyone"
    assert "coffee 10:00–10:15 (Tue 1 Dec), waiting" in engine.list_text(ALICE)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("coffee 10:30 instead of #99", "Your request #99 has ended or is not yours"),
        ("lunch 12:00 instead of #1", "Request #1 is for coffee, not lunch"),
        ("coffee 10:30 instead of x", "'instead of x' needs a request number, like !iwant"),
        ("coffee 10:30 instead", "'instead' needs a value; try !iwant coffee 10:00 instead of"),
    ],
)
def test_instead_of_refusals(engine, clock, text, says):
    engine.submit(ALICE, "coffee 10:00")
    with pytest.raises(UserError, match=says):
        engine.submit(ALICE, text)


def test_instead_of_a_request_matched_meanwhile(engine, clock):
    engine.submit(ALICE, "coffee 10:00")
    engine.submit(BOB, "coffee 10:00")
    with pytest.raises(UserError, match="Your coffee request #1 has been matched meanwhile"):
        engine.submit(ALICE, "coffee 10:30 instead of #1")


def test_nobody_counted_across_an_ignore_either_way(engine, clock):
    engine.submit(BOB, "coffee 10:30")
    engine.ignore(BOB, ALICE)  # Bob ignores Alice: Alice must not see Bob counted
    assert "Nearest" not in engine.submit(ALICE, "coffee 10:00").body
    assert "someone waiting" not in engine.board(ALICE).body
    engine.ignore(CAROL, DAVE)  # Carol in a group: the whole group is hidden from Dave
    engine.submit(CAROL, "lunch 12:30")
    engine.submit(ERIN, "lunch 12:30")
    assert "Nearest" not in engine.submit(DAVE, "lunch 12:00 max 2").body
    # The group is hidden whole; Dave's own wish shows, as his.
    lines = engine.board(DAVE).body.splitlines()
    assert lines[lines.index("lunch:") + 1 :] == ["· today 12:00–12:45: your wish, waiting"]


def test_nobody_joined_names_the_nearest_miss_still_ahead(engine, clock):
    engine.submit(BOB, "coffee 11:00")
    engine.submit(ALICE, "coffee 10:00 by 9:30")
    clock.set(at(9, 30))
    engine.sweep()
    told = dict(drain(engine))
    assert told[ALICE.id].splitlines() == [
        "Nobody joined you for coffee between 10:00 and 10:15 (Tue 1 Dec). Maybe next time!",
        "Nearest: someone wants coffee at 11:00–11:15 (Tue 1 Dec); !iwant coffee 11:00 meets them.",
    ]


def test_suggestions_can_be_switched_off(database_url, clock):
    eng = make_engine(database_url, clock, suggestions=False)
    try:
        eng.submit(BOB, "coffee 10:30")
        assert eng.submit(ALICE, "coffee 10:00").body.startswith("Waiting")
        assert "Nearest" not in eng.submit(CAROL, "coffee 10:00-10:20").body
    finally:
        eng.close()


def test_the_board_in_a_room_and_in_a_direct_message(engine, clock):
    for who in (BOB, CAROL):
        engine.submit(who, "coffee 10:30", room="r1")
    engine.submit(DAVE, "lunch tomorrow 12:00", room="r1")
    engine.submit(ERIN, "coffee 15:00", room="r1")
    engine.submit(ERIN, "tea 15:00", room="elsewhere")
    engine.set_timezone(ALICE, "Europe/Prague")
    board = engine.board(ALICE, "r1")
    assert board.body.splitlines() == [
        "Today and tomorrow here (Europe/Prague time):",
        "coffee:",
        "· today 11:30–11:45: a group of 2, 4 places free; !iwant coffee 11:30 joins",
        "· today 16:00–17:00: someone waiting",
        "lunch:",
        "· tomorrow 13:00–14:00: someone waiting",
    ]
    assert board.buttons == [{"label": "Join coffee 11:30", "command": "iwant coffee 11:30"}]
    assert engine.board(ALICE, "r1", "lunch").body.splitlines()[1:] == [
        "lunch:",
        "· tomorrow 13:00–14:00: someone waiting",
    ]
    # In a direct message: the rooms of the person's own requests.
    assert engine.board(BOB).body.splitlines()[2] == "· today 10:30–10:45: your group of 2"
    assert engine.board(ALICE).body == (
        "Nothing is wanted in your rooms today or tomorrow yet. Start something: !iwant coffee"
    )
    # Joining from the board by its command.
    joined = engine.submit(ALICE, "coffee 11:30", room="r1")
    assert joined.body.startswith("You join Bob and Carol for coffee at 11:30–11:45")


def test_the_board_stays_short(engine, clock):
    for n in range(16):
        who = Person(f"text:@p{n}", f"P{n}")
        engine.submit(who, f"act{n} tomorrow 9:00", room="r1")
    body = engine.board(ALICE, "r1").body.splitlines()
    assert len(body) == 1 + 12 + 1, "a title, twelve lines (headings count), what is left"
    assert body[-1] == "… and 10 more; !iwant board coffee shows one activity."
