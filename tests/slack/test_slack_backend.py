"""The IWantSlack backend in a real errbot process, against the Slack stand-in.

Built-in errbot commands (``!echo``, ``!help``) and the test-only SlackProbe plugin drive
it; these tests do not need the iwant plugin.
"""

from __future__ import annotations

import json
import time

import pytest
from slack_harness import (
    ADMIN,
    ALICE,
    BOB,
    CAROL,
    GENERAL,
    RANDOM,
    BotProcess,
    quiet_for,
    say,
)
from slack_standin import BOT_USER_ID, SlackStandIn

A_DM, B_DM = SlackStandIn.dm_of(ALICE), SlackStandIn.dm_of(BOB)


# ---------------------------------------------------------------- incoming: where and who


def test_direct_message_command_is_answered_in_the_dm(shared_bot: BotProcess) -> None:
    s = shared_bot.standin
    reply = say(s, ALICE, A_DM, "!echo hello there", "hello there")
    assert reply.channel == A_DM
    # Posted to Alice's user id (Slack puts it in her DM): no conversations.open, which is
    # Tier 3 (50 a minute) and would hold up a lunch rush.
    assert [c.params["channel"] for c in s.calls_of("chat.postMessage")][-1] == ALICE
    assert not any(c.params.get("users") == ALICE for c in s.calls_of("conversations.open"))


def test_help_lists_builtin_commands(shared_bot: BotProcess) -> None:
    reply = say(shared_bot.standin, BOB, B_DM, "!help", "echo")
    assert "help" in reply.text


def test_channel_command_is_answered_in_the_channel_as_the_sender(
    shared_bot: BotProcess,
) -> None:
    reply = say(shared_bot.standin, CAROL, GENERAL, "!probe whoami", "id=")
    assert reply.channel == GENERAL
    assert "id=slack:U0CAROL " in reply.text
    assert f"room={GENERAL} " in reply.text
    assert "roundtrip=True" in reply.text and "is_direct=False" in reply.text
    assert "fullname=Carol Tanaka" in reply.text and "tz=Asia/Tokyo" in reply.text


def test_person_identity_and_profile_time_zone_in_a_dm(shared_bot: BotProcess) -> None:
    reply = say(shared_bot.standin, BOB, B_DM, "!probe whoami", "id=")
    assert "id=slack:U0BOB str=U0BOB " in reply.text
    assert "tz=America/New_York" in reply.text and "fullname=Bob Smith" in reply.text
    assert "nick=bob" in reply.text and "room=None" in reply.text
    assert "roundtrip=True" in reply.text and "is_direct=True" in reply.text


def test_admins_are_slack_user_ids(shared_bot: BotProcess) -> None:
    s = shared_bot.standin
    refused = say(s, ALICE, A_DM, "!log tail 1", "")
    assert "requires bot-admin" in refused.text
    allowed = say(s, ADMIN, SlackStandIn.dm_of(ADMIN), "!log tail 1", "")
    assert "requires bot-admin" not in allowed.text


def test_users_info_is_cached(shared_bot: BotProcess) -> None:
    s = shared_bot.standin
    for _ in range(3):
        say(s, ALICE, GENERAL, "!probe whoami", "id=slack:U0ALICE")
    lookups = [c for c in s.calls_of("users.info") if c.params.get("user") == ALICE]
    assert len(lookups) == 1


def test_a_renamed_person_is_shown_by_the_new_name_at_once(bot: BotProcess) -> None:
    """The cache of users.info does not outlive a profile change: Slack's user_change event
    carries the whole user, and names read after it are the new ones."""
    s = bot.standin
    c_dm = SlackStandIn.dm_of(CAROL)
    assert "fullname=Carol Tanaka" in say(s, CAROL, c_dm, "!probe whoami", "id=").text
    s.rename(CAROL, "Carol Sato", "carol")
    s.wait_for(
        lambda: "fullname=Carol Sato" in say(s, CAROL, c_dm, "!probe whoami", "id=").text,
        10,
        "the new name",
    )
    assert len([c for c in s.calls_of("users.info") if c.params.get("user") == CAROL]) == 1


