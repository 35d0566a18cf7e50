"""Smoke test of the benchmark (issue 7): ``--quick`` runs and ends with its JSON line.

This checks that the benchmark works and reports every figure, not how fast anything is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import PG_URL, postgres_available

REPO = Path(__file__).resolve().parents[2]
GROWTH = (200, 2000)  # waiting requests of the growth stage

STAGE_KEYS = {
    "throughput": {"engine", "baseline", "ratio", "settings"},
    "growth": {"sizes", "p99_ratio", "largest", "smallest"},
    "suggestions": {"on", "off", "on_over_off"},
    "sweep": {"due", "expired", "expire_s", "delivered", "deliver_s", "standing"},
    "e2e": {"iwant_median_ms", "echo_median_ms", "engine_median_ms", "plugin_overhead"},
    "calendars": {"with", "without", "baseline", "with_over_without", "busy_blocks"},
    "stats": {"requests", "load_s", "room_week", "all_week", "all_month", "all_year"},
}
STATS_ROWS = 2000


def run_quick(db: str) -> tuple[dict, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IWANT_")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "iwant_bench",
            "--quick",
            "--rush-matrix",  # the Matrix rush has a test of its own (tests/rush)
            "0",
            # Smaller than --quick: each figure is made and reported, none is judged here.
            *("--growth-sizes", ",".join(map(str, GROWTH)), "--probes", "30", "--ops", "60"),
            *("--process-ops", "10", "--sweep", "100", "--e2e", "5", "--rush", "8"),
            *("--stats-rows", str(STATS_ROWS)),
            "--db",
            db,
            "--postgres-url",
            PG_URL,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert lines, proc.stderr[-4000:]
    return json.loads(lines[-1]), proc.stdout


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_quick_run_prints_every_figure(db: str) -> None:
    if db == "postgresql":
        problem = postgres_available()
        if problem:
            if os.environ.get("CI") == "true":
                pytest.fail(f"PostgreSQL is required in CI and not reachable: {problem}")
            pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {problem}")
    result, stdout = run_quick(db)

    assert {
        "benchmark",
        "quick",
        "seed",
        "options",
        "machine",
        "databases",
        "memory",
        "targets",
        "errors",
        "elapsed_s",
    } <= result.keys()
    assert result["quick"] is True and result["errors"] == []
    assert list(result["databases"]) == [db]
    figures = result["databases"][db]
    for stage, keys in STAGE_KEYS.items():
        assert keys <= figures[stage].keys(), (stage, figures[stage])
    assert figures["throughput"]["settings"]["identical"] is True
    assert figures["throughput"]["engine"]["outcomes"].get("refused", 0) == 0
    assert [s["waiting"] for s in figures["growth"]["sizes"]] == list(GROWTH)
    sweep = figures["sweep"]
    assert sweep["expired"] == sweep["due"] == sweep["delivered"]
    assert sweep["standing"]["made"] == sweep["standing"]["standing"] == sweep["due"]
    near = figures["suggestions"]
    assert near["on"]["n"] == near["off"]["n"] > 0
    assert near["on"]["statements_per_submission"] == near["off"]["statements_per_submission"]
    calendars = figures["calendars"]
    assert calendars["with"]["n"] == calendars["without"]["n"] > 0
    assert calendars["busy_blocks"] == 40 * calendars["people_with_calendars"]
    assert figures["e2e"]["outcome_mismatches"] == 0
    stats = figures["stats"]
    assert stats["requests"] == STATS_ROWS
    assert stats["all_year"]["wishes"] >= STATS_ROWS, "every made request is in the year"
    assert stats["all_year"]["groups"] == 7 * STATS_ROWS // 20, "7 in 10 pairs met"
    # A room has wishes every week only with many rows; here the week has some in all rooms.
    assert stats["room_week"]["wishes"] <= stats["all_week"]["wishes"]
    assert 0 < stats["all_week"]["wishes"] < stats["all_month"]["wishes"]
    assert result["memory"]["peak_rss_mb"] > 0
    expected_targets = {
        "engine_baseline_ratio",
        "growth_p99_ratio",
        "plugin_overhead",
        "statements_per_submission",
        "stats_room_week_ms",
        "stats_all_week_ms",
    }
    if db == "postgresql":
        processes = figures["processes"]
        assert {"1", "2", "4"} <= processes["spread"].keys()
        assert {"1", "2", "4"} <= processes["hot"].keys()
        assert processes["spread_2_over_1"] > 0
        expected_targets.add("spread_2_over_1")
    assert {f"{db}.{name}" for name in expected_targets} <= result["targets"].keys()
    # The table states the database settings the engine and its baseline ran with.
    if db == "sqlite":
        assert "journal_mode=wal synchronous=FULL" in stdout
    else:
        assert "synchronous_commit=" in stdout
