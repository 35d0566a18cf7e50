"""Command line: which databases, how big, and the order of the measurements."""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from . import calendar_stage, measure, report
from . import databases as dbs
from .progress import note

STAGES = (
    "throughput", "suggestions", "calendars", "growth", "sweep", "stats", "processes", "e2e",
    "rush",
)  # fmt: skip
FULL: dict[str, Any] = {
    "ops": 3000,
    "growth_sizes": "1000,10000,100000",
    "probes": 1000,
    "processes": "1,2,4",
    "process_ops": 500,
    "sweep": 10000,
    "e2e": 200,
    "rush": 600,
    "rush_matrix": 30,
    "stats_rows": 1_000_000,
}
QUICK: dict[str, Any] = {
    "ops": 200,
    "growth_sizes": "1000,10000",
    "probes": 100,
    "processes": "1,2,4",
    "process_ops": 30,
    "sweep": 500,
    "e2e": 20,
    "rush": 60,
    "rush_matrix": 12,
    "stats_rows": 20_000,
}


def _ints(text: str) -> list[int]:
    try:
        values = [int(x.replace("_", "")) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of whole numbers: {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"give positive whole numbers: {text!r}")
    return values


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m iwant_bench",
        description=(
            "Benchmark the iwant engine against its database's own limit (issue 7). Prints a "
            "table, then one JSON line with every figure as the last line of stdout."
        ),
    )
    p.add_argument(
        "--db",
        choices=("sqlite", "postgresql", "both"),
        default="both",
        help="databases to measure (default: both; PostgreSQL is skipped with a "
        "reason when unreachable, unless asked for alone)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, under a minute on a 2-core machine; growth stops at 10,000",
    )
    p.add_argument(
        "--ops",
        type=int,
        help="operations of the realistic stream for 1 and 2 "
        f"(default {FULL['ops']}, quick {QUICK['ops']})",
    )
    p.add_argument(
        "--growth-sizes",
        type=_ints,
        metavar="N,N,...",
        help=f"waiting requests for 3 (default {FULL['growth_sizes']}, "
        f"quick {QUICK['growth_sizes']})",
    )
    p.add_argument(
        "--probes",
        type=int,
        help="timed submissions per growth size "
        f"(default {FULL['probes']}, quick {QUICK['probes']})",
    )
    p.add_argument(
        "--processes",
        type=_ints,
        metavar="N,N,...",
        help=f"process counts for 4 (default {FULL['processes']})",
    )
    p.add_argument(
        "--process-ops",
        type=int,
        help="submissions per process per round "
        f"(default {FULL['process_ops']}, quick {QUICK['process_ops']})",
    )
    p.add_argument(
        "--sweep",
        type=int,
        help="due requests to expire and outbox rows to deliver "
        f"(default {FULL['sweep']}, quick {QUICK['sweep']})",
    )
    p.add_argument(
        "--e2e",
        type=int,
        help=f"!iwant and !echo commands for 6 (default {FULL['e2e']}, quick {QUICK['e2e']})",
    )
    p.add_argument(
        "--rush",
        type=int,
        metavar="N",
        help="people in the lunch rush, split between Slack and Telegram, run once on "
        f"PostgreSQL (default {FULL['rush']}, quick {QUICK['rush']})",
    )
    p.add_argument(
        "--rush-matrix",
        type=int,
        metavar="N",
        help="people of the lunch rush on Matrix, run twice against a real Synapse (its "
        "default limits, then the bot's lifted); 0 leaves Matrix out "
        f"(default {FULL['rush_matrix']}, quick {QUICK['rush_matrix']})",
    )
    p.add_argument(
        "--stats-rows",
        type=int,
        metavar="N",
        help="finished requests the stats query reads "
        f"(default {FULL['stats_rows']:,}, quick {QUICK['stats_rows']:,})",
    )
    p.add_argument("--seed", type=int, default=7, help="workload seed (default 7)")
    p.add_argument(
        "--postgres-url",
        help="an existing database to create the benchmark's own "
        "database from (default: IWANT_TEST_POSTGRES_URL, else "
        f"{dbs.DEFAULT_PG_URL})",
    )
    p.add_argument(
        "--skip", default="", metavar="STAGE,...", help=f"stages to leave out: {', '.join(STAGES)}"
    )
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the JSON result here")
    p.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="also profile realistic submissions with pyinstrument (untimed pass) "
        "and write profile-<db>.txt into DIR",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    return p


