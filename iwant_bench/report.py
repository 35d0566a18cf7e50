"""The readable table, the targets (issues 7 and 10), and the one-line JSON result."""

from __future__ import annotations

import json
import math
from typing import Any

TARGETS = {
    "engine_baseline_ratio": (">=", 0.5, "engine / baseline throughput"),
    "growth_p99_ratio": ("<=", 1.5, "p99 at largest / p99 at 1,000 waiting"),
    "statements_per_submission": (
        "<=",
        5.0,
        "SQL statements per submission, COMMIT included, BEGIN apart (1 each)",
    ),
    # Paired: each !iwant minus its own engine call; the difference of two medians is noisy.
    "plugin_overhead": ("<=", 2.0, "paired: median(!iwant - its own engine call) / !echo"),
    "spread_2_over_1": (">=", 1.5, "2 processes / 1 process, spread pools (PostgreSQL)"),
    # The lunch rush (issue 15), once per platform on PostgreSQL; Matrix twice (issue 24).
    # Issue 26: !iwant stats on 1,000,000 finished requests, one room over a week.
    "stats_room_week_ms": ("<=", 200, "stats: one room, a week, median ms"),
    "stats_all_week_ms": ("<=", 200, "stats: every room, a week, median ms"),
    "rush_ratio": ("<=", 1.2, "rush: first commit to last notification / least the limits allow"),
    "rush_lateness_s": ("<=", 120, "rush: worst delivered - created, groups of the first minute"),
    "rush_429s": ("<=", 0, "rush: 429 responses from the stand-ins and Synapse, every run"),
    "rush_duplicates": ("<=", 0, "rush: notifications sent more than once, every run"),
    "rush_missing": ("<=", 0, "rush: notifications not shown where sent, every run"),
}
RUSH_PLATFORMS = ("slack", "telegram", "matrix", "matrix_lifted")
#: Column titles of the rush's table.
RUSH_TITLES = {"matrix": "matrix (Synapse limits)", "matrix_lifted": "matrix (lifted)"}


def _met(op: str, value: float | None, bound: float) -> bool | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value >= bound if op == ">=" else value <= bound


def targets(result: dict[str, Any]) -> dict[str, Any]:
    """Each target per database: value, bound, met (None when not measured)."""
    out: dict[str, Any] = {}
    for kind, db in result["databases"].items():
        if db.get("skipped"):
            continue
        values = {
            "engine_baseline_ratio": db.get("throughput", {}).get("ratio"),
            "growth_p99_ratio": db.get("growth", {}).get("p99_ratio"),
            "statements_per_submission": db.get("throughput", {})
            .get("engine", {})
            .get("statements_per_submission"),
            "plugin_overhead": db.get("e2e", {}).get("plugin_overhead_paired"),
            "stats_room_week_ms": db.get("stats", {}).get("room_week", {}).get("median_ms"),
            "stats_all_week_ms": db.get("stats", {}).get("all_week", {}).get("median_ms"),
        }
        if kind == "postgresql":
            values["spread_2_over_1"] = db.get("processes", {}).get("spread_2_over_1")
        for name, value in values.items():
            op, bound, meaning = TARGETS[name]
            entry = {
                "value": value,
                "target": f"{op} {bound}",
                "met": _met(op, value, bound),
                "meaning": meaning,
            }
            if name == "growth_p99_ratio" and "growth" in db:
                largest = db["growth"]["largest"]
                entry["at_waiting"] = largest
                if largest < 100_000:
                    entry["note"] = f"measured up to {largest:,} waiting, not 100,000"
            if name.startswith("stats_") and "stats" in db:
                rows = db["stats"].get("requests", 0)
                if rows < 1_000_000:
                    entry["note"] = f"measured on {rows:,} requests, not 1,000,000"
            out[f"{kind}.{name}"] = entry
    out.update(rush_targets(result.get("rush") or {}))
    return out


def _entry(name: str, value: Any, note: str | None = None) -> dict[str, Any]:
    op, bound, meaning = TARGETS[name]
    entry = {"value": value, "target": f"{op} {bound}", "met": _met(op, value, bound)}
    entry["meaning"] = meaning
    if note:
        entry["note"] = note
    return entry


