"""Measurements 1, 2, 3, 5 and 7 of issue 7, in the benchmark's own process.

1. engine submissions per second and latency through ``Engine.submit``;
2. the baseline: one plain SQLAlchemy Core INSERT and COMMIT per request, interleaved with
   the engine in chunks so both see the same machine and the same database;
3. growth: probe latency with 1,000 / 10,000 / 100,000 requests already waiting;
5. the sweep: expiring due requests and delivering their outbox rows;
7. peak memory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import resource
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert

from iwant_engine import settings as settings_mod
from iwant_engine.clock import FixedClock
from iwant_engine.engine import Engine, Person
from iwant_engine.errors import UserError
from iwant_engine.settings import Settings

from . import databases as dbs
from .progress import bar
from .standing_stage import make_standing_days
from .workload import DAY0, DAY_START, POPULARITY, Op, Shape, Workload, waiting_rows

REPO = Path(__file__).resolve().parents[1]
ROOMS = tuple(f"room{i:02d}" for i in range(12))
GROWTH_ROOMS = tuple(f"grow{i:02d}" for i in range(12))
CHUNK = 25  # engine and baseline alternate in chunks of this many requests


def plugins_cfg() -> Path | None:
    """The repository's plugins.cfg (what a bot uses), when running from a checkout."""
    path = REPO / "plugins.cfg"
    return path if path.is_file() else None


def load_settings(url: str) -> Settings:
    """The shipped settings (plugins.cfg, else built-in defaults); environment ignored."""
    base = settings_mod.load(plugins_cfg(), environ={})
    return dataclasses.replace(base, database_url=url)


def activity_table(settings: Settings) -> tuple[dict[str, timedelta], dict[str, int]]:
    lengths, sizes = {}, {}
    for name, _ in POPULARITY:
        activity = settings.activity(name)
        if activity is None:
            raise SystemExit(f"plugins.cfg does not accept the activity {name!r}")
        lengths[name], sizes[name] = activity.length, activity.max_size
    return lengths, sizes


class LogCounter(logging.Handler):
    """Counts the engine's warnings and errors during the run instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()
        self.examples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.levelname.lower()] += 1
        if len(self.examples) < 5:
            self.examples.append(record.getMessage()[:300])


@dataclass
class Run:
    """One database's engine, clock and settings, shared by the measurements."""

    db: dbs.BenchDatabase
    seed: int
    show_progress: bool
    settings: Settings = field(init=False)
    clock: FixedClock = field(init=False)
    engine: Engine = field(init=False)
    lengths: dict[str, timedelta] = field(init=False)
    max_sizes: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.settings = load_settings(self.db.url)
        self.clock = FixedClock(DAY_START)
        self.engine = Engine(self.settings, self.clock)
        self.lengths, self.max_sizes = activity_table(self.settings)

    @property
    def sa_engine(self) -> Any:
        return self.engine.storage.engine  # type: ignore[attr-defined]  # the SQL storage

    def pool_of(self, person: str, room: str) -> str:
        return self.engine.pool_for(Person(person, person), room)

    def workload(self, salt: int, shape: Shape | None = None) -> Workload:
        return Workload(self.seed * 1000 + salt, self.lengths, self.settings.default_window, shape)

    def close(self) -> None:
        self.engine.close()


# -- statistics ----------------------------------------------------------------------------------


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    if not ordered:
        return math.nan
    rank = min(len(ordered), max(1, math.ceil(q * len(ordered))))
    return ordered[rank - 1]


def summary(latencies: Sequence[float], cpu: Sequence[float] = ()) -> dict[str, float]:
    """Count, throughput (count / summed latency) and latency percentiles in ms.

    ``cpu``: this process's CPU seconds per operation (``time.process_time``), whose mean says
    what the client side costs whatever the machine's load.
    """
    ordered = sorted(latencies)
    total = sum(ordered)
    extra = {"cpu_mean_ms": round(sum(cpu) / len(cpu) * 1000, 3)} if cpu else {}
    return {
        "n": len(ordered),
        "per_second": round(len(ordered) / total, 1) if total else math.nan,
        "p50_ms": round(percentile(ordered, 0.50) * 1000, 3),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 3),
        "mean_ms": round(total / len(ordered) * 1000, 3) if ordered else math.nan,
        "max_ms": round(ordered[-1] * 1000, 3) if ordered else math.nan,
        **extra,
    }


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return math.nan
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


