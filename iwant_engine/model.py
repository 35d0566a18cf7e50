"""Domain values shared by the parser, the engine, strategies and storages.

All datetimes are aware and in UTC; all meeting times are whole minutes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any


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


class Outcome(enum.StrEnum):
    """Whether two people of a past group met, from what its members answered to "Did you
    meet?" (``iwant_engine.outcomes``)."""

    MET = "met"  # someone answered that they met, and nobody that these two did not
    NOT_MET = "not met"  # one of the two said nobody met, or someone said one did not come
    UNKNOWN = "unknown"  # nobody answered


@dataclass(frozen=True)
class PastMeeting:
    """A formed group two people were both in: its meeting's start and what came of it."""

    start: datetime
    outcome: Outcome


@dataclass(frozen=True)
class MatchContext:
    """Everything a strategy may look at besides the request and its candidates.

    ``history`` maps a candidate's (or open group member's) person id to the formed groups
    the new request's person shared with them, newest first, each with its ``Outcome``;
    people never grouped with them are absent. ``last_met`` maps the same ids to the start of
    the latest of those groups that did not end ``NOT_MET`` (a no-show is not a meeting).
    """

    now: datetime
    length: timedelta
    settings: Mapping[str, str] = field(default_factory=dict)
    last_met: Mapping[str, datetime] = field(default_factory=dict)
    apart: frozenset[frozenset[str]] = frozenset()
    history: Mapping[str, tuple[PastMeeting, ...]] = field(default_factory=dict)

    def may_meet(self, a: str, b: str) -> bool:
        return frozenset((a, b)) not in self.apart


@dataclass(frozen=True)
class Nearby:
    """What a suggestion rule sees about a waiting wish (``iwant_suggestions``): other
    people's waiting wishes and formed groups of the same pool and activity whose window or
    meeting lies within ``margin`` of the wish's window, people kept apart by an ignore (either
    way) already left out, a group with such a member left out whole. ``groups`` includes
    full ones (``len(members) == max_size``); ``wishes`` are by window start."""

    wishes: tuple[Candidate, ...]
    groups: tuple[OpenGroup, ...]
    margin: timedelta


@dataclass(frozen=True)
class Suggestion:
    """A near miss: a meeting from ``start`` to ``end`` that the wish's person would get by
    asking again with another time (or ``max``). ``people``: how many they would meet (a
    count, never who); ``group``: the open group it joins (None: waiting wishes it forms a
    group with); ``max_size``: the ``max`` the new wish needs (None: the person's own);
    ``distance``: how far the meeting lies outside the wish's window (zero for a group full
    only for the wish's ``max``); the nearest is offered first."""

    start: datetime
    end: datetime
    people: int
    distance: timedelta
    group: int | None = None
    max_size: int | None = None


# -- the engine's API types ----------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """Who is talking: ``id`` is ``platform:id``; ``timezone`` is the platform's, if known."""

    id: str
    name: str
    timezone: str | None = None

    @property
    def platform(self) -> str:
        return self.id.split(":", 1)[0]


@dataclass(frozen=True)
class PersonInfo:
    """What is stored about a person: their name and the two zones they may have."""

    id: str
    name: str
    timezone: str | None = None  # set with ``!iwant tz``
    platform_timezone: str | None = None  # the platform's (a Slack profile), when known
    canonical: str | None = None  # a linked account: the person id it belongs to
    feedback_off: bool = False  # "!iwant feedback off": never asked "Did you meet?"


@dataclass(frozen=True)
class OpenRequest:
    """One of a person's open requests, as ``!iwant list`` shows it."""

    request_id: int
    activity: str
    status: Status
    earliest: datetime
    latest: datetime
    deadline: datetime
    length_minutes: int
    start: datetime | None  # the meeting, when matched
    end: datetime | None
    others: tuple[str, ...]  # display names of the other members
    pool: str = ""  # the pool it was made in ("" from a storage that does not say)


