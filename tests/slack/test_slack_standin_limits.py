"""The Slack stand-in's rate limits, through the real slack-sdk WebClient: what is under the
limits goes through, what is over them gets Slack's 429 (Retry-After, "ratelimited") and
has no effect, and the counts say how close the calls came to the limits."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_standin import BOT_USER_ID, TEAM_ID, SlackLimits, SlackStandIn

ALICE, BOB, CAROL, DAVE = "U0ALICE", "U0BOB", "U0CAROL", "U0DAVE"
GENERAL, RANDOM = "C0GENERAL", "C0RANDOM"

Make = Callable[..., tuple[SlackStandIn, WebClient]]


@pytest.fixture
def make(monkeypatch: pytest.MonkeyPatch) -> Iterator[Make]:
    """Makes a populated stand-in with these limits, and a WebClient on it that does not
    retry (so a 429 reaches the test); every stand-in is stopped at teardown."""
    # slack-sdk takes a proxy from the environment (ignoring NO_PROXY); this is 127.0.0.1.
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    made: list[SlackStandIn] = []

    def make(limits: SlackLimits | None = None) -> tuple[SlackStandIn, WebClient]:
        standin = SlackStandIn(limits=limits).start()
        made.append(standin)
        for user, name in ((ALICE, "alice"), (BOB, "bob"), (CAROL, "carol"), (DAVE, "dave")):
            standin.add_user(user, name)
        standin.add_user("U0GONE", "gone", deleted=True)
        standin.add_channel(GENERAL, "general", [ALICE, BOB, CAROL])
        standin.add_channel(RANDOM, "random", [ALICE, BOB])
        client = WebClient(
            token=standin.bot_token, base_url=standin.api_url, timeout=5, retry_handlers=[]
        )
        return standin, client

    yield make
    for standin in made:
        standin.stop()


def refused(call: Callable[[], Any]) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        call()
    return caught.value


def assert_ratelimited(error: SlackApiError, retry_after: str) -> None:
    assert error.response.status_code == 429
    assert error.response.headers["Retry-After"] == retry_after
    assert error.response.data == {"ok": False, "error": "ratelimited"}


def test_the_default_limits_are_slacks() -> None:
    assert SlackLimits() == SlackLimits(
        per_channel=1.0,
        channel_burst=3,
        workspace_per_minute=600.0,
        workspace_burst=20,
        open_per_minute=50.0,
        open_burst=10,
    )
    with pytest.raises(ValueError):
        SlackLimits(per_channel=0)
    with pytest.raises(ValueError):
        SlackLimits(open_burst=0)


def test_default_limits_allow_a_burst_then_one_message_a_second_per_channel(make: Make) -> None:
    s, web = make(SlackLimits())
    for n in range(3):
        assert web.chat_postMessage(channel=GENERAL, text=f"m{n}")["ok"]
    for n in range(3):  # another channel has its own budget
        assert web.chat_postMessage(channel=RANDOM, text=f"r{n}")["ok"]
    # Ten conversations.open are Tier 3's burst; none is refused.
    for user in [ALICE, BOB, CAROL, DAVE] * 2 + [ALICE, BOB]:
        assert web.conversations_open(users=user)["ok"]
    assert s.rate_limited() == 0

    error = refused(lambda: web.chat_postMessage(channel=GENERAL, text="one too many"))
    assert_ratelimited(error, "1")
    assert s.texts_in(GENERAL) == ["m0", "m1", "m2"]
    assert s.rate_limited() == 1
    [call] = s.rate_limited_calls()
    assert (call.method, call.params["channel"], call.status) == ("chat.postMessage", GENERAL, 429)
    assert call.limited_by == ("channel",)

    assert s.peak("channel", 1.0) == 3
    assert s.peak("workspace", 1.0) == 6
    assert s.peak("open", 60.0) == 10
    assert sorted(s.accepted_times("channel")) == [GENERAL, RANDOM]
    assert list(s.accepted_times("open")) == [TEAM_ID]


def test_over_the_channel_limit_is_refused_without_using_budget(make: Make) -> None:
    # 5 a second per channel (one every 0.2 s), 2 at once.
    s, web = make(SlackLimits(per_channel=5, channel_burst=2))
    assert web.chat_postMessage(channel=GENERAL, text="a")["ok"]
    assert web.chat_postMessage(channel=GENERAL, text="b")["ok"]
    for _ in range(5):
        assert_ratelimited(refused(lambda: web.chat_postMessage(channel=GENERAL, text="x")), "1")
    assert s.texts_in(GENERAL) == ["a", "b"]
    assert s.rate_limited() == 5
    assert [c.limited_by for c in s.rate_limited_calls()] == [("channel",)] * 5
    # Another channel (a person's DM, by their user id) is not limited by this one.
    assert web.chat_postMessage(channel=ALICE, text="dm")["channel"] == s.dm_of(ALICE)

    # The five refusals used no budget: one interval later a message goes through.
    time.sleep(0.25)
    assert web.chat_postMessage(channel=GENERAL, text="c")["ok"]
    error = refused(lambda: web.chat_postMessage(channel=GENERAL, text="y"))
    assert_ratelimited(error, "1")
    time.sleep(int(error.response.headers["Retry-After"]))
    assert web.chat_postMessage(channel=GENERAL, text="d")["ok"]

    assert s.texts_in(GENERAL) == ["a", "b", "c", "d"]
    assert s.rate_limited() == 6
    assert len(s.accepted_times("channel")[GENERAL]) == 4
    # a, b and c within 0.25 s; d more than a second after c.
    assert s.peak("channel", 1.0) == 3
    assert s.peak("channel", 2.0) == 4
    assert s.peak("workspace", 1.0) == 4  # a, b, dm, c
    report = s.limits_report()
    assert report["rate_limited"] == 6
    assert report["rate_limited_by_kind"] == {"channel": 6, "workspace": 0, "open": 0}
    assert report["accepted"] == {"channel": 5, "workspace": 5, "open": 0}
    assert report["peak_per_second"] == {"channel": 3, "workspace": 4, "open": 0}
    assert report["limits"]["per_channel"] == 5


def test_over_the_workspace_limit_is_refused_in_any_channel(make: Make) -> None:
    # 60 a minute in the workspace (one a second), 3 at once; channels barely limited.
    s, web = make(SlackLimits(per_channel=100, workspace_per_minute=60, workspace_burst=3))
    for user in (ALICE, BOB, CAROL):
        assert web.chat_postMessage(channel=user, text="hi")["channel"] == s.dm_of(user)
    error = refused(lambda: web.chat_postMessage(channel=GENERAL, text="fourth"))
    assert_ratelimited(error, "1")
    assert s.messages_in(GENERAL) == []
    [call] = s.rate_limited_calls()
    assert call.limited_by == ("workspace",)
    assert s.peak("workspace", 1.0) == 3
    assert s.peak("channel", 1.0) == 1
    assert list(s.accepted_times("workspace")) == [TEAM_ID]
    time.sleep(1)
    assert web.chat_postMessage(channel=GENERAL, text="fourth")["ok"]
    assert s.texts_in(GENERAL) == ["fourth"]


def test_over_the_open_limit_is_refused_and_opens_nothing(make: Make) -> None:
    # 40 a minute (one every 1.5 s), 2 at once: the third waits 1.5 s less a few ms.
    s, web = make(SlackLimits(open_per_minute=40, open_burst=2))
    assert web.conversations_open(users=ALICE)["channel"]["id"] == s.dm_of(ALICE)
    assert web.conversations_open(users=f"{ALICE},{BOB}")["ok"]
    error = refused(lambda: web.conversations_open(users=CAROL))
    assert_ratelimited(error, "2")  # the ceiling of the wait
    assert s.dm_of(CAROL) not in s.channels
    assert [c.limited_by for c in s.rate_limited_calls()] == [("open",)]
    assert s.peak("open", 60.0) == 2
    # chat.postMessage has its own budgets.
    assert web.chat_postMessage(channel=GENERAL, text="still fine")["ok"]


def test_injected_failures_come_first_and_are_not_counted(make: Make) -> None:
    s, web = make(SlackLimits(per_channel=5, channel_burst=2))
    s.rate_limit("chat.postMessage", times=1, retry_after=7, channel=GENERAL)
    assert_ratelimited(refused(lambda: web.chat_postMessage(channel=GENERAL, text="a")), "7")
    assert s.rate_limited() == 0 and s.rate_limited_calls() == []
    # The injected refusal used none of the channel's budget either.
    assert web.chat_postMessage(channel=GENERAL, text="b")["ok"]
    assert web.chat_postMessage(channel=GENERAL, text="c")["ok"]
    assert s.texts_in(GENERAL) == ["b", "c"]
    # A call with a wrong token is refused before the limits, and not counted.
    bad = WebClient(token="xoxb-wrong", base_url=s.api_url, timeout=5, retry_handlers=[])
    assert refused(lambda: bad.chat_postMessage(channel=GENERAL, text="d")).response.data == {
        "ok": False,
        "error": "invalid_auth",
    }
    assert s.rate_limited() == 0
    assert len(s.accepted_times("channel")[GENERAL]) == 2


def test_without_limits_nothing_is_refused_but_everything_is_counted(make: Make) -> None:
    s, web = make()
    for n in range(12):
        assert web.chat_postMessage(channel=GENERAL, text=str(n))["ok"]
    assert len(s.texts_in(GENERAL)) == 12
    assert s.rate_limited() == 0
    assert s.peak("channel", 1.0) == 12
    report = s.limits_report()
    assert report["limits"] is None
    assert report["accepted"] == {"channel": 12, "workspace": 12, "open": 0}


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
def test_post_message_to_a_user_id_posts_in_their_dm(make: Make) -> None:
    s, web = make()
    dm = s.dm_of(BOB)
    assert dm not in s.channels
    answer = web.chat_postMessage(channel=BOB, text="hello Bob")
    assert answer["channel"] == dm
    assert s.texts_in(dm) == ["hello Bob"]
    assert s.channels[dm]["is_im"] and s.channels[dm]["members"] == [BOB, BOT_USER_ID]
    # The same conversation as conversations.open's, and as posting to its D id.
    assert web.conversations_open(users=BOB)["channel"]["id"] == dm
    assert web.chat_postMessage(channel=dm, text="again")["channel"] == dm
    assert s.texts_in(dm) == ["hello Bob", "again"]
    # Slack echoes it to the bot as a message event in the DM.

    def echoed() -> list[str]:
        with s.lock:
            events = [e["payload"]["event"] for e in s.envelopes.values()]
        return [e["text"] for e in events if e["channel"] == dm and e.get("bot_id")]

    s.wait_for(lambda: echoed() == ["hello Bob", "again"], timeout=5, what="the echoes")

    def error(channel: str) -> str:
        return str(
            refused(lambda: web.chat_postMessage(channel=channel, text="x")).response["error"]
        )

    assert error("U0NOBODY") == "channel_not_found"
    assert error(BOT_USER_ID) == "cannot_dm_bot"
    # A deactivated person: no new conversation, as conversations.open refuses them ...
    assert error("U0GONE") == "user_disabled"
    assert (
        refused(lambda: web.conversations_open(users="U0GONE")).response["error"] == "user_disabled"
    )
    assert s.dm_of("U0GONE") not in s.channels
    # ... but their existing one still takes messages, by user id as by D id.
    web.conversations_open(users=CAROL)
    s.users[CAROL]["deleted"] = True
    assert web.chat_postMessage(channel=CAROL, text="bye")["channel"] == s.dm_of(CAROL)
    assert s.texts_in(s.dm_of(CAROL)) == ["bye"]
    # A post refused for its content opens no conversation.
    assert (
        refused(lambda: web.chat_postMessage(channel=DAVE, text="")).response["error"] == "no_text"
    )
    assert s.dm_of(DAVE) not in s.channels


def test_the_channel_limit_counts_a_user_id_as_their_dm(make: Make) -> None:
    s, web = make(SlackLimits(per_channel=5, channel_burst=2))
    dm = s.dm_of(ALICE)
    assert web.chat_postMessage(channel=ALICE, text="1")["channel"] == dm
    assert web.chat_postMessage(channel=dm, text="2")["channel"] == dm
    assert_ratelimited(refused(lambda: web.chat_postMessage(channel=ALICE, text="3")), "1")
    assert s.texts_in(dm) == ["1", "2"]
    assert list(s.accepted_times("channel")) == [dm]
    assert s.peak("channel", 1.0) == 2
