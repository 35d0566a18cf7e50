"""What a newcomer tripped on (issue 25), on every storage: a second wish while matched, the
board and one's own wish, standing wishes across a change of zone, ``!iwant tz`` alone, typos
of time words, the export of a match left, and the ``iwant`` command's help and check."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from iwant_engine import UserError
from iwant_engine.__main__ import main

from ..support import ALICE, BOB, CAROL, DAVE, at, drain

REPO = Path(__file__).resolve().parents[2]


def test_a_second_wish_while_matched_quotes_the_meeting_not_the_window(engine, clock):
    clock.set(at(0, 59))
    engine.submit(ALICE, "coffee")  # free 00:59-01:59
    engine.submit(BOB, "coffee 1:19-1:40")  # they meet 01:19-01:34
    with pytest.raises(UserError) as refused:
        engine.submit(ALICE, "coffee")
    assert str(refused.value) == (
        "You already want coffee: you meet Bob at 01:19–01:34 (Tue 1 Dec); to ask again, leave "
        "that first with !iwant cancel coffee."
    )
    assert (
        engine.list_text(ALICE).splitlines()[1] == "1. coffee at 01:19–01:34 (Tue 1 Dec) with Bob"
    )
    # A wish still waiting is quoted by its window, as before.
    engine.submit(CAROL, "lunch 12:00-13:00")
    with pytest.raises(UserError, match=r"^You already want lunch 12:00–13:00 \(Tue 1 Dec\);"):
        engine.submit(CAROL, "lunch 12:30")


def test_the_board_shows_the_readers_own_wish_and_never_says_nothing_is_wanted(engine, clock):
    engine.submit(ALICE, "lunch 12:00", room="r1")
    engine.submit(BOB, "lunch 12:10-13:30", room="elsewhere")  # another pool: not here
    board = engine.board(ALICE, "r1")
    assert board.body.splitlines() == [
        "Today and tomorrow here (UTC time):",
        "lunch:",
        "· today 12:00–12:45: your wish, waiting",
    ]
    assert board.buttons == []
    assert engine.board(ALICE, "r1", "lunch").body.splitlines()[1:] == [
        "lunch:",
        "· today 12:00–12:45: your wish, waiting",
    ]
    assert engine.board(ALICE).body.splitlines()[2] == "· today 12:00–12:45: your wish, waiting"
    # Others see it counted, never named; what nobody wants suggests the activity asked for.
    assert engine.board(CAROL, "r1").body.splitlines()[2] == "· today 12:00–13:00: someone waiting"
    assert engine.board(ALICE, "r1", "tennis").body == (
        "Nothing is wanted here for tennis today or tomorrow yet. Start something: !iwant tennis"
    )


def test_standing_wishes_follow_the_persons_zone_and_every_reply_says_which(engine, clock):
    clock.set(at(0, 59))
    made = engine.submit(ALICE, "lunch 12:30 every weekday").body
    assert "Each day at its time in your time zone (UTC; later days follow !iwant tz)." in made
    assert engine.list_text(ALICE).splitlines()[1].startswith("1. lunch 12:30–13:15 (Tue 1 Dec)")

    reply = engine.set_timezone(ALICE, "Europe/Prague")
    assert reply == (
        "Your time zone is now Europe/Prague (it is 01:59 there). Your standing wishes follow "
        "it, at their times in Europe/Prague: lunch 12:30, every weekday from Wed 2 Dec. Made "
        "before the change, these keep their time: lunch at 13:30–14:15 (Tue 1 Dec)."
    )
    assert engine.standing_text(ALICE).splitlines()[:2] == [
        "Your standing wishes, each day at its time in your time zone (Europe/Prague; later "
        "days follow !iwant tz):",
        "1. lunch 12:30, every weekday",
    ]
    standing = json.loads(engine.export(ALICE))["standing_wishes"][0]
    assert (standing["wish"], standing["timezone"]) == ("lunch 12:30", "Europe/Prague")

    # Wednesday's wish is made at noon Prague time the day before, for 12:30 Prague time.
    clock.set(datetime(2026, 12, 1, 11, 0, tzinfo=UTC))  # 12:00 in Prague
    engine.sweep()
    listed = engine.list_text(ALICE).splitlines()
    assert listed[1].startswith("1. lunch 13:30–14:15 (Tue 1 Dec)")
    assert listed[2].startswith("2. lunch 12:30–13:15 (Wed 2 Dec)")


def test_tz_alone_suggests_another_zone_than_the_one_set(engine):
    assert engine.set_timezone(ALICE, "") == (
        "Your time zone is UTC; change it with !iwant tz Europe/Prague."
    )
    engine.set_timezone(ALICE, "Europe/Prague")
    assert engine.set_timezone(ALICE, " ") == (
        "Your time zone is Europe/Prague; change it with !iwant tz America/New_York."
    )


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("lunch tomorow", "Did you mean tomorrow? Try: !iwant lunch tomorrow 12:30"),
        ("lunch tomorow 12:30", "Did you mean tomorrow? Try: !iwant lunch tomorrow 12:30"),
        (
            "lunch tommorow noon max 3",
            "Did you mean tomorrow? Try: !iwant lunch tomorrow noon max 3",
        ),
        ("coffee frday 10:00", "Did you mean friday? Try: !iwant coffee friday 10:00"),
        ("coffee tomorow at 10", "Did you mean tomorrow? Try: !iwant coffee tomorrow at 10"),
        # Spelled right it still does not read: what is wrong then, with a command that works.
        ("coffee tomorow 25:00", "Did you mean tomorrow? '25:00' is not a time of day; try "),
    ],
)
def test_a_typo_of_a_time_word_gets_did_you_mean(engine, typed, says):
    with pytest.raises(UserError) as refused:
        engine.submit(ALICE, typed)
    assert str(refused.value).startswith(says)
    if says.startswith("Did you mean") and "Try: !iwant " in says:
        fixed = says.split("Try: !iwant ", 1)[1]
        assert engine.submit(ALICE, fixed).body.startswith("Waiting for")


def test_the_export_keeps_the_meeting_a_cancelled_match_had_and_with_whom(engine, clock):
    engine.submit(ALICE, "coffee 10:00")
    engine.submit(BOB, "coffee 10:00")
    engine.submit(CAROL, "coffee 10:00")  # Alice, Bob and Carol meet at 10:00
    engine.cancel(BOB, "coffee")  # Bob leaves; Alice and Carol still meet
    engine.submit(DAVE, "lunch 12:00")
    engine.submit(ALICE, "lunch 12:00")  # Alice and Dave meet for lunch
    engine.cancel(DAVE, "lunch")  # the pair breaks up: Alice waits again
    engine.submit(CAROL, "lunch 12:00")  # and meets Carol instead
    drain(engine)

    def requests(who):
        return [
            (r["activity"], r["status"], r["meeting"], r["with"])
            for r in json.loads(engine.export(who))["requests"]
        ]

    coffee = [at(10).isoformat(), at(10, 15).isoformat()]
    lunch = [at(12).isoformat(), at(12, 45).isoformat()]
    assert requests(BOB) == [("coffee", "CANCELLED", coffee, ["Alice", "Carol"])]
    assert requests(DAVE) == [("lunch", "CANCELLED", lunch, ["Alice"])]
    assert requests(ALICE) == [
        ("coffee", "MATCHED", coffee, ["Carol"]),
        ("lunch", "MATCHED", lunch, ["Carol"]),
    ]
    # A wish cancelled while it waited had no meeting.
    engine.submit(BOB, "tea 15:00")
    engine.cancel(BOB, "tea")
    assert requests(BOB)[1] == ("tea", "CANCELLED", None, [])


def test_plugins_check_names_the_file_it_read_and_says_it_is_fine(tmp_path, capsys):
    cfg = tmp_path / "plugins.cfg"
    cfg.write_text("[activities]\ncoffee = 15, 6\n")
    assert main(["plugins", "--check", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"plugins.cfg: {cfg.resolve()}"
    assert out[-1] == (
        f"Checked {cfg.resolve()}: fine, its storage and strategies build with their settings."
    )
    cfg.write_text("[engine]\nstrategy = nosuch\n")
    assert main(["plugins", "--check", "--config", str(cfg)]) == 2
    assert capsys.readouterr().err.strip().endswith(f"(read: {cfg.resolve()})")


def test_without_a_plugins_cfg_here_the_packaged_one_is_checked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IWANT_PLUGINS_CFG", raising=False)
    assert main(["plugins", "--check"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"plugins.cfg: {REPO / 'plugins.cfg'}"  # next to the checkout's config.py


def test_the_help_is_plain_text_and_names_the_packaged_default(capsys):
    for argv in (["--help"], ["plugins", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        text = capsys.readouterr().out
        assert "``" not in text and ":class:" not in text
    assert "iwant puts people together who want the same thing at the same time" in " ".join(
        [line.strip() for line in _help(["--help"], capsys).splitlines()]
    )
    plugins_help = " ".join(line.strip() for line in _help(["plugins", "--help"], capsys).split())
    assert "else the packaged one next to config.py, which iwant run uses" in plugins_help


def _help(argv, capsys) -> str:
    with pytest.raises(SystemExit):
        main(argv)
    return capsys.readouterr().out