def rush_targets(rush: dict[str, Any]) -> dict[str, Any]:
    """The rush's targets: per run the ratio and the lateness, over every run the 429s,
    the duplicates and the missing; not measured (with the reason) when a run did not run.
    With the bot's limits lifted on Synapse no limit binds: its ratio has nothing to be
    measured against (the note says what bounds it)."""
    platforms = rush.get("platforms") or {}
    reason = rush.get("skipped")
    out: dict[str, Any] = {}
    totals: dict[str, list[Any]] = {"rush_429s": [], "rush_duplicates": [], "rush_missing": []}
    for platform in RUSH_PLATFORMS:
        figures = platforms.get(platform)
        if figures is None and platform.startswith("matrix") and not reason:
            continue  # Matrix left out (--rush-matrix 0)
        figures = figures or {}
        why = reason or figures.get("skipped") or figures.get("error")
        why = why or (None if figures else "not run")
        if figures and not figures.get("finished", True):
            why = f"outbox not empty after {figures.get('waited_s')} s"
        lateness = (figures.get("lateness_first_minute_s") or {}).get("worst")
        ratio_why = why
        if not why and figures.get("limits") == {}:
            ratio_why = lifted_bound(figures)
        elif not why and figures.get("minimum_s") == 0:
            ratio_why = "every message fit in the limits' bursts: no minimum to divide by"
        out[f"{platform}.rush_ratio"] = _entry("rush_ratio", figures.get("ratio"), ratio_why)
        late_why = why
        bound = figures.get("minimum_s") or 0
        if not why and lateness is not None and bound >= TARGETS["rush_lateness_s"][1]:
            late_why = f"the limits allow the run's messages no less than {bound:g} s"
        out[f"{platform}.rush_lateness_s"] = _entry("rush_lateness_s", lateness, late_why)
        measured = bool(figures) and not why
        totals["rush_429s"].append(figures.get("rate_limited") if measured else None)
        totals["rush_duplicates"].append(figures.get("duplicates") if measured else None)
        totals["rush_missing"].append(missing(figures) if measured else None)
    for name, values in totals.items():
        known = [v for v in values if v is not None]
        value = sum(known) if known else None
        note = reason or (
            None if len(known) == len(values) else f"{len(known)} of {len(values)} runs"
        )
        out[name] = _entry(name, value, note)
    return out


def missing(figures: dict[str, Any]) -> int | None:
    """Notifications the platform did not show where the outbox sent them; on Matrix also
    the room messages a member's client did not show."""
    messages = figures.get("messages") or {}
    if "missing" not in messages:
        return None
    unread = (figures.get("matrix") or {}).get("unread_by_members") or 0
    return int(messages["missing"]) + int(unread)


def lifted_bound(figures: dict[str, Any]) -> str:
    """What bounds a run where no homeserver limit binds (Matrix, the bot's limits lifted)."""
    matrix = figures.get("matrix") or {}
    pacing = figures.get("pacing_limits", {}).get("message", "?")
    ratio = figures.get("ratio_to_pacing")
    own = f"{_num(ratio, 2)} x the bots' own pacing" if ratio else "within the bots' pacing burst"
    return (
        f"the bot's Synapse limits lifted: no limit to divide by; {own} ({pacing}); bound by "
        f"round trips: Synapse took {_num(matrix.get('round_trips_per_process_s'), 2)} s per "
        "bot process answering its requests, one at a time"
    )


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def _settings_line(kind: str, db: dict[str, Any]) -> str:
    s = db.get("throughput", {}).get("settings", {})
    eng = s.get("engine") or db.get("settings") or {}
    same = s.get("identical")
    tail = (
        "engine and baseline: identical"
        if same
        else ("engine and baseline DIFFER" if same is False else "")
    )
    if kind == "sqlite":
        return (
            f"  sqlite      file {db.get('label', '?')}\n"
            f"              journal_mode={eng.get('journal_mode')} "
            f"synchronous={eng.get('synchronous')} busy_timeout={eng.get('busy_timeout_ms')} ms "
            f"(SQLite {eng.get('sqlite_version')}); {tail}"
        )
    return (
        f"  postgresql  database {db.get('label', '?')} (PostgreSQL "
        f"{eng.get('server_version')}), WAL always on\n"
        f"              synchronous_commit={eng.get('synchronous_commit')} "
        f"fsync={eng.get('fsync')} "
        f"wal_sync_method={eng.get('wal_sync_method')} "
        f"full_page_writes={eng.get('full_page_writes')} "
        f"shared_buffers={eng.get('shared_buffers')}; {tail}"
    )


