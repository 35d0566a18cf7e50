"""Linked calendars as people use them through the plugin (issue 27): errbot's Test backend,
time moving; the built-in ``ics`` provider reading a feed over HTTP, or a test provider
registered on the running engine's plugin manager through the real ``iwant_calendars`` hook
(as the plugin registers its own observer) where a test sets what the calendar says."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import time_machine
from iwant_platform import redaction

from ..calendar_provider import TestCalendar, TestCalendars
from ..calendars.feed_server import SECRET, FeedServer, serve_feeds
from ..support import at
from .chat import Chat, on_sqlite

pytest_plugins = ["errbot.backends.test"]

REPO = Path(__file__).resolve().parents[2]
ADDRESS = "test://cal.test/alice-private-7f3a9c"


@pytest.fixture
def provider(monkeypatch) -> TestCalendar:
    monkeypatch.setenv("IWANT_SECRET_KEY", "a long random admin secret")
    return TestCalendar()


@pytest.fixture
def chat(monkeypatch, testbot, provider) -> Chat:
    chat = on_sqlite(monkeypatch, testbot)
    chat.plugin.engine.pm.register(TestCalendars(provider))
    return chat


@pytest.fixture
def feeds(chat, monkeypatch, tmp_path) -> Iterator[FeedServer]:
    """The built-in ``ics`` provider reading a feed served on 127.0.0.1 (allowed by the
    plugins.cfg the plugin is restarted with)."""
    cfg = tmp_path / "plugins.cfg"
    text = (REPO / "plugins.cfg").read_text()
    cfg.write_text(text.replace("allow_private_addresses = no", "allow_private_addresses = yes"))
    monkeypatch.setenv("IWANT_PLUGINS_CFG", str(cfg))
    chat.plugin.deactivate()
    chat.plugin.activate()
    with serve_feeds() as server:
        yield server


def test_one_persons_calendar_trims_a_two_person_match_end_to_end(chat, feeds):
    """Alice's Google feed: a standup 13:00–13:30 in Prague every Tuesday (12:00 UTC), and a
    transparent birthday; she reads UTC, Bob too."""
    address = feeds.url("feed/lunch-meeting.ics")
    with time_machine.travel(at(9, 0), tick=False):
        reply, _ = chat.say("alice", f"!iwant calendar {address}")
        assert reply == (
            "Calendar linked (ics): 1 busy block this week. iwant sees only when you are busy, "
            "never what. !iwant calendar off removes it."
        )
        reply, _ = chat.say("alice", "!iwant lunch 11:30-13:30")
        assert reply.splitlines()[0] == (
            "By your calendar: free 12:30–13:30; you have something 12:00–12:30."
        )
        reply, told = chat.say("bob", "!iwant lunch 11:30-14:00")
        assert (
            reply.splitlines()[0] == "Matched! You meet alice for lunch at 12:30–13:15 (Tue 1 Dec)."
        )
        assert told["alice"].startswith("bob joins you for lunch at 12:30–13:15 (Tue 1 Dec).")
        assert "you have something" not in told["alice"], "bob sees only the time, never why"
        # Alice linked a calendar: her note ends with a link that adds the meeting to one.
        assert (
            "\nAdd it to your calendar: https://calendar.google.com/calendar/render?"
            in (told["alice"])
        )
        assert "Standup" not in reply + told["alice"]
        reply, _ = chat.say("alice", "!iwant calendar")
        assert reply.startswith("Your calendar: ics, http://127.0.0.1/•••, linked 09:00")
        assert SECRET not in reply


def test_in_a_room_the_address_is_refused_unstored_and_never_logged(chat, provider, caplog):
    redaction.install()  # the filter on pytest's capturing handler too, as on errbot's own
    provider.feeds["alice-private-7f3a9c"] = []
    with time_machine.travel(at(9, 0), tick=False), caplog.at_level(logging.DEBUG):
        reply, _ = chat.say_in("lunchroom", "alice", f"!iwant calendar {ADDRESS}")
        assert "this room has now seen it. Nothing was stored. Please revoke" in reply
        assert provider.reads == []
        reply, _ = chat.say("alice", "!iwant calendar")
        assert reply.startswith("You have no calendar linked.")
        chat.say("alice", f"!iwant calendar {ADDRESS}")
        reply, _ = chat.say("alice", "!iwant export")
        assert "test://cal.test/•••" in reply
    assert "iwant_calendar" in caplog.text, "errbot logged the commands"
    assert "alice-private-7f3a9c" not in caplog.text
    assert "alice-private-7f3a9c" not in reply


def test_a_failing_calendar_is_told_once_through_the_outbox(chat, provider):
    from iwant_engine.calendars.provider import CalendarError

    provider.feeds["alice-private-7f3a9c"] = [(at(12, day=2), at(13, day=2))]
    with time_machine.travel(at(9, 0), tick=False) as traveller:
        chat.say("alice", f"!iwant calendar {ADDRESS}")
        provider.feeds["alice-private-7f3a9c"] = CalendarError("timed out")
        traveller.move_to(at(9, 15))
        assert chat._collect(chat.plugin.refresh_calendars)[1] == {}
        traveller.move_to(at(9, 15, day=2))
        told = chat._collect(chat.plugin.refresh_calendars)[1]
        assert told["alice"].startswith(
            "I have not been able to read your calendar (test, test://cal.test/•••) since 09:15"
        )
        traveller.move_to(at(9, 30, day=2))
        assert chat._collect(chat.plugin.refresh_calendars)[1] == {}
        reply, _ = chat.say("alice", "!iwant calendar off")
        assert reply == "Calendar removed: its address and busy times are deleted."


def test_an_invite_link_goes_only_to_the_person_with_a_linked_calendar(chat, provider):
    """The Test backend takes no files: the invite is a line, a Google Calendar link for a
    match, what to remove for a cancel; Bob, without a calendar, gets neither."""
    provider.feeds["alice-private-7f3a9c"] = []
    link = "Add it to your calendar: https://calendar.google.com/calendar/render?action=TEMPLATE"
    with time_machine.travel(at(9, 0), tick=False):
        chat.say("alice", f"!iwant calendar {ADDRESS}")
        chat.say("alice", "!iwant coffee 10:00")
        reply, told = chat.say("bob", "!iwant coffee 10:00")
        assert reply.startswith("Matched!") and "calendar" not in reply
        assert f"\n{link}" in told["alice"]
        assert "&dates=20261201T100000Z%2F20261201T101500Z" in told["alice"]
        assert "text=coffee+%28iwant%29" in told["alice"]
        # Alice forms the next group herself: the line is in her own answer, not in Bob's.
        chat.say("bob", "!iwant lunch 12:00")
        reply, told = chat.say("alice", "!iwant lunch 12:00")
        assert f"\n{link}" in reply
        assert "calendar" not in told["bob"]
        reply, told = chat.say("alice", "!iwant cancel lunch")
        assert "\nRemove lunch at 12:00 (Tue 1 Dec) from your calendar." in reply
        assert "calendar" not in told["bob"]
