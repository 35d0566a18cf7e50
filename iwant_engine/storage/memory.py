"""The memory storage: plain dicts, for throwaway local bots and tests.

Its data is gone when the process exits, and only one process may use it: units of work are
serialised by a lock inside this process, not by a database.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any

from ..errors import DuplicateEvent
from ..hookspecs import hookimpl
from ..model import (
    LIVE,
    SUPERSEDED,
    Beat,
    Changes,
    DigestRoom,
    Invite,
    Left,
    LinkedCalendar,
    NearbyRows,
    Neighbourhood,
    OpenRequest,
    OutboxDepth,
    OutboxItem,
    PersonData,
    PersonInfo,
    Question,
    ResultChange,
    SharedGroup,
    Span,
    Standing,
    StatsRows,
    Status,
    StoredGroup,
    StoredRequest,
    StoredResult,
    Wish,
    renamed_invites,
)
from ..pacing import PaceBook, Step
from .memory_stats import count_stats


@dataclass(frozen=True)
class _OutboxRow:
    id: int
    recipient: str
    platform: str
    body: str
    buttons: list[dict[str, str]]
    origin: str | None
    group_members: list[str] | None
    created_at: datetime
    next_attempt_at: datetime
    attempts: int = 0
    claimed_until: datetime | None = None
    delivered_at: datetime | None = None
    failed_at: datetime | None = None
    error: str | None = None
    topic: str | None = None
    chart: dict[str, Any] | None = None
    invites: tuple[Invite, ...] = ()

    @property
    def pending(self) -> bool:
        return self.delivered_at is None and self.failed_at is None


@dataclass
class _State:
    """Every row. Values are frozen, so a unit of work's shallow copy is a snapshot."""

    people: dict[str, PersonInfo] = field(default_factory=dict)
    requests: dict[int, StoredRequest] = field(default_factory=dict)
    results: dict[int, StoredResult] = field(default_factory=dict)
    outbox: dict[int, _OutboxRow] = field(default_factory=dict)
    ignores: dict[tuple[str, str], datetime] = field(default_factory=dict)
    event_keys: dict[str, int] = field(default_factory=dict)  # event key -> request id
    unreplied: dict[int, datetime] = field(default_factory=dict)  # request id -> created
    standing: dict[int, Standing] = field(default_factory=dict)
    left: dict[int, Left] = field(default_factory=dict)  # a leaver's result -> the group left
    forget_asked: dict[str, datetime] = field(default_factory=dict)  # person -> when
    link_codes: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # hash -> ...
    link_failures: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    asked: dict[int, datetime] = field(default_factory=dict)  # result id -> members asked
    questions: dict[tuple[int, str], Question] = field(default_factory=dict)
    calendars: dict[str, LinkedCalendar] = field(default_factory=dict)  # person -> calendar
    busy: dict[str, tuple[Span, ...]] = field(default_factory=dict)  # person -> sorted spans
    suggested: dict[int, bool] = field(default_factory=dict)  # request id -> took a near miss
    digests: dict[str, DigestRoom] = field(default_factory=dict)  # room -> its digest
    last_ids: dict[str, int] = field(
        default_factory=lambda: {"request": 0, "result": 0, "outbox": 0, "standing": 0}
    )

    def copy(self) -> _State:
        return _State(**{f.name: dict(getattr(self, f.name)) for f in fields(self)})

    def around(
        self, pools: set[str], activity: str | None, reader: str, low: datetime,
        high: datetime, now: datetime, limit: int,
    ) -> NearbyRows:  # fmt: skip
        """Waiting requests (not the reader's) and formed groups of ``pools`` (and of
        ``activity``, unless None) between ``low`` and ``high``: ``nearby`` and ``board``."""

        def here(pool: str, what: str) -> bool:
            return pool in pools and activity in (None, what)

        low = max(now, low)
        waiting = sorted(
            (
                r
                for r in self.requests.values()
                if here(r.pool, r.activity)
                and r.status == Status.PENDING
                and r.person != reader
                and r.deadline > now
                and r.latest > low
                and r.earliest < high
            ),
            key=lambda r: (r.earliest, r.id),
        )[:limit]
        formed = sorted(
            (
                g
                for g in self.results.values()
                if here(g.pool, g.activity)
                and g.status == Status.MATCHED
                and g.start is not None
                and low <= g.start < high
            ),
            key=_by_start,
        )[:limit]
        groups = self.groups(formed)
        ids = {r.person for r in waiting} | {m.person for g in groups for m in g.members}
        apart = frozenset(
            frozenset(pair) for pair in self.ignores if reader in pair and set(pair) & ids
        )
        return NearbyRows(tuple(waiting), tuple(groups), apart)

    def due_standing(self, now: datetime) -> list[Standing]:
        due = [s for s in self.standing.values() if s.create_at is not None and s.create_at <= now]
        return sorted(due, key=lambda s: (s.create_at, s.id))

    def next_id(self, kind: str) -> int:
        self.last_ids[kind] += 1
        return self.last_ids[kind]

    def known(self, ids: Iterable[str]) -> dict[str, PersonInfo]:
        return {i: self.people[i] for i in ids if i in self.people}

    def open_of(self, person: str, now: datetime) -> list[StoredRequest]:
        rows = self.requests.values()
        mine = [r for r in rows if r.person == person and r.status in LIVE and r.latest > now]
        return sorted(mine, key=lambda r: (r.earliest, r.id))

    def groups(self, results: list[StoredResult]) -> list[StoredGroup]:
        members: dict[int, list[StoredRequest]] = {g.id: [] for g in results}
        for r in sorted(self.requests.values(), key=lambda r: r.id):
            if r.result_id in members:
                members[r.result_id].append(r)
        return [StoredGroup(g, tuple(members[g.id])) for g in results]

    def due(self, now: datetime) -> list[StoredGroup]:
        live = (g for g in self.results.values() if g.status in LIVE)
        found = self.groups([g for g in live if g.due_at is not None and g.due_at <= now])
        alone = (r for r in self.requests.values() if r.result_id is None)
        found += [
            StoredGroup(r.own_result(), (r,))
            for r in alone
            if r.status == Status.PENDING and r.deadline <= now
        ]
        return found

    def result_of(self, request: StoredRequest) -> StoredResult:
        """The request's result: stored, or its own (``StoredRequest.own_result``)."""
        if request.result_id is None:
            return request.own_result()
        return self.results[request.result_id]