def table(result: dict[str, Any]) -> str:
    """The human-readable report: settings, one column per database, targets."""
    dbs = {k: v for k, v in result["databases"].items() if not v.get("skipped")}
    kinds = list(dbs)
    lines = [
        f"iwant benchmark ({'quick' if result['quick'] else 'full'} run, seed {result['seed']}, "
        f"{result['machine']['cpus']} CPUs, load average {result['machine']['load_before']} "
        f"before / {result['machine']['load_after']} after, {result['elapsed_s']:.0f} s)",
        "",
        "Database settings:",
    ]
    lines += [_settings_line(k, v) for k, v in dbs.items()]
    for kind, db in result["databases"].items():
        if db.get("skipped"):
            lines.append(f"  {kind:<11} skipped: {db['skipped']}")
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, getter: Any, digits: int = 1) -> None:
        cells = []
        for k in kinds:
            try:
                value = getter(dbs[k])
            except (KeyError, TypeError, IndexError):
                value = None
            cells.append(value if isinstance(value, str) else _num(value, digits))
        rows.append((label, cells))

    def section(title: str) -> None:
        rows.append((title, [""] * len(kinds)))

    section("1 engine, one process (Engine.submit)")
    row("  submissions", lambda d: d["throughput"]["engine"]["n"])
    row("  submissions/s", lambda d: d["throughput"]["engine"]["per_second"])
    row(
        "  p50 / p99 ms",
        lambda d: "{:.2f} / {:.2f}".format(
            d["throughput"]["engine"]["p50_ms"], d["throughput"]["engine"]["p99_ms"]
        ),
    )
    row(
        "  client CPU ms per submission (mean)",
        lambda d: d["throughput"]["engine"]["cpu_mean_ms"],
        2,
    )
    row(
        "  SQL statements per submission (+ BEGIN)",
        lambda d: "{} (+ {})".format(
            d["throughput"]["engine"]["statements_per_submission"],
            d["throughput"]["engine"].get("begins_per_submission", "?"),
        ),
    )
    row(
        "  by outcome: formed / joined / waiting",
        lambda d: "{formed} / {joined} / {waiting}".format(
            **{"formed": "-", "joined": "-", "waiting": "-"}
            | d["throughput"]["engine"]["statements_by_outcome"]
        ),
    )
    row(
        "  formed / joined / waiting / refused",
        lambda d: "{formed} / {joined} / {waiting} / {r}".format(
            r=d["throughput"]["engine"]["outcomes"].get("refused", 0),
            **{
                k: d["throughput"]["engine"]["outcomes"].get(k, 0)
                for k in ("formed", "joined", "waiting")
            },
        ),
    )
    row(
        "  cancellations (list + cancel) p50 ms",
        lambda d: d["throughput"]["engine"]["cancel"]["p50_ms"],
        2,
    )
    section("2 baseline: one INSERT + COMMIT per request")
    row("  inserts/s", lambda d: d["throughput"]["baseline"]["per_second"])
    row(
        "  p50 / p99 ms",
        lambda d: "{:.2f} / {:.2f}".format(
            d["throughput"]["baseline"]["p50_ms"], d["throughput"]["baseline"]["p99_ms"]
        ),
    )
    row(
        "  client CPU ms per insert (mean)", lambda d: d["throughput"]["baseline"]["cpu_mean_ms"], 2
    )
    row("  engine / baseline (target >= 0.5)", lambda d: d["throughput"]["ratio"], 3)
    if any("suggestions" in d for d in dbs.values()):
        section("1b near misses in the answer (issue 13), the stream in pools of its own")
        row(
            "  submissions/s: suggestions on / off",
            lambda d: "{:,.1f} / {:,.1f}".format(
                d["suggestions"]["on"]["per_second"], d["suggestions"]["off"]["per_second"]
            ),
        )
        row(
            "  statements per submission: on / off",
            lambda d: "{:.2f} / {:.2f}".format(
                d["suggestions"]["on"]["statements_per_submission"],
                d["suggestions"]["off"]["statements_per_submission"],
            ),
        )
        row("  on / off", lambda d: d["suggestions"]["on_over_off"], 3)
    if any("calendars" in d and "with" in d["calendars"] for d in dbs.values()):
        section("1c linked calendars (issue 27): a busy week of 40 events per submitter")
        row(
            "  submissions/s: with / without calendars",
            lambda d: "{:,.1f} / {:,.1f}".format(
                d["calendars"]["with"]["per_second"], d["calendars"]["without"]["per_second"]
            ),
        )
        row(
            "  engine / baseline: with / without",
            lambda d: "{:.3f} / {:.3f}".format(
                d["calendars"]["with"]["engine_over_baseline"],
                d["calendars"]["without"]["engine_over_baseline"],
            ),
        )
        row("  with / without (target >= 0.9)", lambda d: d["calendars"]["with_over_without"], 3)
    section("3 growth: latency with requests waiting")
    sizes = sorted(
        {s["waiting"] for d in dbs.values() for s in d.get("growth", {}).get("sizes", [])}
    )
    for size in sizes:
        row(
            f"  {size:>7,} waiting: p50 / p99 ms",
            lambda d, size=size: next(
                "{:.2f} / {:.2f}".format(s["p50_ms"], s["p99_ms"])
                for s in d["growth"]["sizes"]
                if s["waiting"] == size
            ),
        )
    row("  p99 largest / p99 smallest (target <= 1.5)", lambda d: d["growth"]["p99_ratio"], 3)
    if "postgresql" in dbs and "processes" in dbs["postgresql"]:
        section("4 processes: submissions/s (speed-up, machine CPU busy)")
        procs = dbs["postgresql"]["processes"]

        def scaled(entry: dict[str, Any]) -> str:
            busy = entry.get("machine_cpu_busy")
            tail = f", {busy:.0%}" if isinstance(busy, float) else ""
            return f"{entry['per_second']:,.1f} (x{entry['speedup']:.2f}{tail})"

        for shape in ("spread", "hot"):
            for n in procs.get(shape, {}):
                row(
                    f"  {shape} pools, {n} process(es)",
                    lambda d, shape=shape, n=n: scaled(d["processes"][shape][n]),
                )
        row(
            "  2 / 1 processes, spread (target >= 1.5)",
            lambda d: d["processes"]["spread_2_over_1"],
            3,
        )
    section("5 sweep")
    row(
        "  expire due requests: n / s",
        lambda d: "{:,} / {:.2f}".format(d["sweep"]["expired"], d["sweep"]["expire_s"]),
    )
    row(
        "  deliver outbox rows: n / s",
        lambda d: "{:,} / {:.2f}".format(d["sweep"]["delivered"], d["sweep"]["deliver_s"]),
    )
    row(
        "  make standing wishes' days: n / s",
        lambda d: "{:,} / {:.2f}".format(
            d["sweep"]["standing"]["made"], d["sweep"]["standing"]["seconds"]
        ),
    )
    section("5b !iwant stats (Storage.stats), finished requests")
    row("  requests / loaded in s", lambda d: "{:,} / {:.0f}".format(
        d["stats"]["requests"], d["stats"]["load_s"]))  # fmt: skip
    for name, label in (
        ("room_week", "one room, a week"),
        ("all_week", "every room, a week"),
        ("all_month", "every room, a month"),
        ("all_year", "every room, a year"),
    ):
        row(
            f"  {label}: median / max ms",
            lambda d, n=name: "{:.0f} / {:.0f}".format(
                d["stats"][n]["median_ms"], d["stats"][n]["max_ms"]
            ),
        )
    section("6 errbot Test backend, medians in ms")
    row(
        "  !iwant / engine / !echo",
        lambda d: "{:.2f} / {:.2f} / {:.2f}".format(
            d["e2e"]["iwant_median_ms"], d["e2e"]["engine_median_ms"], d["e2e"]["echo_median_ms"]
        ),
    )
    row("  plugin overhead, unpaired medians", lambda d: d["e2e"]["plugin_overhead"], 3)
    row(
        "  paired: (!iwant - its own engine call) / !echo (target <= 2)",
        lambda d: d["e2e"]["plugin_overhead_paired"],
        3,
    )
    row(
        "  paired, until the reply is handed to errbot",
        lambda d: d["e2e"]["plugin_overhead_reply_sent_paired"],
        3,
    )

    width = max(len(label) for label, _ in rows) + 2
    col = max([16] + [len(c) + 2 for _, cells in rows for c in cells])
    lines += ["", "".ljust(width) + "".join(k.rjust(col) for k in kinds)]
    for label, cells in rows:
        lines.append(label.ljust(width) + "".join(c.rjust(col) for c in cells))
    mem = result["memory"]
    lines += [
        "",
        f"7 peak memory: {mem['peak_rss_mb']:.0f} MB (benchmark process: engine, baseline, "
        "errbot)"
        + (
            f"; {mem['worker_peak_rss_mb']:.0f} MB largest engine worker process"
            if mem.get("worker_peak_rss_mb")
            else ""
        ),
        "",
    ]
    lines += rush_table(result.get("rush") or {})
    lines += ["", "Targets (issues 7, 10, 15 and 24):"]
    for name, t in result["targets"].items():
        state = {True: "met", False: "NOT met", None: "not measured"}[t["met"]]
        value = _num(t["value"], 3)
        note = f" ({t['note']})" if t.get("note") else ""
        lines.append(f"  {name:<36} {value:>9} {t['target']:<7} {state}{note}")
    return "\n".join(lines)


