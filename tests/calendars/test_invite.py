"""The invite of a match, parsed back with icalendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest

from iwant_engine.calendars.invite import PRODID, group_uid, invite

PRAGUE = ZoneInfo("Europe/Prague")
START = datetime(2026, 12, 7, 12, 0, tzinfo=PRAGUE)
STAMP = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
UID = group_uid(42, "iwant.example")
PEOPLE = ["Alice <alice@example.com>", "bob@example.com", "Doe, John", "telegram:12345"]


def make(**changes: object) -> icalendar.Calendar:
    fields: dict[str, object] = {
        "uid": UID,
        "sequence": 0,
        "start": START,
        "end": START + timedelta(minutes=45),
        "summary": "lunch with Alice, Bob, John",
        "description": "You asked for lunch at 12:00; Bob and John join.\nSee you there.",
        "attendees": PEOPLE,
        "organizer": "iwant <iwant@iwant.example>",
        "stamp": STAMP,
    }
    fields.update(changes)
    data = invite(**fields)  # type: ignore[arg-type]
    assert isinstance(data, bytes) and data.startswith(b"BEGIN:VCALENDAR\r\n")
    return icalendar.Calendar.from_ical(data)


def only_event(cal: icalendar.Calendar) -> icalendar.Event:
    events = cal.walk("VEVENT")
    assert len(events) == 1
    return events[0]


def test_a_request_carries_every_field_in_utc():
    cal = make()
    assert (str(cal["PRODID"]), str(cal["VERSION"]), str(cal["METHOD"])) == (
        PRODID,
        "2.0",
        "REQUEST",
    )
    event = only_event(cal)
    assert str(event["UID"]) == "iwant-group-42@iwant.example"
    assert event["SEQUENCE"] == 0
    assert event.start == datetime(2026, 12, 7, 11, 0, tzinfo=UTC)
    assert event.end == datetime(2026, 12, 7, 11, 45, tzinfo=UTC)
    assert event.DTSTAMP == STAMP
    assert str(event["SUMMARY"]) == "lunch with Alice, Bob, John"
    assert str(event["DESCRIPTION"]).endswith("Bob and John join.\nSee you there.")
    assert str(event["STATUS"]) == "CONFIRMED"
    organizer = event["ORGANIZER"]
    assert (str(organizer), organizer.params["CN"]) == ("mailto:iwant@iwant.example", "iwant")


def test_times_are_written_in_utc():
    data = invite(
        uid=UID,
        sequence=0,
        start=START,
        end=START + timedelta(hours=1),
        summary="s",
        description="d",
        attendees=[],
        organizer="iwant",
        stamp=STAMP,
    )
    lines = data.decode().split("\r\n")
    for line in ("DTSTART:20261207T110000Z", "DTEND:20261207T120000Z", "DTSTAMP:20261207T090000Z"):
        assert line in lines
    assert "VTIMEZONE" not in data.decode()


def test_attendees_get_mailto_only_for_emails_and_a_stable_urn_otherwise():
    attendees = only_event(make())["ATTENDEE"]
    got = [
        (a.params["CN"], str(a).split(":")[0] + ":" + str(a).split(":")[1][:5]) for a in attendees
    ]
    assert got == [
        ("Alice", "mailto:alice"),
        ("bob@example.com", "mailto:bob@e"),
        ("Doe, John", "urn:uuid"),
        ("telegram:12345", "urn:uuid"),
    ]
    for attendee in attendees:
        assert attendee.params["PARTSTAT"] == "ACCEPTED" and attendee.params["RSVP"] == "FALSE"
    again = only_event(make(sequence=3))["ATTENDEE"]
    assert [str(a) for a in again] == [str(a) for a in attendees], "same person, same address"


def test_a_join_bumps_the_sequence_of_the_same_uid():
    first = only_event(make(attendees=PEOPLE[:2]))
    second = only_event(make(sequence=1, attendees=PEOPLE[:3]))
    assert str(first["UID"]) == str(second["UID"])
    assert (first["SEQUENCE"], second["SEQUENCE"]) == (0, 1)
    assert len(second["ATTENDEE"]) == 3


def test_a_cancel_keeps_the_uid_and_says_so_twice():
    cal = make(sequence=2, cancelled=True)
    assert str(cal["METHOD"]) == "CANCEL"
    event = only_event(cal)
    assert (str(event["UID"]), event["SEQUENCE"], str(event["STATUS"])) == (UID, 2, "CANCELLED")


def test_group_uid_is_stable_per_group_and_distinct_between_groups_and_deployments():
    assert group_uid(7, "a.example") == group_uid(7, "a.example")
    assert (
        len({group_uid(7, "a.example"), group_uid(8, "a.example"), group_uid(7, "b.example")}) == 3
    )


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"start": datetime(2026, 12, 7, 12, 0)}, "start must be an aware"),
        ({"end": START}, "end must be after start"),
        ({"sequence": -1}, "sequence must be 0 or more"),
    ],
)
def test_bad_arguments_are_programming_errors(changes: dict[str, object], says: str):
    with pytest.raises(ValueError, match=says):
        make(**changes)