#: What a superseded outbox row records as its error: never sent, a newer row said it better.
SUPERSEDED = "superseded by a newer note"


@dataclass(frozen=True)
class Invite:
    """A calendar invite for one group, as a member's note carries it (issue 27): the
    meeting, who is in it (display names) and whether it is a cancellation. ``sequence``
    grows with each change of the group (RFC 5545 SEQUENCE); the group's id makes the UID.
    Rendered as an ``.ics`` file, or a link, where it is sent."""

    group: int
    sequence: int
    start: datetime  # UTC
    end: datetime  # UTC
    activity: str
    attendees: tuple[str, ...]
    cancelled: bool = False

    def to_json(self) -> dict[str, Any]:
        """As stored in the outbox's ``invites`` column."""
        return {
            "group": self.group,
            "sequence": self.sequence,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "activity": self.activity,
            "attendees": list(self.attendees),
            "cancelled": self.cancelled,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Invite:
        return cls(
            int(data["group"]),
            int(data["sequence"]),
            datetime.fromisoformat(data["start"]),
            datetime.fromisoformat(data["end"]),
            str(data["activity"]),
            tuple(str(a) for a in data["attendees"]),
            bool(data["cancelled"]),
        )


def invites_to_json(invites: tuple[Invite, ...]) -> list[dict[str, Any]] | None:
    """The outbox column's value: None when a note carries no invite."""
    return [i.to_json() for i in invites] or None


def renamed_invites(
    invites: tuple[Invite, ...], rename: Callable[[str], str]
) -> tuple[Invite, ...]:
    """``invites`` with each attendee's name renamed (a forgotten person's, ``forget``)."""
    return tuple(replace(i, attendees=tuple(rename(a) for a in i.attendees)) for i in invites)


def invites_from_json(value: Any) -> tuple[Invite, ...]:
    """The outbox column read back (None, or a list of ``Invite.to_json``)."""
    return tuple(Invite.from_json(v) for v in value) if value else ()


@dataclass(frozen=True)
class OutboxItem:
    """A notification claimed for delivery."""

    id: int
    recipient: str
    body: str
    buttons: list[dict[str, str]]
    origin: str | None
    attempts: int
    group_members: list[str] | None = None  # a group conversation for these people
    chart: dict[str, Any] | None = None  # ``NewOutbox.chart``
    invites: tuple[Invite, ...] = ()  # calendar invites that go with it (issue 27)


@dataclass(frozen=True)
class DeliveryReport:
    delivered: int = 0
    retried: int = 0
    undeliverable: list[OutboxItem] = field(default_factory=list)
    deferred: int = 0  # given back unsent until their chat's pace allows (``Engine.deliver``)


@dataclass(frozen=True)
class Beat:
    """One bot process as it last said it was alive (``Storage.beat``): ``process`` names it
    (``host:pid``), ``seen_at`` is its latest heartbeat; ``last_429_at`` and
    ``last_429_seconds``: the latest rate limit its platform answered, and the pause it
    asked for."""

    process: str
    platform: str
    version: str
    started_at: datetime
    seen_at: datetime
    last_429_at: datetime | None = None
    last_429_seconds: float | None = None


@dataclass(frozen=True)
class OutboxDepth:
    """A platform's undelivered notifications (not given up): how many, and when the oldest
    was written."""

    platform: str
    depth: int
    oldest: datetime


# -- what a storage keeps and hands back (see ``storage/protocol.py``) ----------------------------


@dataclass(frozen=True)
class StoredRequest:
    """A request row: the wish as stored, and the result it points to. ``result_id`` is None
    while it waits alone, and when it ended so: a result is stored for a group only (and
    for a member who left one, ``Left``); see ``own_result``."""

    id: int
    person: str
    pool: str
    origin: str | None
    activity: str
    earliest: datetime
    latest: datetime
    deadline: datetime
    length_minutes: int
    max_size: int
    min_size: int
    created_at: datetime
    result_id: int | None
    status: Status
    event_key: str | None = None  # "platform:event id" of the message that made it
    account: str | None = None  # the linked account that made it, when not ``person``

    @property
    def recipient(self) -> str:
        """Who hears about it: the account that made it."""
        return self.account or self.person

    @property
    def length(self) -> timedelta:
        return timedelta(minutes=self.length_minutes)

    def as_wish(self) -> Wish:
        return Wish(
            self.person,
            self.pool,
            self.activity,
            self.earliest,
            self.latest,
            self.deadline,
            self.length,
            self.max_size,
            self.min_size,
        )

    def own_result(self) -> StoredResult:
        """The result of a request that points to none (``result_id`` None), as if stored:
        id ``UNSTORED``, its own status, size 1, due at its deadline while it waits."""
        due = self.deadline if self.status == Status.PENDING else None
        return StoredResult(
            UNSTORED, self.pool, self.activity, self.status, None, None, self.max_size, 1, due
        )

    def as_candidate(self) -> Candidate:
        return Candidate(
            self.id,
            self.person,
            self.earliest,
            self.latest,
            self.deadline,
            self.max_size,
            self.created_at,
            self.min_size,
        )


#: The id of a result that is not stored (``StoredRequest.own_result``); stored ids are positive.
UNSTORED = 0


@dataclass(frozen=True)
class StoredResult:
    """A result row: one waiting request's own, or a group's (``start``/``end`` once MATCHED)."""

    id: int
    pool: str
    activity: str
    status: Status
    start: datetime | None
    end: datetime | None
    max_size: int
    size: int
    due_at: datetime | None  # deadline while PENDING, meeting end while MATCHED


@dataclass(frozen=True)
class StoredGroup:
    """A result with the requests that point to it, ordered by request id."""

    result: StoredResult
    members: tuple[StoredRequest, ...]


@dataclass(frozen=True)
class Neighbourhood:
    """What matching a new request needs, read in one go after taking the locks.

    ``mine``: the person's live requests (any pool) whose window has not ended;
    ``candidates``: other people's waiting requests of the pool and activity whose window
    could hold a meeting inside the new window (ending at least ``length`` after its start,
    starting at most ``length`` before its end), deadline not passed, by window end, at most
    ``limit`` (a storage may leave out those ending more than a day after the new window's
    last start: no window is longer than a day); ``groups``: formed groups of the pool and
    activity whose meeting starts inside the new window, not before now, with room, by
    start, at most ``limit``; ``people``: what is
    stored about the person and everyone in ``candidates`` and ``groups``; ``apart``: the
    ignore pairs among all of them (either direction).
    """

    me: PersonInfo | None
    mine: tuple[StoredRequest, ...]
    candidates: tuple[StoredRequest, ...]
    groups: tuple[StoredGroup, ...]
    people: Mapping[str, PersonInfo]
    apart: frozenset[frozenset[str]]


@dataclass(frozen=True)
class NearbyRows:
    """What ``UnitOfWork.nearby`` reads for a waiting wish's suggestions: ``waiting``, other
    people's waiting requests of the pool and activity whose window overlaps the wish's
    window widened by the margin, deadline not passed, by window start; ``groups``: formed
    groups of the pool and activity (full ones too) whose meeting starts in that range and not
    before now, with their members, by start; ``apart``: ignore pairs (either direction)
    between the wish's person and anyone in them."""

    waiting: tuple[StoredRequest, ...]
    groups: tuple[StoredGroup, ...]
    apart: frozenset[frozenset[str]]


@dataclass(frozen=True)
class NewOutbox:
    """A notification to store; it is delivered after the unit of work commits."""

    recipient: str
    body: str
    buttons: list[dict[str, str]] = field(default_factory=list)
    origin: str | None = None
    group_members: list[str] | None = None
    # Notes of one topic to one recipient say the same thing, newest best ("who is in group
    # 12 now"): when several wait, only the newest is sent (``Storage.claim_outbox``).
    topic: str | None = None
    # A chart's data (a weekly digest's), drawn as an image where the platform takes images.
    chart: dict[str, Any] | None = None
    # Calendar invites of the groups the note is about (issue 27); who gets them is
    # ``invites.InvitePolicy``'s to decide at delivery.
    invites: tuple[Invite, ...] = ()

    @property
    def platform(self) -> str:
        return self.recipient.split(":", 1)[0]


@dataclass(frozen=True)
class ResultChange:
    """Every field of a result: of result ``id``, or of a new result when ``id`` is None."""

    id: int | None
    pool: str
    activity: str
    status: Status
    start: datetime | None
    end: datetime | None
    max_size: int
    size: int
    due_at: datetime | None


@dataclass(frozen=True)
class Left:
    """What a member who left a formed group left, kept on their own (CANCELLED) result for
    their data (``!iwant export``): the meeting, and the requests of the others then."""

    start: datetime
    end: datetime
    requests: tuple[int, ...]


@dataclass(frozen=True)
class NewRequest:
    """A request to insert, pointing to an existing result (an id), to a new one, or (None,
    a request that waits) to none.

    ``event_key`` (``platform:event id``) is unique among stored requests; ``replied``
    False means its answer is still to be handed to the platform (``Changes.replied``)."""

    wish: Wish
    origin: str | None
    created_at: datetime
    status: Status
    result: int | ResultChange | None
    event_key: str | None = None
    replied: bool = True
    account: str | None = None  # the linked account that made it, when not ``wish.person``


@dataclass(frozen=True)
class Move:
    """Point request ``request_id`` to ``result`` (an id, a new result, or None: waiting
    alone, or ended so) with ``status``.
    ``left``: a member leaving a formed group for a new result of their own, the group left
    (kept with that result, for the person's data)."""

    request_id: int
    result: int | ResultChange | None
    status: Status
    left: Left | None = None


@dataclass
class Changes:
    """The writes of one domain step, applied together by ``UnitOfWork.apply``: ``results``
    (updates of existing results), ``request`` (the new one), ``moves``, ``retired`` (results
    set to a final status, their ``due_at`` cleared), ``outbox``, ``replied`` (requests whose
    answer has now been handed over or queued). No row appears twice in one ``Changes``, so
    the order does not matter (PostgreSQL applies them as one statement)."""

    results: list[ResultChange] = field(default_factory=list)
    request: NewRequest | None = None
    moves: list[Move] = field(default_factory=list)
    retired: list[tuple[int, Status]] = field(default_factory=list)
    outbox: list[NewOutbox] = field(default_factory=list)
    replied: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.results
            or self.request
            or self.moves
            or self.retired
            or self.outbox
            or self.replied
        )


