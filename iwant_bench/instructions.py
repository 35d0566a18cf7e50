"""Instructions per submission under callgrind: the figure of a change to the submission path
that does not move with the machine's load (issues 10 and 29).

``python -m iwant_bench.instructions [--db sqlite|postgresql] [--warm 100] [--count 276]``

Runs itself under ``valgrind --tool=callgrind`` on a fresh database: ``warm`` submissions of
the realistic stream (seed 7, the throughput stage's stream) untimed, then ``count`` more
through ``itertools.starmap``. Callgrind collects only inside ``starmap_next``
(``--toggle-collect``), so only those submissions are counted, each whole: the engine, the
driver (sqlite3 or psycopg), the database's own work in this process (SQLite), not the
benchmark's start or the database's creation. ``PYTHONHASHSEED=0`` makes runs repeatable:
the same code counts the same to a few thousandths.

Needs valgrind (Debian: ``apt-get install valgrind``) and an interpreter whose symbols name
``starmap_next`` (a pyenv or source build; a stripped one counts nothing, and is told so).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any

SEED = 7
TOGGLE = "starmap_next"
_COLLECTED = re.compile(r"Collected\s*:\s*([\d,]+)")


def submissions(
    kind: str, warm: int, count: int, postgres_url: str | None = None
) -> dict[str, Any]:
    """Run ``warm`` then ``count`` submissions on a fresh database of ``kind``; the second lot
    inside ``itertools.starmap``. What they came to: outcomes and statements of all."""
    from . import databases as dbs
    from . import measure

    logging.getLogger("iwant_engine").setLevel(logging.WARNING)
    db = dbs.BenchDatabase.create(kind, postgres_url)
    run = measure.Run(db, SEED, False)
    try:
        ops = [op for op in run.workload(1).ops(3000) if op.kind == "submit"][: warm + count]
        if len(ops) < warm + count:
            raise ValueError(f"the stream has {len(ops)} submissions, fewer than {warm + count}")
        driver = measure.Driver(run)
        for op in ops[:warm]:
            driver.do(op)
        collections.deque(itertools.starmap(driver.do, ((op,) for op in ops[warm:])), maxlen=0)
        driver.close()
        return {"outcomes": dict(driver.outcomes), "statements": driver.statements}
    finally:
        run.close()
        db.drop()


def collected(valgrind_output: str) -> int:
    """The instructions callgrind collected, from its summary on stderr."""
    found = _COLLECTED.search(valgrind_output)
    if found is None:
        raise ValueError("no 'Collected :' line in valgrind's output")
    return int(found.group(1).replace(",", ""))


def measure_instructions(
    kind: str, warm: int, count: int, postgres_url: str | None = None
) -> dict[str, Any]:
    """Run the submissions under callgrind in a child process; instructions per submission."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise RuntimeError("valgrind is not installed (Debian: apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="iwant-callgrind-") as directory:
        out_file = os.path.join(directory, "callgrind.out")
        inner = [sys.executable, "-m", "iwant_bench.instructions", "--inner"]
        inner += ["--db", kind, "--warm", str(warm), "--count", str(count)]
        if postgres_url:
            inner += ["--postgres-url", postgres_url]
        proc = subprocess.run(
            [
                valgrind,
                "--tool=callgrind",
                "--collect-atstart=no",
                f"--toggle-collect={TOGGLE}",
                f"--callgrind-out-file={out_file}",
                *inner,
            ],  # fmt: skip
            env={**os.environ, "PYTHONHASHSEED": "0"},
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"the run under valgrind failed:\n{proc.stderr[-2000:]}")
    total = collected(proc.stderr)
    if total == 0:
        raise RuntimeError(
            f"callgrind counted nothing: this interpreter's symbols do not name {TOGGLE} "
            "(a stripped build); use a pyenv or source build of Python"
        )
    return {
        "db": kind,
        "warm": warm,
        "count": count,
        "instructions": total,
        "per_submission": round(total / count),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m iwant_bench.instructions",
        description="Instructions per submission of the realistic stream, under callgrind.",
    )
    p.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--warm", type=int, default=100, help="untimed submissions first (100)")
    p.add_argument("--count", type=int, default=276, help="counted submissions (276)")
    p.add_argument("--postgres-url", help="PostgreSQL server (default: the benchmark's)")
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.count < 1:
        p.error("--count must be 1 or more, like --count 276")
    if args.warm < 0:
        p.error("--warm must be 0 or more, like --warm 100")
    if args.inner:
        print(submissions(args.db, args.warm, args.count, args.postgres_url), file=sys.stderr)
        return 0
    try:
        found = measure_instructions(args.db, args.warm, args.count, args.postgres_url)
    except RuntimeError as err:
        print(err, file=sys.stderr)
        return 1
    print(
        f"{found['db']}: {found['per_submission']:,} instructions per submission "
        f"({found['instructions']:,} for {found['count']} after {found['warm']} untimed)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
