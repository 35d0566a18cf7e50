"""The Bot API stand-in's flood limits, through the real python-telegram-bot client: what is
under the limits goes through, what is over them gets Telegram's 429 (``retry_after``) and
sends nothing, and the counts say how close the sends came to the limits."""

from __future__ import annotations

import asyncio
import datetime as dtm
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import telegram
from telegram.error import BadRequest, RetryAfter
from telegram_standin import BotApiStandin, TelegramLimits

ALICE, BOB, CAROL, DAVE = 4242, 4343, 4444, 4545
GROUP, OTHER_GROUP = -100123, -100456

Make = Callable[..., BotApiStandin]
Scenario = Callable[[telegram.Bot], Awaitable[None]]


@pytest.fixture
def make(monkeypatch: pytest.MonkeyPatch) -> Iterator[Make]:
    """Makes a populated stand-in with these limits; every one is stopped at teardown."""
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # RetryAfter.retry_after as a timedelta
    made: list[BotApiStandin] = []

    def make(limits: TelegramLimits | None = None) -> BotApiStandin:
        standin = BotApiStandin(limits=limits).start()
        made.append(standin)
        for user, name in ((ALICE, "Alice"), (BOB, "Bob"), (CAROL, "Carol"), (DAVE, "Dave")):
            standin.add_user(user, name)
        standin.add_group(GROUP, "Group")
        standin.add_group(OTHER_GROUP, "Other group")
        return standin

    yield make
    for standin in made:
        standin.stop()


def run(standin: BotApiStandin, scenario: Scenario) -> None:
    """Run ``scenario`` with a real, initialized telegram.Bot on the stand-in."""

    async def main() -> None:
        async with telegram.Bot(standin.token, base_url=standin.base_url) as bot:
            await scenario(bot)

    asyncio.run(main())


async def refused(send: Awaitable[Any], seconds: int) -> None:
    """``send`` fails with PTB's RetryAfter for ``seconds``."""
    with pytest.raises(RetryAfter) as caught:
        await send
    assert caught.value.retry_after == dtm.timedelta(seconds=seconds)


def flood_answer(seconds: int) -> dict[str, Any]:
    return {
        "ok": False,
        "error_code": 429,
        "description": f"Too Many Requests: retry after {seconds}",
        "parameters": {"retry_after": seconds},
    }


def test_the_default_limits_are_telegrams() -> None:
    assert TelegramLimits() == TelegramLimits(
        per_second=30.0, burst=30, per_chat=1.0, chat_burst=3, per_group_minute=20.0, group_burst=5
    )
    with pytest.raises(ValueError):
        TelegramLimits(per_chat=-1)
    with pytest.raises(ValueError):
        TelegramLimits(group_burst=0)


def test_default_limits_per_private_chat_and_per_group(make: Make) -> None:
    s = make(TelegramLimits())

    async def scenario(bot: telegram.Bot) -> None:
        for n in range(3):
            await bot.send_message(ALICE, f"m{n}")
        await refused(bot.send_message(ALICE, "one too many"), 1)
        for n in range(5):
            await bot.send_message(GROUP, f"g{n}")
        # 20 a minute is one every 3 s: the sixth waits 3 s less a few milliseconds.
        await refused(bot.send_message(GROUP, "one too many"), 3)
        await bot.send_document(BOB, b"data", filename="a.txt")  # other chats: own budgets

    run(s, scenario)
    assert s.texts(ALICE) == ["m0", "m1", "m2"]
    assert s.texts(GROUP) == [f"g{n}" for n in range(5)]
    assert [d["file_name"] for d in s.documents()] == ["a.txt"]
    assert s.rate_limited() == 2
    first, second = s.rate_limited_calls()
    assert (first.method, first.params["chat_id"], first.limited_by) == (
        "sendMessage",
        ALICE,
        ("chat",),
    )
    assert (first.status, first.response) == (429, flood_answer(1))
    assert (second.params["chat_id"], second.limited_by) == (GROUP, ("group",))
    assert second.response == flood_answer(3)
    assert s.peak("chat", 1.0) == 3
    assert s.peak("group", 60.0) == 5
    assert s.peak("bot", 1.0) == 9
    assert sorted(s.accepted_times("chat")) == [ALICE, BOB]
    assert list(s.accepted_times("group")) == [GROUP]


