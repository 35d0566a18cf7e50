"""The engine's public API: submit, cancel, list, set a time zone, sweep, deliver.

A test, a benchmark or a chat plugin drives it the same way; it imports no chat library.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from . import board, links, matching, pacing, privacy, standing, standing_commands
from . import messages as msg
from . import settings as settings_mod
from .clock import Clock, SystemClock
from .errors import DuplicateEvent, SendFailed, StrategyError, Unavailable, UserError
from .grammar import is_number, parse_wish, split_every
from .invariants import refusal
from .model import (
    LIVE,
    Candidate,
    Changes,
    Decision,
    DeliveryReport,
    MatchContext,
    Nearby,
    NearbyRows,
    NewOutbox,
    OpenGroup,
    OpenRequest,
    OutboxItem,
    Person,
    PersonInfo,
    Status,
    StoredRequest,
    Suggestion,
    Wish,
)
from .pacing import Pacer, Scope
from .plugins import make_plugin_manager, named, report
from .settings import Settings, SettingsError
from .storage.protocol import Storage
from .timephrases import warm_up

log = logging.getLogger(__name__)
# How long a person's own zone is cached; set in another process, it shows after this.
ZONE_CACHE_SECONDS = 60
# platform:id, the id of printable characters only (no space, control or format character).
PERSON_ID = re.compile(r"^[a-z0-9_-]{1,32}:[^\s\x00-\x1f\x7f]{1,160}$")
#: Ids are 32-bit on PostgreSQL; a larger number names no request.
MAX_ID = 2**31 - 1
#: A notification is given up after this many failed sends; retries back off exponentially.
MAX_ATTEMPTS = 8
LEASE = timedelta(seconds=60)
SWEEP_BATCH = 500
#: The board in a direct message shows the rooms of a person's requests this far back.
BOARD_HISTORY = timedelta(days=30)


class Engine:
    """One engine instance: settings, a plugin manager of its own, a storage and a clock."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        plugins: tuple[object, ...] = (),
        strict: bool = False,
    ) -> None:
        """``strict`` (for the strategy kit): a strategy decision that breaks an invariant, or
        that differs when asked again, raises ``StrategyError`` instead of being logged."""
        self.settings = settings
        self.strict = strict
        self._zones: dict[str, tuple[float, str | None]] = {}  # person -> (until, zone name)
        self._next_purge = 0.0  # time.monotonic() of the next retention round
        self._links: dict[str, tuple[float, str]] = {}  # account -> (until, person id)
        self.clock = clock or SystemClock()
        self.zones = matching.Zones(ZoneInfo(settings.default_timezone))
        self.pm = make_plugin_manager(plugins)
        storages = named(self.pm, "iwant_storages")
        strategies = named(self.pm, "iwant_strategies")
        if settings.storage not in storages:
            raise SettingsError(
                f"plugins.cfg: unknown storage {settings.storage!r}; installed: "
                f"{', '.join(sorted(storages))}"
            )
        self.strategies: dict[str, matching.Strategy] = {}
        for name in sorted({settings.strategy, *settings.strategy_rules.values()}):
            if name not in strategies:
                raise SettingsError(
                    f"plugins.cfg: unknown strategy {name!r}; installed: "
                    f"{', '.join(sorted(strategies))}"
                )
            try:
                self.strategies[name] = strategies[name][0](
                    settings.strategy_settings.get(name, {})
                )
            except ValueError as err:
                raise SettingsError(f"plugins.cfg [strategy:{name}]: {err}") from None
        self.storage: Storage = storages[settings.storage][0](
            settings.database_url,
            pool_size=settings.pool_size,
            default_timezone=settings.default_timezone,
        )
        self.storage.migrate()
        self.pacer = Pacer(self.storage.pace)
        warm_up()

    @classmethod
    def from_environment(
        cls,
        cfg_path: str | Path | None = None,
        data_dir: str | None = None,
        clock: Clock | None = None,
    ) -> Engine:
        """Settings from ``plugins.cfg`` and ``IWANT_*`` variables; SQLite in ``data_dir``."""
        settings = settings_mod.load(cfg_path)
        if data_dir and not os.environ.get("IWANT_DATABASE_URL", "").strip():
            url = f"sqlite:///{Path(data_dir).resolve() / 'iwant.db'}"
            settings = replace(settings, database_url=url)
        return cls(settings, clock)

    def plugins_report(self) -> str:
        """This engine's plugins (with versions and hooks) and the active storage and
        strategies."""
        return report(self.pm, self.settings)

    def close(self) -> None:
        self.storage.close()

    # -- people ------------------------------------------------------------------------------

    def zone_of(self, person: Person) -> ZoneInfo:
        """The person's own zone (``!iwant tz``; a linked account's is its person's), else
        the platform's, else the default."""
        cached = self._zones.get(person.id)
        if cached is None or cached[0] < time.monotonic():
            main, info = self._identity(person)
            if main != person.id:  # a linked account's zone is its person's
                info = self.storage.person(main)
            self._remember_zone(person, info.timezone if info else None)
        return self._zone_guess(person)

    def as_person(self, person: Person) -> Person:
        """The person an account is (``!iwant link``): another account's id when linked."""
        main, _ = self._identity(person)
        return person if main == person.id else replace(person, id=main)

    def _identity(self, person: Person) -> tuple[str, PersonInfo | None]:
        """The id of the person an account is, as stored now, and the account's own row."""
        info = self.storage.person(person.id)
        main = info.canonical if info is not None and info.canonical else person.id
        self._remember_link(person.id, main)
        return main, info

    def _remember_link(self, account: str, person: str) -> None:
        if len(self._links) > 100_000:
            self._links.clear()
        self._links[account] = (time.monotonic() + ZONE_CACHE_SECONDS, person)

    def _person_guess(self, person: Person) -> str:
        """The person an account is, from what this process knows (checked by ``submit``)."""
        cached = self._links.get(person.id)
        return cached[1] if cached and cached[0] > time.monotonic() else person.id

    def _remember_zone(self, person: Person, own: str | None) -> None:
        if len(self._zones) > 100_000:
            self._zones.clear()
        self._zones[person.id] = (time.monotonic() + ZONE_CACHE_SECONDS, own)

    def _zone_guess(self, person: Person) -> ZoneInfo:
        """The zone from what this process knows, without asking the storage."""
        cached = self._zones.get(person.id)
        for name in (cached[1] if cached else None, person.timezone):
            if name:
                try:
                    return ZoneInfo(name)
                except (ZoneInfoNotFoundError, ValueError):
                    continue
        return ZoneInfo(self.settings.default_timezone)

    def set_timezone(self, person: Person, name: str) -> str:
        name = name.strip()
        if not name:
            zone = self.zone_of(person)
            return f"Your time zone is {zone.key}; change it with !iwant tz Europe/Prague."
        match = _find_zone(name)
        if match is None:
            raise UserError(
                f"I don't know the time zone '{msg.quote(name)}'; try !iwant tz Europe/Prague."
            )
        who = self.as_person(person)
        with self.storage.transaction() as uow:
            uow.add_person(PersonInfo(who.id, person.name[: matching.NAME_MAX]))
            uow.set_timezone(who.id, match)
        self._zones.clear()  # every account of theirs has it now
        now = self.clock.now().astimezone(ZoneInfo(match))
        return f"Your time zone is now {match} (it is {now:%H:%M} there)."

    # -- requests ----------------------------------------------------------------------------

    def _check_person(self, person: Person) -> None:
        if not valid_person_id(person.id):
            raise UserError("I can't tell who you are on this platform, so I stored nothing.")

    def pool_for(self, person: Person, room: str | None) -> str:
        base = f"{person.platform}:{room}" if room else f"{person.platform}:dm"
        return self.settings.pool_of(base)

    def submit(
        self,
        person: Person,
        text: str,
        room: str | None = None,
        event_id: str | None = None,
        durable_reply: bool = False,
    ) -> msg.Note:
        """Parse ``text`` (what follows ``!iwant``), store it, match it; the reply to send.

        The text is read in the zone this process believes is the person's; the unit of work
        reads the stored one anyway, and a submission read in the wrong zone is read again
        (so no separate read of the person for the common case, and a zone set in another
        process counts at once).

        ``event_id``: the platform's id of the message; the same id again stores nothing and
        answers what the first one made. ``durable_reply``: the answer is the caller's to
        send and acknowledge (``replied``); one not acknowledged within ``[limits]
        reply_grace_seconds`` (30) is queued as a direct message by ``answer_again``."""
        self._check_person(person)
        every = split_every(text)
        if every is not None:
            return self.add_standing(person, *every, room)
        key = f"{person.platform}:{event_id}"[:200] if event_id else None
        zone = self._zone_guess(person)
        sure = person.id in self._zones
        who = self._person_guess(person)
        for _ in range(4):
            try:
                return self._submit_in(person, who, text, room, zone, key, durable_reply)
            except matching.WrongPerson as linked:  # linked in another process meanwhile
                who = linked.person
                self._remember_link(person.id, who)
                zone, sure = self.zone_of(person), True
            except DuplicateEvent:
                assert key is not None
                return self._answered_already(person, key)
            except Unavailable:
                # The connection may have dropped during COMMIT, after the server committed:
                # the key tells whether it did, before anyone hears "nothing was saved".
                if key is None or self.storage.request_by_event(key) is None:
                    raise
                return self._answered_already(person, key, msg.saved_after_all)
            except matching.WrongZone as wrong:
                zone, sure = ZoneInfo(wrong.zone), True
            except UserError:
                if key is not None and self.storage.request_by_event(key) is not None:
                    # A re-delivered event read again later (its time may have passed since):
                    # the answer is what the first delivery made.
                    return self._answered_already(person, key)
                if sure:
                    raise
                zone, sure = self.zone_of(person), True  # the refusal may depend on the zone
        raise RuntimeError("the person's zone kept changing")  # pragma: no cover

    def _answered_already(
        self, person: Person, key: str, say: Callable[[str], str] = msg.answered_already
    ) -> msg.Note:
        stored = self.storage.request_by_event(key)
        if stored is None or stored.recipient != person.id:
            raise UserError("I have that message already; see !iwant list.")
        with self.storage.transaction() as uow:
            listed = matching.as_listed(uow, stored)
        body = say(describe(listed, self.zone_of(person)))
        live = listed.status in LIVE
        buttons = msg.cancel_button(stored.id) if live else []
        return msg.Note(person.id, body, buttons, stored.id)

    def _submit_in(
        self,
        person: Person,
        who: str,
        text: str,
        room: str | None,
        zone: ZoneInfo,
        event_key: str | None,
        durable_reply: bool,
    ) -> msg.Note:
        now = self.clock.now()
        wish, replacing = self._wish(who, self.pool_for(person, room), text, now, zone)
        ctx = MatchContext(now, wish.length)
        origin = f"{person.platform}:{room}" if room else None
        me = PersonInfo(person.id, person.name, None, person.timezone)
        try:
            with self.storage.transaction() as uow:
                done = matching.submit(
                    uow,
                    wish,
                    me,
                    origin,
                    self.decide,
                    ctx,
                    self.settings.max_open_requests,
                    self.zones,
                    read_in=zone,
                    event_key=event_key,
                    replied=not durable_reply,
                    replacing=replacing,
                    suggest=self.suggest if self.settings.suggestions else None,
                )
        except matching.NoLongerPossible as gone:
            return self._not_possible(person, wish, gone.replaced, zone)
        self._remember_zone(person, done.own_zone)
        return done.reply

    def suggest(self, wish: Wish, nearby: Nearby, ctx: MatchContext) -> list[Suggestion]:
        """Every ``iwant_suggestions`` plugin's near misses for ``wish``, together."""
        found = self.pm.hook.iwant_suggestions(wish=wish, nearby=nearby, ctx=ctx)
        return [s for each in found for s in each]

    def _not_possible(
        self, person: Person, wish: Wish, replaced: StoredRequest, zone: ZoneInfo
    ) -> msg.Note:
        """A suggestion taken too late: why, and the nearest ways left for the wish it was
        to replace."""
        now = self.clock.now()
        with self.storage.transaction() as uow:
            rows = uow.nearby(wish, now, timedelta(0), matching.NEARBY_LIMIT)
            full = any(
                g.result.start == wish.earliest and g.result.size >= g.result.max_size
                for g in rows.groups
            )
            why = "that group is full now" if full else "the people who wanted that time are gone"
            body = msg.not_possible_any_more(
                why, replaced.activity, replaced.earliest, replaced.latest, zone
            )
            buttons = msg.cancel_button(replaced.id)
            if self.settings.suggestions:
                found = matching.near_misses(
                    uow, replaced.as_wish(), MatchContext(now, replaced.length), self.suggest
                )
                body, buttons = msg.with_suggestions(
                    body, buttons, found, replaced.activity, replaced.max_size, zone, now,
                    replaced.id,
                )  # fmt: skip
        return msg.Note(person.id, body, buttons)

    def _wish(
        self, person_id: str, pool: str, text: str, now: datetime, zone: ZoneInfo
    ) -> tuple[Wish, int | None]:
        """``text`` read as a wish typed at ``now`` in ``zone``, with the pool's group floor;
        and the request it replaces (``instead of #12``), if any."""
        parsed = parse_wish(text, now, zone, self.settings)
        wish = Wish(
            person_id,
            pool,
            parsed.activity,
            parsed.earliest,
            parsed.latest,
            parsed.deadline,
            parsed.length,
            parsed.max_size,
            parsed.min_size,
        )
        floor = self.min_group_size(wish.pool, wish.activity)
        if floor > wish.min_size:
            if floor > wish.max_size:
                raise UserError(
                    f"{wish.activity} here needs at least {floor} people, more than your max "
                    f"{wish.max_size}; try !iwant {wish.activity} max {floor}."
                )
            wish = replace(wish, min_size=floor)
        return wish, parsed.replaces

    def open_requests(self, person: Person) -> list[OpenRequest]:
        """The person's live requests, made from any of their linked accounts."""
        return self.storage.open_requests(self.as_person(person).id, self.clock.now())

    def list_text(self, person: Person) -> str:
        items = self.open_requests(person)
        if not items:
            return "You have no open requests. Start one with !iwant coffee."
        zone = self.zone_of(person)
        lines = ["Your open requests:"]
        for n, item in enumerate(items, 1):
            lines.append(f"{n}. {describe(item, zone)}")
        lines.append(f"Cancel one with !iwant cancel 1 (or !iwant cancel {items[0].activity}).")
        return "\n".join(lines)

    def cancel(self, person: Person, selector: str = "") -> msg.Note:
        """Cancel by list number (``2``), activity (``lunch``), id (``#12``) or the only one."""
        self._check_person(person)
        who = self.as_person(person).id
        now = self.clock.now()
        selector = " ".join(selector.lower().split())
        if selector.startswith("#") and is_number(selector[1:]):
            request_id = int(selector[1:])
            if not 0 < request_id <= MAX_ID:  # no id is that large: not a request of theirs
                raise UserError(msg.NOT_YOURS)
        else:
            request_id = _select(self.storage.open_requests(who, now), selector)
        ctx = MatchContext(now, self.settings.default_window)
        with self.storage.transaction() as uow:
            return matching.cancel(uow, who, request_id, self.decide, ctx, self.zones)

    def min_group_size(self, pool: str, activity: str) -> int:
        """The smallest group the strategy serving ``pool`` and ``activity`` forms."""
        strategy = self.strategies[self.settings.strategy_for(pool, activity)]
        return int(getattr(strategy, "min_group_size", 2))

    def decide(
        self,
        wish: Wish,
        candidates: Sequence[Candidate],
        groups: Sequence[OpenGroup],
        ctx: MatchContext,
    ) -> Decision:
        """Ask the strategy that serves the wish's pool and activity, with its settings."""
        name = self.settings.strategy_for(wish.pool, wish.activity)
        ctx = replace(
            ctx, length=wish.length, settings=self.settings.strategy_settings.get(name, {})
        )
        decision = self.strategies[name](wish, candidates, groups, ctx)
        if self.strict:
            problem = refusal(decision, wish, candidates, groups, ctx)
            # Asked again several times: a choice at random between two candidates gives the
            # same answer twice half the time, but five times in a row once in sixteen.
            again = (self.strategies[name](wish, candidates, groups, ctx) for _ in range(4))
            if problem is None and any(other != decision for other in again):
                problem = "the same inputs gave a different decision when asked again"
            if problem:
                raise StrategyError(f"strategy {name!r}: {problem}: {decision!r}")
        return decision

    # -- linked accounts and a person's data (links.py, privacy.py) -------------------------

    def link(self, person: Person, code: str = "") -> msg.Note:
        """``!iwant link`` (a one-time code) and ``!iwant link CODE`` (on the other account)."""
        return links.link(self, person, code)

    def unlink(self, person: Person) -> str:
        """``!iwant unlink``, from either account: two people again."""
        return links.unlink(self, person)

    def export(self, person: Person) -> str:
        """``!iwant export``: everything iwant keeps about the person, as JSON."""
        return privacy.export(self, person)

    def forget_me(self, person: Person, args: str = "") -> msg.Note:
        """``!iwant forget me``, then ``!iwant forget me confirm`` within five minutes."""
        return privacy.forget_me(self, person, args)

    def forget(self, person_id: str, name: str | None = None) -> dict[str, int]:
        """Delete a person, their linked accounts and everything theirs (admins too)."""
        return privacy.forget(self, person_id, name)

    def purge(self, limit: int = privacy.PURGE_BATCH) -> int:
        """Retention: delete what is finished and older than ``[limits] retention_days``."""
        return privacy.purge(self, limit)

    def forget_caches(self) -> None:
        """Forget what this process believes about people's zones and links."""
        self._zones.clear()
        self._links.clear()

    # -- the board -------------------------------------------------------------------------

    def board(self, person: Person, room: str | None = None, activity: str = "") -> msg.Note:
        """``!iwant board``: what is wanted today and tomorrow in the room (in a direct
        message: in the rooms of the person's requests of the last 30 days), in their zone."""
        self._check_person(person)
        words = activity.lower().split()
        if len(words) > 1:  # "board games 17:00" is a wish for board games
            rest = msg.quote(" ".join(words[1:]), 40)
            raise UserError(
                f"An activity is one word; try !iwant board-{msg.quote(words[0])} {rest}."
            )
        now, zone, today = self._today(person)
        reader = self.as_person(person).id
        if room:
            pools, where = [self.pool_for(person, room)], "here"
        else:
            pools = self.storage.pools_of(reader, now - BOARD_HISTORY)
            pools = sorted({*pools, self.pool_for(person, None)})
            where = "in your rooms"
        start = standing.day_start(today, zone)
        end = standing.day_start(today + timedelta(days=2), zone)
        rows = self.storage.board(pools, start, end, now, reader, board.ROWS_LIMIT)
        wanted = " ".join(activity.lower().split())
        if wanted:
            rows = NearbyRows(
                tuple(r for r in rows.waiting if r.activity == wanted),
                tuple(g for g in rows.groups if g.result.activity == wanted),
                rows.apart,
            )
            where = f"{where} for {msg.quote(wanted, 24)}"
        mine = self.storage.open_requests(reader, now)
        text, buttons = board.render(rows, reader, mine, zone, now, where)
        return msg.Note(person.id, text, buttons)

    # -- standing wishes (standing_commands.py) ---------------------------------------------

    def add_standing(
        self, person: Person, text: str, days: frozenset[int], room: str | None = None
    ) -> msg.Note:
        """``!iwant lunch 12:00 every weekday``: store it and make the days already due."""
        return standing_commands.add_standing(self, person, text, days, room)

    def standing_text(self, person: Person) -> str:
        """``!iwant standing``: the person's standing wishes, numbered."""
        return standing_commands.standing_text(self, person)

    def stop(self, person: Person, selector: str = "") -> str:
        """``!iwant stop 2`` (or ``stop lunch``, ``stop #12``): end a standing wish."""
        return standing_commands.stop(self, person, selector)

    def skip(self, person: Person, args: str) -> str:
        """``!iwant skip friday`` (or ``skip lunch friday``): leave one day out."""
        return standing_commands.skip(self, person, args)

    def pause(self, person: Person, args: str) -> str:
        """``!iwant pause until 2026-12-14`` or ``pause 2 weeks``."""
        return standing_commands.pause(self, person, args)

    def resume(self, person: Person) -> str:
        """``!iwant resume``: end a pause."""
        return standing_commands.resume(self, person)

    def _today(self, person: Person) -> tuple[datetime, ZoneInfo, date]:
        now = self.clock.now()
        zone = self.zone_of(person)
        return now, zone, now.astimezone(zone).date()

    # -- ignore lists ------------------------------------------------------------------------

    def ignore(self, person: Person, other: Person) -> str:
        """``person`` is never grouped with ``other`` again; ``other`` is not told."""
        self._check_person(person)
        self._check_other(other, "ignore")
        me, them = self.as_person(person), self.as_person(other)
        if them.id == me.id:
            raise UserError("You can't ignore yourself; try !iwant ignore @someone.")
        who = msg.quote(other.name, 40)
        with self.storage.transaction() as uow:
            uow.add_person(PersonInfo(me.id, person.name[: matching.NAME_MAX]))
            added = uow.add_ignore(me.id, them.id, self.clock.now())
        if added:
            return f"You won't be grouped with {who} from now on; they are not told."
        return f"You already ignore {who}; !iwant unignore {who} undoes it."

    def _check_other(self, other: Person, verb: str) -> None:
        if valid_person_id(other.id):
            return
        local = other.id.split(":", 1)[-1]
        why = "has invisible characters in it" if msg.visible(local) != local else "is no name"
        raise UserError(f"'{msg.quote(local)}' {why}; try !iwant {verb} @bob.")

    def unignore(self, person: Person, other: Person) -> str:
        self._check_person(person)
        self._check_other(other, "unignore")
        me, them = self.as_person(person), self.as_person(other)
        with self.storage.transaction() as uow:
            removed = uow.remove_ignore(me.id, them.id)
        who = msg.quote(other.name, 40)
        if removed:
            return f"You can be grouped with {who} again."
        return f"You don't ignore {who}; see !iwant ignored."

    def ignored(self, person: Person) -> list[str]:
        """Person ids ``person`` ignores."""
        return self.storage.ignored(self.as_person(person).id)

    def display_names(self, ids: Sequence[str]) -> list[str]:
        """What each person is called (their id without the platform when not stored)."""
        known = self.storage.people(ids)
        return [known[i].name if i in known else i.split(":", 1)[-1] for i in ids]

    # -- background work ---------------------------------------------------------------------

    def replied(self, request_ids: Sequence[int]) -> None:
        """These requests' answers were handed to the platform (see ``submit``)."""
        if request_ids:
            self.storage.mark_replied(request_ids, self.clock.now())

    def answer_again(self, platform: str) -> int:
        """Queue, as direct messages, the answers to ``platform``'s people never acknowledged
        within the grace period (their bot process died between its commit and its reply);
        how many. A poller's job, like ``sweep``."""
        now = self.clock.now()
        before = now - self.settings.reply_grace
        if not self.storage.has_unreplied(platform, before):
            return 0
        with self.storage.transaction() as uow:
            changes = Changes()
            for request in uow.unreplied(platform, before, 50):
                changes.replied.append(request.id)
                if request.status not in LIVE:
                    continue  # it has ended, and its person was told so
                listed = matching.as_listed(uow, request)
                zone = self.zones.of(uow.people([request.person]).get(request.person))
                body = msg.answer_again(describe(listed, zone))
                buttons = msg.cancel_button(request.id)
                changes.outbox.append(NewOutbox(request.recipient, body, buttons, request.origin))
            uow.apply(changes, now)
        return len(changes.outbox)

    def sweep(self, batch: int = SWEEP_BATCH) -> tuple[int, int]:
        """Expire due requests (writing "nobody joined" notes), mark past meetings DONE;
        (expired, done). Works in units of work of at most ``batch`` results."""
        now = self.clock.now()
        expired = done = 0
        self.sweep_standing(now)
        self.purge()
        if not self.storage.has_due(now):
            return expired, done  # the common case for a poller: no write transaction
        while True:
            with self.storage.transaction() as uow:
                suggest = self.suggest if self.settings.suggestions else None
                e, d = matching.sweep_step(uow, now, batch, self.zones, suggest)
            expired, done = expired + e, done + d
            if not e + d:
                return expired, done

    def sweep_standing(
        self, now: datetime | None = None, batch: int = standing_commands.STANDING_BATCH
    ) -> int:
        """Make the days' wishes of standing wishes that are due (part of ``sweep``)."""
        return standing_commands.sweep_standing(self, now, batch)

    def deliver(
        self,
        platform: str,
        send: Callable[[OutboxItem], None],
        limit: int = 50,
        scopes: Callable[[OutboxItem], Sequence[Scope]] | None = None,
    ) -> DeliveryReport:
        """Send due outbox rows of ``platform`` with ``send``; ack, retry or give up each.

        A failed send is retried after 2, 4, 8 … seconds (at most 10 minutes), or after the
        ``retry_after`` of a ``SendFailed`` that says one, and given up after
        ``MAX_ATTEMPTS`` attempts, or at once for a ``SendFailed`` that is ``permanent``.
        The row keeps the text of a ``SendFailed`` (its raiser made it safe); of any other
        exception, only its type's name (its message may carry a secret).

        With ``scopes`` (the budgets a row spends, as the platform's adapter says), each send
        waits for a slot that every process of the bot leaves free (``pacing``), but never
        long: a row whose slot is more than ``pacing.PROMPT`` away (its chat is busy) is set
        aside while the others go, tried once more after them, and then given back until its
        slot (``deferred``; its attempt not counted). So one busy chat never holds up the
        rest; a person's later rows wait behind one set aside, so each reads their notes in
        the order they were written; and rows are never held near the end of their lease."""
        delivered = retried = deferred = 0
        given_up: list[OutboxItem] = []
        claimed_at = self.clock.now()
        claimed = self.storage.claim_outbox(platform, claimed_at, limit, LEASE)
        lease = claimed_at + LEASE  # a row given back or failed only while still ours
        # Past half the lease another process may claim these rows again: give back the rest.
        hold_until = self.pacer.clock() + LEASE.total_seconds() / 2
        rows = [(item, scopes(item) if scopes is not None else ()) for item in claimed]
        for last in (False, True):
            busy: list[tuple[OutboxItem, Sequence[Scope]]] = []
            # People with a row set aside or given back: their later rows wait too, so each
            # person reads their notes in the order they were written.
            held: set[str] = set()
            for item, paced in rows:
                late = self.pacer.clock() > hold_until
                if late or item.recipient in held:
                    if last or late:
                        self.storage.release(item.id, self.clock.now(), lease)
                        deferred += 1
                    else:
                        busy.append((item, paced))
                    held.add(item.recipient)
                    continue
                if paced:
                    slot, reserved = self.pacer.reserve(paced, pacing.PROMPT)
                    if not reserved and not last:
                        busy.append((item, paced))  # its chat is busy: after the others
                        held.add(item.recipient)
                        continue
                    if not reserved or slot > hold_until:
                        later = timedelta(seconds=max(slot - self.pacer.clock(), 0.0))
                        self.storage.release(item.id, self.clock.now() + later, lease)
                        deferred += 1
                        held.add(item.recipient)
                        continue
                    self.pacer.wait_for(slot)
                try:
                    send(item)
                except Exception as err:  # the platform failed; the row stays until it succeeds
                    failed = err if isinstance(err, SendFailed) else None
                    permanent = (failed is not None and failed.permanent) or (
                        item.attempts >= MAX_ATTEMPTS
                    )
                    log.warning(
                        "sending outbox row %s failed (%s): %s",
                        item.id,
                        "permanent" if permanent else "will retry",
                        type(err).__name__,
                    )
                    now = self.clock.now()
                    # A platform that said how long to wait (a 429's retry_after) is believed.
                    wait = failed.retry_after if failed is not None else None
                    if wait is None or not 0 < wait <= 600:
                        wait = min(2**item.attempts, 600)
                    retry_at = None if permanent else now + timedelta(seconds=wait)
                    error = str(err) if failed is not None else type(err).__name__
                    self.storage.fail(item.id, now, error, retry_at, lease)
                    if permanent:
                        given_up.append(item)
                    else:
                        retried += 1
                    continue
                self.storage.ack(item.id, self.clock.now())
                delivered += 1
            rows = busy
        return DeliveryReport(delivered, retried, given_up, deferred)

    def pause_sending(self, scopes: Sequence[Scope], seconds: float) -> None:
        """The platform answered 429: nothing more in these scopes for ``seconds``, in every
        process."""
        self.pacer.pause(scopes, seconds)