def _options(args: argparse.Namespace) -> dict[str, Any]:
    preset = QUICK if args.quick else FULL
    opts = {
        "ops": args.ops or preset["ops"],
        "growth_sizes": args.growth_sizes or _ints(preset["growth_sizes"]),
        "probes": args.probes or preset["probes"],
        "processes": args.processes or _ints(preset["processes"]),
        "process_ops": args.process_ops or preset["process_ops"],
        "sweep": args.sweep or preset["sweep"],
        "e2e": args.e2e or preset["e2e"],
        "rush": args.rush or preset["rush"],
        "rush_matrix": preset["rush_matrix"] if args.rush_matrix is None else args.rush_matrix,
        "stats_rows": args.stats_rows or preset["stats_rows"],
    }
    opts["growth_sizes"] = sorted(set(opts["growth_sizes"]))
    opts["processes"] = sorted(set(opts["processes"]))
    return opts


def _stage(db_result: dict[str, Any], name: str, action: Callable[[], Any], show: bool) -> None:
    """Run one measurement; a failure is recorded (and shown), the run goes on."""
    start = time.perf_counter()
    try:
        db_result[name] = action()
    except Exception as err:
        db_result[name] = {"error": f"{type(err).__name__}: {err}"}
        note(f"{name} failed:\n{traceback.format_exc()}", True)
    db_result.setdefault("stage_seconds", {})[name] = round(time.perf_counter() - start, 2)
    if show and "error" not in db_result[name]:
        note(f"  {name} done in {time.perf_counter() - start:.1f} s", show)


def run_database(
    kind: str,
    args: argparse.Namespace,
    opts: dict[str, Any],
    skip: set[str],
    later: list[Callable[[], None]],
) -> dict[str, Any]:
    """Measure one fresh database. With ``--profile`` its profiling pass and clean-up are put
    on ``later``, to run after peak memory has been read (profiling takes hundreds of MB)."""
    show = not args.no_progress
    db = dbs.BenchDatabase.create(kind, args.postgres_url)
    out: dict[str, Any] = {
        "label": db.label,
        "url": make_url(db.url).render_as_string(hide_password=True),
    }
    counter = measure.LogCounter()
    engine_log = logging.getLogger("iwant_engine")
    propagate = engine_log.propagate
    engine_log.addHandler(counter)
    engine_log.propagate = False
    started = time.perf_counter()
    run = None
    try:
        note(f"{kind}: fresh database {db.label}", show)
        run = measure.Run(db, args.seed, show)
        out["settings"] = dbs.database_settings(run.sa_engine)
        if "throughput" not in skip:
            _stage(out, "throughput", lambda: measure.engine_and_baseline(run, opts["ops"]), show)
        if "suggestions" not in skip:
            _stage(
                out,
                "suggestions",
                lambda: measure.suggestions_on_off(run, opts["ops"]),
                show,
            )
        if "calendars" not in skip:
            _stage(
                out,
                "calendars",
                lambda: calendar_stage.calendars_on_off(run, opts["ops"]),
                show,
            )
        if "growth" not in skip:
            _stage(
                out,
                "growth",
                lambda: measure.growth(run, opts["growth_sizes"], opts["probes"]),
                show,
            )
        if "sweep" not in skip:
            _stage(out, "sweep", lambda: measure.sweep(run, opts["sweep"]), show)
        if "stats" not in skip:
            from .stats_stage import stats_queries

            _stage(out, "stats", lambda: stats_queries(run, opts["stats_rows"]), show)
        if kind == "postgresql" and "processes" not in skip:
            from .processes import scaling

            _stage(
                out,
                "processes",
                lambda: scaling(
                    db.url, args.seed, opts["processes"], opts["process_ops"], show, kind
                ),
                show,
            )
        if "e2e" not in skip:
            from .e2e import end_to_end, unavailable

            problem = unavailable()
            if problem:
                out["e2e"] = {"skipped": problem}
                note(f"  e2e skipped: {problem}", show)
            else:
                _stage(out, "e2e", lambda: end_to_end(run, opts["e2e"]), show)
    except BaseException:
        if run is not None:
            run.close()
        db.drop()
        raise
    finally:
        engine_log.removeHandler(counter)
        engine_log.propagate = propagate

    def finish() -> None:
        quiet = logging.NullHandler()  # the profiling pass logs what the measured ones did
        engine_log.addHandler(quiet)
        engine_log.propagate = False
        try:
            if args.profile:
                path = measure.profile(run, min(opts["ops"], 1000), args.profile)
                out["profile"] = path or "pyinstrument is not installed"
        finally:
            engine_log.removeHandler(quiet)
            engine_log.propagate = propagate
            run.close()
            db.drop()

    later.append(finish)
    out["engine_log"] = {
        "warnings": counter.counts.get("warning", 0),
        "errors_logged": counter.counts.get("error", 0) + counter.counts.get("critical", 0),
        "examples": counter.examples,
    }
    out["elapsed_s"] = round(time.perf_counter() - started, 2)
    return out


