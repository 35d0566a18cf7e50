"""Measurement 4: throughput with 1, 2 and 4 engine processes on one PostgreSQL.

Worker processes (``spawn``) each build their own ``Engine`` on the benchmark database once,
then run rounds: the parent hands every worker of a round its share, waits until all have
made their operations, and gives one start time. A round's throughput is all submissions
divided by the time from the first start to the last finish (``time.monotonic`` is one
system-wide clock on Linux, so the workers' times compare).

Two shapes: ``spread`` gives each worker pools of its own (the realistic case: matching is
local to a pool and activity, so workers never wait for each other's lock); ``hot`` puts every
worker's requests into one pool and one activity (coffee), so the per-(pool, activity)
advisory lock serialises them: the worst case.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Sequence
from typing import Any

from .progress import bar

READY_TIMEOUT = 120


def _shape(kind: str, round_id: int, worker: int) -> Any:
    from .workload import Shape

    prefix = f"r{round_id}w{worker}-"
    if kind == "hot":
        return Shape(
            rooms=(f"hot{round_id}",),
            people=150,
            popularity=(("coffee", 1.0),),
            prefix=prefix,
            cancel_share=0.0,
        )
    return Shape(
        rooms=tuple(f"r{round_id}w{worker}room{i:02d}" for i in range(6)),
        people=300,
        prefix=prefix,
        cancel_share=0.0,
    )


def _worker(url: str, seed: int, index: int, tasks: Any, results: Any) -> None:
    """One engine process: build the engine, then run rounds until told to stop."""
    import logging

    logging.getLogger("iwant_engine").setLevel(logging.CRITICAL)
    from iwant_engine.clock import FixedClock
    from iwant_engine.engine import Engine, Person
    from iwant_engine.errors import UserError

    from .measure import activity_table, load_settings, peak_rss_mb
    from .workload import DAY_START, Workload

    try:
        settings = load_settings(url)
        clock = FixedClock(DAY_START)
        engine = Engine(settings, clock)
        lengths, _ = activity_table(settings)
    except Exception as err:  # tell the parent instead of leaving it waiting
        results.put(("failed", index, f"{type(err).__name__}: {err}"))
        return
    results.put(("ready", index, None))
    while True:
        task = tasks.get()
        if task is None:
            break
        kind, round_id, count = task
        shape = _shape(kind, round_id, index)
        workload = Workload(
            seed * 1000 + round_id * 10 + index, lengths, settings.default_window, shape
        )
        ops = [op for op in workload.ops(count) if op.kind == "submit"]
        people = {op.person: Person(op.person, op.name) for op in ops}
        results.put(("prepared", index, len(ops)))
        go_at = tasks.get()
        while time.monotonic() < go_at:
            time.sleep(0.001)
        latencies: list[float] = []
        refused = 0
        cpu = time.process_time()
        began = time.monotonic()
        for op in ops:
            clock.set(op.at)
            start = time.perf_counter()
            try:
                engine.submit(people[op.person], op.text, op.room)
            except UserError:
                refused += 1
            latencies.append(time.perf_counter() - start)
        ended = time.monotonic()
        cpu = time.process_time() - cpu
        results.put(("done", index, (began, ended, latencies, refused, peak_rss_mb(), cpu)))
    engine.close()


def _cpu_times() -> Any:
    try:
        import psutil
    except ImportError:
        return None
    return psutil.cpu_times()


def _busy(before: Any, after: Any) -> float | None:
    """Share of all CPUs' time that was not idle between two ``psutil.cpu_times()``."""
    if before is None or after is None:
        return None
    idle = (after.idle - before.idle) + (
        getattr(after, "iowait", 0.0) - getattr(before, "iowait", 0.0)
    )
    total = sum(after) - sum(before)
    return round(1 - idle / total, 3) if total > 0 else None


def _expect(results: Any, what: str, indices: Sequence[int]) -> dict[int, Any]:
    got: dict[int, Any] = {}
    deadline = time.monotonic() + READY_TIMEOUT
    while len(got) < len(indices):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError(f"worker processes did not report {what!r} in time")
        kind, index, payload = results.get(timeout=remaining)
        if kind == "failed":
            raise RuntimeError(f"worker {index} failed: {payload}")
        if kind != what:
            raise RuntimeError(f"worker {index} said {kind!r}, expected {what!r}")
        got[index] = payload
    return got


def scaling(
    url: str,
    seed: int,
    counts: Sequence[int],
    per_process: int,
    show_progress: bool = True,
    label: str = "postgresql",
) -> dict[str, Any]:
    """Throughput of ``counts`` processes, each submitting ``per_process`` requests."""
    from .measure import summary

    ctx = mp.get_context("spawn")
    workers = max(counts)
    results = ctx.Queue()
    queues = [ctx.Queue() for _ in range(workers)]
    procs = [
        ctx.Process(target=_worker, args=(url, seed, i, queues[i], results), daemon=True)
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    out: dict[str, Any] = {"per_process_ops": per_process, "spread": {}, "hot": {}}
    rounds = [(kind, n) for kind in ("spread", "hot") for n in counts]
    try:
        with bar(
            sum(n * per_process for _, n in rounds), f"{label}: processes", show_progress
        ) as progress:
            progress.set_postfix_str(f"starting {workers} engine processes")
            _expect(results, "ready", range(workers))
            for round_id, (kind, n) in enumerate(rounds):
                progress.set_postfix_str(f"{kind}, {n} process(es)")
                members = list(range(n))
                for i in members:
                    queues[i].put((kind, round_id, per_process))
                prepared = _expect(results, "prepared", members)
                go_at = time.monotonic() + 0.2
                for i in members:
                    queues[i].put(go_at)
                machine = _cpu_times()
                done = _expect(results, "done", members)
                machine = _busy(machine, _cpu_times())
                began = min(d[0] for d in done.values())
                ended = max(d[1] for d in done.values())
                latencies = [x for d in done.values() for x in d[2]]
                total = sum(prepared.values())
                stats = summary(latencies)
                out[kind][str(n)] = {
                    "submissions": total,
                    "wall_s": round(ended - began, 3),
                    "per_second": round(total / (ended - began), 1),
                    "p50_ms": stats["p50_ms"],
                    "p99_ms": stats["p99_ms"],
                    "refused": sum(d[3] for d in done.values()),
                    # CPU seconds the engine processes used per submission, and how busy the
                    # whole machine was (all CPUs, every process incl. PostgreSQL and others).
                    "client_cpu_ms_per_submission": round(
                        sum(d[5] for d in done.values()) / max(total, 1) * 1000, 2
                    ),
                    "machine_cpu_busy": machine,
                }
                out["worker_peak_rss_mb"] = max(
                    [out.get("worker_peak_rss_mb", 0.0)] + [d[4] for d in done.values()]
                )
                progress.update(n * per_process)
    finally:
        for q in queues:
            q.put(None)
        for p in procs:
            p.join(timeout=20)
            if p.is_alive():
                p.terminate()
    for kind in ("spread", "hot"):
        one = out[kind].get("1", {}).get("per_second")
        for n in counts:
            if one and str(n) in out[kind]:
                out[kind][str(n)]["speedup"] = round(out[kind][str(n)]["per_second"] / one, 3)
    two, one = out["spread"].get("2"), out["spread"].get("1")
    out["spread_2_over_1"] = (
        round(two["per_second"] / one["per_second"], 3) if two and one else None
    )
    return out
