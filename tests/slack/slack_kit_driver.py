"""The adapter kit's driver for Slack: the stand-in workspace as its people see it, and a
real errbot process on the IWantSlack backend with the project's config (the iwant plugin).

People write as a Slack client would: ``/iwant …`` is a slash command (in their DM with the
app, or in the kit's channel), anything else a plain message; a button press is a
``block_actions`` click. What they are shown is what the bot posted, Slack's ``&amp;``-style
escapes undone as a client renders them. Misbehaviour is forced through the stand-in's fail
rules (a DM the bot may never post in, 429s with ``Retry-After``) and its redelivery of an
envelope. The SQLite database lives in the work folder, so it outlives ``stop_bot``; what
people say while no bot is connected waits in the stand-in and is delivered when the next
one connects, as Slack retries an event no connection took.
"""

from __future__ import annotations

import math
from pathlib import Path

from iwant_platform.contract import LocalId
from iwant_platform.kit import Seen
from iwant_slack.backend import IWantSlackBackend
from iwant_slack.text import unescape
from slack_harness import ALICE, BOB, CAROL, PROJECT_CONFIG, BotProcess, make_workspace
from slack_standin import BOT_USER_ID, Posted, SlackStandIn

DAVE, ERIN, FRANK = "U0DAVE", "U0ERIN", "U0FRANK"
KIT_ROOM = "C0KITROOM"
#: Slack's answer to a post that a workspace preference forbids ("A workspace preference
#: prevents the authenticated user from posting"): here, any post into one person's DM. They
#: still talk in channels; the backend counts the error as permanent.
UNREACHABLE_ERROR = "restricted_action"
#: errbot's log line once every plugin is active.
ACTIVATED = "Plugin activation done."


class SlackKitDriver:
    """The kit's ``Platform`` over the Slack stand-in (see ``iwant_platform.kit``)."""

    name = IWantSlackBackend.platform
    capabilities = IWantSlackBackend.capabilities
    command = IWantSlackBackend.command
    patience = 30.0

    def __init__(self, workdir: Path, standin: SlackStandIn | None = None) -> None:
        self.standin = standin or make_workspace()
        s = self.standin
        s.add_user(DAVE, "dave", "Dave Okafor", "Dave", tz="Europe/London")
        s.add_user(ERIN, "erin", "Erin Walsh", "", tz="America/Los_Angeles")
        s.add_user(FRANK, "frank", "Frank Meier", "frank", tz="Europe/Berlin")
        self.people: tuple[LocalId, ...] = (ALICE, BOB, CAROL, DAVE, ERIN, FRANK)
        s.add_channel(KIT_ROOM, "kit", list(self.people))
        self.room: LocalId = KIT_ROOM
        self.workdir = workdir
        self.bot: BotProcess | None = None

    # -- the bot ---------------------------------------------------------------------------

    def start_bot(self) -> None:
        connections = self.standin.connections_opened
        activations = self.log().count(ACTIVATED)  # the log file is kept across restarts
        self.bot = BotProcess(
            self.standin,
            self.workdir,
            config=PROJECT_CONFIG,
            env={"IWANT_POLL_SECONDS": "0.5", "IWANT_TIMEZONE": "UTC"},
        ).start()
        self.standin.wait_connected(connections + 1, timeout=self.patience)
        # Envelopes wait for the plugins inside the backend; the plugin is active, and so
        # answers, once errbot has activated it.
        self.standin.wait_for(
            lambda: self.log().count(ACTIVATED) > activations,
            self.patience,
            "errbot to activate its plugins",
        )

    def stop_bot(self) -> None:
        bot, self.bot = self.bot, None
        if bot is not None:
            bot.stop()  # SIGINT to its process group, as Ctrl-C; SIGKILL after 10 s
            code = bot.proc.returncode if bot.proc is not None else 0
            if code != 0:
                raise AssertionError(f"the bot did not stop cleanly (exit code {code})")

    def close(self) -> None:
        try:
            self.stop_bot()
        finally:
            self.standin.stop()

    def log(self) -> str:
        path = self.workdir / "errbot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- people ----------------------------------------------------------------------------

    def say(self, person: LocalId, text: str, room: LocalId | None = None) -> object:
        channel = room or SlackStandIn.dm_of(person)
        command, _, words = text.strip().partition(" ")
        if command == self.command:
            return self.standin.slash_command(person, channel, words, command=command)
        return self.standin.user_message(person, channel, text)

    def shown_to(self, person: LocalId) -> list[Seen]:
        return [self._seen(p) for p in self.standin.messages_in(SlackStandIn.dm_of(person))]

    def shown_in(self, room: LocalId) -> list[Seen]:
        return [self._seen(p) for p in self.standin.messages_in(room)]  # threads included

    def press(self, person: LocalId, message: Seen, label: str) -> None:
        assert isinstance(message.handle, Posted), message
        self.standin.click(person, message.handle, label)

    def groups(self) -> list[tuple[frozenset[LocalId], list[Seen]]]:
        with self.standin.lock:
            mpims = [c for c in self.standin.channels.values() if c["is_mpim"]]
        return [
            (
                frozenset(m for m in c["members"] if m != BOT_USER_ID),
                [self._seen(p) for p in self.standin.messages_in(c["id"])],
            )
            for c in mpims
        ]

    @staticmethod
    def _seen(posted: Posted) -> Seen:
        labels = tuple(str(b["text"]["text"]) for b in posted.buttons())
        return Seen(unescape(posted.text), labels, posted)

    # -- misbehaviour ----------------------------------------------------------------------

    def redeliver(self, handle: object) -> None:
        assert isinstance(handle, str), handle
        self.standin.redeliver(handle)

    def set_name(self, person: LocalId, name: str) -> None:
        self.standin.rename(person, real_name=name, display_name=name)

    def make_unreachable(self, person: LocalId) -> None:
        self.standin.fail(
            "chat.postMessage",
            times=1_000_000,
            error=UNREACHABLE_ERROR,
            channel=SlackStandIn.dm_of(person),  # also catches a post to their user id
        )

    def rate_limit(self, times: int, seconds: float) -> None:
        self.standin.rate_limit("chat.postMessage", times, retry_after=max(1, math.ceil(seconds)))

    def rate_limited(self) -> int:
        """Every 429 the stand-in answered: its limits' and the ``rate_limit`` rules'."""
        with self.standin.lock:
            return sum(1 for c in self.standin.calls if c.status == 429)
