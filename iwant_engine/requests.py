"""A person's requests: submitting a wish (read in their zone, matched by the strategy serving
its pool and activity), cancelling, listing, the board of a room, and expiring requests whose
deadline passed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from . import board, busy_times, matching, standing
from . import messages as msg
from .clock import Clock
from .errors import DuplicateEvent, Unavailable, UserError
from .grammar import is_number, names_no_time, parse_wish
from .identity import Identity, check_person
from .invites import CalendarPeople, InvitePolicy
from .matchmaker import Matchmaker
from .model import (
    LIVE,
    MatchContext,
    NearbyRows,
    OpenRequest,
    Person,
    PersonInfo,
    Status,
    StoredRequest,
    Wish,
)
from .settings import Settings
from .storage.protocol import Storage, UnitOfWork

#: Ids are 32-bit on PostgreSQL; a larger number names no request.
MAX_ID = 2**31 - 1
#: Results expired or marked done per unit of work.
SWEEP_BATCH = 500
#: A wish wholly busy: its next free time is looked for this far ahead first.
NEXT_FREE_FIRST = timedelta(days=1)
#: The board in a direct message shows the rooms of a person's requests this far back.
BOARD_HISTORY = timedelta(days=30)


class Requests:
    """What people ask for, and what becomes of it."""

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        settings: Settings,
        identity: Identity,
        matchmaker: Matchmaker,
        invites: InvitePolicy | None = None,
    ) -> None:
        """``invites``: who receives the calendar invites of answers (and whose wishes read
        their busy times: its ``calendars``); one of its own when not given."""
        self.storage = storage
        self.clock = clock
        self.settings = settings
        self.identity = identity
        self.matchmaker = matchmaker
        #: Counts an event of ``hookspecs.OBSERVED`` (the engine's ``iwant_observe``).
        self.observe: Callable[[str], None] = lambda event: None
        self.invites = invites or InvitePolicy(settings, CalendarPeople(storage))

    def calendar_changed(self) -> None:
        """A calendar was linked or removed in this process: who has one is read again."""
        self.invites.calendars.changed()

    def _has_calendar(self, person: str) -> bool:
        # A wish of anyone without a linked calendar reads no busy blocks.
        return self.invites.calendars.has(person)

    def pool_for(self, person: Person, room: str | None) -> str:
        """The pool of a wish made in ``room`` (None: in a direct message)."""
        base = f"{person.platform}:{room}" if room else f"{person.platform}:dm"
        return self.settings.pool_of(base)

    def read_wish(
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
        floor = self.matchmaker.min_group_size(wish.pool, wish.activity)
        if floor > wish.min_size:
            if floor > wish.max_size:
                raise UserError(
                    f"{wish.activity} here needs at least {floor} people, more than your max "
                    f"{wish.max_size}; try !iwant {wish.activity} max {floor}."
                )
            wish = replace(wish, min_size=floor)
        return wish, parsed.replaces

    def fit_calendar(
        self, wish: Wish, now: datetime, zone: ZoneInfo, any_time: bool = False
    ) -> tuple[Wish, str | None]:
        """``wish`` without its person's stored busy time: the earliest free piece of its
        window that can still hold the activity's length (its deadline no later than that
        piece's last start), and the line saying so; the wish as it is, and None, when the
        window is free. A window wholly busy is refused with the next free time as a whole
        command, unless the wish named no time (``any_time``): it then takes the next free
        slot (up to the default window long). Reads the stored busy blocks only."""
        if not self._has_calendar(wish.person):
            return wish, None
        far = now + self.settings.horizon
        # One read serves the window and, when it is all busy, the next free time after it,
        # which is nearly always within a day: the rest of the horizon (dozens of blocks
        # more to read) only when that day is busy to its end.
        near = min(max(wish.latest, wish.earliest + NEXT_FREE_FIRST), far)
        ahead = self.storage.busy(wish.person, wish.earliest, near + wish.length)
        parts = busy_times.clipped(ahead, wish.earliest, wish.latest)
        if not parts:
            return wish, None
        fit = busy_times.first_fit(wish.earliest, wish.latest, wish.length, parts)
        deadline = wish.deadline
        if fit is None:
            free = busy_times.next_free(wish.earliest, near, wish.length, ahead)
            if free is None and near < far:
                later = self.storage.busy(wish.person, near, far + wish.length)
                free = busy_times.next_free(near, far, wish.length, later)
            if not any_time or free is None:
                start = free[0] if free else None
                raise UserError(msg.calendar_busy(wish.activity, parts, start, now, zone))
            fit = (free[0], min(free[1], free[0] + self.settings.default_window))
            deadline = fit[1] - wish.length
        trimmed = replace(
            wish, earliest=fit[0], latest=fit[1], deadline=min(deadline, fit[1] - wish.length)
        )
        return trimmed, msg.calendar_trimmed(fit, parts, zone)

    # -- submitting --------------------------------------------------------------------------

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
        send and acknowledge (``Delivery.replied``); one not acknowledged within ``[limits]
        reply_grace_seconds`` (30) is queued as a direct message by ``answer_again``."""
        check_person(person)
        key = f"{person.platform}:{event_id}"[:200] if event_id else None
        zone = self.identity.guess_zone(person)
        sure = self.identity.knows_zone(person)
        who = self.identity.guess_person(person)
        for _ in range(4):
            try:
                note = self._submit_in(person, who, text, room, zone, key, durable_reply)
                return self.invites.note(note, who)
            except matching.WrongPerson as linked:  # linked in another process meanwhile
                who = linked.person
                self.identity.remember_link(person.id, who)
                zone, sure = self.identity.zone_of(person), True
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
                known = self.identity.zone_of(person)  # the refusal may depend on it
                if known == zone:
                    raise  # read in the person's zone after all: the same refusal again
                zone, sure = known, True
        raise RuntimeError("the person's zone kept changing")  # pragma: no cover

    def submitter(self, now: datetime, observed: list[str]) -> standing.Submitter:
        """How a standing wish's day submits its wish at ``now``: inside the caller's unit of
        work, under the day's event key. What it makes is added to ``observed`` (events of
        ``hookspecs.OBSERVED``), for the caller to count once its unit of work has committed
        (``observe_all``): a day rolled back was never made."""

        def submit(
            uow: UnitOfWork, wish: Wish, me: PersonInfo, origin: str | None, key: str
        ) -> tuple[msg.Note, bool]:
            # A day whose time is busy is not made (UserError: the person is told why).
            wish, _ = self.fit_calendar(wish, now, self.identity.zones.of(me))
            ctx = MatchContext(now, wish.length)
            limit = self.settings.max_open_requests
            done = matching.submit(
                uow, wish, me, origin, self.matchmaker.decide, ctx, limit, self.identity.zones,
                event_key=key,
            )  # fmt: skip
            observed.append("standing_made")
            if done.matched:
                observed.append("matched")
            return done.reply, done.matched

        return submit

    def observe_all(self, observed: list[str]) -> None:
        """Count the events a committed unit of work made (``submitter``)."""
        for event in observed:
            self.observe(event)

    def _answered_already(
        self, person: Person, key: str, say: Callable[[str], str] = msg.answered_already
    ) -> msg.Note:
        stored = self.storage.request_by_event(key)
        if stored is None or stored.recipient != person.id:
            raise UserError("I have that message already; see !iwant list.")
        with self.storage.transaction() as uow:
            listed = matching.as_listed(uow, stored)
        body = say(msg.request_line(listed, self.identity.zone_of(person)))
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
        wish, replacing = self.read_wish(who, self.pool_for(person, room), text, now, zone)
        wish, trimmed = self.fit_calendar(wish, now, zone, names_no_time(text))
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
                    self.matchmaker.decide,
                    ctx,
                    self.settings.max_open_requests,
                    self.identity.zones,
                    read_in=zone,
                    event_key=event_key,
                    replied=not durable_reply,
                    replacing=replacing,
                    suggest=self.matchmaker.suggester,
                )
        except matching.NoLongerPossible as gone:
            return self._not_possible(person, wish, gone.replaced, zone)
        if done.matched:
            self.observe("matched")
        self.identity.remember_zone(person, done.own_zone)
        if trimmed is not None:
            return replace(done.reply, body=f"{trimmed}\n{done.reply.body}")
        return done.reply

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
                    uow, replaced.as_wish(), MatchContext(now, replaced.length),
                    self.matchmaker.suggest,
                )  # fmt: skip
                body, buttons = msg.with_suggestions(
                    body, buttons, found, replaced.activity, replaced.max_size, zone, now,
                    replaced.id,
                )  # fmt: skip
        return msg.Note(person.id, body, buttons)

    # -- a person's requests -----------------------------------------------------------------

    def open_requests(self, person: Person) -> list[OpenRequest]:
        """The person's live requests, made from any of their linked accounts."""
        return self.storage.open_requests(self.identity.as_person(person).id, self.clock.now())

    def list_text(self, person: Person) -> str:
        """``!iwant list``: the person's live requests, numbered."""
        items = self.open_requests(person)
        if not items:
            return "You have no open requests. Start one with !iwant coffee."
        zone = self.identity.zone_of(person)
        lines = ["Your open requests:"]
        for n, item in enumerate(items, 1):
            lines.append(f"{n}. {msg.request_line(item, zone)}")
        lines.append(f"Cancel one with !iwant cancel 1 (or !iwant cancel {items[0].activity}).")
        return "\n".join(lines)

    def cancel(self, person: Person, selector: str = "") -> msg.Note:
        """Cancel by list number (``2``), activity (``lunch``), id (``#12``) or the only one."""
        check_person(person)
        who = self.identity.as_person(person).id
        now = self.clock.now()
        selector = " ".join(selector.lower().split())
        if selector.startswith("#") and is_number(selector[1:]):
            request_id = int(selector[1:])
            if not 0 < request_id <= MAX_ID:  # no id is that large: not a request of theirs
                raise UserError(msg.NOT_YOURS)
        else:
            request_id = _select(self.storage.open_requests(who, now), selector)
        with self.storage.transaction() as uow:
            note = self.cancel_within(uow, who, request_id, now)
        return self.invites.note(note, who)

    def cancel_within(self, uow: UnitOfWork, who: str, request_id: int, now: datetime) -> msg.Note:
        """Cancel ``who``'s request inside the caller's unit of work (``forget`` does all of a
        person's at once); ``UserError`` before anything is written when it is not theirs
        or has ended."""
        ctx = MatchContext(now, self.settings.default_window)
        return matching.cancel(
            uow, who, request_id, self.matchmaker.decide, ctx, self.identity.zones
        )

    def board(self, person: Person, room: str | None = None, activity: str = "") -> msg.Note:
        """``!iwant board``: what is wanted today and tomorrow in the room (in a direct
        message: in the rooms of the person's requests of the last 30 days), in their zone."""
        check_person(person)
        words = activity.lower().split()
        if len(words) > 1:  # "board games 17:00" is a wish for board games
            rest = msg.quote(" ".join(words[1:]), 40)
            raise UserError(
                f"An activity is one word; try !iwant board-{msg.quote(words[0])} {rest}."
            )
        now, zone, today = self.identity.today(person)
        reader = self.identity.as_person(person).id
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
        own = [
            m
            for m in mine
            if m.status == Status.PENDING
            and m.pool in pools
            and (not wanted or m.activity == wanted)
            and m.deadline > now
            and m.earliest < end
            and m.latest > start
        ]
        text, buttons = board.render(rows, reader, mine, zone, now, where, own, wanted)
        return msg.Note(person.id, text, buttons)

    # -- their deadlines ---------------------------------------------------------------------

    def expire(self, now: datetime, batch: int = SWEEP_BATCH) -> tuple[int, int]:
        """Expire due requests (writing "nobody joined" notes), mark past meetings DONE;
        (expired, done). Works in units of work of at most ``batch`` results."""
        expired = done = 0
        if not self.storage.has_due(now):
            return expired, done  # the common case for a poller: no write transaction
        while True:
            with self.storage.transaction() as uow:
                e, d = matching.sweep_step(
                    uow, now, batch, self.identity.zones, self.matchmaker.suggester
                )
            expired, done = expired + e, done + d
            if not e + d:
                return expired, done


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
