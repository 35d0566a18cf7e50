"""Unit tests of the Slack backend's pure parts: text, blocks, identifiers, error mapping."""

from __future__ import annotations

import pickle
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st
from iwant_platform.contract import Button
from iwant_platform.shutdown import RecentKeys as _RecentKeys
from iwant_slack.ids import (
    SlackPerson,
    SlackRoom,
    SlackRoomOccupant,
    parse_identifier,
    set_current_directory,
)
from iwant_slack.text import (
    button_blocks,
    clicked_blocks,
    escape,
    incoming_text,
    outgoing_text,
    owner_of_block,
    slash_text,
    unescape,
)
from iwant_slack.web import (
    SlackDeliveryError,
    SlackRateLimited,
    SlackUndeliverable,
    delivery_error,
    retry_after,
)
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

BOT = "U0IWANTBOT"
ids = st.text(alphabet=string.ascii_uppercase + string.digits, min_size=2, max_size=12)


# ---------------------------------------------------------------- text


@given(st.text())
def test_escaped_text_has_no_control_sequences_and_round_trips(text: str) -> None:
    out = outgoing_text(text.replace("**", ""))
    assert "<" not in out and ">" not in out
    assert unescape(escape(text)) == text


@given(st.text())
def test_what_a_person_typed_comes_back_as_typed(text: str) -> None:
    # Slack escapes &, < and > in what people type, so typed text never reads as a mention
    # of the bot, a broadcast or a link, and comes back exactly as typed.
    assert incoming_text(escape(text), BOT) == incoming_text(escape(text), None) == text.strip()


@pytest.mark.parametrize(
    ("slack", "errbot"),
    [
        (f"<@{BOT}> iwant coffee", "!iwant coffee"),
        (f"<@{BOT}|iwant>: iwant coffee 10:00", "!iwant coffee 10:00"),
        (f"<@{BOT}>, !iwant list", "!iwant list"),
        (f"  <@{BOT}>   help", "!help"),
        (f"<@{BOT}>", ""),
        ("!iwant coffee with <@U0BOB>", "!iwant coffee with <@U0BOB>"),
        (f"hi <@{BOT}> iwant coffee", f"hi <@{BOT}> iwant coffee"),  # not addressed to us
        ("!echo <!channel> <!here|here> <!subteam^S01|@devs>", "!echo @channel @here @devs"),
        (
            "!echo <https://x.example/a?b=1&amp;c=2|a link> <mailto:a@b.c>",
            "!echo a link mailto:a@b.c",
        ),
        ("!echo <#C0GENERAL|general> <#C0OTHER>", "!echo #general #C0OTHER"),
        ("!iwant coffee &lt;10:00&gt; &amp; cake", "!iwant coffee <10:00> & cake"),
    ],
)
def test_incoming_text(slack: str, errbot: str) -> None:
    assert incoming_text(slack, BOT) == errbot


def test_slash_command_text() -> None:
    assert slash_text("/iwant", "coffee for 1h") == "!iwant coffee for 1h"
    assert slash_text("/iwant", "  ") == "!iwant"
    assert slash_text("/iwant", "lunch &amp; chat") == "!iwant lunch & chat"


def test_errbot_markdown_bold_becomes_slack_bold() -> None:
    assert outgoing_text("**Help** & more") == "*Help* &amp; more"


# ---------------------------------------------------------------- blocks


def test_button_blocks_carry_commands_and_owner() -> None:
    blocks = button_blocks(
        "Waiting &amp; hoping",
        [Button("Cancel", "iwant cancel #12"), Button("x" * 100, "c")],
        "U0ALICE",
    )
    section, actions = blocks
    assert section["text"] == {"type": "mrkdwn", "text": "Waiting &amp; hoping", "verbatim": True}
    assert owner_of_block(actions["block_id"]) == "U0ALICE"
    first, second = actions["elements"]
    assert first["value"] == "iwant cancel #12" and first["text"]["text"] == "Cancel"
    assert len(second["text"]["text"]) == 75  # Slack's limit for button text
    assert first["action_id"] != second["action_id"]  # Slack requires unique action ids


def test_long_text_is_split_into_sections_and_nobody_owns_a_room_message() -> None:
    blocks = button_blocks("a" * 7000, [Button("OK", "ok")], None)
    assert [b["type"] for b in blocks] == ["section", "section", "section", "actions"]
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks[:3])
    assert owner_of_block(blocks[-1]["block_id"]) is None
    with pytest.raises(ValueError):
        button_blocks("t", [Button("L", "c" * 2001)], None)


def test_clicked_blocks_drop_buttons_and_say_who_chose_what() -> None:
    blocks = button_blocks("text", [Button("<Cancel>", "c")], "U0A")
    after = clicked_blocks(blocks, "U0A", "<Cancel>")
    assert [b["type"] for b in after] == ["section", "context"]
    note = after[-1]["elements"][0]["text"]
    assert note.startswith("<@U0A>") and "&lt;Cancel&gt;" in note


# ---------------------------------------------------------------- identifiers


