"""Buttons on errbot messages: how a backend of the contract carries them from its
``send_text``/``reply`` to its ``send_message``, written once for every adapter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .contract import Button

#: The key in an errbot ``Message.extras`` under which its buttons travel.
EXTRA = "buttons"


def attach(message: Any, buttons: Sequence[Button]) -> Any:
    """``message`` (an errbot Message) with ``buttons``; returned for chaining."""
    if buttons:
        message.extras[EXTRA] = tuple(buttons)
    return message


def of(message: Any) -> list[Button]:
    """The buttons a message carries: ``Button``s, or ``{"label", "command"}`` dicts that a
    plugin of errbot's own API may set; anything else is left out."""
    found: list[Button] = []
    for raw in message.extras.get(EXTRA) or ():
        if isinstance(raw, Button):
            found.append(raw)
        elif isinstance(raw, dict) and raw.get("label") and raw.get("command"):
            found.append(Button(str(raw["label"]), str(raw["command"])))
    return found
