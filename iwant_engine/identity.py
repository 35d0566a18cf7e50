"""Who a person is: the person an account belongs to (``!iwant link``), their time zone, what
they are called, and whom they ignore.

What this process believes about zones and links is cached for ``ZONE_CACHE_SECONDS``; a
submission reads the stored truth in its unit of work anyway and corrects the belief
(``matching.WrongZone``, ``matching.WrongPerson``), so the caches only save reads.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from . import matching, standing
from . import messages as msg
from .clock import Clock
from .errors import UserError
from .model import LIVE, Person, PersonInfo, Standing, StoredRequest
from .settings import Settings
from .storage.protocol import Storage

# How long a person's own zone is cached; set in another process, it shows after this.
ZONE_CACHE_SECONDS = 60
# platform:id, the id of printable characters only (no space, control or format character).
PERSON_ID = re.compile(r"^[a-z0-9_-]{1,32}:[^\s\x00-\x1f\x7f]{1,160}$")
#: Zones to show as an example of ``!iwant tz``: the first that is not the person's own.
EXAMPLE_ZONES = ("Europe/Prague", "America/New_York")
#: More entries than this in a cache: it is emptied (a bound on a process's memory).
CACHE_MAX = 100_000


def valid_person_id(person_id: str) -> bool:
    """``platform:id`` with an id of visible characters: what every path stores."""
    return bool(PERSON_ID.match(person_id)) and msg.visible(person_id) == person_id


def check_person(person: Person) -> None:
    """Refuse a command from someone the platform could not name (nothing is stored)."""
    if not valid_person_id(person.id):
        raise UserError("I can't tell who you are on this platform, so I stored nothing.")


class Identity:
    """People as the engine knows them: accounts, persons, zones, names, ignore lists."""

    def __init__(self, storage: Storage, clock: Clock, settings: Settings) -> None:
        self.storage = storage
        self.clock = clock
        self.settings = settings
        #: A stored person's zone: their own, else their platform's, else the default.
        self.zones = matching.Zones(ZoneInfo(settings.default_timezone))
        self._zones: dict[str, tuple[float, str | None]] = {}  # person -> (until, zone name)
        self._links: dict[str, tuple[float, str]] = {}  # account -> (until, person id)

    # -- zones -------------------------------------------------------------------------------

    def zone_of(self, person: Person) -> ZoneInfo:
        """The person's own zone (``!iwant tz``; a linked account's is its person's), else
        the platform's, else the default."""
        cached = self._zones.get(person.id)
        if cached is None or cached[0] < time.monotonic():
            main, info = self._stored(person)
            if main != person.id:  # a linked account's zone is its person's
                info = self.storage.person(main)
            self.remember_zone(person, info.timezone if info else None)
        return self.guess_zone(person)

    def guess_zone(self, person: Person) -> ZoneInfo:
        """The zone from what this process knows, without asking the storage."""
        cached = self._zones.get(person.id)
        for name in (cached[1] if cached else None, person.timezone):
            if name:
                try:
                    return ZoneInfo(name)
                except (ZoneInfoNotFoundError, ValueError):
                    continue
        return ZoneInfo(self.settings.default_timezone)

    def knows_zone(self, person: Person) -> bool:
        """Whether this process has read the person's own zone (``guess_zone`` is theirs)."""
        return person.id in self._zones

    def remember_zone(self, person: Person, own: str | None) -> None:
        """The person's own zone as stored (None: they set none)."""
        if len(self._zones) > CACHE_MAX:
            self._zones.clear()
        self._zones[person.id] = (time.monotonic() + ZONE_CACHE_SECONDS, own)

    def today(self, person: Person) -> tuple[datetime, ZoneInfo, date]:
        """Now, the person's zone, and their date there."""
        now = self.clock.now()
        zone = self.zone_of(person)
        return now, zone, now.astimezone(zone).date()

    def set_timezone(self, person: Person, name: str) -> str:
        """``!iwant tz Europe/Prague``: the person's own zone (``!iwant tz`` says it)."""
        name = name.strip()
        if not name:
            key = self.zone_of(person).key
            example = next(z for z in EXAMPLE_ZONES if z != key)
            return f"Your time zone is {key}; change it with !iwant tz {example}."
        match = _find_zone(name)
        if match is None:
            raise UserError(
                f"I don't know the time zone '{msg.quote(name)}'; try !iwant tz Europe/Prague."
            )
        who = self.as_person(person)
        zone, now = ZoneInfo(match), self.clock.now()
        accounts = [who.id, *self.storage.accounts(who.id)]
        with self.storage.transaction() as uow:
            uow.add_person(PersonInfo(who.id, person.name[: matching.NAME_MAX]))
            uow.set_timezone(who.id, match)
            # Standing wishes follow the person's zone: each later day is made in the new one.
            mine = [s for account in accounts for s in uow.standing(account, claim=True)]
            lead = self.settings.standing_lead
            for s in mine:
                uow.save_standing(standing.scheduled(s, s.next_day, zone, lead))
        self._zones.clear()  # every account of theirs has it now
        text = f"Your time zone is now {match} (it is {msg.clock(now, zone)} there)."
        if mine:
            kept = [
                (s.activity, request.earliest, request.latest)
                for s in mine
                for request in self._made_live(s, now.astimezone(zone).date(), now)
            ]
            later = [(standing.describe(s), s.next_day) for s in mine]
            text += " " + msg.standing_follow_zone(later, kept, zone)
        return text

    def _made_live(self, wish: Standing, today: date, now: datetime) -> list[StoredRequest]:
        """The live requests ``wish`` made already, for the days from yesterday (``today``
        in the person's zone) to before its next day."""
        made = []
        day = today - timedelta(days=1)
        while day < wish.next_day:
            request = self.storage.request_by_event(standing.event_key(wish.id, day))
            if request is not None and request.status in LIVE and request.latest > now:
                made.append(request)
            day += timedelta(days=1)
        return made

    # -- linked accounts ---------------------------------------------------------------------

    def as_person(self, person: Person) -> Person:
        """The person an account is (``!iwant link``): another account's id when linked."""
        main, _ = self._stored(person)
        return person if main == person.id else replace(person, id=main)

    def guess_person(self, person: Person) -> str:
        """The id of the person an account is, from what this process knows."""
        cached = self._links.get(person.id)
        return cached[1] if cached and cached[0] > time.monotonic() else person.id

    def remember_link(self, account: str, person: str) -> None:
        """``account`` belongs to ``person`` (itself when not linked), as stored now."""
        if len(self._links) > CACHE_MAX:
            self._links.clear()
        self._links[account] = (time.monotonic() + ZONE_CACHE_SECONDS, person)

    def forget_caches(self) -> None:
        """Forget what this process believes about people's zones and links."""
        self._zones.clear()
        self._links.clear()

    def _stored(self, person: Person) -> tuple[str, PersonInfo | None]:
        """The id of the person an account is, as stored now, and the account's own row."""
        info = self.storage.person(person.id)
        main = info.canonical if info is not None and info.canonical else person.id
        self.remember_link(person.id, main)
        return main, info

    # -- names and ignore lists --------------------------------------------------------------

    def display_names(self, ids: Sequence[str]) -> list[str]:
        """What each person is called (their id without the platform when not stored)."""
        known = self.storage.people(ids)
        return [known[i].name if i in known else i.split(":", 1)[-1] for i in ids]

    def ignore(self, person: Person, other: Person) -> str:
        """``person`` is never grouped with ``other`` again; ``other`` is not told."""
        check_person(person)
        _check_other(other, "ignore")
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

    def unignore(self, person: Person, other: Person) -> str:
        check_person(person)
        _check_other(other, "unignore")
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


def _check_other(other: Person, verb: str) -> None:
    if valid_person_id(other.id):
        return
    local = other.id.split(":", 1)[-1]
    why = "has invisible characters in it" if msg.visible(local) != local else "is no name"
    raise UserError(f"'{msg.quote(local)}' {why}; try !iwant {verb} @bob.")


_ZONES: dict[str, str] = {}


def _find_zone(name: str) -> str | None:
    if not _ZONES:
        _ZONES.update({z.lower(): z for z in available_timezones()})
    return _ZONES.get(name.lower().replace(" ", "_"))
