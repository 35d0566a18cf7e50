"""Domain values shared by the parser, the engine, strategies and storages.

All datetimes are aware and in UTC; all meeting times are whole minutes.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta


class Status(enum.StrEnum):
    PENDING = "PENDING"  # one request, waiting
    MATCHED = "MATCHED"  # two or more requests, meeting time fixed
    INVALID = "INVALID"  # made redundant when its request joined another result
    EXPIRED = "EXPIRED"  # deadline passed with nobody
    CANCELLED = "CANCELLED"
    DONE = "DONE"  # meeting time is over


LIVE = (Status.PENDING, Status.MATCHED)


@dataclass(frozen=True)
class Wish:
    """What a person asked for, parsed and validated, before it is stored."""

    person: str
    pool: str
    activity: str
    earliest: datetime
    latest: datetime
    deadline: datetime
    length: timedelta
    max_size: int
    min_size: int = 2

    def fits(self, start: datetime) -> bool:
        """Whether a meeting starting at ``start`` lies inside this window."""
        return self.earliest <= start and start + self.length <= self.latest


@dataclass(frozen=True)
class Candidate:
    """A stored request that is waiting on its own (status PENDING)."""

    request_id: int
    person: str
    earliest: datetime
    latest: datetime
    deadline: datetime
    max_size: int
    created_at: datetime
    min_size: int = 2


@dataclass(frozen=True)
class OpenGroup:
    """A formed group (status MATCHED) whose meeting has not started."""

    result_id: int
    start: datetime
    end: datetime
    max_size: int
    members: tuple[Candidate, ...]


@dataclass(frozen=True)
class Join:
    """Decision: the new request joins the open group ``result_id``."""

    result_id: int


@dataclass(frozen=True)
class Form:
    """Decision: the new request and the waiting ``request_ids`` meet at ``start``."""

    request_ids: tuple[int, ...]
    start: datetime


@dataclass(frozen=True)
class Wait:
    """Decision: nobody fits yet; the new request waits."""


Decision = Join | Form | Wait


@dataclass(frozen=True)
class MatchContext:
    """Everything a strategy may look at besides the request and its candidates.

    ``last_met`` maps a candidate's (or open group member's) person id to the start of the
    last meeting the new request's person had with them; people never met are absent.
    """

    now: datetime
    length: timedelta
    settings: Mapping[str, str] = field(default_factory=dict)
    last_met: Mapping[str, datetime] = field(default_factory=dict)
    apart: frozenset[frozenset[str]] = frozenset()

    def may_meet(self, a: str, b: str) -> bool:
        return frozenset((a, b)) not in self.apart
