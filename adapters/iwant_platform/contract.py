"""The adapter contract: what an iwant chat backend offers the iwant plugin, written once.

An iwant backend is an errbot backend (an ``ErrBot`` subclass) that also is a
``ChatPlatform``: it says what it can do (``Capabilities``), how its people and rooms are
named, the platform's id of each incoming event, the delivery budgets its platform imposes
(``Budget``, ``spends``), the secrets to keep out of logs, how a command is typed there, and
it sends through typed calls that raise one family of errors (``SendError``). The iwant
plugin talks to a backend through this class alone.

A backend that does not implement it (errbot's own Text, Test, XMPP, IRC…) is wrapped by
``iwant_platform.errbot_backends.adapter_for`` in a documented default: text only, the
command to type written where a button would be, no group conversation, no budgets unless
``[pacing]`` in plugins.cfg names some. See docs/writing-an-adapter.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

#: A person's or room's id on its platform: printable, no spaces (``U024BE7LH``, ``@bob``).
LocalId = str


@dataclass(frozen=True)
class Capabilities:
    """What a platform can show and do. Every flag off is the default: plain text."""

    #: Buttons under a message that run a command as the person who presses them. Without
    #: them the plugin writes each button's command where the button would be
    #: (``with_commands``) and hands the backend no buttons.
    buttons: bool = False
    #: A conversation of the bot with several people at once (``open_group``).
    group_conversations: bool = False
    #: The most people (besides the bot) one group conversation holds; a bigger group is
    #: announced in a thread of the room it formed in (``threads``), or not at all.
    group_max: int = 0
    #: Replies in a thread under a message of a room.
    threads: bool = False
    #: Files sent to a person (``send_file``): an export as ``iwant-export.json``.
    files: bool = False
    #: Images posted in a room (``send_image``): the weekly digest's chart. Without them
    #: the digest is its text alone.
    images: bool = False
    #: Mentions that notify the person named.
    mentions: bool = False
    #: One screen shows every person's messages (errbot's local console): a message to
    #: someone is labelled with whom it is for, and an admin may act as someone else.
    shared_screen: bool = False


@dataclass(frozen=True)
class Button:
    """A button under a message: pressing it runs ``command`` as the person pressing."""

    label: str
    command: str


@dataclass(frozen=True)
class Budget:
    """A delivery budget the platform imposes on a bot, whatever the number of processes.

    ``limit`` is written as ``[pacing]`` in plugins.cfg writes it (``1/s burst 2``,
    ``20/min``), or "" for none (the budget is kept only where plugins.cfg sets it);
    ``[pacing] <platform>.<name>`` overrides it. ``most_sends``: the most posts
    one notification makes in it back to back (a Slack announcement in a thread posts
    twice), so an override's burst must allow that many."""

    name: str
    limit: str
    most_sends: int = 1
    #: What it limits, for plugins.cfg's comments and the guide.
    about: str = ""


@dataclass(frozen=True)
class Spend:
    """What one notification spends of a budget: ``sends`` posts in the budget ``budget``,
    in its part ``part`` (a chat's id; ``""`` for the bot-wide budget)."""

    budget: str
    part: LocalId = ""
    sends: int = 1


@dataclass(frozen=True)
class Outgoing:
    """A notification as ``ChatPlatform.spends`` sees it: to one person (``to``), or, for a
    group conversation, to its ``members``; ``room`` is where the wish was made, if in one."""

    to: LocalId
    members: tuple[LocalId, ...] | None = None
    room: LocalId | None = None


class SendError(Exception):
    """A send failed, and may work later: the plugin retries it with backoff."""

    #: True when it can never work (blocked, no such person): the plugin gives up at once.
    undeliverable: bool = False
    #: Seconds the platform asked to wait before trying again, if it said.
    retry_after: float | None = None


class Undeliverable(SendError):
    """A send that can never work: the person blocked the bot, left, or does not exist."""

    undeliverable = True


