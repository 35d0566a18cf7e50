"""End to end: the iwant plugin in a real errbot process on the Slack backend.

Times are relative to the real clock (Alice: "coffee in 40 min", Bob: "coffee for 2h"), so
bot and test agree without moving time. The three people have different profile time
zones (Prague, New York, Tokyo); every message must show the meeting in its reader's zone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from slack_harness import (
    ALICE,
    BOB,
    CAROL,
    GENERAL,
    PROJECT_CONFIG,
    ROOT,
    BotProcess,
    make_workspace,
    quiet_for,
    say,
)
from slack_standin import BOT_USER_ID, Posted, SlackStandIn

PLUGIN = ROOT / "iwant_plugins" / "iwant" / "iwant.py"

A_DM, B_DM, C_DM = (SlackStandIn.dm_of(u) for u in (ALICE, BOB, CAROL))
ZONES = {ALICE: "Europe/Prague", BOB: "America/New_York", CAROL: "Asia/Tokyo"}
SLOT = re.compile(r"(\d\d:\d\d)–(\d\d:\d\d)")


@pytest.fixture
def iwant(tmp_path: Path) -> Iterator[BotProcess]:
    """A bot running the real config.py (so the iwant plugin) on a fresh database."""
    standin = make_workspace()
    process = BotProcess(standin, tmp_path, config=PROJECT_CONFIG, env={"IWANT_TIMEZONE": "UTC"})
    process.start()
    try:
        standin.wait_connected(1)
        yield process
    finally:
        process.stop()
        standin.stop()


def meeting_start(text: str) -> str:
    match = SLOT.search(text)
    assert match, f"no meeting time in {text!r}"
    return match.group(1)


FORTY = timedelta(minutes=40)
MINUTE = timedelta(minutes=1)


def local_clocks(meets: tuple[datetime, datetime], user: str) -> set[str]:
    """HH:MM, in the user's profile time zone, of each minute "in 40 min" can mean: the bot
    counts from the next whole minute after it reads the wish, which it did between the
    two moments of ``meets`` (when the wish was sent and when its answer came, plus 40)."""
    zone = ZoneInfo(ZONES[user])
    minute, last = meets[0].replace(second=0, microsecond=0), meets[1] + MINUTE
    clocks = set()
    while minute <= last:
        clocks.add(minute.astimezone(zone).strftime("%H:%M"))
        minute += MINUTE
    return clocks


def next_in(s: SlackStandIn, channel: str, after: int, contains: str = "") -> Posted:
    return s.wait_message(channel, contains, after=after)


def test_worked_example_by_direct_message(iwant: BotProcess) -> None:
    s = iwant.standin
    t0 = datetime.now(UTC)

    # Alice waits for coffee in 40 minutes; her reply can cancel it.
    alice_reply = say(s, ALICE, A_DM, "!iwant coffee in 40 min", "coffee")
    meets_at = (t0 + FORTY, datetime.now(UTC) + FORTY)
    assert meeting_start(alice_reply.text) in local_clocks(meets_at, ALICE)
    (cancel,) = alice_reply.buttons()
    assert cancel["text"]["text"] == "Cancel" and cancel["value"].startswith("iwant cancel #")

    # Bob is free for two hours from now: he joins Alice at her time, shown in his zone.
    a_seen = len(s.messages_in(A_DM))
    bob_reply = say(s, BOB, B_DM, "!iwant coffee for 2h", "Alice Novak")
    assert meeting_start(bob_reply.text) in local_clocks(meets_at, BOB)
    alice_note = next_in(s, A_DM, a_seen, "Bob Smith")
    assert meeting_start(alice_note.text) in local_clocks(meets_at, ALICE)
    assert meeting_start(alice_note.text) != meeting_start(bob_reply.text)  # 6 hours apart
    assert [b["text"]["text"] for b in alice_note.buttons()] == ["I can't make it"]

    # Carol fits the formed group's time: she joins, both are told, in their own zones.
    a_seen, b_seen = len(s.messages_in(A_DM)), len(s.messages_in(B_DM))
    carol_reply = say(s, CAROL, C_DM, "!iwant coffee for 90 min", "Bob Smith")
    assert "Alice Novak" in carol_reply.text
    assert meeting_start(carol_reply.text) in local_clocks(meets_at, CAROL)
    assert meeting_start(next_in(s, A_DM, a_seen, "Carol Tanaka").text) in local_clocks(
        meets_at, ALICE
    )
    assert meeting_start(next_in(s, B_DM, b_seen, "Carol Tanaka").text) in local_clocks(
        meets_at, BOB
    )

    # Bob drops out with the button on his own message: Alice and Carol are told.
    a_seen, c_seen, b_seen = (len(s.messages_in(c)) for c in (A_DM, C_DM, B_DM))
    envelope = s.click(BOB, bob_reply, "I can't make it")
    s.wait_ack(envelope)
    bob_after = next_in(s, B_DM, b_seen)
    assert "not yours" not in bob_after.text
    assert "Bob Smith" in next_in(s, A_DM, a_seen, "Bob Smith").text
    assert "Alice Novak" in next_in(s, C_DM, c_seen, "Bob Smith").text
    s.wait_for(lambda: bob_reply.history, 10, "Bob's message updated after his click")
    assert bob_reply.buttons() == [] and "<@U0BOB>" in " ".join(bob_reply.context_texts())
    s.wait_all_acked()


def test_worked_example_by_slash_command(iwant: BotProcess) -> None:
    s = iwant.standin
    t0 = datetime.now(UTC)
    before = len(s.messages_in(A_DM))
    s.slash_command(ALICE, A_DM, "coffee in 40 min")
    alice_reply = next_in(s, A_DM, before, "coffee")
    meets_at = (t0 + FORTY, datetime.now(UTC) + FORTY)
    assert meeting_start(alice_reply.text) in local_clocks(meets_at, ALICE)

    a_seen, b_seen = len(s.messages_in(A_DM)), len(s.messages_in(B_DM))
    s.slash_command(BOB, B_DM, "coffee for 2h")
    bob_reply = next_in(s, B_DM, b_seen, "Alice Novak")
    assert meeting_start(bob_reply.text) in local_clocks(meets_at, BOB)
    next_in(s, A_DM, a_seen, "Bob Smith")

    # Pools follow rooms: the same wish typed in #general does not join the DM group.
    g_seen = len(s.messages_in(GENERAL))
    s.slash_command(CAROL, GENERAL, "coffee for 90 min")
    carol_reply = next_in(s, GENERAL, g_seen, "coffee")
    assert "Alice Novak" not in carol_reply.text and "Bob Smith" not in carol_reply.text
    s.wait_all_acked()


def test_worked_example_in_a_channel_with_a_mention(iwant: BotProcess) -> None:
    s = iwant.standin
    t0 = datetime.now(UTC)
    alice_reply = say(s, ALICE, GENERAL, "!iwant coffee in 40 min", "coffee")
    meets_at = (t0 + FORTY, datetime.now(UTC) + FORTY)
    assert alice_reply.channel == GENERAL
    assert meeting_start(alice_reply.text) in local_clocks(meets_at, ALICE)

    a_seen = len(s.messages_in(A_DM))
    bob_reply = say(s, BOB, GENERAL, f"<@{BOT_USER_ID}> iwant coffee for 2h", "Alice Novak")
    assert bob_reply.channel == GENERAL
    alice_note = next_in(s, A_DM, a_seen, "Bob Smith")  # told privately
    assert meeting_start(alice_note.text) in local_clocks(meets_at, ALICE)

    # Alice's Cancel button sits in the channel; Bob clicking it cancels nothing.
    g_seen = len(s.messages_in(GENERAL))
    s.click(BOB, alice_reply, "Cancel")
    refusal = next_in(s, GENERAL, g_seen)
    assert "not yours" in refusal.text
    quiet_for(0.5)
    assert alice_reply.history == [] and alice_reply.buttons()
    listing = say(s, ALICE, A_DM, "!iwant list", "coffee")
    assert "Bob Smith" in listing.text  # still matched with Bob

    # Her own click does cancel, and the message shows it.
    b_seen = len(s.messages_in(B_DM))
    s.click(ALICE, alice_reply, "Cancel")
    next_in(s, B_DM, b_seen, "Alice Novak")  # Bob hears that Alice dropped out
    s.wait_for(lambda: alice_reply.history, 10, "Alice's message updated after her click")
    assert alice_reply.buttons() == []


def test_dropped_socket_mid_conversation(iwant: BotProcess) -> None:
    s = iwant.standin
    say(s, ALICE, A_DM, "!iwant coffee in 40 min", "coffee")
    s.drop_socket("reset")
    # Bob asks while the bot is offline; Slack delivers it after the reconnect.
    a_seen, b_seen = len(s.messages_in(A_DM)), len(s.messages_in(B_DM))
    s.user_message(BOB, B_DM, "!iwant coffee for 2h")
    s.wait_connected(2)
    next_in(s, B_DM, b_seen, "Alice Novak")
    next_in(s, A_DM, a_seen, "Bob Smith")
    s.wait_all_acked()


def test_429_storm_delays_but_does_not_lose_a_notification(iwant: BotProcess) -> None:
    s = iwant.standin
    say(s, ALICE, A_DM, "!iwant coffee in 40 min", "coffee")
    # More 429s than one send retries: the send raises, the plugin's outbox retries later.
    s.rate_limit("chat.postMessage", times=5, retry_after=1, channel=A_DM)
    a_seen = len(s.messages_in(A_DM))
    say(s, BOB, B_DM, "!iwant coffee for 2h", "Alice Novak")
    note = next_in(s, A_DM, a_seen, "Bob Smith")
    attempts = [c for c in s.calls_of("chat.postMessage") if c.params["channel"] in (A_DM, ALICE)]
    statuses = [c.status for c in attempts[1:]]
    assert statuses == [429] * 5 + [200], statuses
    assert len(s.messages_in(A_DM)) == a_seen + 1, "delivered exactly once"
    assert "Bob Smith" in note.text


def test_undeliverable_notification_is_given_up_and_reported_in_the_room(
    iwant: BotProcess,
) -> None:
    s = iwant.standin
    say(s, ALICE, GENERAL, "!iwant coffee in 40 min", "coffee")
    # Alice's account was deactivated since: Slack archives DMs with her.
    s.fail("chat.postMessage", times=100, error="is_archived", channel=A_DM)
    g_seen = len(s.messages_in(GENERAL))
    bob_reply = say(s, BOB, GENERAL, "!iwant coffee for 2h", "Alice Novak")
    notice = s.wait_message(
        GENERAL, lambda p: "Alice Novak" in p.text and p is not bob_reply, after=g_seen
    )
    assert notice.channel == GENERAL and notice.ts != bob_reply.ts
    quiet_for(2.5)  # a transient failure would be retried within this time
    tries = [c for c in s.calls_of("chat.postMessage") if c.params["channel"] in (A_DM, ALICE)]
    assert len(tries) == 1, "an undeliverable notification must not be retried"


def test_group_dm_when_a_group_forms(iwant: BotProcess) -> None:
    s = iwant.standin
    say(s, ALICE, A_DM, "!iwant coffee in 40 min", "coffee")
    say(s, BOB, B_DM, "!iwant coffee for 2h", "Alice Novak")
    opened = s.wait_for(
        lambda: [c for c in s.calls_of("conversations.open") if "," in c.params["users"]],
        what="conversations.open with several users",
    )
    assert set(opened[0].params["users"].split(",")) == {ALICE, BOB}
    group = opened[0].response["channel"]["id"]
    s.wait_for(lambda: s.messages_in(group), what="a message in the group DM")


def test_an_event_redelivered_to_a_restarted_bot_stores_nothing_new(tmp_path: Path) -> None:
    """Slack re-sends an envelope it believes was not acknowledged; the bot that gets it may
    be a new process that never saw the first (its in-memory list of seen events is gone)."""
    s = make_workspace()
    first = BotProcess(s, tmp_path, config=PROJECT_CONFIG, env={"IWANT_TIMEZONE": "UTC"})
    first.start()
    try:
        s.wait_connected(1)
        before = len(s.messages_in(A_DM))
        envelope = s.user_message(ALICE, A_DM, "!iwant coffee in 40 min")
        answer = s.wait_message(A_DM, "Waiting for coffee", after=before)
        first.stop()
        again = BotProcess(s, tmp_path, config=PROJECT_CONFIG, env={"IWANT_TIMEZONE": "UTC"})
        again.start()
        try:
            s.wait_connected(2)
            seen = len(s.messages_in(A_DM))
            s.redeliver(envelope)
            second = s.wait_message(A_DM, "I have that one already", after=seen)
            assert meeting_start(second.text) == meeting_start(answer.text)
            s.user_message(ALICE, A_DM, "!iwant list")
            listed = s.wait_message(A_DM, "Your open requests", after=seen + 1)
            assert listed.text.count("coffee") == 2, "one request (and the cancel hint)"
        finally:
            again.stop()
    finally:
        first.stop()
        s.stop()


def test_texts_show_the_command_form_that_works_on_slack(iwant: BotProcess) -> None:
    s = iwant.standin
    reply = say(s, ALICE, A_DM, "!iwant list", "open requests")
    assert reply.text == "You have no open requests. Start one with /iwant coffee."
    helped = say(s, ALICE, A_DM, "!iwant help", "puts you together")
    assert "/iwant coffee 10:00 by 9:30" in helped.text and "!iwant" not in helped.text


def test_a_near_miss_taken_with_its_button(iwant: BotProcess) -> None:
    """Bob and Carol meet in 90 minutes; Alice asks for 40 minutes from now and is offered
    their group (50 minutes outside her window) with a button that joins it instead."""
    s = iwant.standin
    say(s, BOB, B_DM, "!iwant coffee in 90 min", "coffee")
    say(s, CAROL, C_DM, "!iwant coffee in 90 min", "Bob Smith")
    alice_reply = say(s, ALICE, A_DM, "!iwant coffee in 40 min", "Nearest")
    assert "a group of 2 meets for coffee" in alice_reply.text
    assert "Bob" not in alice_reply.text and "Carol" not in alice_reply.text  # counts only
    labels = [b["text"]["text"] for b in alice_reply.buttons()]
    assert labels[0] == "Cancel" and labels[1].startswith("Coffee ")
    assert "instead of #" in alice_reply.buttons()[1]["value"]
    a_seen, b_seen = len(s.messages_in(A_DM)), len(s.messages_in(B_DM))
    envelope = s.click(ALICE, alice_reply, labels[1])
    s.wait_ack(envelope)
    joined = next_in(s, A_DM, a_seen, "You join")
    assert "Bob Smith" in joined.text and "Carol Tanaka" in joined.text
    assert "is cancelled" in joined.text
    assert meeting_start(joined.text) == labels[1].split()[-1]
    next_in(s, B_DM, b_seen, "Alice Novak")
    s.wait_all_acked()


def test_export_asked_in_a_channel_arrives_as_a_file_in_a_direct_message(
    iwant: BotProcess,
) -> None:
    import json

    s = iwant.standin
    say(s, ALICE, A_DM, "!iwant coffee in 40 min", "coffee")
    reply = say(s, ALICE, GENERAL, "!iwant export", "privately")
    assert reply.text == "I sent you everything iwant keeps about you as a file, privately."
    s.wait_for(lambda: s.files_in(A_DM), 10, "the export file in Alice's DM")
    (shared,) = s.files_in(A_DM)
    assert shared.filename == "iwant-export.json" and not s.files_in(GENERAL)
    doc = json.loads(shared.content)
    assert doc["schema"] == "iwant-export/1" and doc["person"]["id"] == f"slack:{ALICE}"
    assert [r["activity"] for r in doc["requests"]] == ["coffee"]


def test_a_match_sends_an_ics_invite_to_the_person_with_a_linked_calendar(
    tmp_path: Path,
) -> None:
    """Alice links a calendar (an empty feed over HTTP, read by the built-in ``ics``
    provider): her note of the match is followed by ``coffee.ics`` in her DM, uploaded the
    way Slack takes files; Bob, without a calendar, gets no file."""
    import icalendar

    from tests.calendars.feed_server import serve_feeds

    cfg = tmp_path / "plugins.cfg"
    text = (ROOT / "plugins.cfg").read_text()
    cfg.write_text(text.replace("allow_private_addresses = no", "allow_private_addresses = yes"))
    env = {
        "IWANT_TIMEZONE": "UTC",
        "IWANT_PLUGINS_CFG": str(cfg),
        "IWANT_SECRET_KEY": "a long random admin secret",
    }
    s = make_workspace()
    process = BotProcess(s, tmp_path, config=PROJECT_CONFIG, env=env)
    with serve_feeds() as feeds:
        process.start()
        try:
            s.wait_connected(1)
            address = feeds.url("feed/empty.ics")
            reply = say(s, ALICE, A_DM, f"!iwant calendar {address}", "Calendar linked")
            assert "0 busy blocks this week" in reply.text
            say(s, ALICE, A_DM, "!iwant coffee in 40 min", "coffee")
            say(s, BOB, B_DM, "!iwant coffee for 2h", "Matched")
            s.wait_for(lambda: s.files_in(A_DM), 20, "the invite in Alice's DM")
            (shared,) = s.files_in(A_DM)
            assert shared.filename == "coffee.ics"
            assert shared.initial_comment == "Add coffee to your calendar."
            cal = icalendar.Calendar.from_ical(shared.content)
            (event,) = cal.walk("VEVENT")
            assert str(cal["METHOD"]) == "REQUEST"
            assert re.fullmatch(r"iwant-group-\d+@iwant\.invalid", str(event["UID"]))
            assert len(event.get("ATTENDEE")) == 2
            # Alice's note went first, the file after it; Bob's answer came before both.
            assert "calendar" not in s.messages_in(B_DM)[-1].text
            assert not s.files_in(B_DM)
            s.wait_all_acked()
        finally:
            process.stop()
            s.stop()
