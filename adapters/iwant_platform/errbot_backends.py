"""The adapter contract's defaults, for errbot backends that do not implement it.

``adapter_for`` gives the plugin its ``ChatPlatform``: the backend itself when it implements
the contract (IWantSlack, IWantTelegram, IWantMatrix); else the first adapter that an
``iwant.platforms`` entry point offers for it (the local console below is one, registered
like a third party's); else ``ErrbotBackend``: text only, the command to type written where a
button would be, no group conversation, no budgets unless ``[pacing]`` names some.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any

from errbot.backends.base import Message, RoomOccupant

from . import buttons as button_extras
from .contract import (
    Budget,
    Button,
    Capabilities,
    ChatPlatform,
    LocalId,
    Outgoing,
    Spend,
    Undeliverable,
)

log = logging.getLogger(__name__)

#: Where an adapter's incoming errbot ``Message`` carries the platform's id of its event.
EVENT_ID = "event_id"
#: The entry-point group where a package offers adapters for errbot backends it does not own.
ENTRY_POINTS = "iwant.platforms"
#: An entry point's object: given errbot's backend, an adapter for it, or None if not its own.
Factory = Callable[[Any], ChatPlatform | None]


class ErrbotChat(ChatPlatform):
    """The contract over errbot's own API, for a backend that is an ``ErrBot`` subclass and
    a ``ChatPlatform`` (IWantSlack, IWantTelegram, IWantMatrix): people and rooms by their
    identifiers' ``person`` and ``room``, the event id its incoming messages carry in
    ``extras["event_id"]``, sending through ``build_message``/``build_reply`` and
    ``send_message`` with the buttons in ``iwant_platform.buttons``."""

    def person_id(self, identifier: Any) -> LocalId:
        return str(identifier.person)

    def display_name(self, identifier: Any) -> str:
        return str(identifier.fullname or identifier.nick or identifier.person)

    def room_id(self, message: Any) -> LocalId | None:
        frm = message.frm
        return str(frm.room) if isinstance(frm, RoomOccupant) else None

    def event_id(self, message: Any) -> str | None:
        found = message.extras.get(EVENT_ID)
        return str(found) if found else None

    def bot_key(self) -> str:
        return str(self.bot_identifier)  # type: ignore[attr-defined]  # ErrBot's

    def send_text(self, to: LocalId, text: str, buttons: Sequence[Button] = ()) -> None:
        backend: Any = self
        message = backend.build_message(text)
        message.frm, message.to = backend.bot_identifier, backend.build_identifier(to)
        backend.send_message(button_extras.attach(message, buttons))

    def reply(self, message: Any, text: str, buttons: Sequence[Button] = ()) -> None:
        backend: Any = self
        backend.send_message(button_extras.attach(backend.build_reply(message, text), buttons))


class ErrbotBackend(ChatPlatform):
    """Any errbot backend, through errbot's own API: identifiers, ``build_reply`` and
    ``send_message``. Its platform is the backend's ``mode`` (``xmpp``, ``irc``)."""

    capabilities = Capabilities()
    # No limits of their own: kept only where plugins.cfg sets them (``[pacing] xmpp.chat``).
    budgets = (
        Budget("bot", "", about="every message of the bot"),
        Budget("chat", "", about="one person or room"),
    )

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.platform = str(backend.mode)

    def person_id(self, identifier: Any) -> LocalId:
        return str(identifier.person)

    def display_name(self, identifier: Any) -> str:
        return str(identifier.fullname or identifier.nick or "")

    def room_id(self, message: Any) -> LocalId | None:
        frm = message.frm
        return str(frm.room) if isinstance(frm, RoomOccupant) else None

    def bot_key(self) -> str:
        return str(self.backend.bot_identifier)

    def spends(self, out: Outgoing) -> Sequence[Spend]:
        return () if out.members is not None else (Spend("bot"), Spend("chat", out.to))

    def send_text(self, to: LocalId, text: str, buttons: Sequence[Button] = ()) -> None:
        try:
            target = self.backend.build_identifier(to)
        except Exception as err:
            raise Undeliverable(f"no such person or room: {type(err).__name__}") from None
        self.backend.send_message(Message(body=text, frm=self.backend.bot_identifier, to=target))

    def reply(self, message: Any, text: str, buttons: Sequence[Button] = ()) -> None:
        self.backend.send_message(self.backend.build_reply(message, text))


class Console(ErrbotBackend):
    """errbot's local Text console (``errbot -T``) and its Test backend: one screen shows
    every person's messages, so a message to someone is labelled ``[to @bob]`` (on the
    console) and an admin may act as someone else (``!iwant as @bob …``)."""

    capabilities = Capabilities(shared_screen=True)
    MODES = ("text", "test")

    def person_id(self, identifier: Any) -> LocalId:
        local = str(identifier.person)
        if self.platform == "text" and not local.startswith("@"):
            local = "@" + local
        return local

    def send_text(self, to: LocalId, text: str, buttons: Sequence[Button] = ()) -> None:
        if self.platform == "text":
            text = f"[to {to}] {text}"
        super().send_text(to, text, buttons)


def console(backend: Any) -> ChatPlatform | None:
    """The ``iwant.platforms`` entry point of the local console (registered in
    pyproject.toml like any third party's)."""
    return Console(backend) if str(backend.mode) in Console.MODES else None


def adapter_for(backend: Any) -> ChatPlatform:
    """The ``ChatPlatform`` through which the plugin talks to ``backend``."""
    if isinstance(backend, ChatPlatform):
        return backend
    for entry in entry_points(group=ENTRY_POINTS):
        try:
            factory: Factory = entry.load()
            adapter = factory(backend)
        except Exception:
            log.exception("the iwant platform adapter %s failed to load", entry.name)
            continue
        if adapter is not None:
            return adapter
    return ErrbotBackend(backend)