def valid_person_id(person_id: str) -> bool:
    """``platform:id`` with an id of visible characters: what every path stores."""
    return bool(PERSON_ID.match(person_id)) and msg.visible(person_id) == person_id


ENDED = {Status.CANCELLED: "cancelled", Status.EXPIRED: "ended: nobody joined"}


def describe(item: OpenRequest, zone: ZoneInfo) -> str:
    if item.status in ENDED or item.status == Status.DONE:
        window = f"{msg.clock(item.earliest, zone)}–{msg.clock(item.latest, zone)}"
        state = ENDED.get(item.status, "over")
        return f"{item.activity} {window} ({msg.day(item.earliest, zone)}), {state}"
    if item.status == Status.MATCHED and item.start and item.end:
        return (
            f"{item.activity} at {msg.slot(item.start, item.end, zone)} with "
            f"{', '.join(item.others)}"
        )
    window = f"{msg.clock(item.earliest, zone)}–{msg.clock(item.latest, zone)}"
    return (
        f"{item.activity} {window} ({msg.day(item.earliest, zone)}), waiting; "
        f"you'll hear by {msg.clock(item.deadline, zone)}"
    )


def _select(items: list[OpenRequest], selector: str) -> int:
    if not items:
        raise UserError("You have no open requests to cancel. Start one with !iwant coffee.")
    if not selector:
        if len(items) == 1:
            return items[0].request_id
        raise UserError(
            f"You have {len(items)} open requests; say which: !iwant cancel 1 "
            "(numbers from !iwant list) or !iwant cancel coffee."
        )
    if is_number(selector):
        if not 1 <= int(selector) <= len(items):
            raise UserError(
                f"There is no request {msg.quote(selector, 6)}; you have {len(items)}. "
                "See !iwant list."
            )
        return items[int(selector) - 1].request_id
    same = [i for i in items if i.activity == selector]
    if len(same) == 1:
        return same[0].request_id
    if len(same) > 1:
        raise UserError(
            f"You have {len(same)} {selector} requests; say which by number: !iwant cancel 1 "
            "(see !iwant list)."
        )
    raise UserError(
        f"You have no open {msg.quote(selector, 24)} request; see !iwant list, then "
        "!iwant cancel 1."
    )


_ZONES: dict[str, str] = {}


def _find_zone(name: str) -> str | None:
    if not _ZONES:
        _ZONES.update({z.lower(): z for z in available_timezones()})
    return _ZONES.get(name.lower().replace(" ", "_"))


__all__ = ["DeliveryReport", "Engine", "OpenRequest", "OutboxItem", "Person"]
