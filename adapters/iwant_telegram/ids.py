"""Identifiers of the IWantTelegram backend and the directory of people it has seen.

Telegram identifies people and chats by numbers: a person's id is positive and equals the
id of the private chat with them; group chats have negative ids.  ``str()`` of every
identifier is that number, so it round-trips through ``build_identifier``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from errbot.backends.base import Person, Room, RoomError, RoomOccupant

log = logging.getLogger(__name__)


class RoomsNotSupportedError(RoomError):  # type: ignore[misc]  # errbot is untyped
    """The Bot API offers no way to join, create or list group chats."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "Telegram bots cannot join, create or list group chats; add the bot to a group "
            "in the Telegram app instead."
        )


class TelegramPerson(Person):  # type: ignore[misc]
    """A Telegram user; also the private chat with them (same id)."""

    def __init__(
        self,
        user_id: int | str,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
    ) -> None:
        self._id = int(user_id)
        self._first_name = first_name
        self._last_name = last_name
        self._username = username

    @property
    def id(self) -> int:
        return self._id

    @property
    def person(self) -> str:
        return str(self._id)

    @property
    def client(self) -> str:
        return str(self._id)

    @property
    def nick(self) -> str | None:
        """The @username without the @, or None when the person has none."""
        return self._username

    username = nick

    @property
    def first_name(self) -> str | None:
        return self._first_name

    @property
    def last_name(self) -> str | None:
        return self._last_name

    @property
    def aclattr(self) -> str:
        return str(self._id)

    @property
    def fullname(self) -> str:
        """A display name; never empty (falls back to @username, then the id)."""
        name = " ".join(p for p in (self._first_name, self._last_name) if p)
        if name:
            return name
        if self._username:
            return f"@{self._username}"
        return str(self._id)

    def __str__(self) -> str:
        return str(self._id)

    def __repr__(self) -> str:
        return f"<TelegramPerson {self._id} {self.fullname!r}>"

    def __eq__(self, other: object) -> bool:
        # An occupant is a person in a place; it is not equal to the bare person.
        return (
            isinstance(other, TelegramPerson)
            and not isinstance(other, RoomOccupant)
            and not isinstance(self, RoomOccupant)
            and other._id == self._id
        )

    def __hash__(self) -> int:
        return hash(("person", self._id))


class TelegramRoom(Room):  # type: ignore[misc]
    """A Telegram group, supergroup or channel chat (negative id)."""

    def __init__(self, chat_id: int | str, title: str | None = None) -> None:
        self._id = int(chat_id)
        self._title = title

    @property
    def id(self) -> int:
        return self._id

    @property
    def title(self) -> str | None:
        return self._title

    @property
    def aclattr(self) -> str:
        return str(self._id)

    def __str__(self) -> str:
        return str(self._id)

    def __repr__(self) -> str:
        return f"<TelegramRoom {self._id} {self._title!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TelegramRoom) and other._id == self._id

    def __hash__(self) -> int:
        return hash(("room", self._id))

    # The Bot API cannot do any of these.
    def join(self, username: str | None = None, password: str | None = None) -> None:
        raise RoomsNotSupportedError()

    def leave(self, reason: str | None = None) -> None:
        raise RoomsNotSupportedError()

    def create(self) -> None:
        raise RoomsNotSupportedError()

    def destroy(self) -> None:
        raise RoomsNotSupportedError()

    @property
    def exists(self) -> bool:
        return True

    @property
    def joined(self) -> bool:
        return True

    @property
    def topic(self) -> str | None:
        return None

    @property
    def occupants(self) -> list[RoomOccupant]:
        raise RoomsNotSupportedError("The Bot API does not list the members of a group.")

    def invite(self, *args: Any) -> None:
        raise RoomsNotSupportedError()


class TelegramRoomOccupant(TelegramPerson, RoomOccupant):  # type: ignore[misc]
    """A person speaking in a group chat.

    ``str()`` and ``.person`` are the person's id, like for :class:`TelegramPerson`, so
    ``build_identifier(str(occupant))`` addresses the person directly (a DM).
    """

    def __init__(
        self,
        user_id: int | str,
        room: TelegramRoom,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
    ) -> None:
        super().__init__(user_id, first_name, last_name, username)
        self._room = room

    @property
    def room(self) -> TelegramRoom:
        return self._room

    def __repr__(self) -> str:
        return f"<TelegramRoomOccupant {self._id} in {self._room.id}>"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TelegramRoomOccupant)
            and other._id == self._id
            and other._room == self._room
        )

    def __hash__(self) -> int:
        return hash(("occupant", self._id, self._room.id))


def write_json_atomically(path: Path, data: Any) -> None:
    """Write JSON so that a crash leaves either the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path, default: Any) -> Any:
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return default
    except (OSError, ValueError):
        log.warning("Ignoring unreadable %s", path.name, exc_info=True)
        return default


class PeopleDirectory:
    """Names of the people the bot has seen, kept in a JSON file across restarts.

    Telegram has no "look up a user" method for bots, so ``@username`` and display names
    can only be resolved for people who have written to the bot or pressed its buttons.
    """

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._lock = threading.Lock()
        raw = read_json(path, {}) if path else {}
        self._people: dict[int, dict[str, str | None]] = {
            int(k): v for k, v in raw.items() if isinstance(v, dict)
        }

    def remember(
        self,
        user_id: int,
        first_name: str | None,
        last_name: str | None,
        username: str | None,
    ) -> None:
        entry = {"first_name": first_name, "last_name": last_name, "username": username}
        with self._lock:
            if self._people.get(user_id) == entry:
                return
            self._people[user_id] = entry
            if self._path:
                try:
                    write_json_atomically(self._path, {str(k): v for k, v in self._people.items()})
                except OSError:
                    log.warning("Could not save the people directory", exc_info=True)

    def person(self, user_id: int) -> TelegramPerson:
        with self._lock:
            entry = self._people.get(user_id, {})
        return TelegramPerson(
            user_id, entry.get("first_name"), entry.get("last_name"), entry.get("username")
        )

    def by_username(self, username: str) -> TelegramPerson | None:
        wanted = username.lstrip("@").lower()
        with self._lock:
            for user_id, entry in self._people.items():
                if (entry.get("username") or "").lower() == wanted:
                    return self.person_unlocked(user_id, entry)
        return None

    @staticmethod
    def person_unlocked(user_id: int, entry: dict[str, str | None]) -> TelegramPerson:
        return TelegramPerson(
            user_id, entry.get("first_name"), entry.get("last_name"), entry.get("username")
        )