@dataclass(frozen=True)
class Standing:
    """A standing wish (``lunch 12:00 every weekday``): the wish ``text`` made anew for every
    day in ``days`` (0 = Monday), in its person's zone.

    ``next_day`` is the next day whose wish is still to be made, at ``create_at`` (None once
    ended). ``paused_until``: days before it are left out; ``skips``: single days left out.
    ``id`` is 0 for one not stored yet."""

    id: int
    person: str
    pool: str
    origin: str | None
    activity: str
    text: str
    days: frozenset[int]
    created_at: datetime
    next_day: date
    create_at: datetime | None
    paused_until: date | None = None
    skips: frozenset[date] = frozenset()
    ended_at: datetime | None = None


@dataclass(frozen=True)
class PersonData:
    """Everything a storage keeps about one person (``Storage.person_data``): for
    ``!iwant export``. ``groups`` maps a result id to the other members' display names (their
    id without the platform when no name is stored); for a result of leaving a formed group,
    the others in it then (those still stored), and ``left`` its meeting (start, end).
    ``undelivered``: outbox rows addressed to the person that have not gone out."""

    person: PersonInfo | None
    requests: tuple[tuple[StoredRequest, StoredResult], ...]
    groups: Mapping[int, tuple[str, ...]]
    ignores: tuple[str, ...]
    standing: tuple[Standing, ...]
    undelivered: tuple[OutboxItem, ...]
    left: Mapping[int, tuple[datetime, datetime]] = field(default_factory=dict)
    questions: tuple[Question, ...] = ()  # "Did you meet?" asked of the person, answered or not
    calendar: LinkedCalendar | None = None  # the person's linked calendar (address sealed)