def test_over_the_chat_limit_is_refused_without_using_budget(make: Make) -> None:
    # 1 a second in a private chat, 2 at once. The times leave a second of slack for a
    # loaded machine: whatever the calls in between take, each step is on its side of a limit.
    s = make(TelegramLimits(per_chat=1, chat_burst=2))

    async def scenario(bot: telegram.Bot) -> None:
        start = time.monotonic()
        await bot.send_message(ALICE, "a")
        await bot.send_document(ALICE, b"b", filename="b.txt")  # documents count too
        for _ in range(5):
            await refused(bot.send_message(ALICE, "x"), 1)
        await refused(bot.send_document(ALICE, b"x", filename="x.txt"), 1)
        await bot.send_message(BOB, "another chat")
        # The six refusals used no budget: one interval after the first two, one goes through.
        await asyncio.sleep(max(0.0, start + 1.05 - time.monotonic()))
        await bot.send_message(ALICE, "c")
        await refused(bot.send_message(ALICE, "y"), 1)
        await asyncio.sleep(1)  # the retry_after
        await bot.send_message(ALICE, "d")

    run(s, scenario)
    assert s.texts(ALICE) == ["a", "c", "d"]
    assert [d["file_name"] for d in s.documents()] == ["b.txt"]
    assert s.rate_limited() == 7
    assert all(c.limited_by == ("chat",) for c in s.rate_limited_calls())
    assert all(c.response == flood_answer(1) for c in s.rate_limited_calls())
    assert len(s.accepted_times("chat")[ALICE]) == 4
    assert s.peak("chat", 1.0) == 2  # a and b at once; c 1.05 s later; d a second after c
    assert s.peak("chat", 2.0) == 3
    report = s.limits_report()
    assert report["rate_limited"] == 7
    assert report["rate_limited_by_kind"] == {"bot": 0, "chat": 7, "group": 0}
    assert report["accepted"] == {"bot": 5, "chat": 5, "group": 0}
    assert report["peak_per_second"] == {"bot": 3, "chat": 2, "group": 0}
    assert report["limits"]["per_chat"] == 1


def test_over_the_overall_limit_is_refused_in_any_chat(make: Make) -> None:
    # 2 a second across all chats, 3 at once; the chats themselves barely limited.
    s = make(TelegramLimits(per_second=2, burst=3, per_chat=100, per_group_minute=6000))

    async def scenario(bot: telegram.Bot) -> None:
        await bot.send_message(ALICE, "1")
        await bot.send_document(BOB, b"2", filename="2.txt")
        await bot.send_message(GROUP, "3")
        await refused(bot.send_message(CAROL, "4"), 1)
        await refused(bot.send_document(OTHER_GROUP, b"4", filename="4.txt"), 1)
        await asyncio.sleep(1)
        await bot.send_message(CAROL, "4")

    run(s, scenario)
    assert s.texts(CAROL) == ["4"]
    assert s.sent(OTHER_GROUP) == []
    assert [c.limited_by for c in s.rate_limited_calls()] == [("bot",), ("bot",)]
    assert s.peak("bot", 1.0) == 3
    assert s.peak("chat", 1.0) == 1
    assert list(s.accepted_times("bot")) == [s.bot_user["id"]]


def test_over_the_group_limit_is_refused_in_that_group(make: Make) -> None:
    # 60 a minute in a group (one a second), 2 at once.
    s = make(TelegramLimits(per_group_minute=60, group_burst=2))

    async def scenario(bot: telegram.Bot) -> None:
        await bot.send_message(GROUP, "1")
        await bot.send_message(GROUP, "2")
        await refused(bot.send_message(GROUP, "3"), 1)
        await bot.send_message(OTHER_GROUP, "elsewhere")
        await bot.send_message(ALICE, "private")

    run(s, scenario)
    assert s.texts(GROUP) == ["1", "2"]
    assert [c.limited_by for c in s.rate_limited_calls()] == [("group",)]
    assert s.peak("group", 60.0) == 2
    assert list(s.accepted_times("group")) == [GROUP, OTHER_GROUP]


def test_injected_failures_come_first_and_are_not_counted(make: Make) -> None:
    s = make(TelegramLimits(per_chat=5, chat_burst=2))
    s.fail("sendMessage", 429, retry_after=7, chat_id=ALICE)

    async def scenario(bot: telegram.Bot) -> None:
        await refused(bot.send_message(ALICE, "a"), 7)
        # The injected refusal used none of the chat's budget.
        await bot.send_message(ALICE, "b")
        await bot.send_message(ALICE, "c")
        # A send the limits let through uses budget even when Telegram then refuses it.
        with pytest.raises(BadRequest, match="Chat not found"):
            await bot.send_message(999, "nobody")

    run(s, scenario)
    assert s.texts(ALICE) == ["b", "c"]
    assert s.rate_limited() == 0 and s.rate_limited_calls() == []
    assert {k: len(v) for k, v in s.accepted_times("chat").items()} == {ALICE: 2, 999: 1}


def test_without_limits_nothing_is_refused_but_everything_is_counted(make: Make) -> None:
    s = make()

    async def scenario(bot: telegram.Bot) -> None:
        for n in range(12):
            await bot.send_message(GROUP, str(n))

    run(s, scenario)
    assert len(s.texts(GROUP)) == 12
    assert s.rate_limited() == 0
    assert s.peak("group", 1.0) == 12
    report = s.limits_report()
    assert report["limits"] is None
    assert report["accepted"] == {"bot": 12, "chat": 0, "group": 12}