@given(ids, ids)
def test_identifiers_round_trip_through_their_string_form(user: str, channel: str) -> None:
    person = parse_identifier("U" + user, None)
    room = parse_identifier("C" + channel, None)
    occupant = parse_identifier(f"C{channel}/U{user}", None)
    assert type(person) is SlackPerson and str(person) == str(person.person) == "U" + user
    assert type(room) is SlackRoom and str(room) == "C" + channel
    assert type(occupant) is SlackRoomOccupant and str(occupant.room) == "C" + channel
    for identifier in (person, room, occupant):
        assert parse_identifier(str(identifier), None) == identifier
    assert occupant.person == person.person and occupant != person


def test_other_identifier_spellings() -> None:
    assert str(parse_identifier("<@U0ALICE>", None)) == "U0ALICE"
    assert str(parse_identifier("<@U0ALICE|alice>", None)) == "U0ALICE"
    assert str(parse_identifier("slack:U0ALICE", None)) == "U0ALICE"
    assert str(parse_identifier("<#C0GEN|general>", None)) == "C0GEN"
    for bad in ("@alice", "alice", "", "u0alice", "X0123", "#general", "C0GEN/alice"):
        with pytest.raises(ValueError):
            parse_identifier(bad, None)


class FakeDirectory:
    web = None

    def __init__(self, info: dict) -> None:
        self.info = info

    def user(self, user_id: str) -> dict:
        return self.info

    def cached_dm(self, user_id: str) -> str | None:
        return "D0ALICE"


def test_person_attributes_come_from_users_info() -> None:
    info = {"name": "alice", "tz": "Europe/Prague", "profile": {"real_name": "Alice N"}}
    alice = SlackPerson("U0ALICE", FakeDirectory(info))  # type: ignore[arg-type]
    assert (alice.fullname, alice.nick, alice.timezone, alice.client) == (
        "Alice N",
        "alice",
        "Europe/Prague",
        "D0ALICE",
    )
    unknown = SlackPerson("U0WHO", FakeDirectory({}))  # type: ignore[arg-type]
    assert (unknown.fullname, unknown.nick, unknown.timezone) == ("U0WHO", "U0WHO", None)


def test_identifiers_pickle_by_their_string_form() -> None:
    set_current_directory(None)  # type: ignore[arg-type]
    for text in ("U0ALICE", "C0GEN", "C0GEN/U0ALICE"):
        identifier = parse_identifier(text, None)
        assert pickle.loads(pickle.dumps(identifier)) == identifier


# ---------------------------------------------------------------- errors


def api_error(error: str, status: int = 200, headers: dict | None = None) -> SlackApiError:
    response = SlackResponse(
        client=None,
        http_verb="POST",
        api_url="http://127.0.0.1/api/chat.postMessage",
        req_args={},
        data={"ok": False, "error": error},
        headers=headers or {},
        status_code=status,
    )
    return SlackApiError(f"The request failed: {error}", response)


@pytest.mark.parametrize(
    "error",
    ["user_not_found", "cannot_dm_bot", "account_inactive", "channel_not_found", "is_archived"],
)
def test_permanent_failures_are_undeliverable(error: str) -> None:
    exc = delivery_error(api_error(error), "send")
    assert isinstance(exc, SlackUndeliverable) and exc.undeliverable is True
    assert exc.error == error


@pytest.mark.parametrize("error", ["internal_error", "invalid_auth", "fatal_error", "timeout"])
def test_other_failures_are_transient(error: str) -> None:
    exc = delivery_error(api_error(error), "send")
    assert type(exc) is SlackDeliveryError and exc.undeliverable is False


def test_rate_limit_and_network_failures_are_transient() -> None:
    exc = delivery_error(api_error("ratelimited", 429, {"Retry-After": ["7"]}), "send")
    assert isinstance(exc, SlackRateLimited) and exc.retry_after == 7 and not exc.undeliverable
    exc = delivery_error(ConnectionRefusedError("refused"), "send")
    assert type(exc) is SlackDeliveryError and not exc.undeliverable


def test_retry_after_header() -> None:
    assert retry_after({"retry-after": ["3"]}) == 3
    assert retry_after({"Retry-After": "1.5"}) == 1.5
    assert retry_after({"Retry-After": "soon"}) == 1.0
    assert retry_after({}) == 1.0


# ---------------------------------------------------------------- odds and ends


def test_recent_keys_answer_first_time_only_and_stay_bounded() -> None:
    keys = _RecentKeys(size=3)
    assert keys.first("a") and not keys.first("a")
    for k in "bcd":
        assert keys.first(k)
    assert keys.first("a")  # forgotten: the set holds the 3 newest


@pytest.mark.parametrize(
    ("method", "shared"),
    [("chat.postMessage", True), ("users.info", False), ("conversations.open", False)],
)
def test_only_a_429_of_chat_post_message_pauses_every_process(method: str, shared: bool) -> None:
    """A 429 of chat.postMessage is the workspace's message budget, which every process of
    the bot shares; other methods have limits of their own and must not stall the messages."""
    from iwant_slack.web import BoundedRateLimitRetryHandler
    from slack_sdk.http_retry.request import HttpRequest
    from slack_sdk.http_retry.response import HttpResponse
    from slack_sdk.http_retry.state import RetryState

    told: list[float] = []
    handler = BoundedRateLimitRetryHandler(3, 30, told.append)
    request = HttpRequest(method="POST", url=f"https://slack.com/api/{method}", headers={})
    response = HttpResponse(status_code=429, headers={"Retry-After": "7"})
    assert handler._can_retry(state=RetryState(), request=request, response=response)
    assert told == ([7.0] if shared else [])
