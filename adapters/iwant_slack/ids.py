"""errbot identifiers for Slack people and channels, and the cache of what Slack says
about them.

String forms (what ``str()`` gives and ``build_identifier`` reads back):
``U0123ABC`` a person, ``C0123ABC`` a channel, ``C0123ABC/U0123ABC`` a person in a channel.
Building an identifier costs no API call; ``users.info`` is asked lazily, once per person
per hour, when a name or time zone is first needed.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

from errbot.backends.base import Person, Room, RoomError, RoomOccupant
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)

USER_ID = re.compile(r"[UWB][A-Z0-9]{2,}")
CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")
_USER_FORMS = re.compile(r"(?:slack:)?(?:<@)?(?P<id>[UWB][A-Z0-9]{2,})(?:\|[^>]*)?>?")
_CHANNEL_FORMS = re.compile(r"(?:slack:)?(?:<#)?(?P<id>[CGD][A-Z0-9]{2,})(?:\|[^>]*)?>?")


class UserDirectory:
    """Thread-safe caches of ``users.info`` answers and of DM channel ids."""

    def __init__(self, web: WebClient, ttl: float = 3600, failure_ttl: float = 60) -> None:
        self.web = web
        self.ttl = ttl
        self.failure_ttl = failure_ttl
        self._users: dict[str, tuple[float, dict[str, Any]]] = {}
        self._dms: dict[str, str] = {}
        self._lock = threading.Lock()
        self._user_locks: dict[str, threading.Lock] = {}

    def user(self, user_id: str) -> dict[str, Any]:
        """The ``user`` object of users.info (empty when Slack cannot tell us)."""
        now = time.monotonic()
        with self._lock:
            cached = self._users.get(user_id)
            if cached and cached[0] > now:
                return cached[1]
            user_lock = self._user_locks.setdefault(user_id, threading.Lock())
        with user_lock:  # one lookup per person at a time, however many threads ask
            with self._lock:
                cached = self._users.get(user_id)
                if cached and cached[0] > time.monotonic():
                    return cached[1]
            try:
                info = dict(self.web.users_info(user=user_id)["user"])
                expires = time.monotonic() + self.ttl
            except Exception as exc:
                error = exc.response.get("error") if isinstance(exc, SlackApiError) else exc
                log.warning("users.info for %s failed: %s", user_id, error)
                info, expires = {}, time.monotonic() + self.failure_ttl
            with self._lock:
                self._users[user_id] = (expires, info)
            return info

    def remember(self, user_id: str, info: dict[str, Any]) -> None:
        with self._lock:
            self._users[user_id] = (time.monotonic() + self.ttl, info)

    def cached_dm(self, user_id: str) -> str | None:
        with self._lock:
            return self._dms.get(user_id)

    def remember_dm(self, user_id: str, channel: str) -> None:
        """The person's DM channel, as a post to their user id answered."""
        with self._lock:
            self._dms[user_id] = channel

    def dm_channel(self, user_id: str) -> str:
        """The bot's direct-message channel with a person (conversations.open, cached).
        Raises SlackApiError as slack-sdk does."""
        with self._lock:
            if user_id in self._dms:
                return self._dms[user_id]
        channel = str(self.web.conversations_open(users=user_id)["channel"]["id"])
        with self._lock:
            self._dms[user_id] = channel
        return channel


# The directory that unpickled identifiers attach to (set by the backend at start).
_current_directory: UserDirectory | None = None


def set_current_directory(directory: UserDirectory) -> None:
    global _current_directory
    _current_directory = directory


def _rebuild(text: str) -> SlackPerson | SlackRoom | SlackRoomOccupant:
    return parse_identifier(text, _current_directory)


class SlackPerson(Person):  # type: ignore[misc]  # errbot is untyped
    """A Slack user; ``str()`` and ``person`` are the stable user id (``U0123ABC``)."""

    def __init__(self, user_id: str, directory: UserDirectory | None) -> None:
        if not USER_ID.fullmatch(user_id):
            raise ValueError(f"not a Slack user id: {user_id!r}")
        self._user_id = user_id
        self._directory = directory

    def _info(self) -> dict[str, Any]:
        return self._directory.user(self._user_id) if self._directory else {}

    @property
    def userid(self) -> str:
        return self._user_id

    @property
    def person(self) -> str:
        return self._user_id

    @property
    def aclattr(self) -> str:
        return self._user_id

    @property
    def client(self) -> str:
        return (self._directory.cached_dm(self._user_id) if self._directory else None) or ""

    @property
    def nick(self) -> str:
        info = self._info()
        profile = info.get("profile") or {}
        return profile.get("display_name") or info.get("name") or self._user_id

    @property
    def fullname(self) -> str:
        info = self._info()
        profile = info.get("profile") or {}
        return (
            profile.get("real_name")
            or info.get("real_name")
            or profile.get("display_name")
            or info.get("name")
            or self._user_id
        )

    @property
    def email(self) -> str:
        return (self._info().get("profile") or {}).get("email") or ""

    @property
    def timezone(self) -> str | None:
        """The IANA time zone of the person's Slack profile (``user.tz``), if Slack says."""
        return self._info().get("tz") or None

    def __str__(self) -> str:
        return self._user_id

    def __repr__(self) -> str:
        return f"<SlackPerson {self._user_id}>"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.person == self.person

    def __hash__(self) -> int:
        return hash(self._user_id)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return _rebuild, (str(self),)