#: A busy interval of a linked calendar, ``[start, end)``, aware UTC datetimes.
Span = tuple[datetime, datetime]


@dataclass(frozen=True)
class LinkedCalendar:
    """A person's linked calendar (``!iwant calendar ADDRESS``), one per person.

    ``sealed``: the address encrypted by the engine (a storage never sees it in the clear);
    ``shown``: the address masked for the person's eyes (``webcal://host/•••``).
    ``claimed_until``: a background refresh holds it until then (one process reads a feed)."""

    person: str
    provider: str
    sealed: str
    shown: str
    linked_at: datetime
    next_refresh_at: datetime
    last_ok_at: datetime | None = None
    failing_since: datetime | None = None
    told_failing_at: datetime | None = None
    claimed_until: datetime | None = None


class Answer(enum.StrEnum):
    """An answer to "Did you meet?"."""

    ALL = "all"  # we all met
    SOME = "some"  # some of us met: ``Question.absent`` did not come
    NONE = "none"  # we didn't meet


@dataclass(frozen=True)
class Question:
    """ "Did you meet?" asked of ``person`` about the group ``result_id`` (once per person
    and group); ``answer`` None while unanswered. ``absent``: whom they said did not come."""

    result_id: int
    person: str
    asked_at: datetime
    expires_at: datetime
    answer: Answer | None = None
    absent: tuple[str, ...] = ()
    answered_at: datetime | None = None


