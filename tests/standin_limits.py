"""Rate limits as the platforms apply them, shared by the Slack and Telegram stand-ins: a
GCRA bucket per scope and the busiest window of accepted calls. Kept apart from the engine's
own pacing (``iwant_engine/pacing.py``) on purpose: the stand-ins judge that code."""

from __future__ import annotations

from collections.abc import Hashable


class Gcra:
    """The generic cell rate algorithm: one call per ``interval`` seconds on average, up to
    ``burst`` at once, per key. Not thread-safe (the stand-in's lock guards it)."""

    def __init__(self, interval: float, burst: int) -> None:
        self.interval = interval
        self.tolerance = (burst - 1) * interval
        self._tat: dict[Hashable, float] = {}  # key -> theoretical arrival time

    def wait(self, key: Hashable, now: float) -> float:
        """Seconds until a call for ``key`` is allowed (0: allowed now)."""
        tat = max(self._tat.get(key, now), now)
        return max(0.0, tat - now - self.tolerance)

    def take(self, key: Hashable, now: float) -> None:
        """Use one call's budget (after :meth:`wait` said 0)."""
        self._tat[key] = max(self._tat.get(key, now), now) + self.interval


def peak(times: list[float], window: float) -> int:
    """The most of ``times`` (ascending) within any closed interval ``window`` long."""
    best, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] > window:
            first += 1
        best = max(best, last - first + 1)
    return best
