"""Linked accounts (``!iwant link``): one person across platforms.

An account asks for a one-time code; the person's other account gives it back within
``CODE_LIFETIME``; from then on the second account belongs to the first one's person: one
time zone, one ignore list, one match history, one open-request cap, never grouped with
themself. Each request remembers the account that made it, and its answers and
notifications go there. A code is 8 characters of a 32-letter alphabet (40 bits), kept only
as its SHA-256 and compared in constant time; ``MAX_FAILURES`` wrong codes in
``FAILURE_WINDOW`` stop an account from trying.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Sequence
from datetime import timedelta

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed safely
CODE_LENGTH = 8
CODE_LIFETIME = timedelta(minutes=10)
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(hours=1)

WRONG_CODE = (
    "That code is wrong or has expired; on your other account say !iwant link to get a new "
    "one, then !iwant link CODE here."
)
TOO_MANY = (
    f"That is {MAX_FAILURES} wrong codes within the hour; try again in an hour with a new "
    "code from !iwant link on your other account."
)
OWN_CODE = "That code is for your other account: say !iwant link CODE there."
ALREADY_LINKED = "This account is linked already; !iwant unlink first, then !iwant link CODE."


def new_code() -> str:
    """A fresh code, ``ABCD-EFGH``."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:4]}-{raw[4:]}"


def _normal(code: str) -> str:
    return "".join(c for c in code.upper() if c.isalnum())


def digest(code: str) -> str:
    return hashlib.sha256(_normal(code).encode()).hexdigest()


def match(code: str, stored: Iterable[tuple[str, str]]) -> tuple[str, str] | None:
    """The (hash, account) of ``code`` among the live codes, each compared in constant time."""
    wanted = digest(code)
    found = None
    for code_hash, account in stored:
        if hmac.compare_digest(code_hash, wanted):
            found = (code_hash, account)
    return found


def code_given(code: str) -> str:
    minutes = int(CODE_LIFETIME.total_seconds() // 60)
    return (
        f"Your link code is {code}. Within {minutes} minutes, on your other account, say "
        f"!iwant link {code} and the two accounts will be one person."
    )


def linked(name: str, platform: str) -> str:
    return (
        f"Linked: this account and {name} on {platform} are one person now: one time zone, "
        "one ignore list, one history, and never in a group with yourself. Wishes are "
        "answered where you make them. !iwant unlink undoes it."
    )


def unlinked(accounts: Sequence[str]) -> str:
    if not accounts:
        return "This account is not linked to another; !iwant link links one."
    if len(accounts) == 1:
        return f"Unlinked: {accounts[0]} is a person of its own again."
    return f"Unlinked: {', '.join(accounts)} are each a person of their own again."
