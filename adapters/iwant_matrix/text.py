"""Text on Matrix: what a message says and whom it names, written without the network, so
that every rule here is tested on its own (tests/matrix/test_matrix_units.py)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

#: Access and refresh tokens as Synapse (``syt_``, ``syr_``) and the Matrix Authentication
#: Service (``mct_`` compatibility tokens, ``mat_``/``mar_``) write them.
MATRIX_TOKEN = re.compile(r"(?<![A-Za-z0-9])(?:syt|syr|mct|mat|mar)_[A-Za-z0-9_\-]{16,}")

#: A Matrix event's content may be at most 65,536 bytes (with its envelope); bodies are cut
#: into parts well below that.
MAX_BODY_CHARS = 16_000

#: The reactions that act as buttons: ❌ runs the message's cancel (or stop) command, ✅ its
#: one other command (a suggestion to join, a confirmation). Variation selectors are dropped
#: before comparing, since clients add them or not.
CROSS = "\u274c"
CHECK = "\u2705"
_VARIATION = re.compile("[\ufe0e\ufe0f]")


def visible_name(name: str) -> str:
    """A display name as people see it: no control or format characters, at most 100."""
    kept = "".join(
        ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp", "Co", "Cs")
    )
    return " ".join(kept.split())[:100]


def mentioned(text: str, names: Mapping[str, str]) -> list[str]:
    """The user ids of ``names`` (user id -> display name) whose name or user id the text
    says, as a whole word: who ``m.mentions`` must list."""
    found: list[str] = []
    for user_id, name in names.items():
        shown = visible_name(name)
        candidates = [user_id] + ([shown] if len(shown) >= 2 else [])
        for candidate in candidates:
            if re.search(r"(?<![\w@])" + re.escape(candidate) + r"(?!\w)", text):
                found.append(user_id)
                break
    return sorted(set(found))


def mentions(user_ids: Iterable[str]) -> dict[str, list[str]]:
    """``m.mentions`` (spec 1.7): always present, so that no client falls back to matching
    names in the body; never ``room``, whatever a display name says."""
    return {"user_ids": sorted(set(user_ids))}


def reaction_command(text: str, key: str, prefix: str) -> str | None:
    """The command (``iwant cancel #12``, without the prefix) that the reaction ``key`` on a
    bot's message saying ``text`` runs, or None. Commands are read where the plugin wrote
    them, a line each (``Cancel: !iwant cancel #12``); ❌ also finds a cancel or stop said in
    a sentence (``… with !iwant stop 1.``)."""
    key = _VARIATION.sub("", key)
    p = re.escape(prefix)
    written = [
        " ".join(c.split())
        for c in re.findall(rf"^[^\n]{{1,80}}?: {p}(iwant [^\n]+?)\s*$", text, re.MULTILINE)
    ]
    undo = [c for c in written if c.split(" ")[1:2] in (["cancel"], ["stop"])]
    other = [c for c in written if c not in undo]
    if key == CROSS:
        if undo:
            return undo[0]
        said = re.search(rf"{p}(iwant (?:cancel|stop) [^\s,;:!?)\]]+?)[.]?(?=[\s,;:!?)\]]|$)", text)
        return said.group(1) if said else None
    if key == CHECK:
        unique = list(dict.fromkeys(other))
        return unique[0] if len(unique) == 1 else None  # ✅ is a button only if unambiguous
    return None


def strip_reply_fallback(body: str) -> str:
    """A reply's body without the quoted lines clients put before it (``> <@ann:x> …``)."""
    lines = body.split("\n")
    if not lines or not lines[0].startswith("> "):
        return body
    index = 0
    while index < len(lines) and lines[index].startswith(">"):
        index += 1
    return "\n".join(lines[index:]).lstrip("\n")


def split_text(text: str, limit: int = MAX_BODY_CHARS) -> list[str]:
    """``text`` in parts of at most ``limit`` characters, cut at line ends where possible."""
    parts: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        if cut <= 0:
            cut = limit
        parts.append(text[:cut])
        text = text[cut:].lstrip("\n")
    if text:
        parts.append(text)
    return parts


def retry_after(headers: Mapping[str, str] | None, retry_after_ms: int | None) -> float:
    """Seconds a 429 asks to wait: the ``Retry-After`` header (spec 1.10), else the
    deprecated ``retry_after_ms`` of the body, else 5."""
    value = (headers or {}).get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
    if retry_after_ms:
        return max(0.0, retry_after_ms / 1000)
    return 5.0
