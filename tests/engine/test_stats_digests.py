"""The weekly digest's schedule and its claim by one process, ``iwant stats --json/--csv``,
and the ``[digest]`` and ``[feedback]`` settings (issue 26)."""

from __future__ import annotations

import csv
import io
import json
import threading
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from iwant_engine import FixedClock, Person, SettingsError
from iwant_engine.__main__ import main
from iwant_engine.digests import next_time
from iwant_engine.settings import parse_cfg

from ..support import START, at, make_engine

ADMIN = Person("text:@admin", "Admin")
PEOPLE = [Person(f"text:@p{n}", f"P{n}") for n in range(4)]


def test_next_digest_is_the_next_weekday_at_the_hour_in_the_zone():
    prague = ZoneInfo("Europe/Prague")
    tuesday = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert next_time(tuesday, 0, 9, prague) == datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    monday_at_nine = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    assert next_time(monday_at_nine, 0, 9, prague) == datetime(2026, 12, 14, 8, 0, tzinfo=UTC)
    assert next_time(tuesday, 1, 10, ZoneInfo("UTC")) == datetime(2026, 12, 1, 10, tzinfo=UTC)


def test_a_due_digest_is_written_once_whatever_the_number_of_processes(sql_database_url):
    """Two engines on one database (two bot processes) sweep at the digest's hour at once:
    the room gets one digest, with its chart's data."""
    clock = FixedClock(START)
    engines = [make_engine(sql_database_url, clock) for _ in range(2)]
    try:
        first = engines[0]
        for n, person in enumerate(PEOPLE):
            first.submit(person, "coffee 10:00" if n < 2 else "lunch 12:00", room="r1")
        first.digest_setting(ADMIN, "r1", "on", admin=True)
        clock.set(datetime(2026, 12, 7, 9, 0, tzinfo=UTC))
        counts: list[int] = []
        barrier = threading.Barrier(2)

        def sweep(engine) -> None:
            barrier.wait()
            counts.append(engine.send_digests())

        threads = [threading.Thread(target=sweep, args=(e,)) for e in engines]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(counts) == [0, 1]
        notes: list = []
        while first.deliver("text", notes.append).delivered:
            pass
        digests = [n for n in notes if n.recipient == "text:r1"]
        assert len(digests) == 1
        body, chart = digests[0].body, digests[0].chart
        assert body.splitlines()[:3] == [
            "Weekly digest",
            "iwant in this room, the last 7 days:",
            "- wishes: 4 from 4 people; groups formed: 2",
        ]
        assert chart["title"] == "Wishes per day, the week to Mon 7 Dec"
        tuesday = next(d for d in chart["days"] if d["label"] == "Tue 1 Dec")
        assert tuesday == {"label": "Tue 1 Dec", "wishes": 4, "met_share": 1.0}
        assert {d["wishes"] for d in chart["days"] if d is not tuesday} == {0}
        assert [e.send_digests() for e in engines] == [0, 0], "the next one is a week away"
    finally:
        for e in engines:
            e.close()


def test_iwant_stats_prints_json_and_csv(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'iwant.db'}"
    clock = FixedClock(at(9, 0))
    engine = make_engine(url, clock)
    for n, person in enumerate(PEOPLE):
        engine.submit(person, "coffee 10:00" if n < 3 else "tea 10:00", room="r1")
    engine.close()
    monkeypatch.setenv("IWANT_DATABASE_URL", url)
    monkeypatch.delenv("IWANT_PLUGINS_CFG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["stats", "--json", "--period", "month", "--room", "text:r1"]) == 0
    figures = json.loads(capsys.readouterr().out)
    # The real clock: the wishes of 1 December 2026 are in the last month only while the
    # machine's date is near it; the shape is what is checked here, and the counts below.
    assert figures["scope"] == "text:r1" and figures["period"] == "month"
    assert set(figures) >= {"wishes", "people", "groups", "median_wait_seconds", "hours"}
    assert main(["stats", "--csv", "--period", "year"]) == 0
    lines = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert lines[0] == ["figure", "value"]
    assert ["scope", "all"] in lines and ["period", "year"] in lines
    assert main(["stats", "--json", "--room", "r1"]) == 2
    assert "write platform:room (slack:C0123) or pool:name" in capsys.readouterr().err


def test_stats_figures_for_the_command_line(tmp_path):
    """What ``iwant stats`` prints, at a fixed time: counts, and "fewer than 3"."""
    from iwant_engine import stats

    clock = FixedClock(at(9, 0))
    engine = make_engine(f"sqlite:///{tmp_path / 'iwant.db'}", clock)
    try:
        for n, person in enumerate(PEOPLE):
            engine.submit(person, "coffee 10:00" if n < 3 else "tea 10:00", room="r1")
        clock.set(at(11, 0))  # a period ends now: it holds wishes whose time has come
        utc = ZoneInfo("UTC")
        rows, since, until = engine.stats_figures(["text:r1"], "week", utc)
        figures = stats.as_dict(rows, "text:r1", "week", since, until, utc)
    finally:
        engine.close()
    assert figures["wishes"] == 4 and figures["people"] == 4
    assert figures["groups"] == 1, "one group of three rests on 3 people: shown"
    assert figures["wishes_met"] == 3
    assert figures["activities"] == {"coffee": 3, "tea": "fewer than 3"}
    assert figures["hours"] == {"10": 4}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("[digest]\nweekday = someday\n", "plugins.cfg [digest] weekday = 'someday': write a "
         "day of the week, like weekday = monday"),
        ("[digest]\nhour = 25\n", "plugins.cfg [digest] hour = 25: must be 0..23"),
        ("[digest]\nhour = nine\n", "plugins.cfg [digest] hour = 'nine': not a whole number"),
        ("[digest]\nday = monday\n", "plugins.cfg [digest] day: unknown; write weekday = "
         "monday and hour = 9"),
        ("[feedback]\nask_after_minutes = -5\n",
         "plugins.cfg [feedback] ask_after_minutes = -5: must be 0..10080"),
        ("[feedback]\nexpire_after_days = soon\n",
         "plugins.cfg [feedback] expire_after_days = 'soon': not a whole number"),
        ("[feedback]\nask_after = 30\n", "plugins.cfg [feedback] ask_after: unknown; write "
         "ask_after_minutes = 30 and expire_after_days = 7"),
    ],
)  # fmt: skip
def test_bad_digest_and_feedback_settings_say_which_in_one_line(section, message):
    with pytest.raises(SettingsError) as raised:
        parse_cfg(section, environ={})
    assert str(raised.value) == message


def test_digest_settings_are_read():
    read = parse_cfg("[digest]\nweekday = Fri\nhour = 16\n", environ={})
    assert (read.digest_weekday, read.digest_hour) == (4, 16)
