"""The weekly digest's chart as a PNG, for platforms that take images (matplotlib, Agg).

It reads the plain data the engine put in the outbox (``iwant_engine.stats.chart``): per
day a label, the wishes (None: fewer than 3 people, not shown) and the share of them that
met someone. Bars of wishes per day, and the matched share as a line on a second axis.
"""

from __future__ import annotations

import io
from typing import Any


def digest_png(chart: dict[str, Any]) -> bytes:
    """The chart of ``chart`` as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")  # no display; safe from any thread with its own figure
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    days = chart.get("days") or []
    labels = [str(d.get("label", "")).replace(" ", "\n", 1) for d in days]  # "Mon\n7 Dec"
    wishes = [d.get("wishes") for d in days]
    shares = [d.get("met_share") for d in days]
    positions = list(range(len(days)))

    figure = Figure(figsize=(7, 3.6), dpi=100)
    bars = figure.add_subplot()
    bars.bar(positions, [w or 0 for w in wishes], color="#4c72b0", label="wishes")
    hidden = str(chart.get("hidden", "fewer than 3"))
    for x, w in zip(positions, wishes, strict=True):
        if w is None:
            bars.annotate(hidden, (x, 0), ha="center", va="bottom", fontsize=7, rotation=90)
    bars.set_xticks(positions, labels, fontsize=8)
    bars.set_ylabel("wishes")
    bars.yaxis.set_major_locator(MaxNLocator(integer=True))
    bars.set_title(str(chart.get("title", "")), fontsize=10)
    share = bars.twinx()
    points = [(x, 100 * s) for x, s in zip(positions, shares, strict=True) if s is not None]
    if points:
        share.plot(*zip(*points, strict=True), color="#dd8452", marker="o", label="met someone")
    # Headroom above the bars and the line for the legend.
    bars.set_ylim(0, max([w or 0 for w in wishes] + [1]) * 1.3)
    share.set_ylim(0, 130)
    share.set_yticks([0, 20, 40, 60, 80, 100])
    share.set_ylabel("% that met someone")
    handles = bars.get_legend_handles_labels()
    more = share.get_legend_handles_labels()
    bars.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left", fontsize=8, ncols=2)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
