"""errbot identifiers for Matrix people and rooms.

String forms (what ``str()`` gives and ``build_identifier`` reads back): a person is their
Matrix user id (``@ann:example.org``), a room its room id (``!abc:example.org``). A person
in a room is, to errbot, an occupant of that room; ``str()`` is still the person's user id,
so that a reply to them ``private=True`` goes to their direct chat.
"""

from __future__ import annotations

import re

from errbot.backends.base import Person, Room, RoomOccupant

#: ``@localpart:server``: the grammar of the spec's user ids (historical ones allowed).
USER_ID = re.compile(r"@[!-9;-~]+:[A-Za-z0-9.\-]+(?::\d{1,5})?")
#: ``!opaque:server`` (v1-v11 rooms) or ``!opaque`` (v12 rooms have no server part).
ROOM_ID = re.compile(r"![!-~]+")
#: What a person may type to name someone: ``@bob:server``, ``@bob`` (this server), or a
#: matrix.to link.
_MATRIX_TO = re.compile(r"https://matrix\.to/#/(?P<id>[@!][^?\s/]+)")


def parse_user(text: str, server: str) -> str | None:
    """The user id ``text`` names (``@bob`` means ``@bob:<server>``), or None."""
    text = text.strip()
    link = _MATRIX_TO.fullmatch(text)
    if link:
        text = link.group("id")
    if USER_ID.fullmatch(text):
        return text
    if re.fullmatch(r"@[a-z0-9._=\-/+]+", text) and server:
        return f"{text}:{server}"
    return None


def parse_room(text: str) -> str | None:
    text = text.strip()
    link = _MATRIX_TO.fullmatch(text)
    if link:
        text = link.group("id")
    return text if ROOM_ID.fullmatch(text) and " " not in text else None


def localpart(user_id: str) -> str:
    return user_id[1:].split(":", 1)[0]


class MatrixPerson(Person):  # type: ignore[misc]  # errbot is untyped
    """A Matrix user: ``str()`` and ``person`` are the user id, ``fullname`` the display name
    as the room they wrote in shows it."""

    def __init__(self, user_id: str, name: str = "") -> None:
        self._user_id, self._name = user_id, name

    @property
    def person(self) -> str:
        return self._user_id

    @property
    def userid(self) -> str:
        return self._user_id

    @property
    def nick(self) -> str:
        return localpart(self._user_id)

    @property
    def client(self) -> str:
        return ""

    @property
    def aclattr(self) -> str:  # BOT_ADMINS lists user ids: @ann:example.org
        return self._user_id

    @property
    def fullname(self) -> str:
        return self._name

    @property
    def email(self) -> str:
        return ""

    def __str__(self) -> str:
        return self._user_id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MatrixPerson) and self._user_id == other._user_id

    def __hash__(self) -> int:
        return hash(self._user_id)


class MatrixRoom(Room):  # type: ignore[misc]
    """A room the bot is in, by its room id."""

    def __init__(self, room_id: str, name: str = "") -> None:
        self._room_id, self._name = room_id, name

    @property
    def id(self) -> str:
        return self._room_id

    @property
    def name(self) -> str:
        return self._name or self._room_id

    @property
    def aclattr(self) -> str:
        return self._room_id

    def __str__(self) -> str:
        return self._room_id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MatrixRoom) and self._room_id == other._room_id

    def __hash__(self) -> int:
        return hash(self._room_id)


class MatrixRoomOccupant(MatrixPerson, RoomOccupant):  # type: ignore[misc]
    """A person writing in a room (not a direct chat)."""

    def __init__(self, user_id: str, name: str, room: MatrixRoom) -> None:
        super().__init__(user_id, name)
        self._room = room

    @property
    def room(self) -> MatrixRoom:
        return self._room

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, MatrixRoomOccupant)
            and self.person == other.person
            and self._room == other._room
        )

    def __hash__(self) -> int:
        return hash((self.person, str(self._room)))
