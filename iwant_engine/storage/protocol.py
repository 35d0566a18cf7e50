"""What a storage is: the narrow, typed protocol every storage implements.

A storage only stores. It holds no domain rule and no text that people read: what happens to
a request (submit, join, form, dissolve, expire, done), the ignore rule, the check of each
strategy decision and every message live in the engine (``matching.py``, ``messages.py``).
The engine asks a storage for data and hands it the writes of each domain step as one
``Changes`` value.

A storage is named by the ``iwant_storages`` hook and built as
``factory(url, pool_size=..., default_timezone=...)``; its conformance suite is
``tests/engine/test_storage_conformance.py``, run on every built-in storage. The built-in ones:
``sql`` (SQLAlchemy: SQLite, PostgreSQL) and ``memory`` (a dict, gone at exit).

Rules every storage keeps:

- A unit of work (``Storage.transaction()``) is atomic: everything in it is committed when
  the ``with`` block ends normally and nothing when it raises. Several processes may share
  one storage (the SQL one on PostgreSQL): ``lock`` serialises units of work on one key
  until they end.
- Times are aware UTC datetimes, given by the engine's clock; a storage never reads a clock.
- Ids are positive integers that fit in 31 bits; a request id is never given to another
  request while the first exists.
- A lost database raises ``errors.Unavailable`` (nothing was saved); no other exception type
  is expected from a storage for a fault of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Protocol

from ..model import (
    Beat,
    Changes,
    DigestRoom,
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
    StoredGroup,
    StoredRequest,
    StoredResult,
    Wish,
)


class UnitOfWork(Protocol):
    """The data operations of one command, inside one transaction."""

    # -- locks and reads -----------------------------------------------------------------------

    def lock(self, *key: str) -> None:
        """Hold ``key`` (``("pool", pool, activity)`` or ``("person", id)``) until the unit
        of work ends; another unit of work asking for the same key waits. Reads made after
        ``lock`` see everything committed by the unit of work that held it before."""

    def neighbourhood(
        self, wish: Wish, now: datetime, limit: int, margin: timedelta = timedelta(0)
    ) -> Neighbourhood:
        """Everything that matching ``wish`` needs (see ``model.Neighbourhood``), read after
        the caller took the locks of ``wish.person`` and of its (pool, activity). ``margin``
        widens the wish's window for the candidates and groups read (the engine's near
        misses), so that one read serves both; the engine picks the ones that fit."""

    def nearby(self, wish: Wish, now: datetime, margin: timedelta, limit: int) -> NearbyRows:
        """Near misses of ``wish`` (see ``model.NearbyRows``), at most ``limit`` waiting
        requests and ``limit`` groups; one indexed query on a SQL storage (it runs on a
        submission's path)."""

    def request(self, request_id: int) -> StoredRequest | None:
        """One request by id, or None."""

    def group(self, result_id: int) -> StoredGroup | None:
        """One result with the requests that point to it (ordered by id), or None."""

    def people(self, ids: Iterable[str]) -> dict[str, PersonInfo]:
        """What is stored about these people; an unknown id is absent."""

    def shared_groups(self, person: str, others: Iterable[str]) -> list[SharedGroup]:
        """Every group (a result whose requests are MATCHED or DONE) that holds a request of
        ``person`` and one of ``others``', once per other person in it, with every
        ``Question`` stored about the group (answered or not); in any order."""

    def due(self, now: datetime, limit: int) -> list[StoredGroup]:
        """Live results (PENDING, MATCHED) with ``due_at <= now``, oldest first, at most
        ``limit``, each with its members (a waiting request that points to no result: its
        ``own_result``, with it alone); their (pool, activity) locks are held, and a
        (pool, activity) whose lock another unit of work holds is skipped rather than waited
        for. Each returned result is claimed: another unit of work's ``due`` skips it. (A
        storage of one process, which runs one unit of work at a time, just returns them.)"""

    def to_ask(self, ended: datetime, since: datetime, limit: int) -> list[StoredGroup]:
        """DONE results whose meeting ended in ``[since, ended]`` and that were not yet marked
        asked (``mark_asked``), earliest end first, at most ``limit``, each with its members;
        each is claimed (another unit of work's ``to_ask`` skips it) until this one ends."""

    def question(self, result_id: int, person: str) -> Question | None:
        """The question asked of ``person`` about group ``result_id``, or None; held until
        the unit of work ends (another answer to it waits)."""

    # -- writes --------------------------------------------------------------------------------

    def mark_asked(self, result_ids: Iterable[int], now: datetime) -> None:
        """Record that these results' members were asked "Did you meet?" (or need not be)."""

    def add_questions(self, questions: Iterable[Question]) -> None:
        """Store new questions; one already stored for the same group and person is kept as
        it is."""

    def save_answer(self, question: Question) -> None:
        """Write a stored question's ``answer``, ``absent`` and ``answered_at``."""

    def mark_suggested(self, request_id: int) -> None:
        """Record that the request (stored in this unit of work) took a near miss: it was
        made "instead of #N" and met someone (``Storage.stats`` counts these)."""

    # -- weekly digests ------------------------------------------------------------------------

    def digest(self, room: str) -> DigestRoom | None:
        """The room's digest, or None when it gets none."""

    def save_digest(self, digest: DigestRoom) -> None:
        """Insert the room's digest, or replace the stored one."""

    def drop_digest(self, room: str) -> bool:
        """The room gets no digest any more; False when it got none."""

    def due_digests(self, now: datetime, limit: int) -> list[DigestRoom]:
        """Digests with ``next_at <= now``, earliest first, at most ``limit``; each is claimed
        (another unit of work's ``due_digests`` skips it) until this one ends, so that one
        process alone sends each (it saves the next ``next_at`` before the end)."""

    def set_feedback(self, person: str, off: bool) -> None:
        """Set a stored person's ``feedback_off``; the engine stores the person first
        (``add_person``)."""

    def unreplied(self, platform: str, before: datetime, limit: int) -> list[StoredRequest]:
        """Requests of ``platform``'s people (id ``platform:…``) made before ``before`` whose
        answer was never handed over, oldest first, at most ``limit``; each is claimed (another
        unit of work's ``unreplied`` skips it) until this one ends."""

    def add_result(self, result: ResultChange, now: datetime) -> int:
        """Insert a new result (a group forming; ``result.id`` is ignored); its id, for the
        ``Changes`` that put requests into it."""

    def apply(self, changes: Changes, now: datetime) -> int | None:
        """Write ``changes`` (see ``model.Changes``); the id of the new
        request, if there is one. ``errors.DuplicateEvent`` when the new request's
        ``event_key`` is stored already (the unit of work then keeps nothing). ``now`` stamps
        new outbox rows (created, first attempt), the results it changes and ``replied``.
        Each request and each result changes at most once in one ``Changes``; ``results``
        only updates stored results (``id`` not None)."""

    def save_person(self, person: PersonInfo, *, keep_timezone: bool = True) -> None:
        """Insert the person, or update the name and platform zone of a stored one; their own
        zone (``timezone``) is set only for a new person or with ``keep_timezone=False``."""

    def add_person(self, person: PersonInfo) -> None:
        """Insert the person when not stored yet; a stored one is left as it is."""

    def set_timezone(self, person: str, zone: str | None) -> None:
        """Set a stored person's own zone (None: back to the platform's or the default); the
        engine stores the person first (``add_person``)."""

    def add_ignore(self, person: str, ignored: str, now: datetime) -> bool:
        """Record that ``person`` ignores ``ignored``; False when it was already so."""

    def remove_ignore(self, person: str, ignored: str) -> bool:
        """Forget that ``person`` ignores ``ignored``; False when they did not."""

    # -- linked accounts ----------------------------------------------------------------------

    def add_link_code(self, code_hash: str, account: str, expires_at: datetime) -> None:
        """Keep a one-time link code (its hash) that ``account`` asked for."""

    def link_codes(self, now: datetime) -> list[tuple[str, str]]:
        """(code hash, account) of every link code not expired at ``now``."""

    def drop_link_code(self, code_hash: str) -> None:
        """Forget a link code (used, or replaced)."""

    def link_failures(self, account: str, now: datetime, window: timedelta, add: bool) -> int:
        """Wrong link codes given by ``account`` since its first one within ``window`` before
        ``now``; with ``add``, one more is counted first (an older count starts again)."""

    def link(self, account: str, person: str) -> bool:
        """Make ``account`` one of ``person``'s: its person row names ``person``; its requests
        become ``person``'s (made by ``account``); ignore entries naming ``account`` on either
        side name ``person`` instead; ``person`` takes the account's own zone if it has none.
        False, and nothing changed, when the account is linked already or has accounts
        linked to it, or ``person`` is linked itself (the engine holds both people's locks)."""

    def unlink(self, account: str) -> list[str]:
        """Undo ``link``: for a linked account, itself; for a person, every account linked to
        them. The accounts unlinked."""

    # -- a person's data ----------------------------------------------------------------------

    def forget(self, person: str, name: str, rename: Callable[[str], str]) -> dict[str, int]:
        """Delete the person and everything that is theirs: their requests (the engine has
        cancelled the live ones), their own results that no other request points to, whom they
        ignore, their standing wishes, outbox rows addressed to them, their link codes, the
        questions asked of them, their linked calendar and busy blocks (counted as
        ``calendars``), their place in group conversation rows and in other people's
        answers (``Question.absent``); every other outbox row whose body holds
        ``name`` gets the body ``rename(body)``. Other people's ignore entries naming them
        stay. Rows deleted (or changed) per table."""

    def purge(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` finished requests (not PENDING or MATCHED) whose window ended
        before ``before``, results no request points to any more that were last changed before
        it, up to ``limit`` questions asked before it, and outbox rows delivered or given up
        before it; and standing wishes that ended, and link codes that expired, before it; busy
        blocks that ended before it, and up to ``limit`` calendars failing since before it
        (with their busy blocks). How many rows."""

    def ask_to_forget(self, person: str, at: datetime | None) -> datetime | None:
        """Record (or with None, clear) when the person asked to be forgotten; the earlier
        moment, if there was one. The engine stores the person first (``add_person``)."""

    # -- linked calendars ----------------------------------------------------------------------

    def calendar(self, person: str) -> LinkedCalendar | None:
        """The person's linked calendar, or None; held until the unit of work ends (a
        refresh writing it waits), so that what is read is what gets changed."""

    def save_calendar(self, calendar: LinkedCalendar, busy: Sequence[Span] | None = None) -> None:
        """Insert the person's calendar, or replace every field of the stored one; with
        ``busy``, the person's busy blocks become exactly these (without: they stay)."""

    def drop_calendar(self, person: str) -> bool:
        """Delete the person's calendar and busy blocks; False when there was none."""

    def due_calendars(self, now: datetime, limit: int, until: datetime) -> list[LinkedCalendar]:
        """Calendars with ``next_refresh_at <= now`` not leased to someone else
        (``claimed_until`` None or not after ``now``), earliest first, at most ``limit``;
        each is leased to the caller (``claimed_until = until``, as returned) so that no other
        unit of work's ``due_calendars`` returns it while the lease runs."""

    # -- standing wishes -----------------------------------------------------------------------

    def add_standing(self, standing: Standing) -> int:
        """Store a new standing wish (its ``id`` is ignored); its id. The engine stores the
        person first (``add_person``)."""

    def standing(self, person: str, *, claim: bool = False) -> list[Standing]:
        """The person's standing wishes that have not ended, by id; with ``claim``, each is
        held until the unit of work ends (a sweep making one of their days is waited for,
        and the next one skips them), so that what is read is what gets changed."""

    def save_standing(self, standing: Standing) -> None:
        """Write a stored standing wish's ``next_day``, ``create_at``, ``paused_until``,
        ``skips`` and ``ended_at``; the other fields never change."""

    def due_standing(self, now: datetime, limit: int) -> list[Standing]:
        """Standing wishes not ended with ``create_at <= now``, earliest first, at most
        ``limit``; each is claimed (another unit of work's ``due_standing`` skips it, and
        ``save_standing`` of another waits) until this one ends."""


class Storage(Protocol):
    """A storage: units of work, plus reads and outbox operations that need none."""

    def migrate(self) -> None:
        """Bring the schema up to date; safe with several processes starting at once."""

    def close(self) -> None:
        """Release connections; the storage is not used afterwards."""

    def transaction(self) -> AbstractContextManager[UnitOfWork]:
        """A unit of work: committed when the block ends, rolled back when it raises."""

    # -- reads ---------------------------------------------------------------------------------

    def person(self, person: str) -> PersonInfo | None:
        """What is stored about one person, or None."""

    def people(self, ids: Iterable[str]) -> dict[str, PersonInfo]:
        """What is stored about these people; an unknown id is absent."""

    def open_requests(self, person: str, now: datetime) -> list[OpenRequest]:
        """The person's live requests whose window has not ended, by window start then id;
        for a matched one, ``others`` holds the display names (the id when not stored) of
        the group's other requests, by request id."""

    def pools_of(self, person: str, since: datetime) -> list[str]:
        """The pools of the person's requests made since ``since``, sorted."""

    def board(
        self, pools: Iterable[str], start: datetime, end: datetime, now: datetime, reader: str,
        limit: int,
    ) -> NearbyRows:  # fmt: skip
        """What is wanted in ``pools`` between ``start`` and ``end`` (see ``model.NearbyRows``):
        waiting requests (of anyone but ``reader``) whose window overlaps it, deadline not
        passed, and formed groups whose meeting starts in it and not before now, with their
        members; at most ``limit`` of each; ``apart``: ignore pairs between ``reader`` and
        anyone in them."""

    def ignored(self, person: str) -> list[str]:
        """Ids of the people ``person`` ignores, sorted."""

    def request_by_event(self, event_key: str) -> StoredRequest | None:
        """The request stored with this ``platform:event id``, or None."""

    def has_unreplied(self, platform: str, before: datetime) -> bool:
        """Whether ``UnitOfWork.unreplied`` would find anything; cheap, takes no write lock."""

    def mark_replied(self, request_ids: Iterable[int], now: datetime) -> None:
        """Record that these requests' answers were handed to the platform."""

    def has_due(self, now: datetime) -> bool:
        """Whether ``UnitOfWork.due`` would find anything; cheap, takes no write lock."""

    def accounts(self, person: str) -> list[str]:
        """The accounts linked to ``person`` (not ``person`` itself), sorted."""

    def person_data(self, person: str) -> PersonData:
        """Everything stored about the person (see ``model.PersonData``), for an export."""

    def has_to_ask(self, ended: datetime, since: datetime) -> bool:
        """Whether ``UnitOfWork.to_ask`` would find anything; cheap, takes no write lock."""

    def has_due_digests(self, now: datetime) -> bool:
        """Whether ``UnitOfWork.due_digests`` would find anything; cheap, takes no write lock."""

    def stats(
        self, pools: Sequence[str] | None, since: datetime, until: datetime, zone: str
    ) -> StatsRows:
        """The counts of ``!iwant stats`` (see ``model.StatsRows``) over the requests of
        ``pools`` (None: every pool) whose window starts in ``[since, until)``; hours and days
        are local to the IANA zone ``zone``. Counts only: no id or name leaves it."""

    def has_due_standing(self, now: datetime) -> bool:
        """Whether ``UnitOfWork.due_standing`` would find anything; cheap, takes no write
        lock."""

    def busy(self, person: str, start: datetime, end: datetime) -> list[Span]:
        """The person's stored busy blocks overlapping ``[start, end)``, by start; one
        indexed query (it runs on a submission's path)."""

    def calendar_people(self) -> list[str]:
        """Every person with a linked calendar (the engine caches it a while)."""

    def has_due_calendars(self, now: datetime) -> bool:
        """Whether ``UnitOfWork.due_calendars`` would find anything; cheap, takes no write
        lock."""

    def snapshot(self) -> list[tuple[StoredRequest, StoredResult]]:
        """Every request with its result (``own_result`` when it points to none), by request
        id: for invariant checks and tests."""

    def counts(self) -> Mapping[str, int]:
        """Requests per status, and ``outbox_pending``: undelivered, not given-up rows."""

    # -- operations: health, heartbeats --------------------------------------------------------

    def ping(self) -> None:
        """Raise ``errors.Unavailable`` unless the database answers now; one trivial query."""

    def outbox_depths(self) -> list[OutboxDepth]:
        """Per platform with any: undelivered, not given-up outbox rows and the oldest one's
        ``created_at``, by platform; one indexed query (a health check runs it)."""

    def beat(self, beat: Beat, forget_before: datetime) -> None:
        """Store a process's heartbeat (insert, or replace the row of ``beat.process``), and
        drop the rows of processes last seen before ``forget_before``."""

    def beats(self, since: datetime) -> list[Beat]:
        """The processes seen at or after ``since``, by process name."""

    def drop_beat(self, process: str) -> None:
        """Forget a process (it stopped cleanly)."""

    # -- the outbox ----------------------------------------------------------------------------

    def claim_outbox(
        self,
        platform: str,
        now: datetime,
        limit: int = 50,
        lease: timedelta = timedelta(seconds=60),
    ) -> list[OutboxItem]:
        """Up to ``limit`` undelivered rows of ``platform`` due at ``now`` (not given up, not
        leased to someone else), oldest first; each is leased to the caller until
        ``now + lease`` and its ``attempts`` counted up. Two callers never get the same row
        while a lease runs. One recipient's rows are handed out in id order: a row is not
        handed out while an older undelivered row to the same recipient is not due or is
        leased. A row with a ``topic`` for which a newer undelivered row of the
        same recipient and topic exists is not handed out: it is marked delivered with the
        error ``model.SUPERSEDED``."""

    def ack(self, outbox_id: int, now: datetime) -> None:
        """Mark a row delivered."""

    def fail(
        self,
        outbox_id: int,
        now: datetime,
        error: str,
        retry_at: datetime | None,
        lease: datetime | None = None,
    ) -> None:
        """Record a failed send: retry at ``retry_at``, or give the row up when it is None.
        With ``lease`` (the end of the caller's claim), only while the row is still leased
        until then: a row another process has claimed since is left to it."""

    def release(self, outbox_id: int, retry_at: datetime, lease: datetime | None = None) -> None:
        """Give a claimed row back unsent, due again at ``retry_at``; the claim's attempt is
        not counted (the engine paces a chat and goes on with other rows). ``lease`` as for
        ``fail``."""

    # -- delivery pacing -----------------------------------------------------------------------

    def pace(
        self, keys: Sequence[str], step: Callable[[dict[str, float]], dict[str, float]]
    ) -> None:
        """Shared budgets of delivery (``iwant_engine.pacing``): read the number stored under
        each of ``keys`` (a key never stored is absent), call ``step`` with them, store the
        numbers it returns; atomic for every process of this storage (two callers with a key
        in common run one after the other). The numbers are the engine's; a storage that
        serves one process may keep them in memory."""

    def forget_paces(self, before: float) -> int:
        """Drop the numbers ``pace`` stored that are below ``before`` (budgets long since
        refilled, the same as never stored); how many."""
