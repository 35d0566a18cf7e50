"""Plot latency against waiting requests from a benchmark's JSON result (needs matplotlib).

    python -m iwant_bench --json bench.json
    python -m iwant_bench.plot bench.json docs/benchmarks-growth.png

The JSON file may be the ``--json`` output or a saved stdout: its last line is used.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

COLORS = {"sqlite": "tab:blue", "postgresql": "tab:orange"}


def read_result(path: Path) -> dict[str, Any]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return json.loads(lines[-1])


def plot(result: dict[str, Any], out: Path, title: str | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    ticks: set[int] = set()
    for kind, db in result["databases"].items():
        sizes = db.get("growth", {}).get("sizes") if isinstance(db, dict) else None
        if not sizes:
            continue
        waiting = [s["waiting"] for s in sizes]
        ticks.update(waiting)
        color = COLORS.get(kind)
        ax.plot(waiting, [s["p99_ms"] for s in sizes], "o-", color=color, label=f"{kind} p99")
        ax.plot(waiting, [s["p50_ms"] for s in sizes], "s--", color=color, label=f"{kind} p50")
        for s in sizes:
            ax.annotate(
                f"{s['p99_ms']:.1f}",
                (s["waiting"], s["p99_ms"]),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontsize=8,
                color=color,
            )
    ax.set_xscale("log")
    ax.set_xticks(sorted(ticks), [f"{t:,}" for t in sorted(ticks)])
    ax.minorticks_off()
    ax.set_ylim(bottom=0)
    ax.set_xlabel("requests already waiting (same pools and activities, later days)")
    ax.set_ylabel("submission latency, ms")
    ax.set_title(
        title
        or "iwant: Engine.submit latency against waiting requests"
        + (" (quick run)" if result.get("quick") else "")
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m iwant_bench.plot", description=__doc__)
    p.add_argument("result", type=Path, help="JSON result (its last line is read)")
    p.add_argument("png", type=Path, help="where to write the plot")
    p.add_argument("--title")
    args = p.parse_args(argv)
    print(plot(read_result(args.result), args.png, args.title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
