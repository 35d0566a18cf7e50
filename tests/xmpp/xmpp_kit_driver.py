"""The adapter kit's driver for XMPP: people talk to a real errbot process (the iwant plugin
on the IWantXMPP backend) through a real Prosody, as their XMPP clients would.

Six people and a watcher, all in one multi-user chat room with the bot (non-anonymous: the
bot knows people by their JIDs). A LocalId is a bare JID (``ann3@localhost``), a room's the
room's bare JID (``kitroom9@conference.localhost``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from iwant_platform.kit import NotSupported, Seen
from iwant_xmpp.backend import IWantXMPPBackend
from xmpp_harness import BotProcess, People, Prosody, Received, Said, wait_until

NAMES = ("ann", "ben", "cleo", "dan", "eva", "finn")


def _seen(received: Received) -> Seen:
    return Seen(received.body, (), received)


class XMPPKitDriver:
    """The kit's ``Platform`` on XMPP (a real Prosody and real errbot processes)."""

    name = "xmpp"
    capabilities = IWantXMPPBackend.capabilities
    command = "!iwant"
    patience = 30.0

    def __init__(self, server: Prosody, people: People, workdir: Path) -> None:
        self.server, self.clients = server, people
        self.bot_jid = server.unique("iwantkit")
        self.room = server.room("kitroom")
        self.watcher = people.connect(server.unique("watcher"))
        people.join(self.watcher, self.room, "watcher")  # the first in: the room is made
        jids = [people.connect(server.unique(name)) for name in NAMES]
        for name, jid in zip(NAMES, jids, strict=True):
            people.join(jid, self.room, name.capitalize())
        self.people: Sequence[str] = tuple(jids)
        # One working directory (its SQLite file, errbot's data) for every run of the bot.
        self.bot = BotProcess(
            server, workdir, self.bot_jid, (self.room,), env={"IWANT_BOT_ADMINS": self.watcher}
        )

    # -- the bot ------------------------------------------------------------------------------

    def start_bot(self) -> None:
        """Start errbot; return once it is in the room and answers a direct message."""
        joined = self.clients.count(self.clients.joins, self.room, self.bot.nick)
        self.bot.start()

        def in_room() -> bool:
            self.bot.check_running()
            return self.clients.count(self.clients.joins, self.room, self.bot.nick) > joined

        wait_until(in_room, self.patience, "the bot to join the room")
        before = len(self.shown_to(self.watcher))
        self.clients.say(self.watcher, self.bot_jid, "!iwant help")
        wait_until(
            lambda: len(self.shown_to(self.watcher)) > before,
            self.patience,
            "the bot to answer !iwant help",
        )

    def stop_bot(self) -> None:
        """SIGTERM; return once the server knows the bot is gone (what people send from now
        on is kept for it as offline messages)."""
        left = self.clients.count(self.clients.leaves, self.room, self.bot.nick)
        code = self.bot.stop(self.patience)
        if code != 0:
            raise AssertionError(f"errbot exited with {code} on SIGTERM:\n{self.bot.output()}")
        wait_until(
            lambda: self.clients.count(self.clients.leaves, self.room, self.bot.nick) > left,
            self.patience,
            "the bot to leave the room",
        )

    def close(self) -> None:
        """Kill a bot process left running (a failed run)."""
        self.bot.kill()

    # -- people --------------------------------------------------------------------------------

    def say(self, person: str, text: str, room: str | None = None) -> object:
        if room:
            return self.clients.say(person, room, text, "groupchat")
        return self.clients.say(person, self.bot_jid, text)

    def shown_to(self, person: str) -> list[Seen]:
        return [_seen(r) for r in self.clients.from_bot(person, self.bot_jid)]

    def shown_in(self, room: str) -> list[Seen]:
        return [_seen(r) for r in self.clients.in_room(self.watcher, room, self.bot.nick)]

    def press(self, person: str, message: Seen, label: str) -> None:
        raise NotSupported("XMPP (as IWantXMPP speaks it) has no buttons")

    def groups(self) -> list[tuple[frozenset[str], list[Seen]]]:
        return []  # no group conversations: each member is told on their own

    def set_name(self, person: str, name: str) -> None:
        raise NotSupported(
            "XMPP cannot carry that name: XML 1.0 forbids U+0007 in any stanza, and a room "
            "nick's profile (RFC 8266) forbids U+202E"
        )

    # -- misbehaving ---------------------------------------------------------------------------

    def redeliver(self, handle: object) -> None:
        """The same stanza again, id and all (as a client resending after a lost stream)."""
        assert isinstance(handle, Said), handle
        self.clients.resend(handle)

    def make_unreachable(self, person: str) -> None:
        self.clients.block(person, self.bot_jid)  # XEP-0191: Prosody bounces the bot's DMs

    def rate_limit(self, times: int, seconds: float) -> None:
        raise NotSupported(
            "Prosody never answers a message with 'wait and retry': its mod_limits slows "
            "reading a connection instead, so a 429 cannot be forced"
        )

    def rate_limited(self) -> int:
        return 0

    # -- for the test's failure message -----------------------------------------------------

    def log_tail(self, chars: int = 6000) -> str:
        return self.bot.output(chars)