def test_mention_reaches_errbot_once_as_a_command(shared_bot: BotProcess) -> None:
    s = shared_bot.standin
    before = len(s.messages_in(GENERAL))
    # Slack delivers this both as a message event and as an app_mention event.
    reply = say(s, BOB, GENERAL, f"<@{BOT_USER_ID}> probe whoami", "id=slack:U0BOB")
    assert reply.channel == GENERAL
    quiet_for(0.7)
    assert len(s.messages_in(GENERAL)) == before + 1, "the mention was handled twice"


def test_mention_only_subscription_and_prefixed_mention(shared_bot: BotProcess) -> None:
    s = shared_bot.standin
    before = len(s.messages_in(GENERAL))
    s.mention_only(ALICE, GENERAL, f"<@{BOT_USER_ID}>: !echo via mention")
    reply = s.wait_message(GENERAL, "via mention", after=before)
    assert reply.text == "via mention"


def test_slash_command_in_a_channel_and_in_a_dm(shared_bot: BotProcess) -> None:
    s = shared_bot.standin
    before = len(s.messages_in(GENERAL))
    envelope = s.slash_command(BOB, GENERAL, "whoami", command="/probe")
    reply = s.wait_message(GENERAL, "id=slack:U0BOB", after=before)
    assert f"room={GENERAL}" in reply.text
    assert s.acks[envelope] == {"envelope_id": envelope}

    before = len(s.messages_in(A_DM))
    s.slash_command(ALICE, A_DM, "slash &amp; burn", command="/echo")
    assert s.wait_message(A_DM, "slash", after=before).text == "slash &amp; burn"


def test_slash_command_where_the_bot_is_not_a_member_answers_via_response_url(
    shared_bot: BotProcess,
) -> None:
    s = shared_bot.standin
    s.slash_command(ALICE, RANDOM, "whoami", command="/probe")
    post = s.wait_for(
        lambda: next((p for p in s.response_url_posts if "U0ALICE" in p["text"]), None),
        what="a reply through response_url",
    )
    assert post["response_type"] == "in_channel"
    assert f"room={RANDOM}" in post["text"]


def test_reply_to_a_thread_stays_in_the_thread(shared_bot: BotProcess) -> None:
    s = shared_bot.standin
    before = len(s.messages_in(GENERAL))
    s.user_message(ALICE, GENERAL, "!echo threaded", thread_ts="1700000000.000001")
    reply = s.wait_message(GENERAL, "threaded", after=before)
    assert reply.thread_ts == "1700000000.000001"


def test_the_bots_own_messages_are_never_commands(shared_bot: BotProcess) -> None:
    s = shared_bot.standin
    before = len(s.messages_in(B_DM))
    # The reply is "!echo again"; Slack echoes it back to the bot as an event.
    say(s, BOB, B_DM, "!echo !echo again", "!echo again")
    quiet_for(1.0)
    assert len(s.messages_in(B_DM)) == before + 1


def test_every_envelope_is_acknowledged(shared_bot: BotProcess) -> None:
    s = shared_bot.standin
    say(s, CAROL, GENERAL, "!echo ack me", "ack me")
    s.wait_all_acked()
    assert len(s.acks) >= 2


def test_redelivered_envelope_is_acknowledged_but_handled_once(shared_bot: BotProcess) -> None:
    s = shared_bot.standin
    before = len(s.messages_in(A_DM))
    envelope = s.user_message(ALICE, A_DM, "!echo only once")
    s.wait_message(A_DM, "only once", after=before)
    s.wait_ack(envelope)
    s.redeliver(envelope)  # as Slack does when it thinks the ack was lost
    s.wait_for(lambda: s.ack_counts.get(envelope) == 2, what="the redelivery acknowledged")
    quiet_for(1.0)
    assert len(s.messages_in(A_DM)) == before + 1


# ---------------------------------------------------------------- outgoing: text and buttons


def test_user_text_cannot_ping_everyone_or_forge_links(shared_bot: BotProcess) -> None:
    s = shared_bot.standin
    # As Slack delivers it: a real @channel mention, a link with a label, an escaped "&",
    # and "<!here>" that the person typed as text (Slack escapes it to &lt;!here&gt;).
    text = "!echo hi <!channel> <https://evil.example|your bank> &amp; &lt;!here&gt;"
    reply = say(s, BOB, GENERAL, text, "hi")
    assert "<!" not in reply.text and "<http" not in reply.text
    assert reply.text == "hi @channel your bank &amp; &lt;!here&gt;"
    call = s.calls_of("chat.postMessage")[-1]
    assert call.params.get("unfurl_links") is False


