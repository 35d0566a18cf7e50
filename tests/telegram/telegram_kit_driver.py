"""The adapter kit's driver for Telegram: people talk to a real errbot process (the iwant
plugin on the IWantTelegram backend) through the Bot API stand-in, as their Telegram
clients would.

Six people who have all started the bot, and a supergroup with all of them. A LocalId is the
number Telegram gives: a person's id (also their private chat's), a group's negative id.
"""

from __future__ import annotations

import math
import signal
from datetime import UTC, datetime
from pathlib import Path

from iwant_platform.kit import Seen
from iwant_telegram.backend import IWantTelegramBackend
from telegram_harness import ErrbotProcess
from telegram_standin import JSON, BotApiStandin, wait_until

#: The people: (id, first name, username).
PEOPLE = (
    (1001, "Ann", "ann"),
    (1002, "Ben", "ben"),
    (1003, "Cleo", "cleo"),
    (1004, "Dan", "dan"),
    (1005, "Eva", "eva"),
    (1006, "Finn", "finn"),
)
ROOM = -1001500000001


def midday_zone() -> str:
    """A fixed-offset zone where it is about noon now, so that the kit's "in 6h" and "for
    7h" never cross midnight, whatever time the tests run."""
    offset = 12 - datetime.now(UTC).hour
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc/GMT-3 is UTC+3


def _buttons(message: JSON) -> tuple[str, ...]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return tuple(b["text"] for row in rows for b in row)


def _seen(message: JSON) -> Seen:
    text = message.get("text") or message.get("caption") or ""
    return Seen(text, _buttons(message), message)


class TelegramKitDriver:
    """The kit's ``Platform`` on Telegram (the stand-in and real errbot processes)."""

    name = "telegram"
    capabilities = IWantTelegramBackend.capabilities
    command = IWantTelegramBackend.command
    people = tuple(str(user_id) for user_id, _, _ in PEOPLE)
    room = str(ROOM)
    patience = 30.0

    def __init__(self, api: BotApiStandin, workdir: Path) -> None:
        self.api = api
        for user_id, first_name, username in PEOPLE:
            api.add_user(user_id, first_name, username)
        api.add_group(ROOM, "Adapter kit")
        workdir.mkdir(parents=True, exist_ok=True)
        # One working directory (its SQLite file, errbot's data) for every run of the bot.
        self.bot = ErrbotProcess(
            api,
            workdir,
            env={
                "IWANT_POLL_SECONDS": "0.5",
                "IWANT_TIMEZONE": midday_zone(),
            },
        )

    # -- the bot ------------------------------------------------------------------------------

    def start_bot(self) -> None:
        # Returns once the process polls: errbot activates its plugins before the first poll.
        self.bot.start(timeout=self.patience)

    def stop_bot(self) -> None:
        code = self.bot.stop(signal.SIGTERM, timeout=self.patience)
        if code not in (0, None):
            raise AssertionError(f"errbot exited with {code} on SIGTERM:\n{self.bot.output()}")

    def close(self) -> None:
        """Kill a bot process left running (a failed run)."""
        self.bot.kill()

    # -- people --------------------------------------------------------------------------------

    def say(self, person: str, text: str, room: str | None = None) -> object:
        return self.api.user_says(int(person), text, chat_id=int(room) if room else None)

    def shown_to(self, person: str) -> list[Seen]:
        return [_seen(m) for m in self.api.sent(int(person))]

    def shown_in(self, room: str) -> list[Seen]:
        return [_seen(m) for m in self.api.sent(int(room))]

    def press(self, person: str, message: Seen, label: str) -> None:
        assert isinstance(message.handle, dict), message
        self.api.press(int(person), message.handle, label)

    def groups(self) -> list[tuple[frozenset[str], list[Seen]]]:
        return []  # a Telegram bot cannot create a group chat

    def set_name(self, person: str, name: str) -> None:
        self.api.rename(int(person), name)

    # -- misbehaving ---------------------------------------------------------------------------

    def _offered(self, update_id: int) -> int:
        """How many getUpdates answers carried the update ``update_id``."""
        return sum(
            1
            for call in self.api.calls_to("getUpdates")
            if call.status == 200
            and any(u.get("update_id") == update_id for u in (call.response or {})["result"])
        )

    def _poll_waiting_past(self, update_id: int) -> bool:
        """A long poll in flight that confirmed ``update_id`` (its offset is above it)."""
        return any(
            call.status is None and int(call.params.get("offset") or 0) > update_id
            for call in self.api.calls_to("getUpdates")
        )

    def redeliver(self, handle: object) -> None:
        """Telegram offers the update once more to the running bot (as after a lost
        confirmation); returns once a getUpdates answer carried it again."""
        assert isinstance(handle, int), handle
        offered = self._offered(handle)
        for _ in range(3):
            # Offered while a poll past it waits, it is that poll's answer (a poll starting
            # later would confirm it again before answering, and never show it).
            wait_until(
                lambda: self._poll_waiting_past(handle),
                self.patience,
                f"a getUpdates past update {handle}",
            )
            self.api.redeliver(handle)
            try:
                wait_until(lambda: self._offered(handle) > offered, 5.0, "the update again")
                return
            except AssertionError:
                continue
        raise AssertionError(f"update {handle} never reached the bot again")

    def make_unreachable(self, person: str) -> None:
        self.api.block(int(person))

    def rate_limit(self, times: int, seconds: float) -> None:
        self.api.fail("sendMessage", 429, retry_after=max(1, math.ceil(seconds)), times=times)

    def rate_limited(self) -> int:
        return self.api.answered_429()

    # -- for the test's failure message -----------------------------------------------------

    def log_tail(self, chars: int = 4000) -> str:
        return self.bot.output()[-chars:]
