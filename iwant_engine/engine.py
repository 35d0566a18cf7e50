"""The engine's public API: submit, cancel, list, set a time zone, sweep, deliver.

A test, a benchmark or a chat plugin drives it the same way; it imports no chat library.
``Engine`` wires the services together (a plugin manager of its own, the storage and the
strategies plugins.cfg chooses, a clock) and answers each call through one of them:

- ``identity`` (``Identity``): who an account is, zones, names, ignore lists;
- ``matchmaker`` (``Matchmaker``): the strategies' decisions and near-miss suggestions;
- ``requests`` (``Requests``): submitting, cancelling, listing, the board, expiry;
- ``standing`` (``StandingWishes``): wishes that repeat on some days of the week;
- ``links`` (``Links``): several accounts as one person;
- ``privacy`` (``Privacy``): export, forgetting, retention;
- ``feedback`` (``Feedback``): "Did you meet?" after a group's meeting, and the answers;
- ``calendars`` (``Calendars``): a person's linked calendar and its background refresh;
- ``reports`` (``Reports``): ``!iwant stats`` and the figures of ``iwant stats``;
- ``digests`` (``Digests``): the weekly digest of the rooms that switched it on;
- ``delivery`` (``Delivery``): the outbox at the platforms' pace, answers sent again;
- ``invites`` (``InvitePolicy``): who receives the calendar invite that goes with a match;
- ``operations`` (``Operations``): health, heartbeats of bot processes, ``!iwant status``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from . import messages as msg
from . import settings as settings_mod
from .calendar_service import Calendars
from .calendars.provider import CalendarProvider
from .clock import Clock, SystemClock
from .delivery import Delivery
from .digests import Digests
from .feedback import Feedback
from .grammar import split_every
from .hookspecs import Decide
from .identity import Identity, check_person
from .invites import CalendarPeople, InvitePolicy
from .invites import line as invite_line
from .invites import render as render_invite
from .links import Links
from .matchmaker import Matchmaker
from .model import DeliveryReport, Invite, OpenRequest, OutboxDepth, OutboxItem, Person, StatsRows
from .operations import Operations
from .pacing import Pacer, Scope
from .plugins import chosen_storage, chosen_strategies, make_plugin_manager, named, report
from .privacy import PURGE_BATCH, Privacy
from .reports import Reports
from .requests import SWEEP_BATCH, Requests
from .settings import Settings
from .standing_wishes import STANDING_BATCH, StandingWishes
from .storage.protocol import Storage
from .timephrases import warm_up


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
        that differs when asked again (or with alike candidates in another order), raises
        ``StrategyError`` instead of being logged."""
        self._settings = settings
        self._clock = clock or SystemClock()
        self.strict = strict
        self.pm = make_plugin_manager(plugins)
        storage = chosen_storage(self.pm, settings)
        strategies = chosen_strategies(self.pm, settings)
        self.storage: Storage = storage(
            settings.database_url,
            pool_size=settings.pool_size,
            default_timezone=settings.default_timezone,
        )
        self.storage.migrate()
        warm_up()
        suggestions = self.pm.hook.iwant_suggestions
        self.matchmaker = Matchmaker(settings, strategies, suggestions, strict)
        self.strategies = self.matchmaker.strategies
        self.identity = Identity(self.storage, self.clock, settings)
        self.zones = self.identity.zones
        # Who has a linked calendar: read by wishes (busy times) and for invites, one cache.
        self.invites = InvitePolicy(settings, CalendarPeople(self.storage))
        self.delivery = Delivery(self.storage, self.clock, settings, self.zones, self.invites)
        self.requests = Requests(
            self.storage, self.clock, settings, self.identity, self.matchmaker, self.invites
        )
        self.standing = StandingWishes(
            self.storage, self.clock, settings, self.identity, self.requests
        )
        self.requests.observe = self._observe
        self.links = Links(self.storage, self.clock, self.identity)
        self.operations = Operations(self.storage, self.clock, settings)
        self.privacy = Privacy(
            self.storage, self.clock, settings, self.identity, self.requests, self.delivery
        )
        self.feedback = Feedback(self.storage, self.clock, settings, self.identity)
        self.providers()  # two providers of one name stop the engine at start
        self.calendars = Calendars(
            self.storage, self.clock, settings, self.identity, self.providers,
            self.requests.calendar_changed,
        )  # fmt: skip
        self.calendars.observe = self._observe
        self.reports = Reports(self.storage, self.clock, settings, self.identity)
        self.digests = Digests(self.storage, self.clock, settings)

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

    def providers(self) -> dict[str, CalendarProvider]:
        """The calendar providers the ``iwant_calendars`` hook names now, by name."""
        return {name: p for name, (p, _) in named(self.pm, "iwant_calendars").items()}

    def _observe(self, event: str) -> None:
        self.pm.hook.iwant_observe(event=event)

    def plugins_report(self) -> str:
        """This engine's plugins (with versions and hooks) and the active storage and
        strategies."""
        return report(self.pm, self.settings)

    def close(self) -> None:
        self.storage.close()

    @property
    def settings(self) -> Settings:
        return self._settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        """Every service reads the new settings from now on (a benchmark turns suggestions
        off and on so)."""
        self._settings = settings
        for service in (
            self.identity, self.matchmaker, self.requests, self.standing, self.privacy,
            self.delivery, self.operations, self.feedback, self.calendars, self.invites,
            self.reports, self.digests,
        ):  # fmt: skip
            service.settings = settings

    @property
    def clock(self) -> Clock:
        return self._clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        """Every service reads the time from ``clock`` from now on (a benchmark shares one
        clock between its engine and a chat plugin's so)."""
        self._clock = clock
        for service in (
            self.identity, self.requests, self.standing, self.links, self.privacy, self.delivery,
            self.operations, self.feedback, self.calendars, self.reports, self.digests,
        ):  # fmt: skip
            service.clock = clock

    @property
    def pacer(self) -> Pacer:
        """Delivery's pacer (a test may swap it for one with a fake clock)."""
        return self.delivery.pacer

    @pacer.setter
    def pacer(self, pacer: Pacer) -> None:
        self.delivery.pacer = pacer

    @property
    def decide(self) -> Decide:
        """The matchmaker's decide function (a test may set a wrapper of it, to watch or
        delay every decision)."""
        return self.matchmaker.decide

    @decide.setter
    def decide(self, decide: Decide) -> None:
        self.matchmaker.decide = decide

    # -- commands: a wish is a request, or a standing wish with "every" ----------------------

    def submit(
        self,
        person: Person,
        text: str,
        room: str | None = None,
        event_id: str | None = None,
        durable_reply: bool = False,
    ) -> msg.Note:
        """``!iwant TEXT``: ``Requests.submit``, or ``StandingWishes.add`` for a wish that
        says ``every`` (``lunch 12:00 every weekday``)."""
        check_person(person)
        every = split_every(text)
        if every is not None:
            return self.standing.add(person, *every, room)
        return self.requests.submit(person, text, room, event_id, durable_reply)

    # -- people (Identity) -------------------------------------------------------------------

    def zone_of(self, person: Person) -> ZoneInfo:
        return self.identity.zone_of(person)

    def as_person(self, person: Person) -> Person:
        return self.identity.as_person(person)

    def set_timezone(self, person: Person, name: str) -> str:
        return self.identity.set_timezone(person, name)

    def display_names(self, ids: Sequence[str]) -> list[str]:
        return self.identity.display_names(ids)

    def ignore(self, person: Person, other: Person) -> str:
        return self.identity.ignore(person, other)

    def unignore(self, person: Person, other: Person) -> str:
        return self.identity.unignore(person, other)

    def ignored(self, person: Person) -> list[str]:
        return self.identity.ignored(person)

    def forget_caches(self) -> None:
        self.identity.forget_caches()

    # -- requests (Requests, Matchmaker) ------------------------------------------------------

    def pool_for(self, person: Person, room: str | None) -> str:
        return self.requests.pool_for(person, room)

    def open_requests(self, person: Person) -> list[OpenRequest]:
        return self.requests.open_requests(person)

    def list_text(self, person: Person) -> str:
        return self.requests.list_text(person)

    def cancel(self, person: Person, selector: str = "") -> msg.Note:
        return self.requests.cancel(person, selector)

    def board(self, person: Person, room: str | None = None, activity: str = "") -> msg.Note:
        return self.requests.board(person, room, activity)

    def min_group_size(self, pool: str, activity: str) -> int:
        return self.matchmaker.min_group_size(pool, activity)

    # -- standing wishes (StandingWishes) ----------------------------------------------------

    def standing_text(self, person: Person) -> str:
        return self.standing.listing(person)

    def stop(self, person: Person, selector: str = "") -> str:
        return self.standing.stop(person, selector)

    def skip(self, person: Person, args: str) -> str:
        return self.standing.skip(person, args)

    def pause(self, person: Person, args: str) -> str:
        return self.standing.pause(person, args)

    def resume(self, person: Person) -> str:
        return self.standing.resume(person)

    def sweep_standing(self, now: datetime | None = None, batch: int = STANDING_BATCH) -> int:
        return self.standing.sweep(now, batch)

    # -- linked accounts and a person's data (Links, Privacy) --------------------------------

    def link(self, person: Person, code: str = "") -> msg.Note:
        return self.links.link(person, code)

    def unlink(self, person: Person) -> str:
        return self.links.unlink(person)

    def export(self, person: Person) -> str:
        return self.privacy.export(person)

    def forget_me(self, person: Person, args: str = "") -> msg.Note:
        return self.privacy.forget_me(person, args)

    def forget(self, person_id: str, name: str | None = None) -> dict[str, int]:
        return self.privacy.forget(person_id, name)

    def purge(self, limit: int = PURGE_BATCH) -> int:
        return self.privacy.purge(limit)

    # -- "Did you meet?" (Feedback) ----------------------------------------------------------

    def met(self, person: Person, args: str) -> msg.Note:
        return self.feedback.answer(person, args)

    def feedback_setting(self, person: Person, args: str = "") -> str:
        return self.feedback.set_asking(person, args)

    # -- a linked calendar (Calendars) -------------------------------------------------------

    def calendar(self, person: Person, args: str = "", room: str | None = None) -> str:
        return self.calendars.command(person, args, room)

    def refresh_calendars(self, now: datetime | None = None) -> int:
        """Read the linked calendars due now (a poller of its own calls it, never a
        command); how many were read or failed."""
        return self.calendars.refresh(now)

    # -- figures (Reports, Digests) ------------------------------------------------------------

    def stats_text(self, person: Person, room: str | None, args: str = "", admin: bool = False
                   ) -> str:  # fmt: skip
        return self.reports.stats_text(person, room, args, admin)

    def stats_figures(
        self, pools: Sequence[str] | None, period: str, zone: ZoneInfo
    ) -> tuple[StatsRows, datetime, datetime]:
        return self.reports.figures(pools, period, zone)

    def digest_setting(self, person: Person, room: str | None, args: str, admin: bool) -> str:
        return self.digests.set(person, room, args, admin)

    def send_digests(self, now: datetime | None = None) -> int:
        return self.digests.send_due(now)

    # -- background work (Delivery, and the sweep of every service) ---------------------------

    def sweep(self, batch: int = SWEEP_BATCH) -> tuple[int, int]:
        """A poller's round: make the standing wishes' due days, purge what retention ends
        (at most every ten minutes), expire due requests and mark past meetings DONE, ask
        "Did you meet?" about meetings over for a while, write the weekly digests that are due;
        (expired, done)."""
        now = self.clock.now()
        self.standing.sweep(now)
        self.privacy.purge()
        swept = self.requests.expire(now, batch)
        self.feedback.ask(now)
        self.digests.send_due(now)
        return swept

    def deliver(
        self,
        platform: str,
        send: Callable[[OutboxItem], None],
        limit: int = 50,
        scopes: Callable[[OutboxItem], Sequence[Scope]] | None = None,
    ) -> DeliveryReport:
        return self.delivery.deliver(platform, send, limit, scopes)

    def invite_file(self, invite: Invite) -> tuple[str, bytes]:
        """A note's calendar invite as an ``.ics`` file: its name (``lunch.ics``) and bytes."""
        return render_invite(invite, self.settings.invite_domain, self.clock.now())

    def invite_line(self, invite: Invite, recipient: str) -> str:
        """The line that stands in for the invite's file where a platform takes no files (a
        link to add the meeting to a calendar), in ``recipient``'s zone."""
        return invite_line(invite, self.identity.zone_of(Person(recipient, "")))

    def pause_sending(self, scopes: Sequence[Scope], seconds: float) -> None:
        self.delivery.pause(scopes, seconds)

    def replied(self, request_ids: Sequence[int]) -> None:
        self.delivery.replied(request_ids)

    def answer_again(self, platform: str) -> int:
        return self.delivery.answer_again(platform)

    def stop_delivering(self) -> None:
        """The process stops: a delivery round in flight ends its send and gives back the
        rest; no new round claims anything."""
        self.delivery.stopping.set()

    # -- operations (Operations) -------------------------------------------------------------

    def problem(self) -> str | None:
        return self.operations.problem()

    def outbox_depths(self) -> list[OutboxDepth]:
        return self.operations.outbox_depths()

    def beat(
        self,
        process: str,
        platform: str,
        started_at: datetime,
        last_429: tuple[datetime, float] | None = None,
    ) -> None:
        self.operations.beat(process, platform, started_at, last_429)

    def stopped(self, process: str) -> None:
        self.operations.stopped(process)

    def status_text(self) -> str:
        return self.operations.status_text()


__all__ = ["DeliveryReport", "Engine", "OpenRequest", "OutboxItem", "Person"]
