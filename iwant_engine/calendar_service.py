"""A person's linked calendar: ``!iwant calendar ADDRESS`` (checked at once), its state,
``!iwant calendar off``, and the background refresh that keeps its busy blocks.

The address is a password: it is sealed (``sealing``) before the storage sees it, shown
only masked (``busy_times.mask``), never logged, and read only here, by its provider. A
refresh reads feeds outside any unit of work, so a slow feed holds no lock and delays no
command. A feed that fails keeps its last good busy blocks in use until it has failed for
``[calendar] tell_after_hours``; then they are dropped and the person is told, once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from . import busy_times, sealing
from . import messages as msg
from .calendars.provider import Busy, CalendarError, CalendarProvider
from .clock import Clock
from .errors import UserError
from .identity import Identity, check_person
from .model import Changes, LinkedCalendar, NewOutbox, Person, PersonInfo, Span
from .settings import Settings
from .storage.protocol import Storage

log = logging.getLogger(__name__)

#: Calendars claimed by one round of the background refresh.
REFRESH_BATCH = 20
#: What "this week" means in the answer to a calendar just linked.
WEEK = timedelta(days=7)
EXAMPLE = "!iwant calendar https://calendar.example.com/private-1a2b3c/basic.ics"
ADDRESS_MAX = 2000
Providers = Callable[[], Mapping[str, CalendarProvider]]


def no_key() -> str:
    return (
        "Calendars are not set up on this bot: its admin must set IWANT_SECRET_KEY first. "
        "Nothing was stored."
    )


def in_a_room() -> str:
    return (
        "Not here: a calendar address is a password, and this room has now seen it. Nothing "
        "was stored. Please revoke that address (make a new secret address in your calendar's "
        "settings), then send the new one to me in a direct message: " + EXAMPLE
    )


def linked(provider: str, blocks: int) -> str:
    return (
        f"Calendar linked ({provider}): {blocks} busy block{'s' if blocks != 1 else ''} this "
        "week. iwant sees only when you are busy, never what. !iwant calendar off removes it."
    )


def told_failing(calendar: LinkedCalendar, zone: ZoneInfo) -> str:
    since = calendar.failing_since or calendar.linked_at
    return (
        f"I have not been able to read your calendar ({calendar.provider}, {calendar.shown}) "
        f"since {msg.clock(since, zone)} ({msg.day(since, zone)}), so I no longer use its busy "
        "times. Link it again with !iwant calendar ADDRESS, or remove it: !iwant calendar off."
    )


def state(calendar: LinkedCalendar, zone: ZoneInfo) -> str:
    def when(moment: datetime) -> str:
        return f"{msg.clock(moment, zone)} ({msg.day(moment, zone)})"

    lines = [
        f"Your calendar: {calendar.provider}, {calendar.shown}, linked {when(calendar.linked_at)}."
    ]
    if calendar.last_ok_at is not None:
        lines.append(f"Last read {when(calendar.last_ok_at)}.")
    if calendar.failing_since is not None:
        since = when(calendar.failing_since)
        if calendar.told_failing_at is None:
            lines.append(f"Failing since {since}; its last good copy is still used.")
        else:
            lines.append(f"Failing since {since}; its busy times are no longer used.")
    lines.append("iwant sees only when you are busy, never what. !iwant calendar off removes it.")
    return " ".join(lines)


class Calendars:
    """Linking, showing and removing a person's calendar; refreshing every calendar."""

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        settings: Settings,
        identity: Identity,
        providers: Providers,
        changed: Callable[[], None] = lambda: None,
    ) -> None:
        """``providers``: the providers the ``iwant_calendars`` hook names now (called at
        each use, so one registered on a running engine counts at once); ``changed``: called
        when a calendar is linked or removed here (``Requests.calendar_changed``)."""
        self.storage = storage
        self.clock = clock
        self.settings = settings
        self.identity = identity
        self.providers = providers
        self.changed = changed
        #: Counts an event of ``hookspecs.OBSERVED`` (the engine's ``iwant_observe``).
        self.observe: Callable[[str], None] = lambda event: None

    # -- the command ---------------------------------------------------------------------------

    def command(self, person: Person, args: str, room: str | None = None) -> str:
        """``!iwant calendar`` (its state), ``!iwant calendar off``, ``!iwant calendar
        ADDRESS`` (only in a direct message: ``room`` None)."""
        check_person(person)
        words = args.split()
        me = self.identity.as_person(person).id
        if not words:
            return self._state(person, me)
        if [w.lower() for w in words] == ["off"]:
            return self._off(me)
        if room is not None:
            raise UserError(in_a_room())
        if len(words) > 1 or len(words[0]) > ADDRESS_MAX:
            raise UserError(f"Give one calendar address, like {EXAMPLE}.")
        return self._link(person, me, words[0])

    def _state(self, person: Person, me: str) -> str:
        calendar = self.storage.person_data(me).calendar
        if calendar is None:
            return f"You have no calendar linked. Link one in a direct message: {EXAMPLE}"
        zone = self.identity.zone_of(person)
        return state(calendar, zone)

    def _off(self, me: str) -> str:
        with self.storage.transaction() as uow:
            dropped = uow.drop_calendar(me)
        self.changed()
        if not dropped:
            return "You have no calendar linked; nothing to remove."
        return "Calendar removed: its address and busy times are deleted."

    def _link(self, person: Person, me: str, address: str) -> str:
        if not sealing.available():
            raise UserError(no_key())
        provider = self._provider_for(address)
        now = self.clock.now()
        until = now + self.settings.calendar_horizon
        zone = self.identity.zone_of(person)
        try:
            found = provider.busy(address, now, until, self.settings.fetch_limits, zone)
        except CalendarError as err:
            raise UserError(
                f"I could not read that calendar: {msg.visible(str(err))[:200]}. Nothing was "
                f"stored; try its private iCalendar address, like {EXAMPLE}."
            ) from None
        except Exception as err:  # a provider's bug: never the address in a log
            log.error("calendar provider %s failed: %s", provider.name, type(err).__name__)
            raise UserError(
                f"I could not read that calendar. Nothing was stored; try again later, or "
                f"another address, like {EXAMPLE}."
            ) from None
        spans = _spans(found, now, until)
        calendar = LinkedCalendar(
            me, provider.name, sealing.seal(address), busy_times.mask(address), now,
            now + self.settings.calendar_refresh, last_ok_at=now,
        )  # fmt: skip
        with self.storage.transaction() as uow:
            uow.add_person(PersonInfo(me, person.name[:100]))
            uow.save_calendar(calendar, spans)
        self.changed()
        week = sum(1 for s, _ in spans if s < now + WEEK)
        return linked(provider.name, week)

    def _provider_for(self, address: str) -> CalendarProvider:
        for name, provider in sorted(self.providers().items()):
            try:
                if provider.accepts(address):
                    return provider
            except Exception:  # a provider that cannot even judge an address declines it
                log.error("calendar provider %s failed to judge an address", name)
        raise UserError(
            f"I can't read that kind of address; give your calendar's private iCalendar "
            f"address (https:// or webcal://), like {EXAMPLE}."
        )

    # -- the background refresh ----------------------------------------------------------------

    def refresh(self, now: datetime | None = None, batch: int = REFRESH_BATCH) -> int:
        """Read every calendar due at ``now`` (at most ``batch``), each claimed by one process
        for a lease, read outside any unit of work, and stored; how many were read (or
        failed). Never raises for a feed's fault."""
        now = now or self.clock.now()
        if not self.storage.has_due_calendars(now):
            return 0  # the common case for a poller: no write transaction
        limits = self.settings.fetch_limits
        lease = now + timedelta(seconds=3 * limits.timeout_seconds + 30)
        with self.storage.transaction() as uow:
            claimed = uow.due_calendars(now, batch, lease)
        providers = self.providers()
        people = self.storage.people([c.person for c in claimed])
        for calendar in claimed:
            zone = self.identity.zones.of(people.get(calendar.person))
            spans, problem = self._read(calendar, providers, now, zone)
            self._store(calendar, now, spans, problem)
            self.observe("calendar_failed" if problem else "calendar_ok")
        return len(claimed)

    def _read(
        self,
        calendar: LinkedCalendar,
        providers: Mapping[str, CalendarProvider],
        now: datetime,
        zone: tzinfo,
    ) -> tuple[list[Span], str | None]:
        provider = providers.get(calendar.provider)
        if provider is None:
            return [], f"no provider {calendar.provider!r} is installed"
        until = now + self.settings.calendar_horizon
        try:
            address = sealing.unseal(calendar.sealed)
            found = provider.busy(address, now, until, self.settings.fetch_limits, zone)
            return _spans(found, now, until), None
        except (CalendarError, sealing.SealError) as err:
            return [], str(err)
        except Exception as err:  # a provider's bug must not stop the others' refresh
            return [], type(err).__name__

    def _store(
        self, claimed: LinkedCalendar, now: datetime, spans: Sequence[Span], problem: str | None
    ) -> None:
        with self.storage.transaction() as uow:
            current = uow.calendar(claimed.person)
            if (
                current is None
                or current.linked_at != claimed.linked_at
                or current.claimed_until != claimed.claimed_until
            ):
                return  # removed, linked anew, or the lease ran out and another took it
            after = replace(
                current, next_refresh_at=now + self.settings.calendar_refresh, claimed_until=None
            )
            if problem is None:
                after = replace(after, last_ok_at=now, failing_since=None, told_failing_at=None)
                uow.save_calendar(after, spans)
                return
            log.info("calendar of %s (%s) failed: %s", claimed.person, claimed.provider, problem)
            since = current.failing_since or now
            after = replace(after, failing_since=since)
            if current.told_failing_at is None and now - since >= self.settings.calendar_tell_after:
                # Its last good copy is too old to trust: dropped, and the person told once.
                after = replace(after, told_failing_at=now)
                uow.save_calendar(after, [])
                info = uow.people([claimed.person]).get(claimed.person)
                zone = self.identity.zones.of(info)
                note = NewOutbox(claimed.person, told_failing(after, zone), topic="calendar")
                uow.apply(Changes(outbox=[note]), now)
            else:
                uow.save_calendar(after)


def _spans(found: Sequence[Busy], start: datetime, end: datetime) -> list[Span]:
    """A provider's busy intervals as stored spans, clipped to the span read."""
    return busy_times.clipped([(b.start, b.end) for b in found], start, end)