def _by_start(result: StoredResult) -> tuple[datetime, int]:
    assert result.start is not None
    return result.start, result.id


def _by_due(group: StoredGroup) -> tuple[datetime, int, int]:
    result = group.result
    assert result.due_at is not None
    return result.due_at, result.id, group.members[0].id if group.members else 0


def _stored(result_id: int, change: ResultChange) -> StoredResult:
    c = change
    return StoredResult(
        result_id, c.pool, c.activity, c.status, c.start, c.end, c.max_size, c.size, c.due_at
    )


class _MemoryUnitOfWork:
    """The operations of one unit of work, on a private copy of the storage's state."""

    def __init__(self, state: _State) -> None:
        self.state = state

    def lock(self, *key: str) -> None:
        """Nothing to do: the storage's one lock is held for the whole unit of work."""

    def neighbourhood(
        self, wish: Wish, now: datetime, limit: int, margin: timedelta = timedelta(0)
    ) -> Neighbourhood:
        s = self.state
        last_start = wish.latest - wish.length + margin
        candidates = sorted(
            (
                r
                for r in s.requests.values()
                if (r.pool, r.activity, r.status) == (wish.pool, wish.activity, Status.PENDING)
                and r.person != wish.person
                and r.deadline > now
                and r.latest >= wish.earliest + wish.length - margin
                and r.earliest <= last_start
            ),
            key=lambda r: (r.latest, r.id),
        )[:limit]
        not_before = max(now, wish.earliest - margin)
        open_groups = sorted(
            (
                g
                for g in s.results.values()
                if (g.pool, g.activity, g.status) == (wish.pool, wish.activity, Status.MATCHED)
                and g.start is not None
                and not_before <= g.start <= last_start
                and g.size < g.max_size
            ),
            key=_by_start,
        )[:limit]
        groups = s.groups(open_groups)
        ids = {wish.person} | {r.person for r in candidates}
        ids |= {m.person for g in groups for m in g.members}
        apart = frozenset(frozenset(pair) for pair in s.ignores if set(pair) <= ids)
        return Neighbourhood(
            me=s.people.get(wish.person),
            mine=tuple(s.open_of(wish.person, now)),
            candidates=tuple(candidates),
            groups=tuple(groups),
            people=s.known(ids),
            apart=apart,
        )

    def nearby(self, wish: Wish, now: datetime, margin: timedelta, limit: int) -> NearbyRows:
        low, high = wish.earliest - margin, wish.latest + margin
        return self.state.around({wish.pool}, wish.activity, wish.person, low, high, now, limit)

    def request(self, request_id: int) -> StoredRequest | None:
        return self.state.requests.get(request_id)

    def group(self, result_id: int) -> StoredGroup | None:
        result = self.state.results.get(result_id)
        return None if result is None else self.state.groups([result])[0]

    def people(self, ids: Iterable[str]) -> dict[str, PersonInfo]:
        return self.state.known(ids)

    def shared_groups(self, person: str, others: Iterable[str]) -> list[SharedGroup]:
        s = self.state
        wanted = set(others) - {person}
        met = (Status.MATCHED, Status.DONE)
        mine = {r.result_id for r in s.requests.values() if r.person == person and r.status in met}
        mine.discard(None)
        found: list[SharedGroup] = []
        for r in s.requests.values():
            start = s.result_of(r).start
            if (
                r.result_id is not None
                and r.person in wanted
                and r.result_id in mine
                and r.status in met
                and start
            ):
                answers = tuple(q for k, q in s.questions.items() if k[0] == r.result_id)
                found.append(SharedGroup(r.person, r.result_id, start, answers))
        return found

    def to_ask(self, ended: datetime, since: datetime, limit: int) -> list[StoredGroup]:
        s = self.state
        due = [
            g
            for g in s.results.values()
            if g.status is Status.DONE and g.id not in s.asked and g.end and since <= g.end <= ended
        ]
        due.sort(key=lambda g: (g.end, g.id))
        return s.groups(due[:limit])

    def question(self, result_id: int, person: str) -> Question | None:
        return self.state.questions.get((result_id, person))

    def mark_asked(self, result_ids: Iterable[int], now: datetime) -> None:
        for i in result_ids:
            self.state.asked[i] = now

    def add_questions(self, questions: Iterable[Question]) -> None:
        for q in questions:
            self.state.questions.setdefault((q.result_id, q.person), q)

    def save_answer(self, question: Question) -> None:
        key = (question.result_id, question.person)
        if key in self.state.questions:
            self.state.questions[key] = question

    def mark_suggested(self, request_id: int) -> None:
        self.state.suggested[request_id] = True

    def digest(self, room: str) -> DigestRoom | None:
        return self.state.digests.get(room)

    def save_digest(self, digest: DigestRoom) -> None:
        self.state.digests[digest.room] = digest

    def drop_digest(self, room: str) -> bool:
        return self.state.digests.pop(room, None) is not None

    def due_digests(self, now: datetime, limit: int) -> list[DigestRoom]:
        due = [d for d in self.state.digests.values() if d.next_at <= now]
        return sorted(due, key=lambda d: (d.next_at, d.room))[:limit]

    def set_feedback(self, person: str, off: bool) -> None:
        old = self.state.people.get(person)
        if old is not None:
            self.state.people[person] = replace(old, feedback_off=off)

    def calendar(self, person: str) -> LinkedCalendar | None:
        return self.state.calendars.get(person)

    def save_calendar(self, calendar: LinkedCalendar, busy: Sequence[Span] | None = None) -> None:
        self.state.calendars[calendar.person] = calendar
        if busy is not None:
            self.state.busy[calendar.person] = tuple(sorted(busy))

    def drop_calendar(self, person: str) -> bool:
        self.state.busy.pop(person, None)
        return self.state.calendars.pop(person, None) is not None

    def due_calendars(self, now: datetime, limit: int, until: datetime) -> list[LinkedCalendar]:
        due = sorted(
            (c for c in self.state.calendars.values() if _calendar_due(c, now)),
            key=lambda c: (c.next_refresh_at, c.person),
        )[:limit]
        claimed = [replace(c, claimed_until=until) for c in due]
        for c in claimed:
            self.state.calendars[c.person] = c
        return claimed

    def unreplied(self, platform: str, before: datetime, limit: int) -> list[StoredRequest]:
        s = self.state
        found = [
            s.requests[i]
            for i, created in sorted(s.unreplied.items(), key=lambda kv: (kv[1], kv[0]))
            if created < before and s.requests[i].recipient.startswith(platform + ":")
        ]
        return found[:limit]

    def due(self, now: datetime, limit: int) -> list[StoredGroup]:
        # No other unit of work runs meanwhile, so every due result is ours to claim.
        return sorted(self.state.due(now), key=_by_due)[:limit]

    def apply(self, changes: Changes, now: datetime) -> int | None:
        s = self.state
        for change in changes.results:
            if change.id is None or change.id not in s.results:
                raise KeyError(f"no result {change.id} to update")
            s.results[change.id] = _stored(change.id, change)
        new_id = None
        if changes.request is not None:
            new, w = changes.request, changes.request.wish
            minutes = int(w.length.total_seconds() // 60)
            window = (w.activity, w.earliest, w.latest, w.deadline, minutes, w.max_size, w.min_size)
            if new.event_key is not None and new.event_key in s.event_keys:
                raise DuplicateEvent(new.event_key)
            result_id = self._result_id(new.result)
            new_id = s.next_id("request")
            s.requests[new_id] = StoredRequest(
                new_id, w.person, w.pool, new.origin, *window, new.created_at, result_id,
                new.status, new.event_key, new.account,
            )  # fmt: skip
            if new.event_key is not None:
                s.event_keys[new.event_key] = new_id
            if not new.replied:
                s.unreplied[new_id] = new.created_at
        for move in changes.moves:
            old = s.requests[move.request_id]
            result_id = self._result_id(move.result)
            s.requests[old.id] = replace(old, result_id=result_id, status=move.status)
            if move.left is not None and result_id is not None:
                s.left[result_id] = move.left
        for retired_id, status in changes.retired:
            s.results[retired_id] = replace(s.results[retired_id], status=status, due_at=None)
        for replied in changes.replied:
            s.unreplied.pop(replied, None)
        for n in changes.outbox:
            row_id, buttons = s.next_id("outbox"), [dict(b) for b in n.buttons]
            members = None if n.group_members is None else list(n.group_members)
            s.outbox[row_id] = _OutboxRow(
                row_id, n.recipient, n.platform, n.body, buttons, n.origin, members, now, now,
                topic=n.topic, chart=n.chart, invites=n.invites,
            )  # fmt: skip
        return new_id

    def add_result(self, result: ResultChange, now: datetime) -> int:
        new_id = self.state.next_id("result")
        self.state.results[new_id] = _stored(new_id, result)
        return new_id

    def _result_id(self, result: int | ResultChange | None) -> int | None:
        """None, an existing result's id, or the id of ``result`` inserted as a new one."""
        if result is None:
            return None
        if isinstance(result, int):
            if result not in self.state.results:
                raise KeyError(f"no result {result}")
            return result
        new_id = self.state.next_id("result")
        self.state.results[new_id] = _stored(new_id, result)
        return new_id

    def save_person(self, person: PersonInfo, *, keep_timezone: bool = True) -> None:
        old = self.state.people.get(person.id)
        if old is not None:
            zone = old.timezone if keep_timezone else person.timezone
            person = replace(
                person, timezone=zone, canonical=old.canonical, feedback_off=old.feedback_off
            )
        self.state.people[person.id] = person

    def add_person(self, person: PersonInfo) -> None:
        self.state.people.setdefault(person.id, person)

    def set_timezone(self, person: str, zone: str | None) -> None:
        old = self.state.people.get(person)
        if old is not None:
            self.state.people[person] = replace(old, timezone=zone)

    def add_ignore(self, person: str, ignored: str, now: datetime) -> bool:
        if (person, ignored) in self.state.ignores:
            return False
        self.state.ignores[person, ignored] = now
        return True

    def remove_ignore(self, person: str, ignored: str) -> bool:
        return self.state.ignores.pop((person, ignored), None) is not None

    def add_link_code(self, code_hash: str, account: str, expires_at: datetime) -> None:
        self.state.link_codes[code_hash] = (account, expires_at)

    def link_codes(self, now: datetime) -> list[tuple[str, str]]:
        codes = self.state.link_codes.items()
        return [(code, account) for code, (account, until) in codes if until > now]

    def drop_link_code(self, code_hash: str) -> None:
        self.state.link_codes.pop(code_hash, None)

    def link_failures(self, account: str, now: datetime, window: timedelta, add: bool) -> int:
        count, first = self.state.link_failures.get(account, (0, now))
        if first <= now - window:
            count, first = 0, now
        if add:
            count, first = count + 1, first if count else now
            self.state.link_failures[account] = (count, first)
        return count

    def link(self, account: str, person: str) -> bool:
        s = self.state
        mine = s.people.get(account) or PersonInfo(account, account.split(":", 1)[-1])
        target = s.people.get(person)
        dependents = any(p.canonical == account for p in s.people.values())
        if mine.canonical or dependents or target is None or target.canonical:
            return False
        s.people[account] = replace(mine, canonical=person)
        theirs = s.people.get(person)
        if theirs is not None and theirs.timezone is None and mine.timezone is not None:
            s.people[person] = replace(theirs, timezone=mine.timezone)
        for i, r in list(s.requests.items()):
            if r.person == account:
                s.requests[i] = replace(r, person=person, account=r.account or account)
        renamed: dict[tuple[str, str], datetime] = {}
        for (who, other), at in s.ignores.items():
            pair = (person if who == account else who, person if other == account else other)
            if pair[0] != pair[1]:
                renamed.setdefault(pair, at)
        s.ignores = renamed
        return True

    def unlink(self, account: str) -> list[str]:
        s = self.state
        info = s.people.get(account)
        if info is not None and info.canonical is not None:
            done = [account]
        else:
            done = sorted(i for i, p in s.people.items() if p.canonical == account)
        for i in done:
            s.people[i] = replace(s.people[i], canonical=None)
        return done

    def forget(self, person: str, name: str, rename: Callable[[str], str]) -> dict[str, int]:
        s = self.state
        theirs = {i for i, r in s.requests.items() if r.person == person}
        kept = {r.result_id for i, r in s.requests.items() if i not in theirs}
        stored = [s.requests[i].result_id for i in theirs]
        groups = {i for i in stored if i is not None}
        own = groups - kept
        for pair, q in list(s.questions.items()):
            if pair[0] in groups and person in q.absent:
                s.questions[pair] = replace(q, absent=tuple(p for p in q.absent if p != person))
        asked = [pair for pair in s.questions if pair[1] == person]
        for pair in asked:
            del s.questions[pair]
        counts = Counter(
            questions=len(asked),
            requests=len(theirs),
            results=len(own),
            ignores=sum(1 for pair in s.ignores if pair[0] == person),
            standing=sum(1 for w in s.standing.values() if w.person == person),
            people=int(person in s.people),
        )
        for i in theirs:
            key = s.requests.pop(i).event_key
            s.event_keys.pop(key or "", None)
            s.unreplied.pop(i, None)
            s.suggested.pop(i, None)
        for r in own:
            del s.results[r]
            s.left.pop(r, None)
        s.ignores = {pair: t for pair, t in s.ignores.items() if pair[0] != person}
        s.standing = {k: w for k, w in s.standing.items() if w.person != person}
        s.people.pop(person, None)
        s.forget_asked.pop(person, None)
        s.link_failures.pop(person, None)
        s.link_codes = {h: c for h, c in s.link_codes.items() if c[0] != person}
        s.busy.pop(person, None)
        counts["calendars"] = int(s.calendars.pop(person, None) is not None)
        for row in list(s.outbox.values()):
            if row.recipient == person:
                del s.outbox[row.id]
                counts["outbox"] += 1
            elif row.group_members is not None and person in row.group_members:
                members = [m for m in row.group_members if m != person]
                body = rename(row.body) if name else row.body
                s.outbox[row.id] = replace(row, group_members=members, body=body)
                counts["outbox"] += 1
            elif name and name in row.body and rename(row.body) != row.body:
                s.outbox[row.id] = replace(row, body=rename(row.body))
                counts["outbox"] += 1
            elif name and renamed_invites(row.invites, rename) != row.invites:
                counts["outbox"] += 1
            if name and row.id in s.outbox:  # the invites it carries name them too
                now_row = s.outbox[row.id]
                s.outbox[row.id] = replace(
                    now_row, invites=renamed_invites(now_row.invites, rename)
                )
        return dict(counts)

    def purge(self, before: datetime, limit: int) -> int:
        s = self.state
        done = [i for i, r in s.requests.items() if r.status not in LIVE and r.latest < before][
            :limit
        ]
        for i in done:
            key = s.requests.pop(i).event_key
            s.event_keys.pop(key or "", None)
            s.unreplied.pop(i, None)
            s.suggested.pop(i, None)
        used = {r.result_id for r in s.requests.values()}
        unused = [g for g in s.results if g not in used][: max(0, limit - len(done))]
        for g in unused:
            del s.results[g]
            s.left.pop(g, None)
            s.asked.pop(g, None)
        old = [pair for pair, q in s.questions.items() if q.asked_at < before][:limit]
        for pair in old:
            del s.questions[pair]
        sent = [
            row.id
            for row in s.outbox.values()
            if (row.delivered_at or row.failed_at or before) < before
        ][: max(0, limit - len(done) - len(unused))]
        for row_id in sent:
            del s.outbox[row_id]
        ended = [k for k, w in s.standing.items() if w.ended_at and w.ended_at < before]
        for k in ended:
            del s.standing[k]
        codes = [h for h, (_, until) in s.link_codes.items() if until < before]
        for h in codes:
            del s.link_codes[h]
        past = 0
        for who, spans in list(s.busy.items()):
            kept = tuple(span for span in spans if span[1] >= before)
            past += len(spans) - len(kept)
            s.busy[who] = kept
        dead = [
            who for who, c in s.calendars.items() if c.failing_since and c.failing_since < before
        ][:limit]
        for who in dead:
            del s.calendars[who]
            past += len(s.busy.pop(who, ()))
        return (
            len(done) + len(unused) + len(old) + len(sent) + len(ended) + len(codes) + past
            + len(dead)
        )  # fmt: skip

    def ask_to_forget(self, person: str, at: datetime | None) -> datetime | None:
        before = self.state.forget_asked.pop(person, None)
        if at is not None:
            self.state.forget_asked[person] = at
        return before

    def add_standing(self, standing: Standing) -> int:
        standing_id = self.state.next_id("standing")
        self.state.standing[standing_id] = replace(standing, id=standing_id)
        return standing_id

    def standing(self, person: str, *, claim: bool = False) -> list[Standing]:
        mine = (s for s in self.state.standing.values() if s.person == person)
        return sorted((s for s in mine if s.ended_at is None), key=lambda s: s.id)

    def save_standing(self, standing: Standing) -> None:
        self.state.standing[standing.id] = standing

    def due_standing(self, now: datetime, limit: int) -> list[Standing]:
        return self.state.due_standing(now)[:limit]


class MemoryStorage:
    """Requests, results, people and the outbox in dicts of this process."""

    def __init__(
        self, url: str = "memory:", pool_size: int = 5, default_timezone: str = "UTC"
    ) -> None:
        self.url = url
        self._lock = threading.RLock()
        self._state = _State()
        self._in_unit = False  # only the thread holding the lock can see it True
        self._pacing = PaceBook()
        self._beats: dict[str, Beat] = {}

    def migrate(self) -> None:
        pass

    def close(self) -> None:
        pass

    @contextmanager
    def transaction(self) -> Iterator[_MemoryUnitOfWork]:
        with self._lock:
            # A nested unit of work (same thread, the lock is re-entrant) would have its
            # commit overwritten by the outer one's: refuse it rather than lose writes.
            if self._in_unit:
                raise RuntimeError("a unit of work is already open in this thread")
            self._in_unit = True
            try:
                work = _MemoryUnitOfWork(self._state.copy())
                yield work
                self._state = work.state  # reached only when the block did not raise
            finally:
                self._in_unit = False

    @contextmanager
    def _writing(self) -> Iterator[_State]:
        with self._lock:
            if self._in_unit:
                raise RuntimeError("outbox writes are not allowed inside a unit of work")
            yield self._state

    # -- reads -------------------------------------------------------------------------------

    def person(self, person: str) -> PersonInfo | None:
        with self._lock:
            return self._state.people.get(person)

    def people(self, ids: Iterable[str]) -> dict[str, PersonInfo]:
        with self._lock:
            return self._state.known(ids)

    def open_requests(self, person: str, now: datetime) -> list[OpenRequest]:
        with self._lock:
            s = self._state
            rows = []
            for req in s.open_of(person, now):
                res = s.result_of(req)
                others: tuple[str, ...] = ()
                if res.status == Status.MATCHED:
                    members = s.groups([res])[0].members
                    others = tuple(
                        s.people[m.person].name if m.person in s.people else m.person
                        for m in members
                        if m.id != req.id
                    )
                window = (req.earliest, req.latest, req.deadline, req.length_minutes)
                meeting = (res.start, res.end, others)
                rows.append(
                    OpenRequest(
                        req.id, req.activity, Status(res.status), *window, *meeting, req.pool
                    )
                )
            return rows

    def pools_of(self, person: str, since: datetime) -> list[str]:
        with self._lock:
            rows = self._state.requests.values()
            return sorted({r.pool for r in rows if r.person == person and r.created_at >= since})

    def board(
        self, pools: Iterable[str], start: datetime, end: datetime, now: datetime, reader: str,
        limit: int,
    ) -> NearbyRows:  # fmt: skip
        with self._lock:
            return self._state.around(set(pools), None, reader, start, end, now, limit)

    def ignored(self, person: str) -> list[str]:
        with self._lock:
            return sorted(other for who, other in self._state.ignores if who == person)

    def request_by_event(self, event_key: str) -> StoredRequest | None:
        with self._lock:
            found = self._state.event_keys.get(event_key)
            return None if found is None else self._state.requests.get(found)

    def has_unreplied(self, platform: str, before: datetime) -> bool:
        with self._lock:
            s = self._state
            return any(
                created < before and s.requests[i].recipient.startswith(platform + ":")
                for i, created in s.unreplied.items()
            )

    def mark_replied(self, request_ids: Iterable[int], now: datetime) -> None:
        with self._writing() as s:
            for request_id in request_ids:
                s.unreplied.pop(request_id, None)

    def has_due(self, now: datetime) -> bool:
        with self._lock:
            return bool(self._state.due(now))

    def accounts(self, person: str) -> list[str]:
        with self._lock:
            return sorted(i for i, p in self._state.people.items() if p.canonical == person)

    def person_data(self, person: str) -> PersonData:
        with self._lock:
            s = self._state
            mine = sorted((r for r in s.requests.values() if r.person == person), key=_id)
            groups: dict[int, tuple[str, ...]] = {}
            for r in mine:
                if r.result_id is None:
                    continue
                others = [o for o in s.requests.values() if o.result_id == r.result_id]
                names = [_name(s, o.person) for o in sorted(others, key=_id) if o.person != person]
                if names:
                    groups[r.result_id] = tuple(names)
            left = {
                r.result_id: s.left[r.result_id]
                for r in mine
                if r.result_id is not None and r.result_id in s.left
            }
            for result_id, gone in left.items():  # groups left: the others then, still stored
                then = sorted((s.requests[i] for i in gone.requests if i in s.requests), key=_id)
                names = [_name(s, o.person) for o in then if o.person != person]
                if names:
                    groups[result_id] = tuple(names)
            undelivered = tuple(
                OutboxItem(o.id, o.recipient, o.body, o.buttons, o.origin, o.attempts)
                for o in sorted(s.outbox.values(), key=_id)
                if o.recipient == person and o.pending
            )
            return PersonData(
                s.people.get(person),
                tuple((r, s.result_of(r)) for r in mine),
                groups,
                tuple(sorted(ignored for who, ignored in s.ignores if who == person)),
                tuple(w for _, w in sorted(s.standing.items()) if w.person == person),
                undelivered,
                {result_id: (gone.start, gone.end) for result_id, gone in left.items()},
                tuple(
                    sorted(
                        (q for k, q in s.questions.items() if k[1] == person),
                        key=lambda q: (q.asked_at, q.result_id),
                    )
                ),
                s.calendars.get(person),
            )

    def has_to_ask(self, ended: datetime, since: datetime) -> bool:
        with self._lock:
            return bool(_MemoryUnitOfWork(self._state).to_ask(ended, since, 1))

    def busy(self, person: str, start: datetime, end: datetime) -> list[Span]:
        with self._lock:
            spans = self._state.busy.get(person, ())
            return [span for span in spans if span[1] > start and span[0] < end]

    def calendar_people(self) -> list[str]:
        with self._lock:
            return list(self._state.calendars)

    def has_due_calendars(self, now: datetime) -> bool:
        with self._lock:
            return any(_calendar_due(c, now) for c in self._state.calendars.values())

    def has_due_digests(self, now: datetime) -> bool:
        with self._lock:
            return bool(_MemoryUnitOfWork(self._state).due_digests(now, 1))

    def stats(
        self, pools: Sequence[str] | None, since: datetime, until: datetime, zone: str
    ) -> StatsRows:
        with self._lock:
            s = self._state
            return count_stats(
                s.requests.values(), s.results, s.questions.values(), set(s.suggested), pools,
                since, until, zone,
            )  # fmt: skip

    def has_due_standing(self, now: datetime) -> bool:
        with self._lock:
            return bool(self._state.due_standing(now))

    def snapshot(self) -> list[tuple[StoredRequest, StoredResult]]:
        with self._lock:
            s = self._state
            return [(r, s.result_of(r)) for r in sorted(s.requests.values(), key=_id)]

    def counts(self) -> Mapping[str, int]:
        with self._lock:
            counts = dict(Counter(r.status.value for r in self._state.requests.values()))
            counts["outbox_pending"] = sum(row.pending for row in self._state.outbox.values())
            return counts

    # -- the outbox --------------------------------------------------------------------------

    def claim_outbox(
        self,
        platform: str,
        now: datetime,
        limit: int = 50,
        lease: timedelta = timedelta(seconds=60),
    ) -> list[OutboxItem]:
        with self._writing() as s:

            def claimable(row: _OutboxRow) -> bool:
                return row.next_attempt_at <= now and (
                    row.claimed_until is None or row.claimed_until <= now
                )

            # One person's notes in the order they were written (see the SQL storage).
            waiting: dict[str, int] = {}
            for row in sorted(s.outbox.values(), key=_id):
                if row.pending and not claimable(row):
                    waiting.setdefault(row.recipient, row.id)
            due = [
                row
                for row in s.outbox.values()
                if row.platform == platform
                and row.pending
                and claimable(row)
                and waiting.get(row.recipient, row.id) >= row.id
            ]
            newest = {
                (row.recipient, row.topic): row.id
                for row in sorted(s.outbox.values(), key=_id)
                if row.topic is not None and row.pending
            }
            items: list[OutboxItem] = []
            for row in sorted(due, key=_id):
                if row.topic is not None and newest[row.recipient, row.topic] != row.id:
                    s.outbox[row.id] = replace(row, delivered_at=now, error=SUPERSEDED)
                    continue
                if len(items) == limit:
                    break
                row = replace(row, claimed_until=now + lease, attempts=row.attempts + 1)
                s.outbox[row.id] = row
                members = None if row.group_members is None else list(row.group_members)
                buttons = [dict(b) for b in row.buttons]
                head = (row.id, row.recipient, row.body)
                items.append(
                    OutboxItem(
                        *head, buttons, row.origin, row.attempts, members, row.chart, row.invites
                    )
                )
            return items

    def ack(self, outbox_id: int, now: datetime) -> None:
        with self._writing() as s:
            if (row := s.outbox.get(outbox_id)) is not None:
                s.outbox[outbox_id] = replace(row, delivered_at=now, claimed_until=None, error=None)

    def fail(
        self,
        outbox_id: int,
        now: datetime,
        error: str,
        retry_at: datetime | None,
        lease: datetime | None = None,
    ) -> None:
        with self._writing() as s:
            row = s.outbox.get(outbox_id)
            if row is None or not _still_leased(row, lease):
                return
            row = replace(row, error=error[:500], claimed_until=None)
            if retry_at is None:
                s.outbox[outbox_id] = replace(row, failed_at=now)
            else:
                s.outbox[outbox_id] = replace(row, next_attempt_at=retry_at)

    def release(self, outbox_id: int, retry_at: datetime, lease: datetime | None = None) -> None:
        with self._writing() as s:
            row = s.outbox.get(outbox_id)
            if row is not None and _still_leased(row, lease):
                attempts = row.attempts - 1
                s.outbox[outbox_id] = replace(
                    row, claimed_until=None, next_attempt_at=retry_at, attempts=attempts
                )

    def ping(self) -> None:
        pass

    def outbox_depths(self) -> list[OutboxDepth]:
        with self._lock:
            pending = [row for row in self._state.outbox.values() if row.pending]
        found: dict[str, OutboxDepth] = {}
        for row in pending:
            seen = found.get(row.platform)
            depth, oldest = (
                (seen.depth, min(seen.oldest, row.created_at)) if seen else (0, row.created_at)
            )
            found[row.platform] = OutboxDepth(row.platform, depth + 1, oldest)
        return [found[p] for p in sorted(found)]

    def beat(self, beat: Beat, forget_before: datetime) -> None:
        with self._lock:
            self._beats[beat.process] = beat
            for name in [n for n, b in self._beats.items() if b.seen_at < forget_before]:
                del self._beats[name]

    def beats(self, since: datetime) -> list[Beat]:
        with self._lock:
            return [b for _, b in sorted(self._beats.items()) if b.seen_at >= since]

    def drop_beat(self, process: str) -> None:
        with self._lock:
            self._beats.pop(process, None)

    def pace(self, keys: Sequence[str], step: Step) -> None:
        self._pacing.pace(keys, step)

    def forget_paces(self, before: float) -> int:
        return self._pacing.forget_paces(before)


def _name(s: _State, person: str) -> str:
    """A person's display name in someone's data: their id without the platform, if none."""
    return s.people[person].name if person in s.people else person.split(":")[-1]


def _calendar_due(calendar: LinkedCalendar, now: datetime) -> bool:
    claimed = calendar.claimed_until
    return calendar.next_refresh_at <= now and (claimed is None or claimed <= now)


def _id(row: StoredRequest | _OutboxRow) -> int:
    return row.id


def _still_leased(row: _OutboxRow, lease: datetime | None) -> bool:
    """With ``lease``: whether the row is still leased until then (not claimed since)."""
    return lease is None or row.claimed_until == lease


@hookimpl
def iwant_storages() -> dict[str, type[MemoryStorage]]:
    return {"memory": MemoryStorage}
