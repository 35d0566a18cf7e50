"""The invite that goes with a match: an RFC 5545 event, published as an iTIP request.

One group keeps one UID (``group_uid``); each change (someone joins) goes out as a REQUEST
with a higher SEQUENCE, which calendars apply as an update of the same event, and a group
that dissolves goes out as a CANCEL of that UID (RFC 5546 3.2.2, 3.2.5).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import icalendar

PRODID = "-//iwant//iwant calendars//EN"
_NAMED_EMAIL = re.compile(r"^\s*(?P<name>[^<>]*?)\s*<(?P<email>[^<>\s]+)>\s*$")
_EMAIL = re.compile(r"^[^@\s<>:]+@[^@\s<>]+\.[^@\s<>.]+$")
#: Namespace of the ``urn:uuid:`` addresses of people known by name only (fixed forever:
#: the same name gives the same address in every invite).
_PEOPLE = uuid.UUID("9f1d6a3e-4c2b-5e8f-9a7d-1b3c5e7f9a2d")


def group_uid(group_id: int, domain: str) -> str:
    """The UID of a group's event: the same for every invite of that group, unique to this
    deployment through ``domain`` (RFC 5545 3.8.4.7 suggests ``something@domain``)."""
    return f"iwant-group-{group_id}@{domain}"


def invite(
    *,
    uid: str,
    sequence: int,
    start: datetime,
    end: datetime,
    summary: str,
    description: str,
    attendees: Sequence[str],
    organizer: str,
    cancelled: bool = False,
    stamp: datetime,
) -> bytes:
    """A VCALENDAR with METHOD:REQUEST (or METHOD:CANCEL and STATUS:CANCELLED) and one VEVENT,
    times in UTC.

    ``attendees`` and ``organizer`` are ``"Name <email>"``, an email, or a name only. A name
    only gets a ``urn:uuid:`` address derived from it: ATTENDEE and ORGANIZER must be URIs
    (cal-address, RFC 5545 3.3.3), a made-up ``mailto:`` would have clients send mail to it,
    and ``urn:uuid`` is a registered URN namespace that validators accept and calendars show
    by its CN."""
    for name, moment in (("start", start), ("end", end), ("stamp", stamp)):
        if moment.tzinfo is None:
            raise ValueError(f"invite: {name} must be an aware datetime")
    if end <= start:
        raise ValueError("invite: end must be after start")
    if sequence < 0:
        raise ValueError("invite: sequence must be 0 or more")
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "CANCEL" if cancelled else "REQUEST")
    event = icalendar.Event()
    event.add("uid", uid)
    event.add("sequence", sequence)
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("dtstart", start.astimezone(UTC))
    event.add("dtend", end.astimezone(UTC))
    event.add("summary", summary)
    event.add("description", description)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    event.add("organizer", _address(organizer))
    for person in attendees:
        attendee = _address(person)
        attendee.params.update(
            # Everyone asked for this meeting and the bot reads no replies: nothing to answer.
            {"ROLE": "REQ-PARTICIPANT", "PARTSTAT": "ACCEPTED", "RSVP": "FALSE"}
        )
        event.add("attendee", attendee, encode=False)
    cal.add_component(event)
    return bytes(cal.to_ical())


def _address(person: str) -> icalendar.vCalAddress:
    """A cal-address with its CN: ``mailto:`` for an email, else ``urn:uuid:`` of the name."""
    named = _NAMED_EMAIL.match(person)
    if named and _EMAIL.match(named["email"]):
        name, email = named["name"] or named["email"], named["email"]
    elif _EMAIL.match(person.strip()):
        name = email = person.strip()
    else:
        name, email = person.strip(), ""
    value = f"mailto:{email}" if email else f"urn:uuid:{uuid.uuid5(_PEOPLE, name)}"
    address = icalendar.vCalAddress(value)
    address.params["CN"] = name
    return address