def outcome(body: str) -> str:
    if body.startswith("By your calendar:"):  # a window trimmed by busy time (issue 27)
        body = body.partition("\n")[2]
    if body.startswith("Waiting"):
        return "waiting"
    if body.startswith("Matched"):
        return "formed"
    if body.startswith("You join"):
        return "joined"
    return "other"


# -- running operations through the engine ------------------------------------------------------


class Driver:
    """Runs ``Op``s through the public engine API and keeps per-kind latencies."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.submit: list[float] = []
        self.submit_cpu: list[float] = []
        self.cancel: list[float] = []
        self.outcomes: Counter[str] = Counter()
        self.refusals: Counter[str] = Counter()
        self.statements = 0
        self.statements_by_outcome: Counter[str] = Counter()
        self.begins = 0  # transactions begun by submissions (BEGIN, not in ``statements``)
        self._count = 0
        self._begun = 0
        self._listeners: list[tuple[str, Callable[..., None]]] = []
        self._traced: dict[int, Any] = {}

        def on_execute(*_args: object, **_kw: object) -> None:
            self._count += 1

        def on_begin(*_args: object, **_kw: object) -> None:
            self._begun += 1

        if run.db.kind == "sqlite":
            # What SQLite itself runs: its trace callback fires once per statement executed
            # (COMMIT included, each row of an executemany once), however the statement
            # reached the driver (SQLAlchemy or the storage's own cursor). BEGIN IMMEDIATE is
            # counted apart, as psycopg's BEGIN is on PostgreSQL: the same count on both.
            def on_trace(sql: str) -> None:
                if sql.lstrip()[:5].upper() == "BEGIN":
                    self._begun += 1
                else:
                    self._count += 1

            def on_checkout(dbapi_connection: Any, *_args: object) -> None:
                dbapi_connection.set_trace_callback(on_trace)
                self._traced[id(dbapi_connection)] = dbapi_connection

            self._listeners.append(("checkout", on_checkout))
            # Connections the storage keeps between units of work were checked out before
            # this listener: given back, every one used from now on is checked out anew.
            run.engine.storage.release_connections()  # type: ignore[attr-defined]
        else:
            # Each statement sent through a cursor (the storage's own cursor fires SQLAlchemy's
            # before_cursor_execute too), plus each COMMIT. psycopg's BEGIN, which it sends by
            # itself before a transaction's first statement, is counted apart (one per
            # transaction begun); a check of a pooled connection (``pg_alive``) is not counted.
            self._listeners.append(("before_cursor_execute", on_execute))
            self._listeners.append(("commit", on_execute))
            self._listeners.append(("begin", on_begin))
        for name, listener in self._listeners:
            event.listen(run.sa_engine, name, listener)

    def close(self) -> None:
        for name, listener in self._listeners:
            event.remove(self.run.sa_engine, name, listener)
        for dbapi_connection in self._traced.values():
            with contextlib.suppress(Exception):  # closed meanwhile
                dbapi_connection.set_trace_callback(None)
        self._traced.clear()

    def do(self, op: Op) -> None:
        engine, clock = self.run.engine, self.run.clock
        clock.set(op.at)
        person = Person(op.person, op.name)
        if op.kind == "submit":
            before, begun = self._count, self._begun
            cpu = time.process_time()
            start = time.perf_counter()
            try:
                note = engine.submit(person, op.text, op.room)
            except UserError as err:
                self.submit.append(time.perf_counter() - start)
                kind = "refused"
                self.refusals[str(err)[:80]] += 1
            else:
                self.submit.append(time.perf_counter() - start)
                kind = outcome(note.body)
            self.submit_cpu.append(time.process_time() - cpu)
            self.outcomes[kind] += 1
            self.statements += self._count - before
            self.statements_by_outcome[kind] += self._count - before
            self.begins += self._begun - begun
            return
        start = time.perf_counter()  # a cancel is what a user does: list, then cancel one
        items = engine.open_requests(person)
        mine = [i for i in items if i.activity == op.activity and i.earliest == op.earliest]
        try:
            if mine:
                engine.cancel(person, f"#{mine[0].request_id}")
                self.outcomes["cancelled"] += 1
            else:  # ended meanwhile (e.g. expired when a partner left after its deadline)
                self.outcomes["cancel_target_gone"] += 1
        except UserError:
            self.outcomes["cancel_refused"] += 1
        self.cancel.append(time.perf_counter() - start)


@dataclass
class Taken:
    """What the submissions of one stream took, gathered chunk by chunk from a ``Driver``
    that runs other streams in between."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    statements: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def run(self, driver: Driver, ops: Sequence[Op]) -> None:
        """``ops`` through ``driver``, adding what their submissions took."""
        first, statements = len(driver.submit), driver.statements
        outcomes = Counter(driver.outcomes)
        for op in ops:
            driver.do(op)
        self.wall += driver.submit[first:]
        self.cpu += driver.submit_cpu[first:]
        self.statements += driver.statements - statements
        self.outcomes += driver.outcomes - outcomes

    def figures(self) -> dict[str, Any]:
        return {
            **summary(self.wall, self.cpu),
            "statements_per_submission": round(self.statements / max(len(self.wall), 1), 2),
            "outcomes": dict(self.outcomes),
        }