@dataclass(frozen=True)
class SharedGroup:
    """A past formed group (MATCHED or DONE) that a person shared with ``other``
    (``UnitOfWork.shared_groups``), with every answer given about it."""

    other: str
    result_id: int
    start: datetime
    answers: tuple[Question, ...]


@dataclass(frozen=True)
class Tally:
    """A count and how many different people it rests on."""

    count: int
    people: int


@dataclass(frozen=True)
class DayTally:
    """One local day of a period: wishes for a time that day, those that met someone, and
    the people who made them."""

    wishes: int
    met: int
    people: int


@dataclass(frozen=True)
class StatsRows:
    """What a storage counts for ``Storage.stats``: plain numbers, never who. A wish "met"
    when its request is MATCHED or DONE; a group is the result of met requests; the period
    holds the wishes whose window starts in it (``earliest``)."""

    wishes: Tally  # people: everyone who wished
    met: Tally  # wishes that met someone; people: those in groups
    groups: int  # groups formed (they rest on ``met.people``)
    answered: Tally  # groups someone answered "Did you meet?" about; people: who answered
    reported_met: int  # of those, groups where an answer said all or some of them met
    # Per group, how long its first wish waited for a second (the group's two earliest
    # wishes); ``waits`` groups, their lower median in whole seconds (None without any).
    waits: int
    median_wait_seconds: int | None
    suggestions: Tally  # near misses taken: wishes made "instead of #N" that met someone
    first_pairs: Tally  # pairs in a group together for the first time; people: in them
    hours: Mapping[int, Tally]  # wishes by the local hour (0-23) their window starts
    days: Mapping[date, DayTally]  # by the local day their window starts
    activities: Mapping[str, Tally]  # wishes by activity


@dataclass(frozen=True)
class DigestRoom:
    """A room that gets the weekly digest of its pool, next at ``next_at``."""

    room: str  # "platform:id"
    pool: str
    next_at: datetime
    last_sent_at: datetime | None = None
