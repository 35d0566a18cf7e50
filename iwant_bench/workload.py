"""A seeded workload that looks like real use, and bulk rows of requests already waiting.

The stream of operations (``Op``) is made up front from a seed, so every database and every
run sees the same commands at the same clock times. It follows the command grammar exactly
(``coffee 10:00 by 9:30``, ``lunch 11:30-13:00 max 4``, ``walk for 1h``, ...) and tracks each
person's open requests the way the engine counts them, so nobody exceeds the open-request
cap or asks twice for overlapping windows of one activity; what the engine still refuses is
counted, not hidden.

Shape: several rooms (pools) of skewed size, activities of skewed (Zipf-like) popularity,
windows from 15 minutes to 3 hours, about a third of the requests with an explicit deadline
(``by``), the rest with the default one, and a share of cancellations.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

DAY0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # a Tuesday; all clock texts are in UTC
DAY_START = DAY0 + timedelta(hours=8)  # the first operation of a stream
STREAM_SPAN = timedelta(hours=9)  # operations spread over 08:00-17:00

# Activity popularity: a few are common, many are rare (weights sum to 1).
POPULARITY: tuple[tuple[str, float], ...] = (
    ("coffee", 0.32),
    ("lunch", 0.22),
    ("tea", 0.10),
    ("walk", 0.08),
    ("dinner", 0.06),
    ("tennis", 0.06),
    ("chess", 0.05),
    ("beer", 0.04),
    ("running", 0.04),
    ("boardgames", 0.03),
)
MIN_WINDOW = timedelta(minutes=15)
MAX_WINDOW = timedelta(hours=3)
CAP = 5  # open requests per person (plugins.cfg max_open_requests)


@dataclass(frozen=True)
class Op:
    """One thing a person does at ``at``: submit ``text`` in ``room``, or cancel ``target``."""

    at: datetime
    person: str  # "platform:id"
    name: str
    room: str
    kind: str  # "submit" or "cancel"
    text: str = ""
    # What the engine will store (for the baseline row, and to find a request to cancel).
    activity: str = ""
    earliest: datetime | None = None
    latest: datetime | None = None
    deadline: datetime | None = None
    length_minutes: int = 0
    max_size: int = 0


@dataclass
class _Open:
    activity: str
    earliest: datetime
    latest: datetime


@dataclass
class Shape:
    """What a stream looks like; the defaults are the realistic mix."""

    rooms: Sequence[str] = tuple(f"room{i:02d}" for i in range(12))
    people: int = 600  # spread over rooms, bigger rooms first
    popularity: Sequence[tuple[str, float]] = POPULARITY
    cancel_share: float = 0.08
    deadline_share: float = 0.33  # explicit "by"
    max_share: float = 0.10  # explicit "max N"
    platform: str = "bench"
    prefix: str = "p"  # person ids: platform:prefix + number
    start: datetime = DAY_START
    span: timedelta = STREAM_SPAN
    extra: dict[str, object] = field(default_factory=dict)


def zipf_weights(n: int, s: float = 1.0) -> list[float]:
    raw = [1 / (i + 1) ** s for i in range(n)]
    total = sum(raw)
    return [w / total for w in raw]


def _grid(moment: datetime, step: int = 5) -> datetime:
    """``moment`` rounded up to the next ``step``-minute mark."""
    moment = moment.replace(second=0, microsecond=0)
    extra = (-moment.minute) % step
    return moment + timedelta(minutes=extra)


def _hhmm(moment: datetime) -> str:
    return f"{moment.hour}:{moment.minute:02d}"


def _duration(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    if not rest:
        return f"{hours}h"
    return f"{hours}h {rest}m" if minutes % 2 else f"{minutes} min"


class Workload:
    """Makes ``Op`` streams; ``lengths`` maps an activity to its length (from the settings)."""

    def __init__(
        self,
        seed: int,
        lengths: Mapping[str, timedelta],
        default_window: timedelta,
        shape: Shape | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.shape = shape or Shape()
        self.lengths = lengths
        self.default_window = default_window
        rooms = list(self.shape.rooms)
        weights = zipf_weights(len(rooms))
        self.room_weights = weights
        self.members: dict[str, list[str]] = {}
        n = 0
        for room, w in zip(rooms, weights, strict=True):
            count = max(8, round(self.shape.people * w))
            self.members[room] = [
                f"{self.shape.platform}:{self.shape.prefix}{n + i:05d}" for i in range(count)
            ]
            n += count
        self.open: dict[str, list[_Open]] = {}
        self.activities = [a for a, _ in self.shape.popularity]
        self.activity_weights = [w for _, w in self.shape.popularity]

    # -- the stream ---------------------------------------------------------------------------

    def ops(self, count: int) -> list[Op]:
        """``count`` operations spread over the stream's span, in time order."""
        shape = self.shape
        step = shape.span / max(count, 1)
        result: list[Op] = []
        now = shape.start
        for _ in range(count):
            now += step * self.rng.uniform(0.5, 1.5)
            now = now.replace(microsecond=0)
            op = None
            if self.rng.random() < shape.cancel_share:
                op = self._cancel(now)
            if op is None:
                op = self._submit(now)
            if op is not None:
                result.append(op)
        return result

    def _live(self, person: str, now: datetime) -> list[_Open]:
        mine = [o for o in self.open.get(person, []) if o.latest > now]
        self.open[person] = mine
        return mine

    def _cancel(self, now: datetime) -> Op | None:
        room = self.rng.choices(list(self.members), self.room_weights)[0]
        for _ in range(10):
            person = self.rng.choice(self.members[room])
            mine = self._live(person, now)
            if mine:
                target = self.rng.choice(mine)
                mine.remove(target)
                return Op(
                    now,
                    person,
                    person.split(":", 1)[1],
                    room,
                    "cancel",
                    activity=target.activity,
                    earliest=target.earliest,
                    latest=target.latest,
                )
        return None

    def _submit(self, now: datetime) -> Op | None:
        room = self.rng.choices(list(self.members), self.room_weights)[0]
        for _ in range(30):
            person = self.rng.choice(self.members[room])
            activity = self.rng.choices(self.activities, self.activity_weights)[0]
            made = self._wish(now, activity)
            if made is None:
                continue
            text, earliest, latest, deadline, max_size = made
            mine = self._live(person, now)
            if len(mine) >= CAP:
                continue
            if any(
                o.activity == activity and o.earliest < latest and earliest < o.latest for o in mine
            ):
                continue
            mine.append(_Open(activity, earliest, latest))
            length = self.lengths[activity]
            return Op(
                now,
                person,
                person.split(":", 1)[1],
                room,
                "submit",
                text,
                activity,
                earliest,
                latest,
                deadline,
                int(length.total_seconds() // 60),
                max_size,
            )
        return None

    def _wish(
        self, now: datetime, activity: str
    ) -> tuple[str, datetime, datetime, datetime, int] | None:
        """(text, earliest, latest, deadline, max size or 0) as the engine will read it."""
        rng, length = self.rng, self.lengths[activity]
        minute = now.replace(second=0, microsecond=0)
        if minute != now:  # the grammar reads "now" as the next whole minute
            minute += timedelta(minutes=1)
        form = rng.choices(
            ("now", "for", "in", "at", "range", "at-for", "tomorrow"),
            (0.12, 0.12, 0.06, 0.24, 0.28, 0.10, 0.08),
        )[0]
        span = self._span(length)
        if form == "now" and length > self.default_window:
            form = "for"
        if form == "now":
            text, earliest, latest = activity, minute, minute + self.default_window
        elif form == "for":
            text, earliest, latest = (
                f"{activity} for {_duration(span)}",
                minute,
                minute + timedelta(minutes=span),
            )
        elif form == "in":
            wait = rng.randrange(10, 125, 5)
            earliest = minute + timedelta(minutes=wait)
            text, latest = f"{activity} in {wait} min", earliest + length
        else:
            if form == "tomorrow":
                start = (minute + timedelta(days=1)).replace(
                    hour=rng.randrange(8, 19), minute=rng.randrange(0, 60, 15)
                )
            else:
                first = _grid(minute + timedelta(minutes=10))
                last = min(minute + timedelta(hours=6), minute.replace(hour=20, minute=0))
                if last <= first:
                    return None
                slots = int((last - first).total_seconds() // 300)
                start = first + timedelta(minutes=5 * rng.randrange(slots + 1))
            earliest = start
            if form == "at":
                latest = start + length
                text = f"{activity} {_hhmm(start)}"
            elif form == "tomorrow":
                latest = start + timedelta(minutes=span)
                text = f"{activity} tomorrow {_hhmm(start)} for {_duration(span)}"
            else:
                latest = start + timedelta(minutes=span)
                if form == "range" and latest > start.replace(hour=23, minute=55):
                    return None
                if form == "range":
                    text = f"{activity} {_hhmm(start)}-{_hhmm(latest)}"
                else:
                    text = f"{activity} {_hhmm(start)} for {_duration(span)}"
        if latest - earliest < length:
            return None
        last_start = latest - length
        deadline = last_start
        if rng.random() < self.shape.deadline_share:
            lo = _grid(max(minute + timedelta(minutes=5), earliest.replace(hour=7, minute=0)))
            if last_start - lo >= timedelta(minutes=10) and lo.date() == earliest.date():
                slots = int((last_start - lo).total_seconds() // 300)
                chosen = lo + timedelta(minutes=5 * rng.randrange(slots + 1))
                if chosen.date() == earliest.date():
                    deadline = chosen
                    text += f" by {_hhmm(deadline)}"
        max_size = 0
        if rng.random() < self.shape.max_share:
            max_size = rng.randrange(3, 7)
            text += f" max {max_size}"
        return text, earliest, latest, deadline, max_size

    def _span(self, length: timedelta) -> int:
        """A window length in minutes, 15 min to 3 h, shorter ones more common."""
        low = max(int(length.total_seconds() // 60), 15)
        choices = [m for m in (15, 20, 30, 45, 60, 75, 90, 120, 150, 180) if m >= low]
        weights = [1 / (i + 1) for i in range(len(choices))]
        return self.rng.choices(choices, weights)[0]


# -- rows of requests already waiting, for bulk loading ------------------------------------------


@dataclass(frozen=True)
class WaitingRow:
    person: str
    room: str
    activity: str
    earliest: datetime
    latest: datetime
    deadline: datetime
    length_minutes: int
    max_size: int


def waiting_rows(
    count: int,
    seed: int,
    rooms: Sequence[str],
    lengths: Mapping[str, timedelta],
    max_sizes: Mapping[str, int],
    days: tuple[int, int],
    person_prefix: str,
    first: int = 0,
    popularity: Sequence[tuple[str, float]] = POPULARITY,
) -> Iterator[WaitingRow]:
    """``count`` waiting requests on days ``DAY0 + days[0] .. days[1]`` (inclusive), five per
    person (the cap), in ``rooms`` (Zipf-weighted) with the realistic activity mix.

    ``first`` continues the numbering of an earlier call, so topping up a load gives the same
    rows as loading everything at once.
    """
    room_weights = zipf_weights(len(rooms))
    activities = [a for a, _ in popularity]
    weights = [w for _, w in popularity]
    for i in range(first, first + count):
        rng = random.Random(f"{seed}:{i}")
        activity = rng.choices(activities, weights)[0]
        length = lengths[activity]
        minutes = int(length.total_seconds() // 60)
        span = rng.choice([m for m in (15, 30, 45, 60, 90, 120, 180) if m >= max(minutes, 15)])
        day = DAY0 + timedelta(days=rng.randint(*days))
        earliest = day.replace(hour=rng.randrange(7, 20), minute=rng.randrange(0, 60, 5))
        latest = earliest + timedelta(minutes=span)
        last_start = latest - length
        deadline = last_start
        if rng.random() < 0.33:
            deadline = earliest - timedelta(minutes=rng.randrange(0, 120, 5))
        yield WaitingRow(
            f"{person_prefix}{i // CAP:06d}",
            rng.choices(rooms, room_weights)[0],
            activity,
            earliest,
            latest,
            deadline,
            minutes,
            max_sizes[activity],
        )
