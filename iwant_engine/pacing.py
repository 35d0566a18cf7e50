"""Delivery at the platforms' pace, shared by every process of one bot (issue 15).

A platform limits how fast a bot may send: Slack about one message a second per channel and a
few hundred a minute per workspace, Telegram about 30 a second per bot, one a second per
chat and 20 a minute per group. Those limits hold per bot token, whatever the number of
processes, so the budget of each *scope* (the bot, one chat, one method) is kept where every
process of the bot sees it: in the storage (``Storage.pace``; a database row per scope on
PostgreSQL, memory in a one-process storage). Which budgets a platform imposes, and which a
notification spends, its adapter says; the engine only keeps to the scopes it is given.

Each scope is a GCRA (generic cell rate algorithm, the token bucket written as one number per
scope): ``at`` is the theoretical arrival time of the next send; a send at ``t`` fits when
``at - tolerance <= t``, and moves ``at`` to ``max(at, t) + interval``. A send that touches
several scopes (a direct message: the bot and the chat) takes the first moment that fits all
of them and reserves it in all of them at once, so two processes never take the same slot.

Times here are wall-clock seconds since the epoch (``time.time``), the same in every process
on a machine, and unrelated to the engine's domain clock: a platform's limit is physical.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

#: A budget untouched this long has refilled: its number is dropped at retention time.
KEEP_SECONDS = 3600.0
#: How far ahead ``Pacer.reserve`` reserves a slot unless told otherwise.
MAX_WAIT = 2.0
#: The longest a delivery waits for a slot while holding a claimed row (``Engine.deliver``):
#: about the bot's own pace with two processes reserving. A later slot (a busy chat) sets
#: the row aside while rows for free chats go, then gives it back until its slot; waiting
#: for it would hold up every other chat (a lunch rush sent at 60% of Telegram's limit so).
PROMPT = 0.25

_LIMIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|min|minute)\s*(?:burst\s+(\d+))?\s*$")


@dataclass(frozen=True)
class Limit:
    """At most ``rate`` sends a second on average, ``burst`` of them back to back."""

    rate: float
    burst: int = 1

    def __post_init__(self) -> None:
        if not self.rate > 0 or self.burst < 1:
            raise ValueError("a limit needs a rate above 0 and a burst of at least 1")

    @property
    def interval(self) -> float:
        return 1.0 / self.rate

    @property
    def tolerance(self) -> float:
        return (self.burst - 1) * self.interval

    @classmethod
    def parse(cls, text: str) -> Limit:
        """``"1/s"``, ``"20/min"``, ``"600/min burst 20"``."""
        found = _LIMIT.match(text.lower())
        if found is None:
            raise ValueError("not a limit; write it like 1/s, 20/min or 30/s burst 5")
        count, unit, burst = found.groups()
        per = 1.0 if unit.startswith("s") else 60.0
        return cls(float(count) / per, int(burst or 1))

    def __str__(self) -> str:
        per_minute = self.rate * 60
        text = f"{self.rate:g}/s" if self.rate >= 1 else f"{per_minute:g}/min"
        return text if self.burst == 1 else f"{text} burst {self.burst}"


@dataclass(frozen=True)
class Scope:
    """One budget: ``key`` names it for every process (``slack:B1:chat:U2``), ``limit`` sizes it;
    ``sends``: how many calls one row makes in it, back to back (a big Slack group's
    announcement posts twice in its channel)."""

    key: str
    limit: Limit
    sends: int = 1


Step = Callable[[dict[str, float]], dict[str, float]]


class PaceBook:
    """What ``Storage.pace`` does, for a storage of one process: the times in a dict."""

    def __init__(self) -> None:
        self._at: dict[str, float] = {}
        self._lock = threading.Lock()

    def pace(self, keys: Sequence[str], step: Step) -> None:
        with self._lock:
            self._at.update(step({k: self._at[k] for k in keys if k in self._at}))

    def forget_paces(self, before: float) -> int:
        with self._lock:
            old = [k for k, v in self._at.items() if v < before]
            for key in old:
                del self._at[key]
            return len(old)


def earliest(scopes: Sequence[Scope], at: Mapping[str, float], now: float) -> float:
    """The first moment from ``now`` on at which a send fits every scope (all its ``sends``
    back to back)."""
    return max(
        [now, *(at.get(s.key, 0.0) - s.limit.tolerance + (s.sends - 1) * s.limit.interval
                for s in scopes)]
    )  # fmt: skip


class Pacer:
    """Reserves send slots in the shared scopes of a storage and waits for them."""

    def __init__(
        self,
        pace: Callable[[Sequence[str], Step], None],
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._pace = pace
        self.clock = clock
        self.sleep = sleep

    def reserve(self, scopes: Sequence[Scope], within: float = MAX_WAIT) -> tuple[float, bool]:
        """Reserve the first slot that fits every scope, if it comes within ``within``
        seconds: (its time, True). Otherwise nothing is reserved: (the time it would be,
        False)."""
        if not scopes:
            return self.clock(), True
        found: list[tuple[float, bool]] = []

        def step(at: dict[str, float]) -> dict[str, float]:
            now = self.clock()  # read holding the scopes: a wait for them is not a send
            slot = earliest(scopes, at, now)
            if slot - now > within:
                found.append((slot, False))
                return {}
            found.append((slot, True))
            return {
                s.key: max(at.get(s.key, 0.0), slot) + s.sends * s.limit.interval for s in scopes
            }

        self._pace(sorted({s.key for s in scopes}), step)
        return found[-1]

    def wait_for(self, slot: float) -> None:
        """Sleep until ``slot`` (wall-clock seconds)."""
        delay = slot - self.clock()
        if delay > 0:
            self.sleep(delay)

    def pause(self, scopes: Sequence[Scope], seconds: float) -> None:
        """Nothing more in these scopes for ``seconds`` (a platform's 429 ``retry_after``),
        in every process."""
        until = self.clock() + max(seconds, 0.0)

        def step(at: dict[str, float]) -> dict[str, float]:
            return {s.key: max(at.get(s.key, 0.0), until + s.limit.tolerance) for s in scopes}

        if scopes:
            self._pace(sorted({s.key for s in scopes}), step)


def minimum_seconds(sends: Mapping[str, int], limits: Mapping[str, Limit]) -> float:
    """The least time in which ``sends[key]`` sends can pass through scope ``key`` of
    ``limits[key]``, for every scope at once: the physical limit of a delivery job."""
    return max([0.0, *(max(n - limits[k].burst, 0) * limits[k].interval for k, n in sends.items())])
