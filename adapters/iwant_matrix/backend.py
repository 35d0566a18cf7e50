"""IWantMatrix: an errbot backend for Matrix on matrix-nio (with end-to-end encryption), and
iwant's ``ChatPlatform``.

Threads: errbot's ``serve_forever`` calls :meth:`serve_once` on the main thread, which runs
an asyncio loop: the /sync long poll, encryption keys, joins, and every request to the
homeserver. What people write goes to errbot's blocking ``callback_message`` on a
one-thread executor, in order; errbot runs the commands in its own pool. ``send_message``
and the contract's sends are called from errbot's threads and the plugin's pollers, and run
their coroutine on the loop, waiting for it.

Restarts: the sync token is saved in ``BOT_DATA_DIR`` after every sync whose events were
handed to errbot, so a new process continues from there (nothing answered twice, nothing
missed); its first sync asks for the full state of every room (matrix-nio keeps rooms in
memory). Device keys and Megolm sessions are in matrix-nio's SQLite store beside it.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import io
import json
import logging
import os
import sys
import threading
import time
import urllib.parse
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import nio  # type: ignore[import-untyped]  # matrix-nio ships no type information
from errbot.backends.base import ONLINE, Identifier, Message, Room, RoomOccupant
from errbot.core import ErrBot
from iwant_platform import redaction
from iwant_platform.contract import (
    Budget,
    Button,
    Capabilities,
    LocalId,
    Outgoing,
    RetryLater,
    SendError,
    Spend,
    Undeliverable,
)
from iwant_platform.errbot_backends import ErrbotChat
from iwant_platform.shutdown import RecentKeys, close_loop, stop_on_signals

from .ids import (
    MatrixPerson,
    MatrixRoom,
    MatrixRoomOccupant,
    localpart,
    parse_room,
    parse_user,
)
from .store import Session, SyncToken
from .text import (
    MATRIX_TOKEN,
    mentioned,
    mentions,
    reaction_command,
    retry_after,
    split_text,
    strip_reply_fallback,
    visible_name,
)

log = logging.getLogger(__name__)

#: The most people (besides the bot) a group's own room is made for; within Synapse's
#: default ``rc_invites.per_issuer`` burst (10), so one group's invites go out at once.
GROUP_MAX = 8
#: How long a person whose invites refuse the bot counts as unreachable before trying again.
BLOCKED_SECONDS = 600.0
#: Reactions act as buttons (✅/❌) only on messages of the bot this recent in memory; older
#: ones are fetched from the homeserver.
SENT_REMEMBERED = 4096

#: The sync filter: enough timeline per room that a gap is rare (a gap is filled from
#: /messages), no presence.
SYNC_FILTER: dict[str, Any] = {
    "room": {"timeline": {"limit": 50}, "state": {"lazy_load_members": False}},
    "presence": {"not_types": ["*"]},
}

ENCRYPTION = {
    "type": "m.room.encryption",
    "state_key": "",
    "content": {"algorithm": "megolm.v1.aes-sha2"},
}


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, "") or default)
    except ValueError:
        return default


class MatrixSendError(SendError):
    """A send that failed and may work later (network, 5xx, a homeserver restart)."""


def _status(resp: Any) -> int | None:
    transport = getattr(resp, "transport_response", None)
    status = getattr(transport, "status", None)
    return int(status) if isinstance(status, int) else None


def _wait_of(resp: Any) -> float:
    transport = getattr(resp, "transport_response", None)
    headers = getattr(transport, "headers", None)
    return retry_after(headers, getattr(resp, "retry_after_ms", None))


def _fingerprint(key: str) -> str:
    """A device's Ed25519 key as Element shows it for manual verification: groups of 4."""
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


def _left(event: Any, me: str) -> bool:
    """Someone other than the bot left the room (or was banned or kicked)."""
    return (
        isinstance(event, nio.RoomMemberEvent)
        and event.state_key != me
        and event.membership in ("leave", "ban")
    )


def _limited(resp: Any) -> bool:
    return _status(resp) == 429 or getattr(resp, "status_code", None) == "M_LIMIT_EXCEEDED"


def _refused(resp: Any) -> bool:
    """403 or 404: never going to work (not in the room, blocked, no such user or room)."""
    return _status(resp) in (403, 404) or getattr(resp, "status_code", None) in (
        "M_FORBIDDEN",
        "M_NOT_FOUND",
        "M_INVITE_BLOCKED",
        "M_UNKNOWN_USER",
    )


