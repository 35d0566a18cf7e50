"""Text in and out of Slack: mrkdwn escaping, incoming text clean-up, Block Kit buttons.

Pure functions with no errbot or network access, so they are unit-tested directly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from iwant_platform.contract import Button

# Buttons are recognised by this prefix on their action_id, and the person a message was
# meant for travels in the actions block's block_id: a click by anyone else updates nothing.
ACTION_PREFIX = "iwant_button"
OWNER_BLOCK_PREFIX = "iwant_for:"
# Slack's limits: section text 3000 chars, button text 75, button value 2000, 25 per block.
SECTION_LIMIT = 3000
BUTTON_LABEL_LIMIT = 75
BUTTON_VALUE_LIMIT = 2000
BUTTONS_PER_BLOCK = 25

_CHANNEL_LINK = re.compile(r"<#([CGD][A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")
_SUBTEAM = re.compile(r"<!subteam\^[A-Z0-9]+(?:\|([^>]*))?>")
_LINK = re.compile(r"<((?:https?|mailto|tel):[^|>]+)(?:\|([^>]*))?>")
_MD_BOLD = re.compile(r"\*\*(.+?)\*\*")


def escape(text: str) -> str:
    """Escape text for Slack mrkdwn: no user input can ping @channel or forge a link.

    Slack only treats ``<…>`` as a control sequence, and only ``&``, ``<`` and ``>`` need
    escaping (https://api.slack.com/reference/surfaces/formatting#escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def outgoing_text(body: str) -> str:
    """errbot's message body (plain text or errbot's markdown) to safe Slack mrkdwn."""
    # errbot's own help uses **bold**; Slack's bold is *bold*.
    return _MD_BOLD.sub(r"*\1*", escape(body))


def incoming_text(text: str, bot_user_id: str | None, prefix: str = "!") -> str:
    """Slack message text to the plain text errbot expects.

    ``<@BOT> iwant coffee`` (a mention of the bot at the start) becomes ``!iwant coffee``;
    links become their label, mentions of others stay ``<@U…>``, broadcasts become plain
    ``@here`` words, and Slack's ``&amp;``-style escapes are undone."""
    text = text.strip()
    if bot_user_id:
        mention = re.match(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>[\s:,]*", text)
        if mention:
            rest = text[mention.end() :].strip()
            text = rest if rest.startswith(prefix) or not rest else prefix + rest
    text = _SPECIAL.sub(r"@\1", text)
    text = _SUBTEAM.sub(lambda m: "@" + (m.group(1) or "group").lstrip("@"), text)
    text = _CHANNEL_LINK.sub(lambda m: "#" + (m.group(2) or m.group(1)), text)
    text = _LINK.sub(lambda m: m.group(2) or m.group(1), text)
    return unescape(text)


def slash_text(command: str, text: str, prefix: str = "!") -> str:
    """``/iwant coffee for 1h`` (a slash command) to ``!iwant coffee for 1h``."""
    words = incoming_text(text, None, prefix).strip()
    name = command.strip().lstrip("/")
    return f"{prefix}{name} {words}".rstrip()


def _sections(mrkdwn: str) -> list[dict[str, Any]]:
    chunks = [mrkdwn[i : i + SECTION_LIMIT] for i in range(0, len(mrkdwn), SECTION_LIMIT)]
    # verbatim: Slack must not auto-link channel names or parse mentions in our text.
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": chunk, "verbatim": True}}
        for chunk in chunks or [" "]
    ]


def button_blocks(
    mrkdwn: str, buttons: Sequence[Button], owner: str | None
) -> list[dict[str, Any]]:
    """A section with the (already escaped) text, then an actions block with the buttons.

    Each button's ``value`` is the command it stands for (without prefix); ``owner`` is the
    Slack user id the message is for, or None when nobody's click should update it."""
    elements = []
    for index, button in enumerate(buttons[:BUTTONS_PER_BLOCK]):
        label = button.label[:BUTTON_LABEL_LIMIT]
        command = button.command
        if len(command) > BUTTON_VALUE_LIMIT:
            raise ValueError(f"button command longer than {BUTTON_VALUE_LIMIT} characters")
        elements.append(
            {
                "type": "button",
                "action_id": f"{ACTION_PREFIX}_{index}",
                "text": {"type": "plain_text", "text": label, "emoji": True},
                "value": command,
            }
        )
    actions = {
        "type": "actions",
        "block_id": OWNER_BLOCK_PREFIX + (owner or "-"),
        "elements": elements,
    }
    return [*_sections(mrkdwn), actions]


def owner_of_block(block_id: str | None) -> str | None:
    if not block_id or not block_id.startswith(OWNER_BLOCK_PREFIX):
        return None
    owner = block_id[len(OWNER_BLOCK_PREFIX) :]
    return None if owner == "-" else owner


def is_our_button(action: dict[str, Any]) -> bool:
    return action.get("type") == "button" and str(action.get("action_id", "")).startswith(
        ACTION_PREFIX
    )


def clicked_blocks(blocks: list[dict[str, Any]], user_id: str, label: str) -> list[dict[str, Any]]:
    """The message after a click: same text, no buttons, a line saying who chose what."""
    kept = [b for b in blocks if b.get("type") != "actions"]
    note = f"<@{user_id}> chose “{escape(label)}”"
    kept.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
    return kept
