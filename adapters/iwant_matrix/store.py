"""What the Matrix backend keeps in errbot's data directory (``BOT_DATA_DIR``), so that a
restart neither answers an event twice nor misses one: the sync token, and (with a password
login) the session whose device owns the encryption keys. The keys themselves are in
matrix-nio's store, a SQLite file in ``matrix-store/`` beside them."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

log = logging.getLogger(__name__)


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = path.with_name(path.name + ".new")
    fd = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(new, path)


def _read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        log.warning("%s is unreadable; starting without it", path)
        return {}
    return data if isinstance(data, dict) else {}


class SyncToken:
    """The ``next_batch`` of the last sync whose events were all handed to errbot."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def load(self, user_id: str) -> str | None:
        data = _read_json(self.path)
        token = data.get("next_batch")
        if data.get("user_id") != user_id or not isinstance(token, str):
            return None  # another account's token (or none): start afresh
        return token

    def save(self, user_id: str, token: str) -> None:
        with self._lock:
            _write_private(self.path, json.dumps({"user_id": user_id, "next_batch": token}))


class Session:
    """A password login's device and access token, so that a restart logs in as the same
    device (its encryption keys stay valid) without another login."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, user_id: str) -> tuple[str, str] | None:
        """(device_id, access_token) of ``user_id``'s saved session, if any."""
        data = _read_json(self.path)
        device, token = data.get("device_id"), data.get("access_token")
        if data.get("user_id") != user_id or not isinstance(device, str):
            return None
        return device, token if isinstance(token, str) else ""

    def save(self, user_id: str, device_id: str, access_token: str) -> None:
        _write_private(
            self.path,
            json.dumps({"user_id": user_id, "device_id": device_id, "access_token": access_token}),
        )