def _warm_up(run: Run, salt: int) -> None:
    """A few untimed submissions, so the first timed ones do not pay for cold caches."""
    shape = Shape(rooms=("warm",), people=40, prefix=f"warm{salt}-")
    driver = Driver(run)
    for op in run.workload(900 + salt, shape).ops(20):
        driver.do(op)
    driver.close()


# -- 1 and 2: engine against the baseline ------------------------------------------------------


def engine_and_baseline(run: Run, count: int) -> dict[str, Any]:
    """The realistic stream through the engine; the same requests as bare INSERT + COMMIT."""
    ops = run.workload(1).ops(count)
    base = dbs.baseline_engine(run.db.url, run.settings.pool_size)
    engine_settings = dbs.database_settings(run.sa_engine)
    baseline_settings = dbs.database_settings(base)
    add = insert(dbs.BASELINE)
    rows = {
        id(op): {
            "person": op.person,
            "pool": run.pool_of(op.person, op.room),
            "origin": f"{op.person.split(':', 1)[0]}:{op.room}",
            "activity": op.activity,
            "earliest": dbs.naive(op.earliest),
            "latest": dbs.naive(op.latest),
            "deadline": dbs.naive(op.deadline),
            "length_minutes": op.length_minutes,
            "max_size": op.max_size or run.max_sizes[op.activity],
            "min_size": 2,
            "created_at": dbs.naive(op.at),
            "result_id": None,
            "status": "PENDING",
        }
        for op in ops
        if op.kind == "submit"
    }
    _warm_up(run, 1)
    for row in list(rows.values())[:20]:
        with base.begin() as conn:
            conn.execute(add, row)
    with base.begin() as conn:
        conn.execute(dbs.BASELINE.delete())

    driver = Driver(run)
    baseline: list[float] = []
    baseline_cpu: list[float] = []
    with bar(len(ops), f"{run.db.kind}: engine vs baseline", run.show_progress) as progress:
        for i in range(0, len(ops), CHUNK):
            part = ops[i : i + CHUNK]
            for op in part:
                driver.do(op)
            for op in part:
                if op.kind != "submit":
                    continue
                row = rows[id(op)]
                cpu = time.process_time()
                start = time.perf_counter()
                with base.begin() as conn:
                    conn.execute(add, row)
                baseline.append(time.perf_counter() - start)
                baseline_cpu.append(time.process_time() - cpu)
            progress.update(len(part))
    driver.close()
    base.dispose()
    engine_stats = summary(driver.submit, driver.submit_cpu)
    baseline_stats = summary(baseline, baseline_cpu)
    return {
        "operations": len(ops),
        "engine": {
            **engine_stats,
            "outcomes": dict(driver.outcomes),
            "refusals": dict(driver.refusals.most_common(5)),
            "statements_per_submission": round(driver.statements / max(len(driver.submit), 1), 2),
            "begins_per_submission": round(driver.begins / max(len(driver.submit), 1), 2),
            "statements_by_outcome": {
                kind: round(n / driver.outcomes[kind], 2)
                for kind, n in sorted(driver.statements_by_outcome.items())
            },
            "cancel": summary(driver.cancel),
        },
        "baseline": baseline_stats,
        "ratio": round(engine_stats["per_second"] / baseline_stats["per_second"], 3),
        "settings": {
            "engine": engine_settings,
            "baseline": baseline_settings,
            "identical": engine_settings == baseline_settings,
        },
    }


