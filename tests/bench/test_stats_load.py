"""The stats stage loads its finished requests beside a running engine: on PostgreSQL the
engine holds result ids drawn from the sequence and not used yet, which the loaded rows must
not take (a full benchmark run once failed its next stage on a duplicate result id)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from iwant_bench import databases as dbs
from iwant_bench import measure
from iwant_bench.stats_stage import stats_queries
from iwant_engine.model import Person


@pytest.fixture
def run(pg_database: str) -> Iterator[measure.Run]:
    db = dbs.BenchDatabase("postgresql", pg_database, "test")
    run = measure.Run(db, 7, False)
    yield run
    run.engine.close()


def test_groups_form_after_the_load_without_a_duplicate_result_id(run: measure.Run) -> None:
    def pair(activity: str) -> str:
        run.engine.submit(Person(f"test:{activity}-a", "A", "test"), f"{activity} 10:00")
        return run.engine.submit(
            Person(f"test:{activity}-b", "B", "test"), f"{activity} 10:00"
        ).body

    assert pair("coffee").startswith("Matched!")  # the engine now holds drawn, unused ids
    stats_queries(run, 200)
    assert pair("tea").startswith("Matched!")
    assert pair("lunch").startswith("Matched!")