def test_buttons_render_as_block_kit_and_the_owners_click_updates_the_message(
    shared_bot: BotProcess,
) -> None:
    s = shared_bot.standin
    message = say(s, ALICE, A_DM, "!probe buttons #12", "is waiting")
    section, actions = message.blocks
    assert section["type"] == "section" and "Request #12 is waiting" in section["text"]["text"]
    assert actions["type"] == "actions"
    buttons = {b["text"]["text"]: b["value"] for b in message.buttons()}
    assert buttons == {"Cancel": "probe clicked cancel #12", "Keep": "probe clicked keep #12"}

    before = len(s.messages_in(A_DM))
    envelope = s.click(ALICE, message, "Cancel")
    result = s.wait_message(A_DM, "clicked cancel #12", after=before)
    assert "by U0ALICE in DM" in result.text
    s.wait_ack(envelope)
    s.wait_for(lambda: message.history, 10, "chat.update of the clicked message")
    assert message.buttons() == []
    assert any("<@U0ALICE>" in t and "Cancel" in t for t in message.context_texts())
    assert "Request #12 is waiting" in message.blocks[0]["text"]["text"]


def test_someone_elses_click_runs_as_them_and_changes_nothing(shared_bot: BotProcess) -> None:
    s = shared_bot.standin
    message = say(s, ALICE, GENERAL, "!probe buttons #7", "#7 is waiting")
    before = len(s.messages_in(GENERAL))
    s.click(BOB, message, "Cancel")
    result = s.wait_message(GENERAL, "clicked cancel #7", after=before)
    assert f"by U0BOB in {GENERAL}" in result.text  # the command ran as Bob, who clicked
    quiet_for(0.5)
    assert message.history == [] and len(message.buttons()) == 2

    s.click(ALICE, message, "Keep")  # the one it was for
    s.wait_message(GENERAL, "clicked keep #7 by U0ALICE", after=before)
    s.wait_for(lambda: message.history, 10, "chat.update after the owner's click")
    assert message.buttons() == []


def test_buttons_on_a_direct_notification_belong_to_its_recipient(
    shared_bot: BotProcess,
) -> None:
    s = shared_bot.standin
    before = len(s.messages_in(B_DM))
    say(s, ALICE, A_DM, f"!probe dmbuttons {BOB}", "sent")
    note = s.wait_message(B_DM, "notification with a button", after=before)
    s.click(BOB, note, "I can't make it")
    s.wait_message(B_DM, "clicked leave by U0BOB", after=before)
    s.wait_for(lambda: note.history, 10, "chat.update after Bob's click")


# ---------------------------------------------------------------- sending failures


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        ("U0NOBODY", "undeliverable SlackUndeliverable"),  # user_not_found
        ("U0GONE", "undeliverable SlackUndeliverable"),  # deactivated: user_disabled
        (BOT_USER_ID, "undeliverable SlackUndeliverable"),  # cannot_dm_bot
        (RANDOM, "undeliverable SlackUndeliverable"),  # not_in_channel
        ("C0NOSUCH", "undeliverable SlackUndeliverable"),  # channel_not_found
        (CAROL, "send ok"),
    ],
)
def test_send_raises_undeliverable_for_permanent_failures(
    shared_bot: BotProcess, target: str, kind: str
) -> None:
    reply = say(shared_bot.standin, ALICE, A_DM, f"!probe send {target} hi", "send ")
    assert kind in reply.text


def test_send_raises_a_transient_error_for_other_failures(shared_bot: BotProcess) -> None:
    s = shared_bot.standin
    s.fail("chat.postMessage", 1, error="internal_error", channel=CAROL)
    reply = say(s, ALICE, A_DM, f"!probe send {CAROL} hi", "send ")
    assert "send failed: transient SlackDeliveryError" in reply.text
    # A revoked token is not the recipient's fault: transient too, the bot keeps running.
    s.fail("chat.postMessage", 1, error="invalid_auth", channel=CAROL)
    reply = say(s, ALICE, A_DM, f"!probe send {CAROL} hi", "send ")
    assert "send failed: transient SlackDeliveryError" in reply.text