class RetryLater(SendError):
    """The platform refused for now (a 429, an outage) and said how long to wait."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ChatPlatform:
    """The contract. An iwant backend subclasses it beside ``errbot.core.ErrBot``; the
    attributes are class-level declarations, the methods its platform's translations.

    Ids: a person is ``<platform>:<LocalId>`` to the engine; the adapter deals in LocalIds
    only, and ``person_id``/``room_id`` give them for errbot's identifiers."""

    #: The prefix of every id of this platform (``slack`` makes ``slack:U024BE7LH``).
    platform: str = ""
    capabilities: Capabilities = Capabilities()
    #: The budgets delivery keeps to, with the platform's published defaults.
    budgets: tuple[Budget, ...] = ()
    #: The budget that a 429 pauses for every process of the bot (``rate_limited``): a
    #: bot-wide one (spent with ``part=""`` by every send), declared with a limit (or set in
    #: ``[pacing]``): a budget without a limit is not kept, so there is nothing to pause.
    paused_by_rate_limit: str | None = None
    #: Secrets as they look in text (a token's shape), kept out of every log line.
    secret_patterns: tuple[re.Pattern[str], ...] = ()
    #: Environment variables whose values are secrets (the bot's tokens).
    secret_variables: tuple[str, ...] = ()
    #: How a person types a command there (``/iwant``); "" means errbot's prefix + ``iwant``.
    command: str = ""

    # -- who and where ---------------------------------------------------------------------

    def person_id(self, identifier: Any) -> LocalId:
        """The LocalId of the person behind an errbot identifier (a person, or a person in a
        room)."""
        raise NotImplementedError

    def display_name(self, identifier: Any) -> str:
        """What the person is called there (any text: the plugin keeps visible characters);
        "" when the platform does not say (the plugin then shows their id)."""
        raise NotImplementedError

    def room_id(self, message: Any) -> LocalId | None:
        """The LocalId of the room a message was written in; None in a direct message."""
        raise NotImplementedError

    def timezone_of(self, identifier: Any) -> str | None:
        """The person's time zone as the platform knows it (an IANA name), if it does."""
        return None

    def event_id(self, message: Any) -> str | None:
        """The platform's id of the event that carried ``message``. The engine keys the
        request on it: the same event delivered again after a crash (its answer maybe lost)
        stores nothing new and is answered with what the first one made. A platform's
        redelivery to a process that did answer is the adapter's to drop
        (``shutdown.RecentKeys``), so that a person never reads one answer twice."""
        return None

    def bot_key(self) -> str:
        """The bot's own id on the platform: every process of one bot shares its budgets."""
        raise NotImplementedError

    # -- sending (each raises SendError, Undeliverable or RetryLater) ----------------------

    def send_text(self, to: LocalId, text: str, buttons: Sequence[Button] = ()) -> None:
        """A message to a person (privately) or a room, with buttons where it has them."""
        raise NotImplementedError

    def reply(self, message: Any, text: str, buttons: Sequence[Button] = ()) -> None:
        """The answer to ``message``, where it was written (its room or the direct chat)."""
        raise NotImplementedError

    def send_file(self, to: LocalId, filename: str, content: bytes, caption: str) -> None:
        """A file to a person, privately (``capabilities.files``)."""
        raise Undeliverable("this platform takes no files")

    def send_image(self, to: LocalId, filename: str, content: bytes, caption: str) -> None:
        """A PNG image with ``caption`` under it, in a room (``capabilities.images``)."""
        raise Undeliverable("this platform takes no images")

    def open_group(self, members: Sequence[LocalId], text: str, room: LocalId | None) -> None:
        """Post ``text`` in a conversation with all ``members`` (``capabilities
        .group_conversations``); a group above ``group_max`` in a thread of ``room``."""
        raise Undeliverable("this platform has no group conversations")

    def spends(self, out: Outgoing) -> Sequence[Spend]:
        """The budgets one notification spends (none: it is not paced)."""
        return ()

    # -- told by the platform ----------------------------------------------------------------

    #: Called with the seconds of every 429 the platform answers; the plugin sets it, and
    #: pauses ``paused_by_rate_limit`` for every process of the bot.
    rate_limit_listener: Callable[[float], None] | None = None

    def rate_limited(self, seconds: float) -> None:
        """The adapter's report of a 429 (from any thread)."""
        listener = self.rate_limit_listener
        if listener is not None:
            listener(seconds)


def with_commands(text: str, buttons: Sequence[Button], prefix: str) -> str:
    """``text`` with each button's command written out where the button would be, unless the
    text already says it, or the same command for another selector (``!iwant stop 1`` for the
    button ``iwant stop #2``)."""
    lines = [text]
    for button in buttons:
        command = f"{prefix}{button.command}"
        verb = command.rsplit(" ", 1)[0] + " "  # "!iwant stop " of "!iwant stop #2"
        if command not in text and verb not in text:
            lines.append(f"{button.label}: {command}")
    return "\n".join(lines)


def format_command(platform: ChatPlatform, prefix: str) -> str:
    """How ``!iwant`` is typed on ``platform``: its own ``command``, else errbot's ``prefix``
    followed by ``iwant``."""
    return platform.command or f"{prefix}iwant"
