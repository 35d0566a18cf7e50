"""Calendar addresses are passwords: sealed (Fernet, from ``cryptography``) with a key derived
from ``IWANT_SECRET_KEY`` before a storage sees them, opened only to read the calendar."""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.fernet import Fernet, InvalidToken

VARIABLE = "IWANT_SECRET_KEY"


class SealError(Exception):
    """No key is set, or a sealed text does not open with this key."""


def _fernet() -> Fernet:
    secret = os.environ.get(VARIABLE, "").strip()
    if not secret:
        raise SealError(f"{VARIABLE} is not set")
    # Any secret string becomes a Fernet key: its SHA-256, URL-safe base64.
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()))


def available() -> bool:
    """Whether the admin has set a key (read each time: a test or a restart may set it)."""
    return bool(os.environ.get(VARIABLE, "").strip())


def seal(text: str) -> str:
    return _fernet().encrypt(text.encode()).decode("ascii")


def unseal(sealed: str) -> str:
    try:
        return _fernet().decrypt(sealed.encode("ascii")).decode()
    except InvalidToken:
        raise SealError(f"sealed with another {VARIABLE}") from None