class SlackRoom(Room):  # type: ignore[misc]
    """A Slack conversation the bot posts in; ``str()`` is the channel id."""

    def __init__(self, channel_id: str, directory: UserDirectory | None) -> None:
        if not CHANNEL_ID.fullmatch(channel_id):
            raise ValueError(f"not a Slack channel id: {channel_id!r}")
        self._channel_id = channel_id
        self._directory = directory
        self._info_cache: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        return self._channel_id

    channelid = id

    @property
    def aclattr(self) -> str:
        return self._channel_id

    def _info(self, refresh: bool = False) -> dict[str, Any]:
        if self._directory is None:
            return {}
        if self._info_cache is None or refresh:
            try:
                self._info_cache = dict(
                    self._directory.web.conversations_info(channel=self._channel_id)["channel"]
                )
            except SlackApiError as exc:
                log.warning("conversations.info %s: %s", self._channel_id, exc.response["error"])
                return {}
        return self._info_cache

    @property
    def name(self) -> str:
        return self._info().get("name") or self._channel_id

    def exists(self) -> bool:
        return bool(self._info(refresh=True))

    def joined(self) -> bool:
        return bool(self._info(refresh=True).get("is_member"))

    def join(self, username: str | None = None, password: str | None = None) -> None:
        if self._directory is None:
            raise RoomError("not connected")
        self._directory.web.conversations_join(channel=self._channel_id)

    def leave(self, reason: str | None = None) -> None:
        if self._directory is None:
            raise RoomError("not connected")
        self._directory.web.conversations_leave(channel=self._channel_id)

    def create(self) -> None:
        raise RoomError("iwant does not create Slack channels")

    def destroy(self) -> None:
        raise RoomError("iwant does not archive Slack channels")

    def invite(self, *args: Any) -> None:
        raise RoomError("iwant does not invite people to Slack channels")

    @property
    def topic(self) -> str | None:
        return (self._info().get("topic") or {}).get("value") or None

    @property
    def occupants(self) -> list[SlackRoomOccupant]:
        if self._directory is None:
            return []
        members = self._directory.web.conversations_members(channel=self._channel_id)["members"]
        return [SlackRoomOccupant(m, self._channel_id, self._directory) for m in members]

    def __str__(self) -> str:
        return self._channel_id

    def __repr__(self) -> str:
        return f"<SlackRoom {self._channel_id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SlackRoom) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self._channel_id)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return _rebuild, (str(self),)


class SlackRoomOccupant(SlackPerson, RoomOccupant):  # type: ignore[misc]
    """A person speaking in a channel: ``str()`` is ``C0123ABC/U0123ABC``."""

    def __init__(self, user_id: str, channel_id: str, directory: UserDirectory | None) -> None:
        super().__init__(user_id, directory)
        self._room = SlackRoom(channel_id, directory)

    @property
    def room(self) -> SlackRoom:
        return self._room

    def __str__(self) -> str:
        return f"{self._room.id}/{self.person}"

    def __repr__(self) -> str:
        return f"<SlackRoomOccupant {self}>"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SlackRoomOccupant)
            and other.person == self.person
            and other.room == self.room
        )

    def __hash__(self) -> int:
        return hash((self.person, self._room.id))


def parse_identifier(
    text: str, directory: UserDirectory | None
) -> SlackPerson | SlackRoom | SlackRoomOccupant:
    """Read any of our string forms (also ``<@U…>``, ``<#C…|name>`` and ``slack:U…``)."""
    text = text.strip()
    if "/" in text:
        channel_part, _, user_part = text.partition("/")
        channel = _CHANNEL_FORMS.fullmatch(channel_part.strip())
        user = _USER_FORMS.fullmatch(user_part.strip())
        if channel and user:
            return SlackRoomOccupant(user["id"], channel["id"], directory)
    elif user := _USER_FORMS.fullmatch(text):
        return SlackPerson(user["id"], directory)
    elif channel := _CHANNEL_FORMS.fullmatch(text):
        return SlackRoom(channel["id"], directory)
    raise ValueError(
        f"not a Slack identifier: {text!r} (expected a user id like U0123ABC, "
        "a channel id like C0123ABC, or C0123ABC/U0123ABC)"
    )