# -- 3: growth with the number of waiting requests ----------------------------------------------


def growth(run: Run, sizes: Sequence[int], probes: int) -> dict[str, Any]:
    """Probe latency with ``sizes`` requests already waiting in the probes' own pools.

    The waiting requests are bulk-loaded rows exactly as the engine stores them: same tables,
    same pools (rooms ``grow00``..``grow11``, Zipf-weighted like the probes) and the same
    activity mix, PENDING, deadlines in the future; their windows lie 2 to 6 days ahead, so
    they share the candidate index's prefix (pool, activity, status) with every probe but
    are never a match. The probes are one fixed stream of submissions "today"; after each
    size their rows are deleted again, so every size sees the same probes from the same start.
    """
    shape = Shape(rooms=GROWTH_ROOMS, people=600, prefix="g", cancel_share=0.0)
    ops = [op for op in run.workload(3, shape).ops(probes) if op.kind == "submit"]
    probe_keys = Counter((op.room, op.activity) for op in ops)
    loaded_keys: Counter[tuple[str, str]] = Counter()
    results: list[dict[str, Any]] = []
    loaded = 0
    _warm_up(run, 3)
    with bar(len(sizes) * len(ops), f"{run.db.kind}: growth", run.show_progress) as progress:
        for size in sizes:
            if size > loaded:
                progress.set_postfix_str(f"loading {size:,} waiting")
                new = list(
                    waiting_rows(
                        size - loaded,
                        run.seed,
                        GROWTH_ROOMS,
                        run.lengths,
                        run.max_sizes,
                        (2, 6),
                        "bench:w",
                        first=loaded,
                    )
                )
                loaded_keys.update((r.room, r.activity) for r in new)
                loaded += dbs.load_waiting(run.sa_engine, new, run.pool_of, DAY_START)
                dbs.analyze(run.sa_engine)
            progress.set_postfix_str(f"{size:,} waiting")
            mark = dbs.marker(run.sa_engine)
            driver = Driver(run)
            for op in ops:
                driver.do(op)
                progress.update(1)
            driver.close()
            dbs.delete_after(run.sa_engine, mark)
            same = sum(loaded_keys[k] * n for k, n in probe_keys.items()) / max(len(ops), 1)
            results.append(
                {
                    "waiting": size,
                    **summary(driver.submit, driver.submit_cpu),
                    "outcomes": dict(driver.outcomes),
                    "statements_per_submission": round(
                        driver.statements / max(len(driver.submit), 1), 2
                    ),
                    "same_pool_activity_waiting_mean": round(same, 1),
                }
            )
    return {
        "probes": len(ops),
        "sizes": results,
        "p99_ratio": round(results[-1]["p99_ms"] / results[0]["p99_ms"], 3),
        "p50_ratio": round(results[-1]["p50_ms"] / results[0]["p50_ms"], 3),
        "largest": results[-1]["waiting"],
        "smallest": results[0]["waiting"],
    }


# -- 5: the sweep ---------------------------------------------------------------------------------


