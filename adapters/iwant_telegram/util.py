"""Pure helpers of the IWantTelegram backend: text splitting, command normalisation,
button tokens, the persisted update offset, send errors and token redaction in logs.

Kept apart from the backend so they can be tested without a bot or a network.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

from iwant_platform.contract import SendError, Undeliverable

from .ids import read_json, write_json_atomically

log = logging.getLogger(__name__)

#: Telegram's limit for a message text, counted in UTF-16 code units after entity parsing.
MAX_MESSAGE_LENGTH = 4096
#: Telegram's limit for an inline button's callback_data, in bytes.
MAX_CALLBACK_DATA = 64
#: Telegram's limit for a media caption, counted like message texts (UTF-16 code units).
MAX_CAPTION_LENGTH = 1024
#: The largest file a bot may upload through the public Bot API (sendDocument), in bytes.
MAX_UPLOAD_BYTES = 50_000_000


# --------------------------------------------------------------------------- send errors


class TelegramSendError(SendError):
    """Sending failed, but it may work later (network, 5xx, flood control): retry."""

    def __init__(
        self, message: str, *, chat_id: int | None = None, retry_after: float | None = None
    ):
        super().__init__(message)
        self.chat_id = chat_id
        #: seconds Telegram asked us to wait (429), when known
        self.retry_after = retry_after


class TelegramUndeliverable(TelegramSendError, Undeliverable):
    """Telegram will not deliver to this chat until a person acts (403, chat not found).

    The person has blocked the bot or never pressed Start in a private chat with it, or the
    bot is no longer in the group.  Retrying does not help.
    """


class TelegramPermanentError(TelegramSendError):
    """Telegram refused this message for good (400 other than "chat not found").

    Not ``undeliverable`` (the chat itself is fine), so the plugin treats it as transient;
    it is its own class so callers can tell it apart if they want to give up early.
    """


# Descriptions of 400 answers that mean "this chat cannot be reached", as Telegram words them.
_UNREACHABLE_400 = (
    "chat not found",
    "user not found",
    "peer_id_invalid",
    "chat_write_forbidden",
    "have no rights to send",
    "not enough rights to send",
    "bot was kicked",
    "deactivated",
)


def is_unreachable_chat(description: str) -> bool:
    """Whether a 400 Bad Request description means the chat cannot be reached."""
    text = description.lower()
    return any(marker in text for marker in _UNREACHABLE_400)


# --------------------------------------------------------------------------- text


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """Split text into parts of at most ``limit`` UTF-16 units, preferring line breaks,
    then spaces; never splits a character.  Whitespace-only parts are dropped because
    Telegram rejects empty messages.
    """
    if limit < 2:
        raise ValueError("limit too small")
    parts: list[str] = []
    rest = text
    while utf16_len(rest) > limit:
        # Longest prefix that fits, measured in UTF-16 units.
        units = 0
        cut = 0
        for i, ch in enumerate(rest):
            units += 2 if ord(ch) > 0xFFFF else 1
            if units > limit:
                cut = i
                break
        window = rest[:cut]
        # Prefer a line break, then a space, in the second half of the window; else cut hard.
        brk = window.rfind("\n")
        if brk < cut // 2:
            brk = window.rfind(" ")
        if brk >= cut // 2 and brk > 0:
            parts.append(rest[:brk])
            rest = rest[brk + 1 :]
        else:
            parts.append(window)
            rest = rest[cut:]
    parts.append(rest)
    return [p for p in parts if p.strip()]


def truncate_text(text: str, limit: int, ellipsis: str = "…") -> str:
    """``text`` if it fits in ``limit`` UTF-16 units, else its longest prefix that fits with
    ``ellipsis`` appended (never splitting a character)."""
    if utf16_len(text) <= limit:
        return text
    room = limit - utf16_len(ellipsis)
    if room < 0:
        raise ValueError("limit too small for the ellipsis")
    units = 0
    for i, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > room:
            return text[:i] + ellipsis
    return text + ellipsis  # not reached: the text is longer than the limit


_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{1,64}))?(?=\s|$)(.*)\Z", re.DOTALL)


def normalize_incoming(
    text: str,
    *,
    is_command: bool,
    bot_username: str | None,
    prefix: str = "!",
    aliases: Mapping[str, str] | None = None,
) -> str | None:
    """Turn Telegram's ``/cmd``, ``/cmd@OurBot`` into errbot's ``!cmd``.

    ``is_command`` says whether Telegram marked the text's start as a ``bot_command`` entity.
    Returns None for a command addressed to another bot (``/cmd@OtherBot``), which must be
    ignored.  ``aliases`` maps a Telegram command name (``start``) to the errbot command text
    to run instead (``iwant help``).  Anything else is returned unchanged (``!iwant …`` and
    plain chat text both go to errbot as typed).
    """
    if not is_command:
        return text
    match = _COMMAND.match(text)
    if not match:
        return text
    name, target, rest = match.group(1), match.group(2), match.group(3)
    if target and (not bot_username or target.lower() != bot_username.lower()):
        return None
    name = name.lower()
    if aliases and name in aliases:
        name = aliases[name]
        rest = ""  # e.g. the deep-link payload of /start means nothing to errbot
    return f"{prefix}{name}{rest}"


# --------------------------------------------------------------------------- buttons


class ButtonCommands:
    """Maps button commands to callback_data of at most 64 bytes.

    A short command travels as itself (``c:iwant cancel #12``), so buttons keep working
    after a restart without any state; a longer one travels as a hash key whose command is
    kept in a JSON file (the newest ``max_entries`` only).
    """

    def __init__(self, path: Path | None, max_entries: int = 5000) -> None:
        self._path = path
        self._max = max_entries
        self._lock = threading.Lock()
        raw = read_json(path, {}) if path else {}
        self._long: OrderedDict[str, str] = OrderedDict(
            (k, v) for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)
        )

    def encode(self, command: str) -> str:
        direct = f"c:{command}"
        if len(direct.encode("utf-8")) <= MAX_CALLBACK_DATA:
            return direct
        key = hashlib.sha256(command.encode("utf-8")).hexdigest()[:32]
        with self._lock:
            self._long[key] = command
            self._long.move_to_end(key)
            while len(self._long) > self._max:
                self._long.popitem(last=False)
            if self._path:
                try:
                    write_json_atomically(self._path, dict(self._long))
                except OSError:
                    log.warning("Could not save the button commands", exc_info=True)
        return f"k:{key}"

    def decode(self, data: str) -> str | None:
        """The command of a button, or None for data this bot did not make (or forgot)."""
        if data.startswith("c:") and len(data) > 2:
            return data[2:]
        if data.startswith("k:"):
            with self._lock:
                return self._long.get(data[2:])
        return None


# --------------------------------------------------------------------------- offset


class OffsetStore:
    """The next getUpdates offset, in a file, written after each update is handled.

    Saved only once errbot has taken the update, and sent to Telegram (which confirms
    everything below it) only on the next getUpdates, so a restart neither repeats an
    update that was handled nor drops one that was not.
    """

    def __init__(self, path: Path) -> None:
        self._path = path

    @property
    def path(self) -> Path:
        return self._path

    #: Telegram keeps an update at most 24 hours, so an offset saved longer ago than this
    #: protects nothing; and after a week without updates Telegram picks the next update id
    #: at random, possibly below a stale offset, which would then swallow it.
    max_age_seconds: float = 25 * 3600

    def load(self) -> int | None:
        """The saved offset, or None when there is none or it is too old to matter."""
        try:
            age = time.time() - self._path.stat().st_mtime
        except OSError:
            return None
        if age > self.max_age_seconds:
            log.info("Ignoring an update offset saved %.0f hours ago", age / 3600)
            return None
        data = read_json(self._path, {})
        value = data.get("offset") if isinstance(data, dict) else None
        return value if isinstance(value, int) else None

    def save(self, offset: int) -> None:
        write_json_atomically(self._path, {"offset": offset})