def _rush(
    args: argparse.Namespace, kinds: list[str], people: int, skip: set[str], matrix: int = 0
) -> dict[str, Any]:
    """The lunch rush (issue 15): once, on a PostgreSQL database of its own; a reason when
    it does not run."""
    show = not args.no_progress
    if "rush" in skip:
        return {"skipped": "--skip rush"}
    if "postgresql" not in kinds:
        return {"skipped": f"--db {args.db}: the rush runs on PostgreSQL"}
    if people < 2:
        return {"skipped": "--rush needs at least 2 people"}
    if matrix and matrix < 2:
        return {"skipped": "--rush-matrix needs at least 2 people (or 0)"}
    from . import rush

    problem = rush.unavailable(args.postgres_url)
    if problem:
        note(f"rush skipped: {problem}", show)
        return {"skipped": problem}
    matrix_note = f", then Matrix twice with {matrix} people" if matrix else ""
    note(f"rush: {people} people, Slack then Telegram{matrix_note}", show)
    started = time.perf_counter()
    load_before = round(os.getloadavg()[0], 2)
    out = rush.run(
        people, args.postgres_url, show, args.seed, matrix, problems=rush.platform_problems()
    )
    out["elapsed_s"] = round(time.perf_counter() - started, 1)
    out["load_before"], out["load_after"] = load_before, round(os.getloadavg()[0], 2)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    opts = _options(args)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = skip - set(STAGES)
    if unknown:
        print(f"unknown stage(s) to skip: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    kinds = list(dbs.KINDS) if args.db == "both" else [args.db]
    later: list[Callable[[], None]] = []
    started = time.perf_counter()
    result: dict[str, Any] = {
        "benchmark": "iwant",
        "schema": 1,
        "quick": args.quick,
        "seed": args.seed,
        "options": opts,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_before": round(os.getloadavg()[0], 2),
        },
        "databases": {},
    }
    for kind in kinds:
        if kind == "postgresql":
            problem = dbs.postgres_problem(dbs.postgres_admin_url(args.postgres_url))
            if problem:
                if args.db == "postgresql":
                    print(f"PostgreSQL is not reachable: {problem}", file=sys.stderr)
                    return 2
                result["databases"][kind] = {"skipped": f"PostgreSQL not reachable: {problem}"}
                note(f"postgresql skipped: {problem}", not args.no_progress)
                continue
        try:
            result["databases"][kind] = run_database(kind, args, opts, skip, later)
        except BaseException:
            for finish in later:
                finish()
            raise
    result["machine"]["load_after"] = round(os.getloadavg()[0], 2)
    result["memory"] = measure.peak_memory()
    workers = result["databases"].get("postgresql", {}).get("processes", {})
    if isinstance(workers, dict) and workers.get("worker_peak_rss_mb"):
        result["memory"]["worker_peak_rss_mb"] = workers["worker_peak_rss_mb"]
    for finish in later:  # profiling passes and clean-up, after memory was read
        finish()
    result["rush"] = _rush(args, kinds, opts["rush"], skip, opts["rush_matrix"])
    result["elapsed_s"] = round(time.perf_counter() - started, 2)
    result["targets"] = report.targets(result)
    failed = [
        f"{kind}.{name}"
        for kind, db in result["databases"].items()
        for name in STAGES
        if isinstance(db.get(name), dict) and "error" in db[name]
    ]
    rush_platforms = result["rush"].get("platforms", {})
    failed += [f"rush.{p}" for p, r in rush_platforms.items() if "error" in r]
    result["errors"] = failed
    print(report.table(result))
    line = report.json_line(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(line + "\n", encoding="utf-8")
    sys.stdout.flush()
    print(line, flush=True)
    return 1 if failed else 0
