"""``python -m iwant_bench.instructions``: the counted submissions run, and callgrind's count
is read from its summary. (Running valgrind itself takes a minute a database: not here.)"""

from __future__ import annotations

import pytest

from iwant_bench import instructions


def test_the_submissions_run_on_a_fresh_database_and_come_to_outcomes() -> None:
    done = instructions.submissions("sqlite", warm=5, count=20)
    assert sum(done["outcomes"].values()) == 25
    assert set(done["outcomes"]) <= {"waiting", "formed", "joined"}
    assert done["outcomes"].get("waiting", 0) > 0
    assert done["statements"] >= 3 * 25  # the read, the write and the COMMIT of each


def test_a_stream_too_short_for_the_counts_is_refused() -> None:
    with pytest.raises(ValueError, match="fewer than"):
        instructions.submissions("sqlite", warm=0, count=100_000)


def test_the_count_is_read_from_callgrinds_summary() -> None:
    stderr = "==7884== Events    : Ir\n==7884== Collected : 506480610\n==7884==\n"
    assert instructions.collected(stderr) == 506_480_610
    assert instructions.collected("==1== Collected : 1,234,567\n") == 1_234_567
    with pytest.raises(ValueError, match="Collected"):
        instructions.collected("==1== I   refs:      0\n")


def test_counts_that_make_no_sense_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        instructions.main(["--count", "0"])
    assert stopped.value.code == 2
    assert "--count must be 1 or more" in capsys.readouterr().err
