"""An invite with every match (issue 27 item 4): every note that tells a member about a
group carries its calendar invite, one UID per group, a higher SEQUENCE with each change, a
CANCEL when someone leaves or the group dissolves; ``[calendar] invites`` decides who
receives them; the ``.ics`` bytes read back with ``icalendar``."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import icalendar
import pytest

from iwant_engine import Engine, settings
from iwant_engine.model import Invite, OutboxItem
from iwant_engine.settings import SettingsError

from ..calendar_provider import KEY, TestCalendar, make
from ..support import ALICE, BOB, CAROL, at


@pytest.fixture
def provider() -> TestCalendar:
    return TestCalendar()


@pytest.fixture
def open_engine(database_url, clock, provider, monkeypatch) -> Iterator[Engine]:
    """Invites for everyone."""
    monkeypatch.setenv("IWANT_SECRET_KEY", KEY)
    eng = make(database_url, clock, provider, invites="all")
    yield eng
    eng.close()


@pytest.fixture
def linked_engine(database_url, clock, provider, monkeypatch) -> Iterator[Engine]:
    """The default: invites for people who linked a calendar."""
    monkeypatch.setenv("IWANT_SECRET_KEY", KEY)
    eng = make(database_url, clock, provider)
    yield eng
    eng.close()


def delivered(engine: Engine) -> dict[str, list[OutboxItem]]:
    """Every due direct message as the platform's send receives it, by recipient."""
    sent: dict[str, list[OutboxItem]] = {}

    def send(item: OutboxItem) -> None:
        if item.group_members is None:
            sent.setdefault(item.recipient, []).append(item)

    while engine.deliver("text", send).delivered:
        pass
    return sent


def invites_to(engine: Engine, person: str) -> list[Invite]:
    return [i for item in delivered(engine).get(person, []) for i in item.invites]


def parsed(engine: Engine, invite: Invite) -> tuple[icalendar.Calendar, icalendar.Event]:
    filename, content = engine.invite_file(invite)
    assert filename == f"{invite.activity}.ics"
    cal = icalendar.Calendar.from_ical(content)
    (event,) = cal.walk("VEVENT")
    return cal, event


def test_a_group_sends_one_uid_with_growing_sequence_then_cancels(open_engine, clock):
    engine = open_engine
    engine.submit(ALICE, "coffee 10:00")
    reply = engine.submit(BOB, "coffee 10:00")
    (formed,) = reply.invites
    assert formed.attendees == ("Alice", "Bob") and not formed.cancelled
    assert (formed.start, formed.end, formed.activity) == (at(10), at(10, 15), "coffee")
    assert invites_to(engine, ALICE.id) == [formed], "both hear of the same event"
    cal, event = parsed(engine, formed)
    uid = str(event["UID"])
    assert uid == f"iwant-group-{formed.group}@iwant.invalid"
    assert str(cal["METHOD"]) == "REQUEST"
    first = int(event["SEQUENCE"])
    assert first == formed.sequence

    clock.advance(minutes=1)
    (joined,) = engine.submit(CAROL, "coffee 9:50-10:30").invites
    assert joined.group == formed.group and joined.sequence > first
    assert sorted(joined.attendees) == ["Alice", "Bob", "Carol"]
    sent = delivered(engine)
    for person in (ALICE, BOB):
        assert [i for item in sent[person.id] for i in item.invites] == [joined]
    _, event = parsed(engine, joined)
    assert str(event["UID"]) == uid and int(event["SEQUENCE"]) == joined.sequence
    assert len(event.get("ATTENDEE")) == 3

    clock.advance(minutes=1)
    (left,) = engine.cancel(CAROL).invites
    assert left.cancelled and left.group == formed.group and left.sequence > joined.sequence
    cal, event = parsed(engine, left)
    assert (str(cal["METHOD"]), str(event["STATUS"]), str(event["UID"])) == (
        "CANCEL",
        "CANCELLED",
        uid,
    )
    sent = delivered(engine)
    for person in (ALICE, BOB):  # the two left keep the event, updated
        (updated,) = [i for item in sent[person.id] for i in item.invites]
        assert sorted(updated.attendees) == ["Alice", "Bob"] and not updated.cancelled
        assert (updated.group, updated.sequence) == (formed.group, left.sequence)

    clock.advance(minutes=1)
    (bob_left,) = engine.cancel(BOB).invites
    assert bob_left.cancelled and bob_left.sequence > left.sequence
    (alice_cancel,) = invites_to(engine, ALICE.id)
    assert alice_cancel.cancelled and alice_cancel.group == formed.group
    cal, event = parsed(engine, alice_cancel)
    assert str(cal["METHOD"]) == "CANCEL" and str(event["UID"]) == uid