def test_group_dm_opens_one_conversation_with_everyone(shared_bot: BotProcess) -> None:
    s = shared_bot.standin
    say(s, ALICE, A_DM, f"!probe group {ALICE} slack:{BOB} {CAROL} {BOT_USER_ID}", "group ok")
    # The one that opened the group (a reply may open Alice's own DM too, when it runs first).
    (call,) = [c for c in s.calls_of("conversations.open") if "," in c.params["users"]]
    assert call.params["users"] == f"{ALICE},{BOB},{CAROL}"
    channel = call.response["channel"]["id"]
    (posted,) = s.messages_in(channel)
    assert posted.text == "You are a group now: &lt;!channel&gt; &amp; co"


def test_a_group_too_big_for_a_group_dm_is_announced_in_a_thread_of_its_channel(
    shared_bot: BotProcess,
) -> None:
    s = shared_bot.standin
    many = [f"U{n:04d}" for n in range(10)]  # more than a group DM's 8 besides the bot
    opened = len(s.calls_of("conversations.open"))
    before = len(s.messages_in(GENERAL))
    say(s, ALICE, A_DM, f"!probe group in={GENERAL} {' '.join(many)}", "group ok")
    assert len(s.calls_of("conversations.open")) == opened, "no group DM is tried"
    parent, thread = s.messages_in(GENERAL)[before:]
    assert parent.text == "A group of 10 has formed; see the thread."
    assert thread.thread_ts == parent.ts
    assert thread.text.startswith(" ".join(f"<@{u}>" for u in many))
    assert thread.text.endswith("You are a group now: &lt;!channel&gt; &amp; co")
    # Formed in direct messages: each member had their own message; nothing more is posted.
    before = len(s.posted)
    say(s, ALICE, A_DM, f"!probe group {' '.join(many)}", "group ok")
    assert len(s.posted) == before + 1, "only the probe's own reply"


# ---------------------------------------------------------------- files


def file_bytes(size: int) -> bytes:
    """What ``!probe file`` sends: every byte value, over and over."""
    return bytes(i % 256 for i in range(size))


def test_send_file_uploads_bytes_name_and_comment_into_the_persons_dm(
    shared_bot: BotProcess,
) -> None:
    s = shared_bot.standin
    b_before, posted_before = len(s.files_in(B_DM)), len(s.messages_in(B_DM))
    reply = say(s, ALICE, GENERAL, f"!probe file {BOB} export.json 70000 Yours & <b>", "file ")
    assert reply.text == "file ok"
    (shared,) = s.files_in(B_DM)[b_before:]
    assert shared.filename == shared.title == "export.json"
    assert shared.content == file_bytes(70000)
    assert shared.initial_comment == "Yours &amp; &lt;b&gt;"  # escaped as message text is
    assert s.files_in(GENERAL) == []  # asked in a room, sent privately
    # slack-sdk's files_upload_v2 flow, as Slack sees it.
    (url_call,) = [c for c in s.calls_of("files.getUploadURLExternal") if c.response.get("ok")][-1:]
    assert url_call.params["filename"] == "export.json" and url_call.params["length"] == "70000"
    assert url_call.response["upload_url"].startswith(f"http://127.0.0.1:{s.port}/upload/")
    complete = s.calls_of("files.completeUploadExternal")[-1]
    assert complete.params["channel_id"] == B_DM
    assert json.loads(complete.params["files"]) == [
        {"id": url_call.response["file_id"], "title": "export.json"}
    ]
    assert complete.response["files"] == [{"id": shared.file_id, "title": "export.json"}]
    # Slack echoes the share as a file_share message from the bot: not a command.
    quiet_for(0.7)
    assert len(s.messages_in(B_DM)) == posted_before