class IWantMatrixBackend(ErrBot, ErrbotChat):  # type: ignore[misc]  # errbot is untyped
    """errbot backend for Matrix (direct chats and rooms, encrypted or not), and iwant's
    ``ChatPlatform``."""

    platform = "matrix"
    # No buttons on Matrix: the plugin writes each command out, and a ✅/❌ reaction on the
    # bot's message runs the command written there (see reaction_command).
    capabilities = Capabilities(
        buttons=False,
        group_conversations=True,
        group_max=GROUP_MAX,
        threads=True,
        files=True,
        mentions=True,
    )
    # Synapse's default rate limits for one user, bursts kept below them. A homeserver admin
    # may lift the bot's (override_ratelimit); then raise these in plugins.cfg [pacing].
    budgets = (
        Budget(
            "message",
            "12/min burst 8",
            most_sends=2,
            about="every event the bot sends (Synapse rc_message: 0.2/s burst 10)",
        ),
        Budget(
            "room_creation",
            "0.9/min burst 8",
            about="rooms the bot creates (rc_room_creation: 0.016/s burst 10)",
        ),
        Budget(
            "invites",
            "15/min burst 8",
            most_sends=GROUP_MAX,
            about="invites the bot sends (rc_invites.per_issuer: 0.3/s burst 10)",
        ),
        Budget(
            "invited",
            "0.15/min burst 4",
            about="invites one person receives (rc_invites.per_user: 0.003/s burst 5)",
        ),
    )
    paused_by_rate_limit = "message"
    secret_patterns = (MATRIX_TOKEN,)
    secret_variables = ("MATRIX_ACCESS_TOKEN", "MATRIX_PASSWORD")
    command = ""  # errbot's prefix: !iwant

    #: 429s waited out inside one reply before it gives up (a reply has no queue behind it).
    max_limit_retries: int = 3
    #: a 429 asking for a longer wait than this is not waited out inside a send.
    max_limit_wait: float = 30.0
    #: how long a reply keeps trying while the homeserver cannot be reached (a restart).
    reply_patience: float = _env_float("MATRIX_REPLY_PATIENCE", 60.0)
    #: overall bound on one send.
    send_timeout: float = 150.0
    #: /sync long-poll timeout, in seconds.
    poll_timeout: float = _env_float("MATRIX_POLL_TIMEOUT", 30.0)

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        identity = getattr(config, "BOT_IDENTITY", None) or {}
        self._homeserver = str(identity.get("homeserver") or "").rstrip("/")
        self._user_id = str(identity.get("user_id") or "")
        self._token = str(identity.get("access_token") or "")
        self._password = str(identity.get("password") or "")
        redaction.install(
            self.secret_patterns,
            self.secret_variables,
            values=tuple(v for v in (self._token, self._password) if v),
        )
        problems = [
            what
            for what, missing in (
                ("MATRIX_HOMESERVER (https://matrix.example.org)", not self._homeserver),
                ("MATRIX_USER_ID (@iwant:example.org)", not parse_user(self._user_id, "")),
                ("MATRIX_ACCESS_TOKEN or MATRIX_PASSWORD", not (self._token or self._password)),
            )
            if missing
        ]
        if problems:
            log.critical("Matrix settings missing: %s.", ", ".join(problems))
            sys.exit(1)
        self._server = self._user_id.split(":", 1)[1]
        for name in ("aiohttp.access", "nio.responses", "nio.rooms"):
            logging.getLogger(name).setLevel(logging.WARNING)

        data_dir = Path(getattr(config, "BOT_DATA_DIR", ".") or ".")
        key = localpart(self._user_id).replace("/", "_")
        self._store_dir = data_dir / "matrix-store"
        self._store_dir.mkdir(parents=True, exist_ok=True)
        self._sync_token = SyncToken(data_dir / f"matrix-{key}-sync.json")
        self._session = Session(data_dir / f"matrix-{key}-session.json")

        self.bot_identifier = MatrixPerson(self._user_id, localpart(self._user_id))
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._stop_event: asyncio.Event | None = None
        self._synced: asyncio.Condition | None = None
        self._keys_lock: asyncio.Lock | None = None
        # m.direct is saved whole: one save at a time, each of the newest content.
        self._m_direct_lock: asyncio.Lock | None = None
        self._stopping = threading.Event()
        self._shut_down = False
        # Events handled in this run: one seen again (a re-read sync, a gap filled twice) is
        # not handed to errbot twice. A new process relies on the saved sync token, and on
        # the engine's event ids for the rest.
        self._seen = RecentKeys()
        self._incoming = ThreadPoolExecutor(max_workers=1, thread_name_prefix="matrix-in")
        self._lock = threading.Lock()
        # Direct chats: room id -> the person; the person's newest direct chat with the bot.
        self._dm_rooms: dict[str, str] = {}
        self._dm_of: dict[str, str] = {}
        self._m_direct: dict[str, list[str]] = {}
        self._blocked: dict[str, float] = {}
        # Display names seen, for m.mentions: user id -> name.
        self._names: dict[str, str] = {}
        # What the bot said: event id -> text (reactions read their commands from it).
        self._sent: collections.OrderedDict[str, str] = collections.OrderedDict()
        # Encrypted events whose keys had not arrived yet: tried again after every sync.
        self._undecrypted: list[tuple[str, Any, float]] = []
        self._joining: set[str] = set()
        self._created: set[str] = set()  # rooms this process made (never tidied away)
        self._group_rooms: dict[frozenset[str], str] = {}  # a group's members -> its room

    # ------------------------------------------------------------------ errbot's side

    @property
    def mode(self) -> str:
        return "matrix"

    def build_identifier(self, txtrep: str) -> Identifier:
        """``@ann:example.org`` (or ``@ann`` on the bot's server) -> a person;
        ``!room:example.org`` -> a room."""
        text = str(txtrep).strip()
        user = parse_user(text, self._server)
        if user:
            return MatrixPerson(user, self._names.get(user, ""))
        room = parse_room(text)
        if room:
            return MatrixRoom(room, self._room_name(room))
        raise ValueError(f"not a Matrix user id or room id: {text!r} (@name:server, !id:server)")

    def build_reply(
        self, msg: Message, text: str = "", private: bool = False, threaded: bool = False
    ) -> Message:
        reply = self.build_message(text or "")
        reply.frm = self.bot_identifier
        frm = msg.frm
        if private or not isinstance(frm, RoomOccupant):
            reply.to = MatrixPerson(str(frm.person), str(getattr(frm, "fullname", "")))
            if not private and msg.extras.get("room_id"):
                reply.extras["room_id"] = msg.extras["room_id"]  # the direct chat it came in
        else:
            reply.to = frm.room
            reply.extras["room_id"] = str(frm.room)
            reply.extras["mention"] = str(frm.person)  # the asker, named and notified
            if msg.extras.get("thread_root"):
                reply.extras["thread_root"] = msg.extras["thread_root"]
        return reply

    def prefix_groupchat_reply(self, message: Message, identifier: Identifier) -> None:
        super().prefix_groupchat_reply(message, identifier)

    def is_from_self(self, msg: Message) -> bool:
        return str(getattr(msg.frm, "person", "")) == self._user_id

    def change_presence(self, status: str = ONLINE, message: str = "") -> None:
        pass  # presence is off on most homeservers; nothing to show

    def query_room(self, room: str) -> Room:
        found = parse_room(room)
        if not found:
            raise ValueError(f"not a Matrix room id: {room!r}")
        return MatrixRoom(found, self._room_name(found))

    def rooms(self) -> list[Room]:
        client = self._client
        if client is None:
            return []
        return [
            MatrixRoom(room_id, room.display_name)
            for room_id, room in list(client.rooms.items())
            if room_id not in self._dm_rooms
        ]

    def shutdown(self) -> None:
        if self._shut_down:
            return
        self._shut_down = True
        self.stop()
        super().shutdown()
        self._incoming.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ running

    def stop(self) -> None:
        """Ask the sync loop to finish (thread-safe, idempotent)."""
        self._stopping.set()
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    def serve_once(self) -> bool:
        """Log in, activate the plugins after the first sync, sync until stopped. True when
        asked to stop (errbot shuts down), False when the homeserver could not be reached
        (errbot tries again with its backoff)."""
        if self._stopping.is_set():
            return True
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._loop_thread = threading.get_ident()
        try:
            return loop.run_until_complete(self._serve())
        except KeyboardInterrupt:
            return True
        finally:
            self._loop = None
            close_loop(loop)

    async def _serve(self) -> bool:
        loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        self._synced = asyncio.Condition()
        self._keys_lock = asyncio.Lock()
        self._m_direct_lock = asyncio.Lock()
        if self._stopping.is_set():
            return True
        signals = stop_on_signals(loop, self.stop)
        client = nio.AsyncClient(
            self._homeserver,
            self._user_id,
            store_path=str(self._store_dir),
            config=nio.AsyncClientConfig(
                encryption_enabled=True,
                store_sync_tokens=False,  # ours is saved after the events are handed over
                max_limit_exceeded=0,  # a 429 comes back to us: paced, and shared
                max_timeouts=0,  # so does an unreachable homeserver
                request_timeout=60,
            ),
        )
        try:
            try:
                if not await self._log_in(client):
                    return False
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                log.warning("Could not reach the Matrix homeserver %s: %s", self._homeserver, exc)
                return False
            self._client = client
            self.reset_reconnection_count()
            keys = client.olm.account.identity_keys if client.olm else {}
            log.info(
                "Connected to Matrix as %s (device %s, fingerprint %s)",
                client.user_id,
                client.device_id,
                _fingerprint(str(keys.get("ed25519", "?"))),
            )
            await self._sync_loop(client)
            return True
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            self._client = None
            with contextlib.suppress(Exception):
                await client.close()

    async def _log_in(self, client: Any) -> bool:
        """An access token (whoami names its device) or a password (a saved session's device
        first). Exits on credentials the homeserver rejects; False if it could not say."""
        token, device = self._token, ""
        if not token:
            saved = self._session.load(self._user_id)
            if saved:
                device, token = saved
        if token:
            client.access_token = token
            who = await client.whoami()
            if isinstance(who, nio.WhoamiResponse):
                if who.user_id != self._user_id:
                    log.critical(
                        "The access token is %s's, not MATRIX_USER_ID %s.",
                        who.user_id,
                        self._user_id,
                    )
                    raise SystemExit(2)
                if not who.device_id:
                    log.critical("The access token has no device: encryption needs one.")
                    raise SystemExit(2)
                client.restore_login(self._user_id, who.device_id, token)
                return True
            if getattr(who, "status_code", None) != "M_UNKNOWN_TOKEN" or self._token:
                if getattr(who, "status_code", None) == "M_UNKNOWN_TOKEN":
                    log.critical("The homeserver rejected MATRIX_ACCESS_TOKEN (M_UNKNOWN_TOKEN).")
                    raise SystemExit(2)
                log.warning("whoami failed: %s", who)
                return False
            client.access_token = ""  # the saved session is gone: log in again, same device
        client.device_id = device or None
        resp = await client.login(self._password, device_name="iwant bot")
        if not isinstance(resp, nio.LoginResponse):
            if getattr(resp, "status_code", None) == "M_FORBIDDEN":
                log.critical("The homeserver rejected MATRIX_PASSWORD for %s.", self._user_id)
                raise SystemExit(2)
            log.warning("Matrix login failed: %s", resp)
            return False
        self._session.save(self._user_id, resp.device_id, resp.access_token)
        redaction.install(self.secret_patterns, self.secret_variables, values=(resp.access_token,))
        return True

    async def _next_sync(self, client: Any, since: str | None, first: bool) -> Any:
        """One /sync, or None when asked to stop while it waited."""
        assert self._stop_event is not None
        timeout = 0 if first else int(self.poll_timeout * 1000)
        syncing = asyncio.ensure_future(
            client.sync(timeout=timeout, sync_filter=SYNC_FILTER, since=since, full_state=first)
        )
        stopping = asyncio.ensure_future(self._stop_event.wait())
        try:
            done, _ = await asyncio.wait({syncing, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if syncing not in done:
            syncing.cancel()
            with contextlib.suppress(BaseException):
                await syncing
            return None
        return syncing.result()

    async def _pause(self, seconds: float) -> None:
        assert self._stop_event is not None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), seconds)

    async def _sync_loop(self, client: Any) -> None:
        loop = asyncio.get_running_loop()
        since = self._sync_token.load(self._user_id)
        fresh = since is None  # never synced: what is in the rooms now is history
        first, activated, backoff = True, False, 0.5
        try:
            while not self._stopping.is_set():
                try:
                    resp = await self._next_sync(client, since, first)
                except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                    log.warning("Matrix sync failed (%s); again in %.1f s", exc, backoff)
                    await self._pause(backoff)
                    backoff = min(backoff * 2, 30.0)
                    continue
                if resp is None:
                    break
                if not isinstance(resp, nio.SyncResponse):
                    if getattr(resp, "status_code", None) == "M_UNKNOWN_TOKEN":
                        log.critical("The homeserver logged the bot out (M_UNKNOWN_TOKEN).")
                        raise SystemExit(2)
                    wait = _wait_of(resp) if _limited(resp) else backoff
                    log.warning("Matrix sync refused (%s); again in %.1f s", resp, wait)
                    await self._pause(wait)
                    backoff = min(backoff * 2, 30.0)
                    continue
                backoff = 0.5
                await self._maintain_keys(client)
                if not activated:
                    # The plugins may send as they activate, which needs this loop running.
                    await loop.run_in_executor(self._incoming, self.connect_callback)
                    activated = True
                    log.info("Matrix: the plugins are active; syncing as %s", self._user_id)
                await self._handle_sync(client, resp, history=fresh, since=since)
                since = resp.next_batch
                self._sync_token.save(self._user_id, since)
                first = fresh = False
                assert self._synced is not None
                async with self._synced:
                    self._synced.notify_all()
        finally:
            if activated:
                await loop.run_in_executor(self._incoming, self.disconnect_callback)

    async def _maintain_keys(self, client: Any) -> None:
        """Upload our one-time keys, learn others' devices (trusting each on first sight),
        open Olm sessions, send queued to-device messages. Failures wait for the next sync."""
        assert self._keys_lock is not None
        async with self._keys_lock:
            try:
                if client.should_upload_keys:
                    await client.keys_upload()
                if client.should_query_keys:
                    await client.keys_query()
                if client.should_claim_keys:
                    await client.keys_claim(client.get_users_for_key_claiming())
                self._trust_new_devices(client)
                await client.send_to_device_messages()
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                log.warning("Matrix key maintenance failed: %s", exc)
            except nio.LocalProtocolError as exc:
                log.debug("key maintenance skipped: %s", exc)

    def _trust_new_devices(self, client: Any) -> None:
        """Trust on first use: a device the bot has not seen before is marked verified, so
        it receives the keys of what the bot says. A device whose keys change later is not
        trusted anew (matrix-nio refuses the changed keys)."""
        for device in client.device_store:
            if not device.verified and not device.blacklisted and not device.deleted:
                client.verify_device(device)
                log.info("Trusting %s's device %s on first use", device.user_id, device.id)

    # ------------------------------------------------------------------ incoming

    async def _handle_sync(self, client: Any, resp: Any, history: bool, since: str | None) -> None:
        for event in resp.account_data_events:
            if getattr(event, "type", None) == "m.direct":
                self._read_m_direct(event.content)
        for room_id, info in resp.rooms.invite.items():
            self._on_invite(client, room_id, info)
        for room_id in resp.rooms.leave:
            self._forget_room(room_id)
        for room_id, info in resp.rooms.join.items():
            room = client.rooms.get(room_id)
            if room is None:
                continue
            self._remember_names(room)
            events = list(info.timeline.events)
            if history:
                continue  # the first sync ever: all of it is from before the bot was here
            joined_at = next(
                (
                    index
                    for index, event in enumerate(events)
                    if isinstance(event, nio.RoomMemberEvent)
                    and event.state_key == self._user_id
                    and event.membership == "join"
                    and event.prev_membership != "join"
                ),
                None,
            )
            if joined_at is not None:
                events = events[joined_at + 1 :]  # said before the bot joined: not for it
            elif info.timeline.limited and since and info.timeline.prev_batch:
                gap = await self._fill_gap(client, room_id, info.timeline.prev_batch, since)
                events = gap + events
            for event in events:
                try:
                    await self._on_event(client, room, event)
                except Exception:  # one odd event must not stop the bot reading the rest
                    log.exception("handling %s in %s failed", event.event_id, room_id)
            if any(_left(event, self._user_id) for event in info.timeline.events):
                self._leave_if_alone(client, room)
        await self._retry_undecrypted(client)

    async def _fill_gap(self, client: Any, room_id: str, prev_batch: str, since: str) -> list[Any]:
        """The events a limited timeline left out since the last sync (bounded: 5 pages)."""
        found: list[Any] = []
        start = prev_batch
        for _ in range(5):
            resp = await client.room_messages(
                room_id, start=start, end=since, direction=nio.MessageDirection.back, limit=100
            )
            if not isinstance(resp, nio.RoomMessagesResponse) or not resp.chunk:
                break
            found.extend(resp.chunk)
            if not resp.end or resp.end == start:
                break
            start = resp.end
        found.reverse()
        log.info("filled a gap of %d events in %s", len(found), room_id)
        return found

    def _remember_names(self, room: Any) -> None:
        for user_id, user in list(room.users.items()):
            name = getattr(user, "display_name", None)
            if name:
                self._names[user_id] = str(name)

    def _room_name(self, room_id: str) -> str:
        client = self._client
        room = client.rooms.get(room_id) if client is not None else None
        return str(room.display_name) if room is not None else ""

    def _name_in(self, room: Any, user_id: str) -> str:
        user = room.users.get(user_id) if room is not None else None
        name = getattr(user, "display_name", None) if user is not None else None
        return str(name or self._names.get(user_id) or localpart(user_id))

    # -- direct chats

    def _read_m_direct(self, content: Any) -> None:
        """The bot's ``m.direct`` account data: which rooms are its direct chats, with whom.
        A direct chat known here but missing there (an echo of an older save, or a save
        that failed) is kept, and saved again: a restarted bot knows its direct chats from
        ``m.direct`` alone."""
        if not isinstance(content, dict):
            return
        with self._lock:
            self._m_direct = {
                str(user): [str(r) for r in rooms]
                for user, rooms in content.items()
                if isinstance(rooms, list)
            }
            for user, rooms in self._m_direct.items():
                for room_id in rooms:
                    self._dm_rooms.setdefault(room_id, user)
                    self._dm_of.setdefault(user, room_id)
            missing = False
            for room_id, user in self._dm_rooms.items():
                rooms = self._m_direct.setdefault(user, [])
                if room_id not in rooms:
                    rooms.append(room_id)
                    missing = True
        if missing:
            asyncio.ensure_future(self._put_m_direct())

    def _mark_direct(self, room_id: str, user_id: str) -> None:
        with self._lock:
            self._dm_rooms[room_id] = user_id
            self._dm_of[user_id] = room_id
            rooms = self._m_direct.setdefault(user_id, [])
            if room_id in rooms:
                return
            rooms.append(room_id)
        asyncio.ensure_future(self._put_m_direct())

    async def _put_m_direct(self) -> None:
        """Save ``m.direct`` (clients show these rooms as direct chats; a restarted bot reads
        it back). The whole of it is written each time, so saves go one at a time, each
        taking the newest content as it starts: two saves in flight at once (two direct
        chats joined together) could land out of order, the older content last, and the
        restarted bot would take a direct chat for a room."""
        client = self._client
        if client is None or self._m_direct_lock is None:
            return
        user = urllib.parse.quote(self._user_id, safe="")
        async with self._m_direct_lock:
            with self._lock:
                content = {u: list(r) for u, r in self._m_direct.items() if r}
            try:
                resp = await client.send(
                    "PUT",
                    f"/_matrix/client/v3/user/{user}/account_data/m.direct",
                    json.dumps(content),
                    {
                        "Authorization": f"Bearer {client.access_token}",
                        "Content-Type": "application/json",
                    },
                )
                if resp.status >= 300:
                    log.warning("saving m.direct failed: HTTP %s", resp.status)
                resp.release()
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                log.warning("saving m.direct failed: %s", exc)

    def _forget_room(self, room_id: str) -> None:
        with self._lock:
            user = self._dm_rooms.pop(room_id, None)
            if user is None:
                return
            if self._dm_of.get(user) == room_id:
                del self._dm_of[user]
                others = [r for r, u in self._dm_rooms.items() if u == user]
                if others:
                    self._dm_of[user] = others[-1]
            rooms = self._m_direct.get(user, [])
            if room_id not in rooms:
                return
            rooms.remove(room_id)
        asyncio.ensure_future(self._put_m_direct())

    def _on_invite(self, client: Any, room_id: str, info: Any) -> None:
        """Accept every invite; one that says ``is_direct`` becomes a direct chat."""
        inviter, direct = "", False
        for event in getattr(info, "invite_state", []) or []:
            if getattr(event, "state_key", None) == self._user_id and (
                getattr(event, "membership", None) == "invite"
            ):
                inviter = str(getattr(event, "sender", ""))
                content = getattr(event, "content", None) or {}
                direct = bool(content.get("is_direct")) if isinstance(content, dict) else False
        if room_id in self._joining:
            return
        self._joining.add(room_id)
        asyncio.ensure_future(self._join(client, room_id, inviter if direct else ""))

    async def _join(self, client: Any, room_id: str, direct_with: str) -> None:
        try:
            for _ in range(10):
                try:
                    resp = await client.join(room_id)
                except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                    log.warning("joining %s failed: %s", room_id, exc)
                    await self._pause(2.0)
                    continue
                if isinstance(resp, nio.JoinResponse):
                    if direct_with:
                        self._mark_direct(room_id, direct_with)
                    log.info(
                        "Joined %s%s", room_id, f" (direct with {direct_with})" * bool(direct_with)
                    )
                    return
                if _limited(resp):
                    self._report_limit(_wait_of(resp))
                    await self._pause(_wait_of(resp))
                    continue
                log.warning("could not join %s: %s", room_id, resp)
                return
        finally:
            self._joining.discard(room_id)

    def _leave_if_alone(self, client: Any, room: Any) -> None:
        """A direct chat the person left (or a room everyone left): the bot leaves too."""
        others = [u for u in room.users if u != self._user_id]
        person = self._dm_rooms.get(room.room_id)
        gone = not others or (person is not None and person not in room.users)
        if gone and self._user_id in room.users:
            self._forget_room(room.room_id)
            asyncio.ensure_future(self._leave(client, room.room_id))

    async def _tidy_after_refusal(self, client: Any) -> None:
        """A createRoom whose invite was refused made the room all the same, with the bot
        alone in it (Synapse does not say which): once the sync has shown it, leave it."""
        assert self._synced is not None
        for _ in range(2):
            async with self._synced:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._synced.wait(), self.poll_timeout + 5)
        for room_id, room in list(client.rooms.items()):
            if room_id in self._created or list(room.users) != [self._user_id]:
                continue
            log.info("leaving %s: made for a refused invite", room_id)
            self._forget_room(room_id)
            await self._leave(client, room_id)

    async def _leave(self, client: Any, room_id: str) -> None:
        try:
            await client.room_leave(room_id)
            await client.room_forget(room_id)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.warning("leaving %s failed: %s", room_id, exc)

    # -- events

    async def _on_event(self, client: Any, room: Any, event: Any) -> None:
        sender = str(getattr(event, "sender", ""))
        if not sender or sender == self._user_id:
            return
        if isinstance(event, nio.MegolmEvent):  # its key has not arrived (yet)
            self._undecrypted.append((room.room_id, event, time.monotonic()))
            with contextlib.suppress(Exception):
                await client.request_room_key(event)
            return
        if not self._seen.first((room.room_id, event.event_id)):
            return
        if isinstance(event, nio.RoomMessageText):
            await self._on_text(room, event)
        elif isinstance(event, nio.ReactionEvent):
            await self._on_reaction(client, room, event)

    async def _retry_undecrypted(self, client: Any) -> None:
        waiting, self._undecrypted = self._undecrypted, []
        for room_id, event, since in waiting:
            room = client.rooms.get(room_id)
            if room is None:
                continue
            try:
                decrypted = client.decrypt_event(event)
            except Exception:  # still no key: keep it for a while
                if time.monotonic() - since < 600:
                    self._undecrypted.append((room_id, event, since))
                else:
                    log.warning("gave up decrypting %s in %s", event.event_id, room_id)
                continue
            decrypted.room_id = room_id
            await self._on_event(client, room, decrypted)

    async def _on_text(self, room: Any, event: Any) -> None:
        content = event.source.get("content") or {}
        relates = content.get("m.relates_to") or {}
        if relates.get("rel_type") == "m.replace" or "m.new_content" in content:
            return  # an edit: the original was the command
        text = strip_reply_fallback(str(event.body or ""))
        for name in (self._user_id, self.bot_identifier.fullname, self._names.get(self._user_id)):
            if name and text.startswith(f"{name}: "):  # "iwant: !iwant coffee" (a pill)
                text = text[len(name) + 2 :]
                break
        extras: dict[str, Any] = {}
        if relates.get("rel_type") == "m.thread" and relates.get("event_id"):
            extras["thread_root"] = str(relates["event_id"])
        await self._to_errbot(room, event.sender, text, event.event_id, extras)

    async def _on_reaction(self, client: Any, room: Any, event: Any) -> None:
        said = await self._bot_said(client, room.room_id, event.reacts_to)
        if said is None:
            return
        command = reaction_command(said, event.key, str(self.bot_config.BOT_PREFIX))
        if command is None:
            return
        log.info("%s reacted %s: runs %r", event.sender, event.key, command)
        text = f"{self.bot_config.BOT_PREFIX}{command}"
        await self._to_errbot(room, event.sender, text, event.event_id, {})

    async def _bot_said(self, client: Any, room_id: str, event_id: str) -> str | None:
        """The text of the bot's message ``event_id``, or None if it is not the bot's."""
        with self._lock:
            if event_id in self._sent:
                return self._sent[event_id]
        resp = await client.room_get_event(room_id, event_id)
        if not isinstance(resp, nio.RoomGetEventResponse):
            return None
        event = resp.event
        if isinstance(event, nio.MegolmEvent):
            try:
                event = client.decrypt_event(event)
            except Exception:
                return None
        if getattr(event, "sender", None) != self._user_id:
            return None
        body = getattr(event, "body", None)
        return str(body) if body else None

    async def _to_errbot(
        self, room: Any, sender: str, text: str, event_id: str, extras: dict[str, Any]
    ) -> None:
        name = self._name_in(room, sender)
        msg = self.build_message(text)
        if room.room_id in self._dm_rooms:
            msg.frm, msg.to = MatrixPerson(sender, name), self.bot_identifier
            with self._lock:
                self._dm_of[sender] = room.room_id  # where they last wrote to the bot
        else:
            where = MatrixRoom(room.room_id, room.display_name)
            msg.frm, msg.to = MatrixRoomOccupant(sender, name, where), where
        msg.extras.update(extras)
        msg.extras["room_id"] = room.room_id
        msg.extras["event_id"] = f"{room.room_id}/{event_id}"
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._incoming, self.callback_message, msg)

    # ------------------------------------------------------------------ iwant's contract

    def display_name(self, identifier: Any) -> str:
        return str(getattr(identifier, "fullname", "") or localpart(str(identifier.person)))

    def bot_key(self) -> str:
        return self._user_id

    def send_text(self, to: LocalId, text: str, buttons: Sequence[Button] = ()) -> None:
        message = self.build_message(text)
        message.frm, message.to = self.bot_identifier, self.build_identifier(to)
        message.extras["queued"] = True  # a notification: a 429 goes back to the engine
        self.send_message(message)  # no buttons on Matrix: the plugin wrote the commands

    def reply(self, message: Any, text: str, buttons: Sequence[Button] = ()) -> None:
        self.send_message(self.build_reply(message, text))

    def spends(self, out: Outgoing) -> Sequence[Spend]:
        if out.members is None:
            spent = [Spend("message")]
            known: dict[str, str] = getattr(self, "_dm_of", {})
            if out.to.startswith("@") and out.to not in known:
                # No direct chat yet: the bot creates one and invites the person.
                spent += [Spend("room_creation"), Spend("invites"), Spend("invited", out.to)]
            return spent
        if out.room:
            return (Spend("message", sends=2),)  # a message in the room, the group in its thread
        if len(out.members) > GROUP_MAX:
            return ()  # formed in direct chats and too big for a room: nothing is sent
        made: dict[frozenset[str], str] = getattr(self, "_group_rooms", {})
        if frozenset(out.members) in made:
            return (Spend("message"),)  # its room is there already (an earlier attempt)
        return (
            Spend("room_creation"),
            Spend("invites", sends=len(out.members)),
            *(Spend("invited", m) for m in out.members),
            Spend("message"),
        )

    def open_group(self, members: Sequence[LocalId], text: str, room: LocalId | None) -> None:
        """A group formed in a room is announced in a thread of that room, every member
        mentioned; one formed in direct chats gets a room of its own with every member
        invited (up to GROUP_MAX; a bigger one gets nothing: each was told alone)."""
        people = list(dict.fromkeys(m for m in members if m != self._user_id))
        if not people:
            raise Undeliverable("a group needs at least one person")
        if room:
            self._run(self._announce_in_thread(room, people, text))
        elif len(people) <= GROUP_MAX:
            self._run(self._group_room(people, text))

    def send_file(self, to: LocalId, filename: str, content: bytes, caption: str) -> None:
        person = parse_user(to, self._server)
        if person is None:
            raise Undeliverable(f"files go to a person, not {to!r}")
        self._run(self._send_file(person, filename, content, caption))

    # ------------------------------------------------------------------ outgoing

    def send_message(self, msg: Message) -> None:
        """Send ``msg`` (in parts if long), or raise ``Undeliverable``, ``RetryLater`` or
        another ``SendError``. A reply (not ``queued``) waits out a short 429 and a homeserver
        restart itself: it has no queue behind it."""
        body = msg.body or ""
        if not body.strip():
            return
        to = msg.to
        target: str
        if msg.extras.get("room_id"):
            target = str(msg.extras["room_id"])
        elif isinstance(to, MatrixRoom):
            target = str(to)
        else:
            target = str(getattr(to, "person", None) or to)
        mention = msg.extras.get("mention")
        queued = bool(msg.extras.get("queued"))
        thread = msg.extras.get("thread_root")
        self._run(
            self._send_text(
                target, body, str(thread) if thread else None, str(mention or ""), queued
            )
        )
        super().send_message(msg)

    def _run(self, coro: Coroutine[Any, Any, object]) -> Any:
        """Run ``coro`` on the backend's loop from another thread, waiting for it."""
        loop = self._loop
        if loop is None or self._client is None:
            coro.close()
            raise MatrixSendError("not connected to Matrix")
        if threading.get_ident() == self._loop_thread:
            coro.close()
            raise RuntimeError("sending cannot be called on the backend's event loop")
        try:
            future = asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError as exc:  # the loop closed under us: shutting down
            coro.close()
            raise MatrixSendError("not connected to Matrix") from exc
        try:
            return future.result(timeout=self.send_timeout)
        except SendError as err:
            log.warning("Matrix send failed: %s: %s", type(err).__name__, err)
            raise
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise MatrixSendError("timed out sending to Matrix") from None
        except concurrent.futures.CancelledError:
            raise MatrixSendError("sending cancelled (shutting down)") from None

    def _report_limit(self, seconds: float) -> None:
        """Every process of the bot pauses. The report is a database write, made off the
        loop and not awaited: the thread delivering may hold the database while it waits
        for this very send."""
        if self.rate_limit_listener is None:
            return
        asyncio.get_running_loop().run_in_executor(None, self._report, seconds)

    def _report(self, seconds: float) -> None:
        try:
            self.rate_limited(seconds)
        except Exception:
            log.exception("reporting a 429 failed")

    async def _call(self, what: str, queued: bool, request: Any) -> Any:
        """Await ``request()`` (a nio call) until it answers other than 429 or unreachable,
        as far as ``queued`` allows; the answer, or a SendError."""
        limits = 0
        deadline = time.monotonic() + (5.0 if queued else self.reply_patience)
        while True:
            try:
                resp = await request()
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                if time.monotonic() > deadline or self._stopping.is_set():
                    raise MatrixSendError(f"{what}: the homeserver is unreachable ({exc})") from exc
                await self._pause(1.0)
                continue
            except nio.LocalProtocolError as exc:
                raise MatrixSendError(f"{what}: {exc}") from exc
            if not _limited(resp):
                return resp
            wait = _wait_of(resp)
            limits += 1
            self._report_limit(wait)
            if queued or limits > self.max_limit_retries or wait > self.max_limit_wait:
                raise RetryLater(f"{what}: the homeserver said 429, retry after {wait:g} s", wait)
            log.info("%s: 429, waiting %.1f s", what, wait)
            await self._pause(wait)

    def _error(self, what: str, resp: Any) -> SendError:
        if _refused(resp):
            return Undeliverable(f"{what}: {resp}")
        return MatrixSendError(f"{what}: {resp}")

    async def _post(self, room_id: str, content: dict[str, Any], queued: bool) -> str:
        """One event in ``room_id``; its event id."""
        client = self._client
        if client is None:
            raise MatrixSendError("not connected to Matrix")
        room = client.rooms.get(room_id)
        if room is not None and room.encrypted:
            await self._maintain_keys(client)  # a new member's devices get the keys too

        async def send() -> Any:
            return await client.room_send(
                room_id, "m.room.message", content, ignore_unverified_devices=True
            )

        resp = await self._call(f"sending to {room_id}", queued, send)
        if not isinstance(resp, nio.RoomSendResponse):
            raise self._error(f"sending to {room_id}", resp)
        with self._lock:
            self._sent[resp.event_id] = str(content.get("body", ""))
            while len(self._sent) > SENT_REMEMBERED:
                self._sent.popitem(last=False)
        return str(resp.event_id)

    def _content(
        self, room_id: str, body: str, extra: Sequence[str] = (), thread: str | None = None
    ) -> dict[str, Any]:
        names = dict(self._names)
        client = self._client
        room = client.rooms.get(room_id) if client is not None else None
        if room is not None:
            for user_id in room.users:
                names[user_id] = self._name_in(room, user_id)
        names.pop(self._user_id, None)
        content: dict[str, Any] = {
            "msgtype": "m.text",
            "body": body,
            "m.mentions": mentions([*mentioned(body, names), *extra]),
        }
        if thread:
            content["m.relates_to"] = {
                "rel_type": "m.thread",
                "event_id": thread,
                "is_falling_back": True,
                "m.in_reply_to": {"event_id": thread},
            }
        return content

    async def _send_text(
        self, target: str, body: str, thread: str | None, mention: str, queued: bool
    ) -> None:
        room_id = target if target.startswith("!") else await self._direct_room(target, queued)
        extra: list[str] = []
        client = self._client
        if mention and client is not None:
            name = self._name_in(client.rooms.get(room_id), mention)
            if name not in body and mention not in body:
                body = f"{visible_name(name) or localpart(mention)}: {body}"
            extra.append(mention)
        for part in split_text(body):
            await self._post(room_id, self._content(room_id, part, extra, thread), queued)

    async def _wait_for_room(self, room_id: str, members: Sequence[str]) -> None:
        """Until the sync has shown the new room with its invited members (matrix-nio only
        encrypts for rooms it has seen), at most 15 s."""
        assert self._synced is not None
        deadline = time.monotonic() + 15
        while True:
            room = self._client.rooms.get(room_id) if self._client is not None else None
            if room is not None and all(m in room.users for m in members):
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise MatrixSendError(f"the new room {room_id} did not appear in the sync")
            async with self._synced:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._synced.wait(), left)

    async def _create_room(
        self, invite: Sequence[str], queued: bool, direct: bool, name: str = ""
    ) -> str:
        client = self._client
        if client is None:
            raise MatrixSendError("not connected to Matrix")
        preset = nio.RoomPreset.trusted_private_chat if direct else nio.RoomPreset.private_chat

        async def create() -> Any:
            return await client.room_create(
                name=name or None,
                is_direct=direct,
                preset=preset,
                invite=list(invite),
                initial_state=[ENCRYPTION],
            )

        what = f"a room with {', '.join(invite)}"
        resp = await self._call(what, queued, create)
        if not isinstance(resp, nio.RoomCreateResponse):
            if "Cannot invite so many" in str(getattr(resp, "message", "")):
                # Synapse's invite limit, said as a 400 before the room is made.
                self._report_limit(30.0)
                raise RetryLater(f"{what}: too many invites for now", 30.0)
            if _refused(resp):
                # An invite was refused (blocked invites, no such user): the room was made
                # nonetheless, with the bot alone in it.
                for person in invite:
                    self._blocked[person] = time.monotonic() + BLOCKED_SECONDS
                asyncio.ensure_future(self._tidy_after_refusal(client))
            raise self._error(what, resp)
        room_id = str(resp.room_id)
        self._created.add(room_id)
        await self._wait_for_room(room_id, invite)
        return room_id

    async def _direct_room(self, user_id: str, queued: bool) -> str:
        """The bot's direct chat with ``user_id``: the one they last wrote in, or a new one
        (``is_direct``, encrypted, in ``m.direct``)."""
        person = parse_user(user_id, self._server)
        if person is None:
            raise Undeliverable(f"not a Matrix user id: {user_id!r}")
        client = self._client
        with self._lock:
            known = self._dm_of.get(person)
            rooms = [known] if known else []
            rooms += [r for r, u in self._dm_rooms.items() if u == person and r != known]
        for room_id in rooms:
            room = client.rooms.get(room_id) if client is not None else None
            if room is not None and person in room.users and self._user_id in room.users:
                return room_id
        if self._blocked.get(person, 0) > time.monotonic():
            raise Undeliverable(f"{person} refuses the bot's invites")
        room_id = await self._create_room([person], queued, direct=True)
        self._mark_direct(room_id, person)
        return room_id

    async def _announce_in_thread(self, room_id: str, people: list[str], text: str) -> None:
        root = await self._post(
            room_id,
            self._content(room_id, f"A group of {len(people)} has formed here; see the thread."),
            queued=True,
        )
        await self._post(room_id, self._content(room_id, text, people, thread=root), queued=True)

    async def _group_room(self, people: list[str], text: str) -> None:
        """The group's own room: made once for these people (a retry after a 429 posts in
        the room the first attempt made), then the hello."""
        key = frozenset(people)
        room_id = self._group_rooms.get(key)
        room = self._client.rooms.get(room_id) if room_id else None
        if room is None or self._user_id not in room.users:
            room_id = await self._create_room(people, queued=True, direct=False, name="iwant group")
            self._group_rooms[key] = room_id
        assert room_id is not None
        await self._post(room_id, self._content(room_id, text, people), queued=True)

    async def _send_file(self, person: str, filename: str, data: bytes, caption: str) -> None:
        client = self._client
        room_id = await self._direct_room(person, queued=False)
        room = client.rooms.get(room_id)
        encrypted = bool(room is not None and room.encrypted)

        async def upload() -> Any:
            resp, keys = await client.upload(
                lambda _limits, _timeouts: io.BytesIO(data),
                content_type="application/json",
                filename=filename,
                encrypt=encrypted,
                filesize=len(data),
            )
            resp.keys = keys
            return resp

        resp = await self._call(f"uploading {filename}", False, upload)
        if not isinstance(resp, nio.UploadResponse):
            raise self._error(f"uploading {filename}", resp)
        content: dict[str, Any] = {
            "msgtype": "m.file",
            "body": caption or filename,
            "filename": filename,
            "info": {"mimetype": "application/json", "size": len(data)},
            "m.mentions": mentions([]),
        }
        if encrypted and resp.keys:
            content["file"] = {**resp.keys, "url": resp.content_uri}
        else:
            content["url"] = resp.content_uri
        await self._post(room_id, content, queued=False)