def test_the_two_left_get_the_updated_invite_and_the_leaver_a_cancel(open_engine, clock):
    engine = open_engine
    engine.submit(ALICE, "coffee 10:00")
    engine.submit(BOB, "coffee 10:00")
    (joined,) = engine.submit(CAROL, "coffee 10:00").invites
    delivered(engine)
    clock.advance(seconds=30)
    (gone,) = engine.cancel(CAROL).invites
    assert gone.cancelled and gone.sequence > joined.sequence
    sent = delivered(engine)
    for person in (ALICE, BOB):
        (updated,) = [i for item in sent[person.id] for i in item.invites]
        assert not updated.cancelled
        assert sorted(updated.attendees) == ["Alice", "Bob"]
        assert (updated.group, updated.sequence) == (joined.group, gone.sequence)
    assert CAROL.id not in sent


def test_linked_invites_only_the_person_with_a_calendar(linked_engine, provider):
    engine = linked_engine
    provider.feeds["alice"] = []
    engine.calendar(ALICE, "test://cal.test/alice")
    engine.submit(ALICE, "coffee 10:00")
    reply = engine.submit(BOB, "coffee 10:00")
    assert reply.invites == (), "Bob linked no calendar"
    (invite,) = invites_to(engine, ALICE.id)
    assert invite.attendees == ("Alice", "Bob")
    # Alice forms the next group herself: her answer carries it, Bob's note does not.
    engine.submit(BOB, "lunch 12:00")
    (lunch,) = engine.submit(ALICE, "lunch 12:00").invites
    assert lunch.activity == "lunch" and lunch.group != invite.group
    assert [i for item in delivered(engine).get(BOB.id, []) for i in item.invites] == []


def test_off_invites_nobody_even_with_a_calendar(database_url, clock, provider, monkeypatch):
    monkeypatch.setenv("IWANT_SECRET_KEY", KEY)
    engine = make(database_url, clock, provider, invites="off")
    try:
        provider.feeds["alice"] = []
        engine.calendar(ALICE, "test://cal.test/alice")
        engine.submit(BOB, "coffee 10:00")
        assert engine.submit(ALICE, "coffee 10:00").invites == ()
        assert invites_to(engine, BOB.id) == []
        assert engine.cancel(ALICE).invites == ()
    finally:
        engine.close()


def test_a_dissolved_group_sends_each_a_cancel(open_engine, clock):
    engine = open_engine
    engine.submit(ALICE, "coffee 10:00")
    (formed,) = engine.submit(BOB, "coffee 10:00").invites
    delivered(engine)
    clock.advance(minutes=2)
    (bob,) = engine.cancel(BOB).invites
    (alice,) = invites_to(engine, ALICE.id)
    for invite in (alice, bob):
        assert invite.cancelled and invite.group == formed.group
        assert invite.sequence > formed.sequence
        cal, event = parsed(engine, invite)
        assert str(cal["METHOD"]) == "CANCEL"
        assert str(event["UID"]) == f"iwant-group-{formed.group}@iwant.invalid"


def test_the_line_where_no_file_goes(open_engine):
    engine = open_engine
    engine.submit(ALICE, "coffee 10:00")
    (invite,) = engine.submit(BOB, "coffee 10:00").invites
    line = engine.invite_line(invite, BOB.id)
    assert line.startswith("Add it to your calendar: https://calendar.google.com/calendar/render?")
    query = parse_qs(urlsplit(line.split(": ", 1)[1]).query)
    assert query["action"] == ["TEMPLATE"]
    assert query["text"] == ["coffee (iwant)"]
    assert query["dates"] == ["20261201T100000Z/20261201T101500Z"]
    assert query["details"] == ["coffee with Alice and Bob, arranged by iwant."]
    gone = dataclasses.replace(invite, cancelled=True)
    assert engine.invite_line(gone, BOB.id) == (
        "Remove coffee at 10:00 (Tue 1 Dec) from your calendar."
    )


def test_the_settings():
    assert settings.parse_cfg("", {}).invites == "linked"
    assert settings.parse_cfg("", {}).invite_domain == "iwant.invalid"
    chosen = settings.parse_cfg("[calendar]\ninvites = all\ninvite_domain = bot.example.com\n", {})
    assert (chosen.invites, chosen.invite_domain) == ("all", "bot.example.com")
    with pytest.raises(SettingsError) as err:
        settings.parse_cfg("[calendar]\ninvites = some\n", {})
    assert str(err.value) == "plugins.cfg [calendar] invites = 'some': use linked, all or off"
    with pytest.raises(SettingsError, match="invite_domain"):
        settings.parse_cfg("[calendar]\ninvite_domain = not a domain\n", {})