def test_send_file_to_a_person_in_a_room_goes_to_their_dm_and_never_to_a_room(
    shared_bot: BotProcess,
) -> None:
    s = shared_bot.standin
    c_dm = SlackStandIn.dm_of(CAROL)
    before = len(s.files_in(c_dm))
    assert say(s, ALICE, A_DM, f"!probe file slack:{CAROL} a.txt 3 hi", "file ").text == "file ok"
    assert [f.content for f in s.files_in(c_dm)[before:]] == [b"\x00\x01\x02"]
    refused = say(s, ALICE, A_DM, f"!probe file {GENERAL} a.txt 3 hi", "file ")
    assert refused.text == "file failed: undeliverable SlackUndeliverable"
    assert s.files_in(GENERAL) == []


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        ("complete", "transient SlackDeliveryError"),  # files.completeUploadExternal errs
        ("get_url", "transient SlackDeliveryError"),  # files.getUploadURLExternal errs
        ("upload", "transient SlackDeliveryError"),  # the POST of the bytes answers 500
        ("ratelimited", "transient SlackRateLimited"),  # 429s beyond the bounded retries
        ("not_in_channel", "undeliverable SlackUndeliverable"),
        ("gone", "undeliverable SlackUndeliverable"),  # conversations.open: user_disabled
    ],
)
def test_send_file_raises_when_slack_refuses(
    shared_bot: BotProcess, failure: str, kind: str
) -> None:
    s = shared_bot.standin
    target = "U0GONE" if failure == "gone" else CAROL
    dm = SlackStandIn.dm_of(target)
    rules = {
        "complete": lambda: s.fail("files.completeUploadExternal", 1, channel_id=dm),
        "get_url": lambda: s.fail("files.getUploadURLExternal", 1, filename="f.json"),
        "upload": lambda: s.fail("upload", 1, status=500),
        "ratelimited": lambda: s.rate_limit("files.completeUploadExternal", 4, 1, channel_id=dm),
        "not_in_channel": lambda: s.fail(
            "files.completeUploadExternal", 1, error="not_in_channel", channel_id=dm
        ),
        "gone": lambda: None,
    }
    rule = rules[failure]()
    before = len(s.files_in(dm))
    reply = say(s, ALICE, A_DM, f"!probe file {target} f.json 10 here", "file ", timeout=40)
    assert reply.text == f"file failed: {kind}"
    assert len(s.files_in(dm)) == before
    assert rule is None or rule.times == 0
    s.rules.clear()


def test_send_file_waits_out_a_short_rate_limit(shared_bot: BotProcess) -> None:
    s = shared_bot.standin
    c_dm = SlackStandIn.dm_of(CAROL)
    before = len(s.files_in(c_dm))
    s.rate_limit("files.completeUploadExternal", times=1, retry_after=1, channel_id=c_dm)
    assert say(s, ALICE, A_DM, f"!probe file {CAROL} r.json 5 x", "file ").text == "file ok"
    assert [f.content for f in s.files_in(c_dm)[before:]] == [file_bytes(5)]


# ---------------------------------------------------------------- rate limits


def test_429_storm_honours_retry_after_and_the_message_gets_through(shared_bot: BotProcess) -> None:
    s = shared_bot.standin
    say(s, ALICE, A_DM, "!echo warm up", "warm up")
    s.rate_limit("chat.postMessage", times=2, retry_after=1, channel=A_DM)
    start = len(s.calls_of("chat.postMessage"))
    reply = say(s, ALICE, A_DM, "!echo after the storm", "after the storm")
    assert reply.channel == A_DM
    attempts = [
        c for c in s.calls_of("chat.postMessage")[start:] if c.params["channel"] in (A_DM, ALICE)
    ]
    assert [c.status for c in attempts][:3] == [429, 429, 200]
    gaps = [b.at - a.at for a, b in zip(attempts, attempts[1:3], strict=False)]
    assert all(gap >= 0.95 for gap in gaps), f"Retry-After not honoured: {gaps}"


def test_a_429_storm_longer_than_the_retries_raises_transient(shared_bot: BotProcess) -> None:
    s = shared_bot.standin
    carol = CAROL  # a post to a person goes to their user id
    say(s, ALICE, A_DM, f"!probe send {CAROL} first", "send ok")
    seen = len(s.calls_of("chat.postMessage"))
    s.rate_limit("chat.postMessage", times=50, retry_after=1, channel=carol)
    t0 = time.monotonic()
    reply = say(s, ALICE, A_DM, f"!probe send {CAROL} hi", "send ")
    assert "send failed: transient SlackRateLimited" in reply.text
    calls = s.calls_of("chat.postMessage")[seen:]
    attempts = [c for c in calls if c.params["channel"] == carol]
    assert len(attempts) == 1 + 3  # one try and 3 bounded retries
    assert time.monotonic() - t0 < 20
    # A Retry-After beyond our bound is not slept on: transient at once.
    s.rules.clear()
    s.rate_limit("chat.postMessage", times=1, retry_after=3600, channel=carol)
    t0 = time.monotonic()
    reply = say(s, ALICE, A_DM, f"!probe send {CAROL} hi", "send ")
    assert "transient SlackRateLimited" in reply.text and time.monotonic() - t0 < 10


# ---------------------------------------------------------------- the socket


