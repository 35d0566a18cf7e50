"""People on Matrix for the tests: each a matrix-nio client with encryption (as Element
would be), syncing in the background on one shared asyncio loop, and keeping everything the
bot has said to them (decrypted), room by room, in the order it arrived.

Tests call the blocking methods from their own thread; they run on the loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nio  # type: ignore[import-untyped]
from synapse_harness import Account, wait_until


class Loop:
    """An asyncio loop on a thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@dataclass
class Said:
    """One message of the bot as a person's client shows it."""

    room_id: str
    event_id: str
    text: str
    encrypted: bool
    thread: str | None = None
    content: dict[str, Any] = field(default_factory=dict)


class Person:
    """A Matrix user with a client of their own."""

    def __init__(self, loop: Loop, url: str, account: Account, store: Path, bot: str) -> None:
        self.loop, self.account, self.bot = loop, account, bot
        self.user_id = account.user_id
        store.mkdir(parents=True, exist_ok=True)
        self.client = nio.AsyncClient(
            url,
            account.user_id,
            device_id=account.device_id,
            store_path=str(store),
            config=nio.AsyncClientConfig(
                encryption_enabled=True,
                store_sync_tokens=False,
                max_timeouts=0,
                max_limit_exceeded=3,
            ),
        )

        async def restore() -> None:
            # matrix-nio binds its store's tables for the length of each call: every client
            # of this process touches its store on the loop's thread only.
            self.client.restore_login(account.user_id, account.device_id, account.access_token)

        loop.run(restore())
        self._lock = threading.Lock()
        self.said: list[Said] = []  # by the bot, wherever this person can read it
        self.direct: set[str] = set()  # the person's direct chats with the bot
        self.invited: set[str] = set()  # rooms the bot invited them to (accepted at once)
        self._undecrypted: list[tuple[str, Any]] = []
        self._task: asyncio.Future[Any] | None = None
        self._stopping = False
        self.synced = 0

    # -- syncing --------------------------------------------------------------------------

    def start(self) -> Person:
        self._task = asyncio.run_coroutine_threadsafe(self._sync_forever(), self.loop.loop)
        wait_until(lambda: self.synced > 0, 30, f"{self.user_id}'s first sync")
        return self

    def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
        with contextlib.suppress(Exception):
            self.loop.run(self.client.close(), 10)

    async def _sync_forever(self) -> None:
        first = True
        while not self._stopping:
            try:
                resp = await self.client.sync(timeout=1000, full_state=first)
            except Exception:  # Synapse restarting: try again
                await asyncio.sleep(0.2)
                continue
            if not isinstance(resp, nio.SyncResponse):
                await asyncio.sleep(0.5)
                continue
            first = False
            await self._keys()
            self._read(resp)
            self.synced += 1

    async def _keys(self) -> None:
        client = self.client
        with contextlib.suppress(Exception):
            if client.should_upload_keys:
                await client.keys_upload()
            if client.should_query_keys:
                await client.keys_query()
            if client.should_claim_keys:
                await client.keys_claim(client.get_users_for_key_claiming())
            for device in client.device_store:  # Element would ask; the tests trust
                if not device.verified and not device.blacklisted:
                    client.verify_device(device)
            await client.send_to_device_messages()

    def _read(self, resp: Any) -> None:
        for room_id, info in resp.rooms.invite.items():
            inviter, direct = "", False
            for event in info.invite_state:
                if getattr(event, "state_key", None) == self.user_id:
                    inviter = getattr(event, "sender", "")
                    direct = bool((getattr(event, "content", None) or {}).get("is_direct"))
            if inviter == self.bot and room_id not in self.invited:
                self.invited.add(room_id)
                if direct:
                    self.direct.add(room_id)
                asyncio.ensure_future(self.client.join(room_id))
        retry, self._undecrypted = self._undecrypted, []
        for room_id, event in retry:
            self._keep(room_id, event)
        for room_id, info in resp.rooms.join.items():
            for event in info.timeline.events:
                if getattr(event, "sender", None) == self.bot:
                    self._keep(room_id, event)

    def _keep(self, room_id: str, event: Any) -> None:
        encrypted = False
        if isinstance(event, nio.MegolmEvent):
            try:
                event = self.client.decrypt_event(event)
            except Exception:
                self._undecrypted.append((room_id, event))
                return
        encrypted = bool(getattr(event, "decrypted", False))
        content = (event.source or {}).get("content") or {}
        if "body" not in content:
            return
        relates = content.get("m.relates_to") or {}
        thread = relates.get("event_id") if relates.get("rel_type") == "m.thread" else None
        said = Said(room_id, event.event_id, str(content["body"]), encrypted, thread, content)
        with self._lock:
            if all(s.event_id != said.event_id for s in self.said):
                self.said.append(said)

    # -- what they see --------------------------------------------------------------------

    def seen_in(self, room_id: str) -> list[Said]:
        with self._lock:
            return [s for s in self.said if s.room_id == room_id]

    def seen_directly(self) -> list[Said]:
        with self._lock:
            return [s for s in self.said if s.room_id in self.direct]

    def wait_for(self, room_id: str | None, text: str, after: int = 0, timeout: float = 60) -> Said:
        """The first message past ``after`` in ``room_id`` (None: their direct chats) that
        contains ``text``."""

        def find() -> Said | None:
            seen = self.seen_directly() if room_id is None else self.seen_in(room_id)
            return next((s for s in seen[after:] if text in s.text), None)

        found: Said = wait_until(find, timeout, f"{self.user_id} to be told {text!r}")
        return found

    # -- what they do ---------------------------------------------------------------------

    def create_direct(self, encrypted: bool = True) -> str:
        """A direct chat with the bot, as Element makes one (encrypted, ``is_direct``)."""

        async def create() -> str:
            resp = await self.client.room_create(
                is_direct=True,
                invite=[self.bot],
                preset=nio.RoomPreset.trusted_private_chat,
                initial_state=[_ENCRYPTION] if encrypted else [],
            )
            assert isinstance(resp, nio.RoomCreateResponse), resp
            return str(resp.room_id)

        room_id: str = self.loop.run(create())
        self.direct.add(room_id)
        return room_id

    def create_room(self, name: str, invite: list[str]) -> str:
        async def create() -> str:
            resp = await self.client.room_create(
                name=name, invite=invite, preset=nio.RoomPreset.private_chat
            )
            assert isinstance(resp, nio.RoomCreateResponse), resp
            return str(resp.room_id)

        result: str = self.loop.run(create())
        return result

    def join(self, room_id: str) -> None:
        async def join() -> None:
            resp = await self.client.join(room_id)
            assert isinstance(resp, nio.JoinResponse), resp

        self.loop.run(join())

    def say(self, room_id: str, text: str, thread: str | None = None) -> str:
        """Write ``text`` in a room (encrypted if it is); the event id."""
        content: dict[str, Any] = {"msgtype": "m.text", "body": text}
        if thread:
            content["m.relates_to"] = {"rel_type": "m.thread", "event_id": thread}
        return self._send(room_id, "m.room.message", content)

    def react(self, room_id: str, event_id: str, key: str) -> str:
        content = {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}}
        return self._send(room_id, "m.reaction", content)

    def _send(self, room_id: str, kind: str, content: dict[str, Any]) -> str:
        # As Element does: the room known, and in an encrypted room the bot's devices, so
        # that the message's key reaches the bot.
        wait_until(lambda: self.ready_to_write(room_id), 30, f"{self.user_id} to see {room_id}")

        async def send() -> str:
            await self._keys()
            resp = await self.client.room_send(
                room_id, kind, content, ignore_unverified_devices=True
            )
            assert isinstance(resp, nio.RoomSendResponse), resp
            return str(resp.event_id)

        result: str = self.loop.run(send())
        return result

    def ready_to_write(self, room_id: str) -> bool:
        room = self.client.rooms.get(room_id)
        if room is None:
            return False
        if not room.encrypted:
            return True
        joined = self.bot in room.users and self.bot not in room.invited_users
        devices = list(self.client.device_store.active_user_devices(self.bot))
        return joined and bool(devices) and not self.client.should_query_keys

    def set_name(self, name: str) -> None:
        async def rename() -> None:
            resp = await self.client.set_displayname(name)
            assert isinstance(resp, nio.ProfileSetDisplayNameResponse), resp

        self.loop.run(rename())

    def leave(self, room_id: str) -> None:
        async def leave() -> None:
            await self.client.room_leave(room_id)

        self.loop.run(leave())

    def block_invites(self) -> None:
        """Refuse every invite from now on (``m.invite_permission_config``, which Synapse
        applies: the inviter gets 403 M_INVITE_BLOCKED)."""

        async def block() -> None:
            user = self.user_id
            resp = await self.client.send(
                "PUT",
                f"/_matrix/client/v3/user/{user}/account_data/m.invite_permission_config",
                '{"default_action": "block"}',
                {
                    "Authorization": f"Bearer {self.client.access_token}",
                    "Content-Type": "application/json",
                },
            )
            assert resp.status == 200, await resp.text()

        self.loop.run(block())

    def members(self, room_id: str) -> set[str]:
        room = self.client.rooms.get(room_id)
        return set(room.users) if room is not None else set()


_ENCRYPTION = {
    "type": "m.room.encryption",
    "state_key": "",
    "content": {"algorithm": "megolm.v1.aes-sha2"},
}


def settle(read: Any, quiet: float = 1.0, timeout: float = 30.0) -> int:
    """Wait until ``read()`` (a list) stops growing for ``quiet`` seconds; its length."""
    count, since = len(read()), time.monotonic()
    deadline = since + timeout
    while time.monotonic() - since < quiet and time.monotonic() < deadline:
        time.sleep(0.1)
        if len(read()) != count:
            count, since = len(read()), time.monotonic()
    return count
