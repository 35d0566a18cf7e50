"""Who meets whom: what happens to a request, from submission to its end.

This module owns the domain. Each function runs inside one unit of work of the storage
(``storage/protocol.py``): it reads through the unit of work, asks the strategy for a
decision, checks that decision (``invariants.refusal``), and writes the outcome as one
``Changes`` value: status changes, the new request, and the notifications (``messages.py``)
that go out once the unit of work commits.

- ``submit``: a new request joins an open group, forms a group with waiting requests, or
  waits with a result of its own (``PENDING``) until its deadline.
- ``cancel``: a waiting request ends; a member leaving a group tells the others, and a
  group left too small is dissolved: each remaining member waits again and is matched
  afresh where possible.
- ``sweep_step``: at a deadline, a waiting request ends ("nobody joined"); after a
  meeting, its group is DONE.

A formed group's meeting time never moves, it never grows past the smallest ``max`` of its
members, and nobody is grouped with someone they ignore or who ignores them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from . import messages as msg
from . import outcomes
from .errors import DuplicateEvent, UserError
from .invariants import refusal
from .model import (
    LIVE,
    UNSTORED,
    Candidate,
    Changes,
    Decision,
    Form,
    Invite,
    Join,
    Left,
    MatchContext,
    Move,
    Nearby,
    NearbyRows,
    NewOutbox,
    NewRequest,
    OpenGroup,
    OpenRequest,
    PersonInfo,
    ResultChange,
    Status,
    StoredGroup,
    StoredRequest,
    StoredResult,
    Suggestion,
    Wish,
)
from .storage.protocol import UnitOfWork

log = logging.getLogger(__name__)

#: The event key of a day's wish made by a standing wish starts so (``standing.py``).
STANDING_KEY = "standing:"
#: At most this many candidates and open groups are offered to a strategy.
CANDIDATE_LIMIT = 200
#: Near misses: how far outside a window, how many rows read, how many offered.
NEAR_MARGIN = timedelta(minutes=60)
ZERO = timedelta(0)
NEARBY_LIMIT = 50
SUGGESTIONS = 2
NAME_MAX = 100
#: An invite's SEQUENCE is the whole seconds since this moment at the change it tells of: it
#: grows with each change of a group, in every process, with no state kept (RFC 5545 3.8.7.4
#: only asks that it increase).
SEQUENCE_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
V = TypeVar("V")

Strategy = Callable[[Wish, Sequence[Candidate], Sequence[OpenGroup], MatchContext], Decision]
#: The engine's merge of every ``iwant_suggestions`` implementation.
Suggester = Callable[[Wish, Nearby, MatchContext], list[Suggestion]]


@dataclass(frozen=True)
class Zones:
    """A person's zone: their own (``!iwant tz``), else the platform's, else the default."""

    default: ZoneInfo

    def of(self, info: PersonInfo | None, platform_zone: str | None = None) -> ZoneInfo:
        names = (info.timezone, info.platform_timezone) if info else (None, platform_zone)
        for name in names:
            if name:
                try:
                    return ZoneInfo(name)
                except (KeyError, ValueError):
                    continue
        return self.default


@dataclass(frozen=True)
class Submitted:
    reply: msg.Note  # its ``request_id`` is the new request's
    own_zone: str | None  # the person's own zone, as stored
    matched: bool = False  # it joined or formed a group (else it waits)


class NoLongerPossible(UserError):
    """A wish meant to replace ``replaced`` meets nobody now; nothing was written."""

    def __init__(self, replaced: StoredRequest) -> None:
        super().__init__("nobody fits that any more")
        self.replaced = replaced


class WrongPerson(Exception):
    """The account is linked to another person; submit again as ``person``."""

    def __init__(self, person: str) -> None:
        super().__init__(person)
        self.person = person


class WrongZone(Exception):
    """The wish was read in another zone than the person's; read it again in ``zone``."""

    def __init__(self, zone: str) -> None:
        super().__init__(zone)
        self.zone = zone


@dataclass(frozen=True)
class _Outcome:
    """A decision turned into writes, and the subject's own message (None: it waits)."""

    changes: Changes
    body: str | None
    buttons_label: str = "I can't make it"
    invites: tuple[Invite, ...] = ()  # the subject's: of the group it joined or formed