def sweep(run: Run, count: int) -> dict[str, Any]:
    """Expire ``count`` due requests with ``Engine.sweep``; deliver their notes (no-op send).

    The due requests are bulk-loaded for yesterday and the clock is set to 07:59 today, before
    any other request of the run is due, so the sweep expires exactly these.
    """
    run.clock.set(DAY_START - timedelta(minutes=1))
    rows = waiting_rows(
        count,
        run.seed + 5,
        ("sweeproom",),
        run.lengths,
        run.max_sizes,
        (-1, -1),
        "sweep:u",
    )
    with bar(2 * count, f"{run.db.kind}: sweep", run.show_progress) as progress:
        progress.set_postfix_str(f"loading {count:,} due")
        dbs.load_waiting(run.sa_engine, rows, run.pool_of, DAY0 - timedelta(days=2))
        dbs.analyze(run.sa_engine)
        progress.set_postfix_str("expiring")
        start = time.perf_counter()
        expired, done = run.engine.sweep()
        expire_s = time.perf_counter() - start
        progress.update(count)
        progress.set_postfix_str("delivering")
        delivered = 0

        def send(_item: object) -> None:
            pass

        start = time.perf_counter()
        while True:
            report = run.engine.deliver("sweep", send)
            delivered += report.delivered
            progress.update(report.delivered)
            if not report.delivered:
                break
        deliver_s = time.perf_counter() - start
    standing = make_standing_days(run, count)
    return {
        "standing": standing,
        "due": count,
        "expired": expired,
        "marked_done": done,
        "expire_s": round(expire_s, 3),
        "expire_per_second": round(expired / expire_s, 1) if expire_s else math.nan,
        "delivered": delivered,
        "deliver_s": round(deliver_s, 3),
        "deliver_per_second": round(delivered / deliver_s, 1) if deliver_s else math.nan,
        "deliver_batch": 50,
    }


# -- 1b: near misses on and off (issue 13) --------------------------------------------------------


def suggestions_on_off(run: Run, count: int) -> dict[str, Any]:
    """The realistic stream twice, in pools of their own, once with near misses in the answer
    and once without (``[engine] suggestions``), in alternating chunks like the baseline."""
    streams = {
        mode: run.workload(
            16, Shape(rooms=tuple(f"sug-{mode}{i:02d}" for i in range(12)), prefix=f"{mode}-")
        ).ops(count)
        for mode in ("on", "off")
    }
    settings = run.engine.settings
    driver = Driver(run)  # one: SQLite's statement counter is one callback per connection
    taken = {mode: Taken() for mode in streams}
    try:
        with bar(2 * count, f"{run.db.kind}: near misses on/off", run.show_progress) as progress:
            for i in range(0, count, CHUNK):
                for mode, ops in streams.items():
                    run.engine.settings = dataclasses.replace(settings, suggestions=mode == "on")
                    taken[mode].run(driver, ops[i : i + CHUNK])
                    progress.update(len(ops[i : i + CHUNK]))
    finally:
        run.engine.settings = settings
        driver.close()
    out: dict[str, Any] = {mode: part.figures() for mode, part in taken.items()}
    out["on_over_off"] = round(out["on"]["per_second"] / out["off"]["per_second"], 3)
    return out


# -- optional profile ---------------------------------------------------------------------------


def profile(run: Run, count: int, directory: Path) -> str | None:
    """A pyinstrument profile of ``count`` realistic submissions; the path of its text."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return None
    ops = run.workload(7, Shape(rooms=tuple(f"prof{i:02d}" for i in range(12)), prefix="f")).ops(
        count
    )
    driver = Driver(run)
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for op in ops:
        driver.do(op)
    profiler.stop()
    driver.close()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"profile-{run.db.kind}.txt"
    path.write_text(profiler.output_text(unicode=True, color=False), encoding="utf-8")
    return str(path)


# -- 7: memory ------------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB: ``VmHWM`` (Linux; reset by exec, so a spawned
    worker does not inherit its parent's figure), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def peak_memory() -> dict[str, float]:
    """Peak resident memory of the benchmark process (and its current size), in MB."""
    result = {"peak_rss_mb": peak_rss_mb()}
    try:
        import psutil

        result["rss_now_mb"] = round(psutil.Process().memory_info().rss / 2**20, 1)
    except ImportError:
        pass
    return result


def timed(action: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = action()
    return value, time.perf_counter() - start
