"""The calendar invite that goes with a match (issue 27): who gets one, and how it reads.

The domain puts an ``Invite`` on every note that tells a member about a group (formed,
joined, left, dissolved); this service alone decides who receives it, per ``[calendar]
invites``:

- ``linked`` (the default): a person who linked a calendar (any of their accounts): they
  asked iwant to know their calendar; everyone else is spared a file with every coffee;
- ``all``: everyone;
- ``off``: nobody.

``Delivery`` strips an outbox row's invites before the platform's send sees it, and
``Requests`` a command's answer; strategies and storages know nothing of it. ``render``
makes the ``.ics`` file (``calendars.invite``); ``line`` the text that stands in for it where
a platform takes no files.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from . import messages as msg
from .calendars.invite import group_uid, invite
from .model import Invite, OutboxItem
from .settings import Settings
from .storage.protocol import Storage

#: Who has a linked calendar is re-read this often; linked in another process, a calendar
#: counts after at most this long (as a zone set there does, ``identity``).
CALENDAR_CACHE_SECONDS = 60
#: More accounts than this cached: the cache is emptied (a bound on a process's memory).
ACCOUNTS_MAX = 10000
GOOGLE = "https://calendar.google.com/calendar/render"
_FILE_WORD = re.compile(r"[^A-Za-z0-9_-]+")


class CalendarPeople:
    """Who has a linked calendar, read from the storage at most every
    ``CALENDAR_CACHE_SECONDS`` (``Storage.calendar_people``), and which person an account
    belongs to (a linked account is its person's)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._until = 0.0
        self._people: frozenset[str] = frozenset()
        self._accounts: dict[str, str] = {}  # account -> person, as read until ``_until``

    def changed(self) -> None:
        """A calendar was linked or removed in this process: who has one is read again."""
        self._until = 0.0

    def people(self) -> frozenset[str]:
        if time.monotonic() >= self._until:
            self._people = frozenset(self.storage.calendar_people())
            self._accounts = {}
            self._until = time.monotonic() + CALENDAR_CACHE_SECONDS
        return self._people

    def has(self, person: str) -> bool:
        """Whether ``person`` (a person's id, not another account of theirs) has one."""
        return person in self.people()

    def has_account(self, account: str) -> bool:
        """Whether the person ``account`` belongs to has one (one read per account a while,
        and none while nobody has a calendar)."""
        people = self.people()
        if not people:
            return False
        if account in people:
            return True
        person = self._accounts.get(account)
        if person is None:
            info = self.storage.person(account)
            person = info.canonical if info is not None and info.canonical else account
            if len(self._accounts) > ACCOUNTS_MAX:
                self._accounts.clear()
            self._accounts[account] = person
        return person in people


class InvitePolicy:
    """Who of the people a note goes to receives its invites (``[calendar] invites``)."""

    def __init__(self, settings: Settings, calendars: CalendarPeople) -> None:
        self.settings = settings
        self.calendars = calendars

    def invited(self, account: str, person: str | None = None) -> bool:
        """Whether ``account`` (the person ``person``, when known) receives invites."""
        mode = self.settings.invites
        if mode == "all":
            return True
        if mode == "off":
            return False
        if person is not None:
            return self.calendars.has(person)
        return self.calendars.has_account(account)

    def item(self, item: OutboxItem) -> OutboxItem:
        """An outbox row as its recipient is to receive it: without invites not theirs."""
        if not item.invites or self.invited(item.recipient):
            return item
        return replace(item, invites=())

    def note(self, note: msg.Note, person: str) -> msg.Note:
        """A command's answer to ``person`` (its ``to`` is their account) as they are to
        receive it."""
        if not note.invites or self.invited(note.to, person):
            return note
        return replace(note, invites=())


def render(found: Invite, domain: str, now: datetime) -> tuple[str, bytes]:
    """The invite as an ``.ics`` file: its name (``lunch.ics``) and bytes, an iTIP REQUEST
    (or CANCEL) of the group's one UID."""
    word = _FILE_WORD.sub("-", found.activity).strip("-")[:40] or "iwant"
    content = invite(
        uid=group_uid(found.group, domain),
        sequence=found.sequence,
        start=found.start,
        end=found.end,
        summary=_summary(found),
        description=_description(found),
        attendees=found.attendees,
        organizer="iwant",
        cancelled=found.cancelled,
        stamp=now,
    )
    return f"{word}.ics", content


def caption(found: Invite) -> str:
    """What the file says beside it."""
    if found.cancelled:
        return f"Remove {found.activity} from your calendar."
    return f"Add {found.activity} to your calendar."


def link(found: Invite) -> str:
    """A Google Calendar "add event" address for the meeting."""
    query = urlencode(
        {
            "action": "TEMPLATE",
            "text": _summary(found),
            "dates": f"{_utc(found.start)}/{_utc(found.end)}",
            "details": _description(found),
        }
    )
    return f"{GOOGLE}?{query}"


def line(found: Invite, zone: ZoneInfo) -> str:
    """The line that stands in for the file where a platform takes none: a link to add the
    meeting to a calendar, or what to remove from it."""
    if found.cancelled:
        when = f"{msg.clock(found.start, zone)} ({msg.day(found.start, zone)})"
        return f"Remove {found.activity} at {when} from your calendar."
    return f"Add it to your calendar: {link(found)}"


def _summary(found: Invite) -> str:
    return f"{found.activity} (iwant)"


def _description(found: Invite) -> str:
    if found.cancelled:
        return f"Cancelled: {found.activity}, arranged by iwant."
    return f"{found.activity} with {msg.and_list(found.attendees)}, arranged by iwant."


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