@pytest.mark.parametrize("how", ["reset", "eof", "close"])
def test_dropped_socket_reconnects_and_plugins_stay_active(
    shared_bot: BotProcess, how: str
) -> None:
    s = shared_bot.standin
    say(s, ALICE, A_DM, "!echo before", "before")
    connections = s.connections_opened
    s.drop_socket(how)
    # Said while the socket is down: Slack holds it and delivers after the reconnect.
    before = len(s.messages_in(A_DM))
    s.user_message(ALICE, A_DM, "!echo during")
    s.wait_connected(connections + 1)
    s.wait_message(A_DM, "during", after=before)
    say(s, ALICE, A_DM, "!echo after", "after")
    # Plugins were not deactivated and reactivated for a network blip.
    assert "activations=1" in say(s, ALICE, A_DM, "!probe activations", "activations").text
    s.wait_all_acked()


def test_slack_refresh_request_moves_to_a_new_connection(shared_bot: BotProcess) -> None:
    s = shared_bot.standin
    connections = s.connections_opened
    s.send_disconnect("refresh_requested")
    s.wait_connected(connections + 1)
    say(s, BOB, B_DM, "!echo refreshed", "refreshed")


def test_reconnect_backs_off_while_slack_refuses(shared_bot: BotProcess) -> None:
    s = shared_bot.standin
    connections, seen = s.connections_opened, len(s.calls_of("apps.connections.open"))
    s.fail("apps.connections.open", times=2, error="internal_error")
    dropped = time.monotonic()
    s.drop_socket("reset")
    s.wait_connected(connections + 1)
    opens = s.calls_of("apps.connections.open")[seen:]
    assert [c.response["ok"] for c in opens] == [False, False, True]
    # Waits of 1 s, 2 s, 4 s (each plus up to half again of jitter).
    waits = [opens[0].at - dropped] + [b.at - a.at for a, b in zip(opens, opens[1:], strict=False)]
    # (The upper bounds leave room for a loaded machine.)
    assert 0.9 <= waits[0] < 5 and 1.9 <= waits[1] < 7 and 3.9 <= waits[2] < 10, waits
    say(s, ALICE, A_DM, "!echo back", "back")


# ---------------------------------------------------------------- tokens


def test_rejected_bot_token_stops_the_bot_with_a_clear_error(
    workspace: SlackStandIn, tmp_path
) -> None:
    workspace.reject_all_tokens = True
    process = BotProcess(workspace, tmp_path).start()
    try:
        assert process.wait_exit(30) == 1
    finally:
        process.stop()
    log = process.log()
    assert "invalid_auth" in log and "SLACK_BOT_TOKEN" in log
    assert "xoxb-test" not in log and "xapp-test" not in log
    assert workspace.connections_opened == 0


def test_rejected_app_token_stops_the_bot_with_a_clear_error(
    workspace: SlackStandIn, tmp_path
) -> None:
    workspace.app_token = "xapp-the-right-one"
    process = BotProcess(workspace, tmp_path).start()
    try:
        assert process.wait_exit(30) == 1
    finally:
        process.stop()
    log = process.log()
    assert "invalid_auth" in log and "SLACK_APP_TOKEN" in log
    assert "xapp-test" not in log


def test_sigterm_shuts_the_bot_down_cleanly(bot: BotProcess) -> None:
    say(bot.standin, ALICE, A_DM, "!echo still here", "still here")
    assert bot.proc is not None
    bot.proc.terminate()
    assert bot.wait_exit(15) == 0
    assert "Trigger shutdown" in bot.log()


def test_tokens_never_reach_the_log(shared_bot: BotProcess) -> None:
    say(shared_bot.standin, ALICE, A_DM, "!echo log check", "log check")
    log = shared_bot.log()
    assert "DEBUG" in log  # the run logs at DEBUG, the most talkative level
    assert "xoxb-test" not in log and "xapp-test" not in log


def test_standin_saw_no_unknown_methods(shared_bot: BotProcess) -> None:
    unknown = [
        c.method for c in shared_bot.standin.calls if c.response.get("error") == "unknown_method"
    ]
    assert unknown == []
    # Every call carried the right kind of token for its method.
    assert all(c.token in ("xoxb-test", "xapp-test") for c in shared_bot.standin.calls)
    json.dumps([c.params for c in shared_bot.standin.calls])  # all plain JSON