def rush_table(rush: dict[str, Any]) -> list[str]:
    """Section 8: the lunch rush, one column per platform (Matrix: two runs)."""
    title = "8 lunch rush (issues 15, 24): two bots per platform on one PostgreSQL, stand-ins with"
    lines = ["", title + " the platforms' limits, a real Synapse for Matrix"]
    if rush.get("skipped"):
        return [*lines, f"  not measured: {rush['skipped']}"]
    platforms = {p: rush.get("platforms", {}).get(p) for p in RUSH_PLATFORMS}
    platforms = {p: f for p, f in platforms.items() if f is not None}
    if not platforms:
        return [*lines, "  not measured"]
    if "load_before" in rush:
        lines.append(
            f"  ({rush.get('elapsed_s', 0):.0f} s, load average {rush['load_before']} before / "
            f"{rush['load_after']} after)"
        )
    for name, figures in platforms.items():
        if "skipped" in figures:
            lines.append(f"  {RUSH_TITLES.get(name, name)} not measured: {figures['skipped']}")
    platforms = {p: f for p, f in platforms.items() if "skipped" not in f}
    if not platforms:
        return lines
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, getter: Any, digits: int = 1) -> None:
        cells = []
        for figures in platforms.values():
            if "error" in figures:
                cells.append("error")
                continue
            try:
                value = getter(figures)
            except (KeyError, TypeError, IndexError, ZeroDivisionError, ValueError):
                value = None
            cells.append(value if isinstance(value, str) else _num(value, digits))
        rows.append((label, cells))

    def minimum(f: dict[str, Any]) -> str:
        if f["limits"] == {}:
            return "none (lifted)"
        return "{:.2f} ({})".format(f["minimum_s"], f["bound_by"])

    def peak(f: dict[str, Any], i: int) -> str:
        kind, p = list(f["peaks"].items())[i]
        cells = [_num(p[k], 0) for k in ("per_second", "allowed_per_second")]
        cells += [_num(p[k], 0) for k in ("per_minute", "allowed_per_minute")]
        return "{}: {}/{}, {}/{}".format(kind, *cells)

    row("  people", lambda f: f["people"])
    row(
        "  wishes committed in s (submissions/s)",
        lambda f: "{:.1f} ({:,.0f}/s)".format(
            f["submissions"]["seconds"], f["submissions"]["per_second"]
        ),
    )
    row("  notifications accepted by the platform", lambda f: f["notifications"])
    row("  429s received (target 0)", lambda f: f["rate_limited"])
    row("  first commit -> last notification, s", lambda f: f["first_commit_to_last_s"], 2)
    row("  minimum by the limits, s (bound by)", minimum)
    row("  ratio (target <= 1.2)", lambda f: f["ratio"], 3)
    row(
        "  minimum by the bots' own budgets (smaller bursts), s; ratio",
        lambda f: "{:.2f}; {:.3f}".format(f["pacing_minimum_s"], f["ratio_to_pacing"]),
    )
    row(
        "  worst lateness, groups of the first minute, s (target <= 120)",
        lambda f: f["lateness_first_minute_s"]["worst"],
        2,
    )
    row("  duplicates (target 0)", lambda f: f["duplicates"])
    row(
        "  missing / extra against the outbox",
        lambda f: "{} / {}".format(f["messages"]["missing"], f["messages"]["extra"]),
    )
    if any("matrix" in f for f in platforms.values()):
        row(
            "  Matrix: room messages a member did not see; undecrypted",
            lambda f: "{} ; {}".format(
                f["matrix"]["unread_by_members"], f["matrix"]["undecrypted"]
            ),
        )
        row(
            "  Matrix: Synapse's ms per send p50 / max; its s per bot process",
            lambda f: "{} / {}; {}".format(
                f["matrix"]["send_ms_p50"],
                f["matrix"]["send_ms_max"],
                f["matrix"]["round_trips_per_process_s"],
            ),
        )
    for kind_index in range(3):
        row(
            f"  peak scope {kind_index + 1}: per s / allowed, per min / allowed",
            lambda f, i=kind_index: peak(f, i),
        )
    width = max(len(label) for label, _ in rows) + 2
    titles = [RUSH_TITLES.get(p, p) for p in platforms]
    col = max(
        [16] + [len(t) + 2 for t in titles] + [len(c) + 2 for _, cells in rows for c in cells]
    )
    lines.append("".ljust(width) + "".join(t.rjust(col) for t in titles))
    lines += [label.ljust(width) + "".join(c.rjust(col) for c in cells) for label, cells in rows]
    return lines


def json_line(result: dict[str, Any]) -> str:
    """The whole result as one line of JSON (NaN becomes null)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean(result), separators=(",", ":"), sort_keys=False)