class _People:
    """Names and zones of the people a step talks about."""

    def __init__(self, known: Mapping[str, PersonInfo], zones: Zones) -> None:
        self.known, self.zones = known, zones

    def name(self, person: str) -> str:
        info = self.known.get(person)
        return info.name if info else person

    def zone(self, person: str) -> ZoneInfo:
        return self.zones.of(self.known.get(person))


# -- submitting ----------------------------------------------------------------------------------


def submit(
    uow: UnitOfWork,
    wish: Wish,
    me: PersonInfo,
    origin: str | None,
    decide: Strategy,
    ctx: MatchContext,
    max_open: int,
    zones: Zones,
    read_in: ZoneInfo | None = None,
    event_key: str | None = None,
    replied: bool = True,
    replacing: int | None = None,
    suggest: Suggester | None = None,
) -> Submitted:
    """Store ``wish`` of ``me`` (name and platform zone as the platform says now) and match it.

    Refused (``UserError``) when the person has ``max_open`` open requests already, or one
    for the same activity whose window overlaps this one. ``read_in``: the zone the wish's
    text was read in; ``WrongZone`` (before anything is written) when it is not the
    person's. ``event_key``: the platform's id of the message (``DuplicateEvent`` when it
    was stored before); ``replied`` False: the answer is acknowledged later
    (``Changes.replied``), and sent as a direct message if it never is. ``replacing``: the id
    of the person's waiting request of the same activity that this one replaces, only if it
    meets someone now (``NoLongerPossible`` otherwise, before anything is written).
    ``suggest``: the near misses of a wish that waits go into its answer."""
    now = ctx.now
    uow.lock("person", wish.person)
    uow.lock("pool", wish.pool, wish.activity)
    # One read for matching and, widened by the margin, for the near misses of a wish that
    # waits: only what fits the wish is offered to the strategy.
    margin = NEAR_MARGIN if suggest is not None else ZERO
    hood = uow.neighbourhood(wish, now, CANDIDATE_LIMIT, margin)
    if event_key is not None and any(m.event_key == event_key for m in hood.mine):
        raise DuplicateEvent(event_key)  # an ended one is caught by the storage's unique key
    stored = hood.me
    if stored is not None and stored.canonical is not None:
        raise WrongPerson(stored.canonical)  # linked meanwhile: this account is theirs
    name = me.name[:NAME_MAX]
    own_zone = stored.timezone if stored else None
    zone = zones.of(PersonInfo(me.id, name, own_zone, me.platform_timezone))
    if read_in is not None and zone.key != read_in.key:
        raise WrongZone(zone.key)
    # ``me`` is the account that asked; ``wish.person`` the person it is (another account of
    # theirs, when linked): requests are that person's, the answers go to the account.
    account = me.id if me.id != wish.person else None
    if account is not None:  # believed linked: still so? (unlinked or forgotten elsewhere)
        row = uow.people([account]).get(account)
        if row is None or row.canonical != wish.person:
            raise WrongPerson(row.canonical if row and row.canonical else account)
    if (
        account is not None
        or stored is None
        or (stored.name, stored.platform_timezone)
        != (
            name,
            me.platform_timezone,
        )
    ):
        uow.save_person(replace(me, name=name, timezone=None))
    mine = hood.mine
    replaced = None
    if replacing is not None:
        replaced = _replaceable(hood.mine, replacing, wish.activity)
        mine = tuple(m for m in hood.mine if m.id != replacing)
    if len(mine) >= max_open:
        raise UserError(msg.too_many_open(len(mine)))
    for other in mine:
        if (
            other.activity == wish.activity
            and other.earliest < wish.latest
            and wish.earliest < other.latest
        ):
            raise UserError(_already(uow, other, zone))
    known = {
        **hood.people,
        wish.person: PersonInfo(wish.person, name, own_zone, me.platform_timezone),
    }
    people = _People(known, zones)
    candidates: Sequence[StoredRequest] = hood.candidates
    groups: Sequence[StoredGroup] = hood.groups
    if margin:
        candidates, groups = _fitting(wish, now, candidates, groups)
    outcome = _match(
        uow, wish, None, origin, candidates, groups, hood.apart, people, decide, ctx, account
    )
    if outcome is None and replaced is not None:
        raise NoLongerPossible(replaced)
    if outcome is None:  # it waits: one row, no result until a group forms
        new = NewRequest(wish, origin, now, Status.PENDING, None, event_key, replied, account)
        request_id = _apply_new(uow, Changes(request=new), now)
        body = msg.waiting(
            wish.activity,
            wish.earliest,
            wish.latest,
            int(wish.length.total_seconds() // 60),
            wish.deadline,
            zone,
        )
        buttons = msg.cancel_button(request_id)
        if suggest is not None:
            around = NearbyRows(hood.candidates, hood.groups, hood.apart)
            found = near_misses_in(around, wish, ctx, suggest)
            body, buttons = msg.with_suggestions(
                body, buttons, found, wish.activity, wish.max_size, zone, now, request_id
            )
        note = msg.Note(me.id, body, buttons, request_id, queued=False)
        return Submitted(note, own_zone)
    assert outcome is not None and outcome.changes.request is not None
    assert outcome.body is not None
    outcome.changes.request = replace(outcome.changes.request, event_key=event_key, replied=replied)
    body = outcome.body
    if replaced is not None:
        outcome.changes.moves.append(Move(replaced.id, None, Status.CANCELLED))
        body = f"{body} {msg.replaced(replaced.activity, replaced.earliest, replaced.latest, zone)}"
    request_id = _apply_new(uow, outcome.changes, now)
    if replaced is not None:  # a near miss taken: ``!iwant stats`` counts them
        uow.mark_suggested(request_id)
    buttons = msg.cancel_button(request_id, outcome.buttons_label)
    note = msg.Note(me.id, body, buttons, request_id, invites=outcome.invites)
    return Submitted(note, own_zone, matched=True)


def _replaceable(mine: Sequence[StoredRequest], request_id: int, activity: str) -> StoredRequest:
    """The person's waiting request ``request_id`` of ``activity``, or why it cannot be
    replaced."""
    found = next((m for m in mine if m.id == request_id), None)
    if found is None:
        raise UserError(f"Your request #{request_id} has ended or is not yours; see !iwant list.")
    if found.activity != activity:
        raise UserError(
            f"Request #{request_id} is for {found.activity}, not {activity}; see !iwant list."
        )
    if found.status != Status.PENDING:
        raise UserError(
            f"Your {found.activity} request #{request_id} has been matched meanwhile; "
            "see !iwant list."
        )
    return found


def _fitting(
    wish: Wish,
    now: datetime,
    candidates: Sequence[StoredRequest],
    groups: Sequence[StoredGroup],
) -> tuple[Sequence[StoredRequest], Sequence[StoredGroup]]:
    """Of a neighbourhood read with a margin: the candidates and groups that fit the wish
    (what a read without the margin returns)."""
    last_start = wish.latest - wish.length
    first_end = wish.earliest + wish.length
    fit = [c for c in candidates if c.latest >= first_end and c.earliest <= last_start]
    not_before = max(now, wish.earliest)
    room = [g for g in groups if g.result.start and not_before <= g.result.start <= last_start]
    return fit, room


def near_misses(
    uow: UnitOfWork, wish: Wish, ctx: MatchContext, suggest: Suggester
) -> list[Suggestion]:
    """``near_misses_in`` what ``UnitOfWork.nearby`` reads (full groups too): for a wish
    that is not being submitted (at its deadline; a suggestion taken too late)."""
    rows = uow.nearby(wish, ctx.now, NEAR_MARGIN, NEARBY_LIMIT)
    return near_misses_in(rows, wish, ctx, suggest)


def near_misses_in(
    rows: NearbyRows, wish: Wish, ctx: MatchContext, suggest: Suggester
) -> list[Suggestion]:
    """The nearest ways for ``wish`` to meet with a small change, nearest first, at most
    ``SUGGESTIONS``, from ``rows``; nobody kept apart from the wish's person by an ignore."""
    # Nobody kept apart by an ignore, and never the person's own wishes or groups.
    blocked = {p for pair in rows.apart if wish.person in pair for p in pair} | {wish.person}
    wishes = tuple(r.as_candidate() for r in rows.waiting if r.person not in blocked)
    groups = tuple(
        _open_group(g) for g in rows.groups if not any(m.person in blocked for m in g.members)
    )
    view = MatchContext(ctx.now, wish.length)
    found = suggest(wish, Nearby(wishes, groups, NEAR_MARGIN), view)
    kept: list[Suggestion] = []
    for s in sorted(found, key=lambda s: (s.distance, s.start, -s.people)):
        if s.start >= ctx.now and s.people >= 1 and all(s.start != k.start for k in kept):
            kept.append(s)
    return kept[:SUGGESTIONS]


def _apply_new(uow: UnitOfWork, changes: Changes, now: datetime) -> int:
    request_id = uow.apply(changes, now)
    assert request_id is not None, "a storage returns the id of the request it inserted"
    return request_id


def _match(
    uow: UnitOfWork,
    wish: Wish,
    subject: StoredRequest | None,
    origin: str | None,
    candidates: Sequence[StoredRequest],
    groups: Sequence[StoredGroup],
    apart: frozenset[frozenset[str]],
    people: _People,
    decide: Strategy,
    ctx: MatchContext,
    account: str | None = None,
) -> _Outcome | None:
    """Ask the strategy about ``wish`` (a new request, or the stored ``subject``); the writes
    that carry out its decision and the subject's message, or None when it waits.
    ``account``: the linked account that made a new request, when not ``wish.person``."""
    # The engine, not the strategy, keeps out whom the requester ignores (or is ignored by).
    blocked = {p for pair in apart if wish.person in pair for p in pair} - {wish.person}
    offered = [c for c in candidates if c.person not in blocked]
    open_groups = [g for g in groups if not any(m.person in blocked for m in g.members)]
    if not offered and not open_groups:
        return None
    cands = [c.as_candidate() for c in offered]
    views = [_open_group(g) for g in open_groups]
    others = {c.person for c in offered} | {m.person for g in open_groups for m in g.members}
    past = _Lazy(lambda: outcomes.history(wish.person, uow.shared_groups(wish.person, others)))
    ctx = replace(ctx, history=past, last_met=_Lazy(lambda: outcomes.last_met(past)), apart=apart)
    decision = decide(wish, cands, views, ctx)
    problem = refusal(decision, wish, cands, views, ctx)
    if problem:
        log.error("strategy decision %r refused: %s; the request waits", decision, problem)
        return None
    if isinstance(decision, Join):
        group = next(g for g in open_groups if g.result.id == decision.result_id)
        return _join(wish, subject, origin, group, people, ctx.now, account)
    if isinstance(decision, Form):
        by_id = {c.id: c for c in offered}
        chosen = sorted((by_id[i] for i in decision.request_ids), key=lambda c: c.id)
        return _form(uow, wish, subject, origin, chosen, decision.start, people, ctx.now, account)
    return None


def _open_group(group: StoredGroup) -> OpenGroup:
    r = group.result
    assert r.start is not None and r.end is not None
    return OpenGroup(
        r.id, r.start, r.end, r.max_size, tuple(m.as_candidate() for m in group.members)
    )


def _join(
    wish: Wish,
    subject: StoredRequest | None,
    origin: str | None,
    group: StoredGroup,
    people: _People,
    now: datetime,
    account: str | None = None,
) -> _Outcome:
    result = group.result
    assert result.start is not None and result.end is not None
    start, end = result.start, result.end
    changes = Changes(
        results=[
            _change(result, size=result.size + 1, max_size=min(result.max_size, wish.max_size))
        ]
    )
    _place(changes, wish, subject, origin, result.id, now, account)
    names = [people.name(m.person) for m in group.members]
    newcomer = people.name(wish.person)
    invite = _invite(result.id, now, start, end, wish.activity, [*names, newcomer])
    for m in group.members:
        body = msg.joined(
            wish.activity, start, end, [newcomer], [*names, newcomer], people.zone(m.person)
        )
        changes.outbox.append(_note(m, body, result.id, (invite,)))
    body = msg.matched_reply(
        wish.activity, start, end, names, people.zone(wish.person), joined_existing=True
    )
    return _Outcome(changes, body, invites=(invite,))


def _form(
    uow: UnitOfWork,
    wish: Wish,
    subject: StoredRequest | None,
    origin: str | None,
    chosen: Sequence[StoredRequest],
    start: datetime,
    people: _People,
    now: datetime,
    account: str | None = None,
) -> _Outcome:
    # Waiting requests point to no result: the group's is new, stored first for its id,
    # which the members' notes name.
    end = start + wish.length
    size = len(chosen) + 1
    max_size = min([wish.max_size, *(c.max_size for c in chosen)])
    group = ResultChange(
        None, wish.pool, wish.activity, Status.MATCHED, start, end, max_size, size, end
    )
    group_id = uow.add_result(group, now)
    changes = Changes()
    _place(changes, wish, subject, origin, group_id, now, account)
    for c in chosen:
        changes.moves.append(Move(c.id, group_id, Status.MATCHED))
    everyone = [people.name(c.person) for c in chosen]
    members = [*everyone, people.name(wish.person)]
    invite = _invite(group_id, now, start, end, wish.activity, members)
    for i, c in enumerate(chosen):
        others = members[:i] + members[i + 1 :]
        body = msg.joined(wish.activity, start, end, others, members, people.zone(c.person))
        changes.outbox.append(_note(c, body, group_id, (invite,)))
    # Each member is reached through the account that made their request.
    subject_account = account or (subject.recipient if subject else wish.person)
    by_platform: dict[str, list[tuple[str, str]]] = {}
    for recipient, person in [*((c.recipient, c.person) for c in chosen),
                              (subject_account, wish.person)]:  # fmt: skip
        by_platform.setdefault(recipient.split(":", 1)[0], []).append((recipient, person))
    for platform, members_here in by_platform.items():
        if len(members_here) >= 2:  # one group conversation per platform, where it has one
            ids = [recipient for recipient, _ in members_here]
            names = [people.name(person) for _, person in members_here]
            zone = people.zone(members_here[0][1])
            body = msg.group_hello(wish.activity, names, start, end, zone)
            # Where the group formed, on this platform: a group too big for a group
            # conversation is announced there.
            here = origin if origin and origin.startswith(f"{platform}:") else None
            changes.outbox.append(NewOutbox(f"{platform}:group:{group_id}", body, [], here, ids))
    body = msg.matched_reply(
        wish.activity, start, end, everyone, people.zone(wish.person), joined_existing=False
    )
    return _Outcome(changes, body, invites=(invite,))


def _place(
    changes: Changes,
    wish: Wish,
    subject: StoredRequest | None,
    origin: str | None,
    result_id: int,
    now: datetime,
    account: str | None = None,
) -> None:
    """Put the new request (or the stored subject) into result ``result_id``."""
    if subject is None:
        changes.request = NewRequest(wish, origin, now, Status.MATCHED, result_id, account=account)
        return
    changes.moves.append(Move(subject.id, result_id, Status.MATCHED))


def _note(
    member: StoredRequest, body: str, group: int | None = None, invites: tuple[Invite, ...] = ()
) -> NewOutbox:
    """A note to a member; one about who is in ``group`` (someone joined) is superseded by a
    newer one of the same group not yet sent to them (``NewOutbox.topic``)."""
    return NewOutbox(
        member.recipient,
        _marked(member, body),
        msg.cancel_button(member.id, "I can't make it"),
        member.origin,
        topic=None if group is None else f"group:{group}",
        invites=invites,
    )


def _invite(
    group: int,
    now: datetime,
    start: datetime,
    end: datetime,
    activity: str,
    names: Sequence[str],
    cancelled: bool = False,
) -> Invite:
    """The invite of ``group`` as it is at ``now`` (its SEQUENCE: ``SEQUENCE_EPOCH``)."""
    sequence = max(0, int((now - SEQUENCE_EPOCH).total_seconds()))
    return Invite(group, sequence, start, end, activity, tuple(names), cancelled)


def _with_cancel(invites: tuple[Invite, ...], gone: Invite) -> tuple[Invite, ...]:
    """``invites`` after the cancel ``gone``, unless they carry an invite of that group
    already (a rematch that keeps the group's id: its invite updates the same event)."""
    if any(i.group == gone.group for i in invites):
        return invites
    return (gone, *invites)


def _marked(member: StoredRequest, body: str) -> str:
    """A message about a wish that a standing wish made says so."""
    if member.event_key is not None and member.event_key.startswith(STANDING_KEY):
        return msg.from_standing(body, member.activity)
    return body


def _change(result: StoredResult, **fields: object) -> ResultChange:
    """Result ``result`` as stored, with ``fields`` changed (the two types share fields)."""
    return ResultChange(**{**vars(result), **fields})


# -- cancelling ----------------------------------------------------------------------------------


def cancel(
    uow: UnitOfWork,
    person: str,
    request_id: int,
    decide: Strategy,
    ctx: MatchContext,
    zones: Zones,
) -> msg.Note:
    """End ``person``'s request ``request_id``; the others in its group are told."""
    now = ctx.now
    found = uow.request(request_id)
    if found is None or found.person != person:
        raise UserError(msg.NOT_YOURS)
    uow.lock("pool", found.pool, found.activity)
    request = uow.request(request_id)  # again: it may have changed while we waited
    if request is None or request.status not in LIVE:
        raise UserError(msg.already_ended(found.activity))
    group = None if request.result_id is None else uow.group(request.result_id)
    rest = [m for m in group.members if m.id != request.id] if group else []
    people = _People(uow.people([person, *(m.person for m in rest)]), zones)
    zone = people.zone(person)
    if group is None or group.result.status == Status.PENDING:  # waiting: no group to tell
        uow.apply(Changes(moves=[Move(request.id, None, Status.CANCELLED)]), now)
        return msg.Note(
            person, msg.cancelled(request.activity, request.earliest, request.latest, zone)
        )
    result = group.result
    assert result.start is not None and result.end is not None
    start, end = result.start, result.end
    own = ResultChange(
        None, request.pool, request.activity, Status.CANCELLED, None, None, request.max_size, 1,
        None,
    )  # fmt: skip
    # The leaver's own result keeps the meeting they left, and whom it was with.
    leaving = Move(request.id, own, Status.CANCELLED, Left(start, end, tuple(m.id for m in rest)))
    leaver = people.name(person)
    names = [people.name(m.person) for m in rest]
    gone = _invite(result.id, now, start, end, result.activity, [*names, leaver], cancelled=True)
    need = max([2, *(m.min_size for m in rest)])
    if len(rest) >= need:
        changes = Changes(
            results=[_change(result, size=len(rest), max_size=min(m.max_size for m in rest))],
            moves=[leaving],
        )
        updated = _invite(result.id, now, start, end, result.activity, names)
        for m in rest:
            remaining = [people.name(x.person) for x in rest if x.id != m.id] + ["you"]
            body = msg.dropped_out(
                result.activity, start, end, leaver, remaining, people.zone(m.person)
            )
            changes.outbox.append(_note(m, body, invites=(updated,)))
        uow.apply(changes, now)
    else:
        _dissolve(uow, result, rest, leaving, leaver, people,
                  decide, ctx, gone)  # fmt: skip
    return msg.Note(person, msg.left_group(result.activity, start, end, zone), invites=(gone,))


def _dissolve(
    uow: UnitOfWork,
    result: StoredResult,
    rest: Sequence[StoredRequest],
    leaving: Move,
    leaver: str,
    people: _People,
    decide: Strategy,
    ctx: MatchContext,
    gone: Invite,
) -> None:
    """Too few are left for the group: each member waits on their own again (or has ended,
    if their deadline passed) and is matched afresh where possible. The group's result is
    left to nobody (INVALID). Each is sent ``gone``, the cancel of the group's invite, with
    the invite of a group they are rematched to."""
    now = ctx.now
    assert result.start is not None and result.end is not None
    start, activity = result.start, result.activity
    end = result.end
    changes = Changes(moves=[leaving], retired=[(result.id, Status.INVALID)])
    for m in rest:
        expired = m.deadline <= now
        status = Status.EXPIRED if expired else Status.PENDING
        changes.moves.append(Move(m.id, None, status))
        if expired:
            body = msg.nobody_left(activity, start, end, leaver, people.zone(m.person))
            note = NewOutbox(m.recipient, _marked(m, body), [], m.origin, invites=(gone,))
            changes.outbox.append(note)
    uow.apply(changes, now)
    for m in rest:
        if m.deadline <= now:
            continue
        current = uow.request(m.id)
        if current is None or current.status != Status.PENDING:
            continue  # already matched afresh by an earlier member's rematch
        zone = people.zone(m.person)
        outcome = _rematch(uow, current, people, decide, ctx)
        if outcome is None:
            body = msg.alone_again(activity, start, end, leaver, m.deadline, zone)
            buttons = msg.cancel_button(m.id)
            note = NewOutbox(m.recipient, _marked(m, body), buttons, m.origin, invites=(gone,))
            uow.apply(Changes(outbox=[note]), now)
            continue
        assert outcome.body is not None
        # Others of the broken group that this rematch takes along hear why, too.
        fellows = {x.recipient for x in rest if x.id != m.id}
        outcome.changes.outbox = [
            replace(
                n,
                body=msg.rematched_after_drop_out(leaver, n.body),
                topic=None,
                invites=_with_cancel(n.invites, gone),
            )
            if n.recipient in fellows
            else n
            for n in outcome.changes.outbox
        ]
        body = _marked(m, msg.rematched_after_drop_out(leaver, outcome.body))
        buttons = msg.cancel_button(m.id, outcome.buttons_label)
        invites = _with_cancel(outcome.invites, gone)
        note = NewOutbox(m.recipient, body, buttons, m.origin, invites=invites)
        outcome.changes.outbox.append(note)
        uow.apply(outcome.changes, now)


def _rematch(
    uow: UnitOfWork, subject: StoredRequest, people: _People, decide: Strategy, ctx: MatchContext
) -> _Outcome | None:
    wish = subject.as_wish()
    hood = uow.neighbourhood(wish, ctx.now, CANDIDATE_LIMIT)
    candidates = [c for c in hood.candidates if c.id != subject.id]
    known = _People({**hood.people, **people.known}, people.zones)
    return _match(
        uow, wish, subject, subject.origin, candidates, hood.groups, hood.apart, known, decide, ctx
    )


# -- answers that did not reach their person ----------------------------------------------------


def _already(uow: UnitOfWork, other: StoredRequest, zone: ZoneInfo) -> str:
    """Why a wish overlapping the person's ``other`` is refused: the window still waiting,
    or the meeting it is matched to (with whom), as ``!iwant list`` shows it."""
    if other.status == Status.MATCHED:
        listed = as_listed(uow, other)
        if listed.status == Status.MATCHED and listed.start and listed.end:
            return msg.already_meeting(
                other.activity, listed.start, listed.end, listed.others, zone
            )
    return msg.already_want(other.activity, other.earliest, other.latest, zone)


def as_listed(uow: UnitOfWork, request: StoredRequest) -> OpenRequest:
    """A stored request as ``!iwant list`` shows it: its meeting and the others in it."""
    group = None if request.result_id is None else uow.group(request.result_id)
    result = group.result if group else None
    others = [m.person for m in group.members if m.id != request.id] if group else []
    known = uow.people(others)
    matched = result is not None and result.status == Status.MATCHED
    return OpenRequest(
        request.id,
        request.activity,
        result.status if result else request.status,
        request.earliest,
        request.latest,
        request.deadline,
        request.length_minutes,
        result.start if result else None,
        result.end if result else None,
        tuple(known[p].name if p in known else p for p in others) if matched else (),
        request.pool,
    )


# -- the sweep: deadlines and finished meetings --------------------------------------------------


def sweep_step(
    uow: UnitOfWork, now: datetime, batch: int, zones: Zones, suggest: Suggester | None = None
) -> tuple[int, int]:
    """Up to ``batch`` due results, in one write: a waiting request whose deadline passed
    with nobody ends and its person is told (expired), with the nearest miss still ahead when
    ``suggest`` is given; a group whose meeting is over is DONE with its requests. Returns
    (expired, done)."""
    due = uow.due(now, batch)
    if not due:
        return 0, 0
    waiting = [g for g in due if g.result.status == Status.PENDING]
    people = _People(uow.people({m.person for g in waiting for m in g.members}), zones)
    changes = Changes()
    for group in due:
        status = Status.EXPIRED if group.result.status == Status.PENDING else Status.DONE
        stored = group.result.id != UNSTORED
        if stored:
            changes.retired.append((group.result.id, status))
        for m in group.members:
            changes.moves.append(Move(m.id, group.result.id if stored else None, status))
            if status == Status.EXPIRED:
                zone = people.zone(m.person)
                body = _marked(m, msg.expired(m.activity, m.earliest, m.latest, m.min_size, zone))
                buttons: list[dict[str, str]] = []
                if suggest is not None and m.latest + NEAR_MARGIN > now:  # one may lie ahead
                    ctx = MatchContext(now, m.length)
                    found = near_misses(uow, m.as_wish(), ctx, suggest)[:1]
                    body, buttons = msg.with_suggestions(
                        body, [], found, m.activity, m.max_size, zone, now, None
                    )
                changes.outbox.append(NewOutbox(m.recipient, body, buttons, m.origin))
    uow.apply(changes, now)
    return len(waiting), len(due) - len(waiting)


class _Lazy(Mapping[str, V]):
    """A mapping read from the storage on first use: most strategies never look at the match
    history, so most submissions never pay for the query."""

    def __init__(self, load: Callable[[], Mapping[str, V]]) -> None:
        self._load = load
        self._data: Mapping[str, V] | None = None

    def _get(self) -> Mapping[str, V]:
        if self._data is None:
            self._data = self._load()
        return self._data

    def __getitem__(self, key: str) -> V:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())
