"""The engine's public API: submit, cancel, list, set a time zone, sweep, deliver.

A test, a benchmark or a chat plugin drives it the same way; it imports no chat library.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from . import board, links, matching, privacy, standing
from . import messages as msg
from . import settings as settings_mod
from .clock import Clock, SystemClock
from .errors import DuplicateEvent, StrategyError, Unavailable, UserError
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
    Standing,
    Status,
    StoredRequest,
    Suggestion,
    Wish,
)
from .plugins import make_plugin_manager, named, report
from .redact import redact
from .settings import Settings, SettingsError
from .storage.protocol import Storage, UnitOfWork
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
# Standing wishes made per unit of work: each takes its person's and pool's locks.
STANDING_BATCH = 20
#: The board in a direct message shows the rooms of a person's requests this far back.
BOARD_HISTORY = timedelta(days=30)
#: Retention (``Engine.purge``) runs at most this often in one process.
PURGE_EVERY = timedelta(minutes=10)


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
            info = self.storage.person(self.as_person(person).id)
            self._remember_zone(person, info.timezone if info else None)
        return self._zone_guess(person)

    def as_person(self, person: Person) -> Person:
        """The person an account is (``!iwant link``): another account's id when linked."""
        info = self.storage.person(person.id)
        if info is None or info.canonical is None:
            self._remember_link(person.id, person.id)
            return person
        self._remember_link(person.id, info.canonical)
        return replace(person, id=info.canonical)

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
        selector = " ".join(selector.lower().split())
        if selector.startswith("#") and is_number(selector[1:]):
            request_id = int(selector[1:])
            if not 0 < request_id <= MAX_ID:  # no id is that large: not a request of theirs
                raise UserError(msg.NOT_YOURS)
        else:
            items = self.open_requests(person)
            request_id = _select(items, selector)
        ctx = MatchContext(self.clock.now(), self.settings.default_window)
        with self.storage.transaction() as uow:
            who = self.as_person(person).id
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

    # -- linked accounts -------------------------------------------------------------------

    def link(self, person: Person, code: str = "") -> msg.Note:
        """``!iwant link``: a one-time code for the person's other account; ``!iwant link
        CODE`` there makes the two accounts one person."""
        self._check_person(person)
        now = self.clock.now()
        given = code.strip()
        if not given:
            fresh = links.new_code()
            with self.storage.transaction() as uow:
                uow.add_person(PersonInfo(person.id, person.name[: matching.NAME_MAX]))
                uow.add_link_code(links.digest(fresh), person.id, now + links.CODE_LIFETIME)
            return msg.Note(person.id, links.code_given(fresh))
        with self.storage.transaction() as uow:
            uow.add_person(PersonInfo(person.id, person.name[: matching.NAME_MAX]))
            if uow.link_failures(person.id, now, links.FAILURE_WINDOW, add=False) >= (
                links.MAX_FAILURES
            ):
                raise UserError(links.TOO_MANY)
            found = links.match(given, uow.link_codes(now))
            if found is None:
                uow.link_failures(person.id, now, links.FAILURE_WINDOW, add=True)
        if found is None:  # the failure is counted (its unit of work committed)
            raise UserError(links.WRONG_CODE)
        code_hash, issuer = found
        if issuer == person.id:
            raise UserError(links.OWN_CODE)
        mine = self.storage.person(person.id)
        theirs = self.storage.person(issuer)
        target = theirs.canonical if theirs and theirs.canonical else issuer
        if (mine and mine.canonical) or self.storage.accounts(person.id):
            raise UserError(links.ALREADY_LINKED)
        if target == person.id:
            raise UserError(links.OWN_CODE)
        with self.storage.transaction() as uow:
            uow.link(person.id, target)
            uow.drop_link_code(code_hash)
        self._links.clear()
        self._zones.clear()
        name = theirs.name if theirs else issuer.split(":", 1)[-1]
        return msg.Note(person.id, links.linked(name, issuer.split(":", 1)[0]))

    def unlink(self, person: Person) -> str:
        """``!iwant unlink``, from either account: they are two people again."""
        self._check_person(person)
        with self.storage.transaction() as uow:
            done = uow.unlink(person.id)
        self._links.clear()
        self._zones.clear()
        return links.unlinked(done)

    # -- a person's data -------------------------------------------------------------------

    def export(self, person: Person) -> str:
        """``!iwant export``: everything iwant keeps about the person, as a JSON document."""
        self._check_person(person)
        who = self.as_person(person).id
        data = self.storage.person_data(who)
        accounts = [a for a in [who, *self.storage.accounts(who)] if a != person.id]
        return privacy.as_json(privacy.document(data, person.id, self.clock.now(), accounts))

    def forget_me(self, person: Person, args: str = "") -> msg.Note:
        """``!iwant forget me``, then ``!iwant forget me confirm`` within five minutes."""
        self._check_person(person)
        words = args.lower().split()
        now = self.clock.now()
        if words == ["me"]:
            with self.storage.transaction() as uow:
                uow.add_person(PersonInfo(person.id, person.name[: matching.NAME_MAX]))
                uow.ask_to_forget(person.id, now)
            button = {"label": "Forget me", "command": "iwant forget me confirm"}
            return msg.Note(person.id, privacy.asked(), [button])
        if words != ["me", "confirm"]:
            raise UserError("To delete everything iwant keeps about you: !iwant forget me")
        with self.storage.transaction() as uow:
            asked = uow.ask_to_forget(person.id, None)
        window = timedelta(minutes=privacy.FORGET_WINDOW_MINUTES)
        if asked is None or asked < now - window:
            raise UserError(
                "Say !iwant forget me first, then confirm within "
                f"{privacy.FORGET_WINDOW_MINUTES} minutes."
            )
        return msg.Note(person.id, privacy.forgotten(self.forget(person.id, person.name)))

    def forget(self, person_id: str, name: str | None = None) -> dict[str, int]:
        """Delete the person and everything that is theirs, all their linked accounts too
        (their open requests cancelled first, so the others in them are told); rows deleted
        per table. For ``!iwant forget me`` and for an admin (``iwant forget PERSON_ID``)."""
        stored = self.storage.person(person_id)
        main = stored.canonical if stored and stored.canonical else person_id
        ids = [main, *self.storage.accounts(main)]
        known = self.storage.people(ids)
        who = Person(main, known[main].name if main in known else (name or main))
        for item in self.storage.open_requests(main, self.clock.now()):
            try:
                self.cancel(who, f"#{item.request_id}")
            except UserError:
                continue  # it ended meanwhile
        counts: Counter[str] = Counter()
        with self.storage.transaction() as uow:
            for each in ids:
                shown = known[each].name if each in known else (name or each.split(":")[-1])
                counts.update(uow.forget(each, shown, partial(msg.unnamed, name=shown)))
        self._zones.clear()
        self._links.clear()
        return dict(counts)

    def purge(self, limit: int = SWEEP_BATCH) -> int:
        """Delete finished requests, unused results and sent notifications older than
        ``[limits] retention_days`` (a sweep's job, at most every ``PURGE_EVERY``)."""
        if time.monotonic() < self._next_purge:
            return 0
        self._next_purge = time.monotonic() + PURGE_EVERY.total_seconds()
        before, total = self.clock.now() - self.settings.retention, 0
        for _ in range(20):  # bounded: the rest waits for the next round
            with self.storage.transaction() as uow:
                deleted = uow.purge(before, limit)
            total += deleted
            if deleted < limit:
                break
        return total

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
        mine = self.open_requests(person)
        text, buttons = board.render(rows, reader, mine, zone, now, where)
        return msg.Note(person.id, text, buttons)

    # -- standing wishes ---------------------------------------------------------------------

    def add_standing(
        self, person: Person, text: str, days: frozenset[int], room: str | None = None
    ) -> msg.Note:
        """Store ``text`` (a wish) as a standing wish for ``days`` (0 = Monday) and make the
        days already due (today's, if its time has not passed); the reply says what was made."""
        now = self.clock.now()
        zone = self.zone_of(person)
        pool = self.pool_for(person, room)
        lead = self.settings.standing_lead
        # The text must read as a wish on its days, whatever today's time is.
        probe = standing.on_or_after(days, now.astimezone(zone).date() + timedelta(days=1))
        wish = self._wish(person.id, pool, text, standing.day_start(probe, zone), zone)[0]
        origin = f"{person.platform}:{room}" if room else None
        fresh = standing.new(person.id, pool, origin, wish.activity, text, days, now, zone, lead)
        me = PersonInfo(person.id, person.name[: matching.NAME_MAX], None, person.timezone)
        with self.storage.transaction() as uow:
            uow.add_person(me)
            main = self.as_person(person).id
            me = replace(me, canonical=main if main != person.id else None)
            mine = uow.standing(person.id)
            for n, other in enumerate(mine, 1):
                if (other.text, other.days) == (fresh.text, fresh.days):
                    raise UserError(
                        f"You have that standing wish already (number {n}); see !iwant standing."
                    )
            if len(mine) >= self.settings.max_standing:
                raise UserError(
                    f"You have {len(mine)} standing wishes, the most I keep for one person; "
                    "stop one first (!iwant standing, then !iwant stop 1)."
                )
            stored = replace(fresh, id=uow.add_standing(fresh))
            upcoming, made = standing.make_due(
                uow, stored, me, now, zone, lead, self._read_standing, self._submitter(now)
            )
            uow.save_standing(upcoming)
        hours = int(lead.total_seconds() // 3600)
        lines = [msg.standing_started(standing.describe(stored), len(mine) + 1, hours)]
        for m in made:
            body = m.problem or (m.note.body if m.note else "")
            lines.append(msg.standing_day(standing.day_text(m.day), body))
        if not made:
            lines.append(msg.standing_first(standing.day_text(upcoming.next_day)))
        buttons = [{"label": "Stop it", "command": f"iwant stop #{stored.id}"}]
        return msg.Note(person.id, "\n".join(lines), buttons)

    def _read_standing(self, wish: Standing, at: datetime, zone: ZoneInfo) -> Wish:
        return self._wish(wish.person, wish.pool, wish.text, at, zone)[0]

    def _submitter(self, now: datetime) -> standing.Submitter:
        def submit(
            uow: UnitOfWork, wish: Wish, me: PersonInfo, origin: str | None, key: str
        ) -> tuple[msg.Note, bool]:
            ctx = MatchContext(now, wish.length)
            limit = self.settings.max_open_requests
            done = matching.submit(
                uow, wish, me, origin, self.decide, ctx, limit, self.zones, event_key=key
            )
            return done.reply, done.matched

        return submit

    def _today(self, person: Person) -> tuple[datetime, ZoneInfo, date]:
        now = self.clock.now()
        zone = self.zone_of(person)
        return now, zone, now.astimezone(zone).date()

    def standing_text(self, person: Person) -> str:
        """``!iwant standing``: the person's standing wishes, numbered."""
        self._check_person(person)
        _, _, today = self._today(person)
        with self.storage.transaction() as uow:
            mine = uow.standing(person.id)
        return standing.listing(mine, today)

    def stop(self, person: Person, selector: str = "") -> str:
        """End a standing wish, by number (``2``), activity (``lunch``) or id (``#12``)."""
        self._check_person(person)
        now, _, today = self._today(person)
        selector = " ".join(selector.lower().split())
        with self.storage.transaction() as uow:
            mine = uow.standing(person.id)
            if selector.startswith("#") and is_number(selector[1:]):
                found = [s for s in mine if s.id == int(selector[1:])]
                if not found:
                    raise UserError("That standing wish has ended already; see !iwant standing.")
                chosen = found[0]
            else:
                chosen = standing.select(mine, selector)
            uow.save_standing(replace(chosen, ended_at=now, create_at=None))
        text = f"Stopped: {standing.describe(chosen)}."
        if self._made_live(chosen, today, chosen.next_day):
            text += (
                f" The {chosen.activity} wish already made from it stays; "
                f"!iwant cancel {chosen.activity} cancels it."
            )
        return text

    def _made_live(self, wish: Standing, first: date, until: date) -> list[int]:
        """Ids of the live requests ``wish`` made for the days ``first`` to before ``until``."""
        ids = []
        day = first
        while day < until:
            request = self.storage.request_by_event(standing.event_key(wish.id, day))
            if request is not None and request.status in LIVE:
                ids.append(request.id)
            day += timedelta(days=1)
        return ids

    def skip(self, person: Person, args: str) -> str:
        """``!iwant skip friday`` (or ``skip lunch friday``): leave one day out of every
        standing wish on that day (or of the one for ``lunch``); a wish already made for that
        day is cancelled."""
        self._check_person(person)
        _, _, today = self._today(person)
        words = " ".join(args.lower().split()).split(" ")
        example = "!iwant skip friday (or !iwant skip lunch friday)"
        with self.storage.transaction() as uow:
            mine = uow.standing(person.id)
            if not mine:
                raise UserError(msg.no_standing())
            activity = None
            if len(words) > 1 and any(s.activity == words[0] for s in mine):
                activity, words = words[0], words[1:]
            day = standing.parse_day(" ".join(words), today, example)
            chosen = [s for s in mine if activity in (None, s.activity) and day.weekday() in s.days]
            if not chosen:
                raise UserError(
                    f"None of your standing {activity + ' ' if activity else ''}wishes is on "
                    f"{standing.day_text(day)}; see !iwant standing."
                )
            for s in chosen:
                kept = frozenset(d for d in s.skips if d >= today) | {day}
                uow.save_standing(replace(s, skips=kept))
        cancelled = self._cancel_made(person, chosen, day, day + timedelta(days=1))
        what = "; ".join(standing.describe(s) for s in chosen)
        text = f"Skipping {standing.day_text(day)}: {what}."
        if cancelled:
            text += f" I cancelled the wish already made for that day ({', '.join(cancelled)})."
        return text

    def _cancel_made(
        self, person: Person, chosen: Sequence[Standing], first: date, until: date
    ) -> list[str]:
        """Cancel the live wishes ``chosen`` made for the days ``first`` to before ``until``
        (the others in a group are told, as for any cancel); their activities."""
        done = []
        for s in chosen:
            for request_id in self._made_live(s, first, min(until, s.next_day)):
                try:
                    self.cancel(person, f"#{request_id}")
                except UserError:
                    continue  # it ended meanwhile
                done.append(s.activity)
        return done

    def pause(self, person: Person, args: str) -> str:
        """``!iwant pause until 2026-12-14`` or ``pause 2 weeks``: no standing wish makes a
        wish for a day before the first day back; wishes already made for them are cancelled."""
        self._check_person(person)
        _, _, today = self._today(person)
        back = standing.parse_pause(args, today)
        with self.storage.transaction() as uow:
            mine = uow.standing(person.id)
            if not mine:
                raise UserError(msg.no_standing())
            for s in mine:
                uow.save_standing(replace(s, paused_until=back))
        cancelled = self._cancel_made(person, mine, today, back)
        count = "your standing wish" if len(mine) == 1 else f"all {len(mine)} standing wishes"
        text = (
            f"Paused {count} until {standing.day_text(back)} (the first day back); "
            "!iwant resume ends the pause sooner."
        )
        if cancelled:
            text += f" I cancelled the wishes already made ({', '.join(cancelled)})."
        return text

    def resume(self, person: Person) -> str:
        """End a pause of the person's standing wishes."""
        self._check_person(person)
        _, _, today = self._today(person)
        with self.storage.transaction() as uow:
            mine = uow.standing(person.id)
            paused = [s for s in mine if s.paused_until is not None and s.paused_until > today]
            for s in paused:
                uow.save_standing(replace(s, paused_until=None))
        if not mine:
            return msg.no_standing()
        if not paused:
            return "Your standing wishes are not paused; see !iwant standing."
        first = min(paused, key=lambda s: s.next_day)
        return (
            f"Resumed: the next is {first.activity} on {standing.day_text(first.next_day)}; "
            "see !iwant standing."
        )

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

    def sweep_standing(self, now: datetime | None = None, batch: int = STANDING_BATCH) -> int:
        """Make the days' wishes of standing wishes that are due (part of ``sweep``); how
        many standing wishes were looked at."""
        now = now or self.clock.now()
        if not self.storage.has_due_standing(now):
            return 0
        total = 0
        read, submit, lead = self._read_standing, self._submitter(now), self.settings.standing_lead
        for _ in range(10_000):  # bounded: each round moves every wish it sees to a later day
            with self.storage.transaction() as uow:
                seen = standing.sweep_step(uow, now, batch, self.zones.of, lead, read, submit)
            total += seen
            if seen < batch:
                break
        return total

    def deliver(
        self,
        platform: str,
        send: Callable[[OutboxItem], None],
        is_permanent: Callable[[Exception], bool] = lambda e: False,
        limit: int = 50,
    ) -> DeliveryReport:
        """Send due outbox rows of ``platform`` with ``send``; ack, retry or give up each.

        A failed send is retried after 2, 4, 8 … seconds (at most 10 minutes), and given up
        after ``MAX_ATTEMPTS`` attempts, or at once when ``is_permanent`` says so."""
        delivered = retried = 0
        given_up: list[OutboxItem] = []
        for item in self.storage.claim_outbox(platform, self.clock.now(), limit, LEASE):
            try:
                send(item)
            except Exception as err:  # the platform failed; the row stays until it succeeds
                permanent = is_permanent(err) or item.attempts >= MAX_ATTEMPTS
                log.warning(
                    "sending outbox row %s failed (%s): %s",
                    item.id,
                    "permanent" if permanent else "will retry",
                    type(err).__name__,
                )
                now = self.clock.now()
                retry_at = (
                    None if permanent else now + timedelta(seconds=min(2**item.attempts, 600))
                )
                self.storage.fail(item.id, now, redact(f"{type(err).__name__}: {err}"), retry_at)
                if permanent:
                    given_up.append(item)
                else:
                    retried += 1
                continue
            self.storage.ack(item.id, self.clock.now())
            delivered += 1
        return DeliveryReport(delivered, retried, given_up)


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
