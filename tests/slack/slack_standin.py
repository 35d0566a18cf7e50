"""A small stand-in of the Slack Web API and Socket Mode, for tests.

It runs an aiohttp server on 127.0.0.1 (random port) in a background thread, so the real
slack-sdk clients inside a bot process talk real HTTP and a real WebSocket to it. The test
thread drives it with plain (thread-safe) methods: inject events from chosen users and
channels, read back everything the bot called, and make calls fail on demand.

Shapes follow Slack's documented JSON (events_api, slash_commands and interactive envelopes;
``users.info``, ``conversations.open``, ``chat.postMessage`` ... responses) closely enough for
slack-sdk to parse them as it parses Slack's.

File uploads follow slack-sdk's ``files_upload_v2``: ``files.getUploadURLExternal`` hands out
an ``upload_url`` on this server (``/upload/<file_id>``), the bot POSTs the raw bytes there,
and ``files.completeUploadExternal`` shares the file into ``channel_id``; ``files_in(channel)``
reads the shared files back. ``fail("upload", ...)`` makes the byte POST fail.

``chat.postMessage`` also takes a user id (``U…``) as ``channel``, as Slack does: the message
goes into the app's direct-message channel with that person (``dm_of(user)``, opened if need
be) and the answer's ``channel`` is that ``D…`` id. An unknown user id is
``channel_not_found`` (Slack's documented error for a bad ``channel``); a bot is
``cannot_dm_bot`` and a deactivated person ``user_disabled`` unless their direct-message
channel already exists (as ``conversations.open`` refuses them; Slack still delivers into an
existing one, as it does for its ``D…`` id).

Rate limits (``SlackStandIn(limits=SlackLimits())``; the default ``limits=None`` enforces
none). Slack publishes them in its method documentation and rate-limit guide:
``chat.postMessage`` "allows 1 message per second per channel, with short bursts allowed",
and "several hundred messages per minute" per workspace; ``conversations.open`` is Tier 3,
"50+ per minute". :class:`SlackLimits` holds those figures as token buckets (GCRA, on
``time.monotonic()``), each a rate and a burst, keyed by scope: ``channel`` (one per
channel, a user id counting as their DM channel), ``workspace`` (every chat.postMessage)
and ``open`` (every conversations.open). A call that would exceed any of its scopes is
answered as Slack answers: HTTP 429, ``Retry-After: <whole seconds, at least 1>`` and
``{"ok": false, "error": "ratelimited"}``; it has no effect and uses no budget. The
``fail()``/``rate_limit()`` rules and the token check come first; a call the limits let
through uses budget even if it then fails (Slack counts requests). Whether enforced or not,
the stand-in records when each scope's calls were let through: ``accepted_times(kind)``,
``peak(kind, window)`` (most calls of one scope in any ``window`` seconds),
``rate_limited()`` / ``rate_limited_calls()`` and ``limits_report()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import socket
import struct
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

# The limits code both stand-ins share lives beside their folders (tests/).
if str(Path(__file__).resolve().parent.parent) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parent.parent))

from standin_limits import Gcra  # noqa: E402
from standin_limits import peak as _peak  # noqa: E402

TEAM_ID = "T0IWANT"
APP_ID = "A0IWANT"
BOT_USER_ID = "U0IWANTBOT"
BOT_ID = "B0IWANT"
BOT_NAME = "iwant"

# Methods whose token is the app-level token; every other one takes the bot token.
APP_TOKEN_METHODS = {"apps.connections.open"}


@dataclass
class Call:
    """One Web API call the bot made."""

    method: str
    params: dict[str, Any]
    token: str
    status: int
    response: dict[str, Any]
    at: float
    limited_by: tuple[str, ...] = ()  # the limit scopes that refused it (a 429 of the limits)


@dataclass
class Posted:
    """A message the bot posted (its current state, after any chat.update)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def buttons(self) -> list[dict[str, Any]]:
        return [
            {**element, "block_id": block.get("block_id")}
            for block in self.blocks
            if block.get("type") == "actions"
            for element in block.get("elements", [])
            if element.get("type") == "button"
        ]

    def context_texts(self) -> list[str]:
        return [
            element.get("text", "")
            for block in self.blocks
            if block.get("type") == "context"
            for element in block.get("elements", [])
        ]


@dataclass
class Upload:
    """A file the bot is uploading (files.getUploadURLExternal, then a POST of its bytes)."""

    file_id: str
    filename: str
    length: int
    content: bytes | None = None  # set by the POST to its upload_url


@dataclass
class SharedFile:
    """A file the bot shared (files.completeUploadExternal) into a channel."""

    channel: str | None  # None: completed without a channel (private to the bot)
    file_id: str
    filename: str
    title: str
    content: bytes
    initial_comment: str | None
    thread_ts: str | None
    ts: str


@dataclass
class FailRule:
    """Answer the next ``times`` calls of ``method`` (matching ``where``) with a failure."""

    method: str
    times: int
    status: int = 200
    error: str = "internal_error"
    retry_after: int | None = None
    where: dict[str, str] = field(default_factory=dict)

    def matches(self, method: str, params: dict[str, Any]) -> bool:
        if self.times <= 0 or method != self.method:
            return False
        return all(_same(k, str(params.get(k)), v) for k, v in self.where.items())


def _same(key: str, given: str, wanted: str) -> bool:
    """A rule on a DM channel also catches a post addressed to its person's user id, as
    Slack resolves one to the other before anything else."""
    if given == wanted:
        return True
    return key == "channel" and given[:1] in ("U", "W") and wanted == "D" + given[1:]


@dataclass(frozen=True)
class SlackLimits:
    """Slack's published rate limits, as token buckets (a rate and a burst per scope).

    ``per_channel``: chat.postMessage messages per second in one channel ("1 message per
    second per channel"), ``channel_burst`` at once ("short bursts allowed");
    ``workspace_per_minute``: chat.postMessage calls per minute in the workspace ("several
    hundred per minute"), ``workspace_burst`` at once; ``open_per_minute``: conversations.open
    calls per minute (Tier 3, "50+ per minute"), ``open_burst`` at once."""

    per_channel: float = 1.0
    channel_burst: int = 3
    workspace_per_minute: float = 600.0
    workspace_burst: int = 20
    open_per_minute: float = 50.0
    open_burst: int = 10

    def __post_init__(self) -> None:
        rates = (self.per_channel, self.workspace_per_minute, self.open_per_minute)
        if min(rates) <= 0 or min(self.channel_burst, self.workspace_burst, self.open_burst) < 1:
            raise ValueError(f"rates must be positive and bursts at least 1: {self}")

    def buckets(self) -> dict[str, Gcra]:
        """One bucket per scope kind."""
        return {
            "channel": Gcra(1.0 / self.per_channel, self.channel_burst),
            "workspace": Gcra(60.0 / self.workspace_per_minute, self.workspace_burst),
            "open": Gcra(60.0 / self.open_per_minute, self.open_burst),
        }


#: The limit scope kinds, in the order limits_report lists them.
LIMIT_KINDS = ("channel", "workspace", "open")


class SlackStandIn:
    """The stand-in server; use as a context manager or call start()/stop().

    ``limits``: the rate limits to enforce (:class:`SlackLimits`); None enforces none."""

    def __init__(
        self,
        bot_token: str = "xoxb-test",
        app_token: str = "xapp-test",
        limits: SlackLimits | None = None,
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.limits = limits
        self._buckets = limits.buckets() if limits is not None else {}
        self._accepted: dict[str, dict[str, list[float]]] = {k: {} for k in LIMIT_KINDS}
        self._limited: list[Call] = []  # calls the limits answered 429
        self.users: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.calls: list[Call] = []
        self.posted: list[Posted] = []
        self.envelopes: dict[str, dict[str, Any]] = {}  # envelope_id -> envelope (sent or queued)
        self.acks: dict[str, dict[str, Any]] = {}  # envelope_id -> the ack frame
        self.ack_times: dict[str, float] = {}
        self.ack_counts: dict[str, int] = {}  # a redelivered envelope is acknowledged again
        self.sent_times: dict[str, float] = {}
        self.response_url_posts: list[dict[str, Any]] = []
        self.uploads: dict[str, Upload] = {}  # file_id -> what getUploadURLExternal issued
        self.files: list[SharedFile] = []  # completed uploads, one per channel shared into
        self.connections_opened = 0  # WebSocket connections accepted
        self.rules: list[FailRule] = []
        self.reject_all_tokens = False  # every call answers invalid_auth
        self.echo_bot_messages = True  # Slack echoes the bot's own posts as message events
        self.redeliver_unacked = True  # on a new connection, resend what was never acked
        self.lock = threading.RLock()
        self._ts = itertools.count(1)
        self._mpims: dict[tuple[str, ...], str] = {}
        self._pending: list[dict[str, Any]] = []  # envelopes waiting for a connection
        self._ws: web.WebSocketResponse | None = None
        self._ws_request: web.Request | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.add_user(BOT_USER_ID, name=BOT_NAME, real_name="iwant", is_bot=True)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SlackStandIn:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._start_server())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="slack-standin", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("stand-in did not start")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        with contextlib.suppress(Exception):
            self._call(self._stop_server(), timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)
        if not self._loop.is_running():
            self._loop.close()  # its selector and self-pipe sockets
        self._loop = None

    def __enter__(self) -> SlackStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    async def _start_server(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/link", self._link)
        app.router.add_post("/commands/{trigger}", self._response_url)
        app.router.add_post("/upload/{file_id}", self._upload)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _stop_server(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _call(self, coro: Any, timeout: float = 10) -> Any:
        assert self._loop is not None, "stand-in not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # ------------------------------------------------------------------ workspace

    def add_user(
        self,
        user_id: str,
        name: str,
        real_name: str = "",
        display_name: str = "",
        tz: str | None = "Europe/Prague",
        is_bot: bool = False,
        deleted: bool = False,
    ) -> None:
        with self.lock:
            self.users[user_id] = {
                "id": user_id,
                "name": name,
                "real_name": real_name or name,
                "display_name": display_name,
                "tz": tz,
                "is_bot": is_bot,
                "deleted": deleted,
            }

    def rename(self, user_id: str, real_name: str, display_name: str) -> None:
        """The person changes the names of their profile; Slack tells the app with a
        ``user_change`` event carrying the whole user (to apps subscribed to it)."""
        with self.lock:
            user = self.users[user_id]
            user["real_name"], user["display_name"] = real_name, display_name
            event = {
                "type": "user_change",
                "user": self._user_json(user),
                "cache_ts": int(time.time()),
                "event_ts": f"{time.time():.6f}",
            }
        self._push_event(event)

    def add_channel(
        self, channel_id: str, name: str, members: list[str], bot_member: bool = True
    ) -> None:
        with self.lock:
            self.channels[channel_id] = {
                "id": channel_id,
                "name": name,
                "members": list(members) + ([BOT_USER_ID] if bot_member else []),
                "is_im": False,
                "is_mpim": False,
                "is_archived": False,
            }

    @staticmethod
    def dm_of(user_id: str) -> str:
        """The id of the bot's direct-message channel with a user."""
        return "D" + user_id[1:]

    def next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    # ------------------------------------------------------------------ failures

    def fail(
        self,
        method: str,
        times: int = 1,
        *,
        status: int = 200,
        error: str = "internal_error",
        retry_after: int | None = None,
        **where: str,
    ) -> FailRule:
        """Make the next ``times`` calls of ``method`` (whose params match ``where``) fail."""
        rule = FailRule(method, times, status, error, retry_after, dict(where))
        with self.lock:
            self.rules.append(rule)
        return rule

    def rate_limit(self, method: str, times: int, retry_after: int = 1, **where: str) -> FailRule:
        return self.fail(
            method, times, status=429, error="ratelimited", retry_after=retry_after, **where
        )

    def drop_socket(self, how: str = "reset") -> None:
        """Drop the bot's WebSocket: ``reset`` (TCP RST), ``eof`` (FIN, no close frame) or
        ``close`` (a proper WebSocket close frame)."""
        self._call(self._drop(how))

    async def _drop(self, how: str) -> None:
        ws, request = self._ws, self._ws_request
        if ws is None or request is None:
            return
        self._ws = None
        transport = request.transport
        if how == "close":
            await ws.close(code=1001, message=b"going away")
            return
        if transport is None:
            return
        if how == "reset":
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # Linger 0 turns close() into a TCP reset, as a dying load balancer does.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()

    def send_disconnect(self, reason: str = "refresh_requested") -> None:
        """Slack's own 'please reconnect' frame (sent before it retires a connection)."""
        frame = {"type": "disconnect", "reason": reason, "debug_info": {"host": "standin"}}
        self._call(self._send_raw(frame))

    # ------------------------------------------------------------------ recorded state

    def calls_of(self, method: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.method == method]

    def messages_in(self, channel: str) -> list[Posted]:
        with self.lock:
            return [p for p in self.posted if p.channel == channel]

    def texts_in(self, channel: str) -> list[str]:
        return [p.text for p in self.messages_in(channel)]

    def files_in(self, channel: str) -> list[SharedFile]:
        """Files the bot shared into ``channel`` (filename, content bytes, initial_comment)."""
        with self.lock:
            return [f for f in self.files if f.channel == channel]

    # ------------------------------------------------------------------ rate limits

    def rate_limited(self) -> int:
        """How many calls the limits answered 429 (the fail()/rate_limit() rules not counted)."""
        with self.lock:
            return len(self._limited)

    def rate_limited_calls(self) -> list[Call]:
        """The calls the limits answered 429, in order (``Call.limited_by``: which scopes)."""
        with self.lock:
            return list(self._limited)

    def accepted_times(self, kind: str) -> dict[str, list[float]]:
        """For a scope kind (``channel``, ``workspace``, ``open``): each scope's key (the
        channel id; the team id for the other two) -> the ``time.monotonic()`` times of the
        calls the limits let through (recorded even when no limits are enforced)."""
        with self.lock:
            return {key: list(times) for key, times in self._accepted[kind].items()}

    def peak(self, kind: str, window: float) -> int:
        """The most calls let through in one scope of ``kind`` within any ``window`` seconds
        (a closed interval). A bucket of rate r and burst b allows at most b + floor(window*r)."""
        with self.lock:
            scopes = list(self._accepted[kind].values())
        return max((_peak(times, window) for times in scopes), default=0)

    def limits_report(self) -> dict[str, Any]:
        """The limits and the counts: calls let through and refused per kind, and the peaks
        per second and per minute."""
        with self.lock:
            refused = {k: sum(k in c.limited_by for c in self._limited) for k in LIMIT_KINDS}
            accepted = {
                k: sum(len(times) for times in self._accepted[k].values()) for k in LIMIT_KINDS
            }
            report: dict[str, Any] = {
                "limits": None if self.limits is None else dict(vars(self.limits)),
                "rate_limited": len(self._limited),
                "rate_limited_by_kind": refused,
                "accepted": accepted,
            }
        report["peak_per_second"] = {k: self.peak(k, 1.0) for k in LIMIT_KINDS}
        report["peak_per_minute"] = {k: self.peak(k, 60.0) for k in LIMIT_KINDS}
        return report

    def _limit_scopes(self, method: str, params: dict[str, Any]) -> list[tuple[str, str]]:
        """The (kind, key) scopes a call counts against."""
        if method == "chat.postMessage":
            channel = str(params.get("channel", ""))
            if channel[:1] in ("U", "W") and channel in self.users:
                channel = self.dm_of(channel)
            return [("channel", channel), ("workspace", TEAM_ID)]
        if method == "conversations.open":
            return [("open", TEAM_ID)]
        return []

    def _check_limits(self, method: str, params: dict[str, Any]) -> tuple[tuple[str, ...], float]:
        """Let a call through (record it and use its budget: returns ``((), 0.0)``) or refuse
        it: returns the scope kinds that refused it and the seconds until all would allow it.
        Under the lock."""
        scopes = self._limit_scopes(method, params)
        now = time.monotonic()
        if self._buckets and scopes:
            waits = [(kind, self._buckets[kind].wait(key, now)) for kind, key in scopes]
            refused = tuple(kind for kind, wait in waits if wait > 0)
            if refused:
                return refused, max(wait for _, wait in waits)
            for kind, key in scopes:
                self._buckets[kind].take(key, now)
        for kind, key in scopes:
            self._accepted[kind].setdefault(key, []).append(now)
        return (), 0.0

    def unacked(self) -> list[str]:
        with self.lock:
            return [e for e in self.sent_times if e not in self.acks]

    def wait_for(
        self, condition: Callable[[], Any], timeout: float = 30, what: str = "condition"
    ) -> Any:
        """Poll ``condition`` until it returns something truthy, or fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            result = condition()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.05)

    def wait_message(
        self,
        channel: str,
        contains: str | Callable[[Posted], bool],
        timeout: float = 30,
        after: int = 0,
    ) -> Posted:
        """Wait for a bot message in ``channel`` (among those from index ``after`` on)."""

        def match(p: Posted) -> bool:
            return contains(p) if callable(contains) else contains in p.text

        def find() -> Posted | None:
            return next((p for p in self.messages_in(channel)[after:] if match(p)), None)

        return self.wait_for(find, timeout, f"a message in {channel} matching {contains!r}")

    def wait_all_acked(self, timeout: float = 30) -> None:
        """Every envelope sent so far gets acknowledged (the last ones may be in flight)."""
        self.wait_for(lambda: not self.unacked(), timeout, f"acks of {self.unacked()}")

    def wait_ack(self, envelope_id: str, timeout: float = 30) -> dict[str, Any]:
        return self.wait_for(
            lambda: self.acks.get(envelope_id), timeout, f"ack of envelope {envelope_id}"
        )

    def wait_connected(self, count: int = 1, timeout: float = 30) -> None:
        self.wait_for(
            lambda: self.connections_opened >= count and self._ws is not None,
            timeout,
            f"{count} socket connection(s)",
        )

    # ------------------------------------------------------------------ injecting events

    def user_message(self, user: str, channel: str, text: str, **extra: Any) -> str:
        """A person posts ``text`` in ``channel`` (a ``D…`` id is their DM with the bot).

        Returns the envelope id. Like Slack with both subscriptions, a channel message that
        mentions the bot is also delivered as an ``app_mention`` event (same ts)."""
        ts = self.next_ts()
        is_dm = channel.startswith("D")
        event = {
            "client_msg_id": str(uuid.uuid4()),
            "type": "message",
            "text": text,
            "user": user,
            "ts": ts,
            "team": TEAM_ID,
            "channel": channel,
            "event_ts": ts,
            "channel_type": "im" if is_dm else "channel",
            **extra,
        }
        envelope_id = self._push_event(event)
        if not is_dm and f"<@{BOT_USER_ID}>" in text:
            mention = {k: v for k, v in event.items() if k != "channel_type"}
            mention["type"] = "app_mention"
            self._push_event(mention)
        return envelope_id

    def mention_only(self, user: str, channel: str, text: str) -> str:
        """An ``app_mention`` event alone (an app subscribed to mentions only)."""
        ts = self.next_ts()
        event = {
            "client_msg_id": str(uuid.uuid4()),
            "type": "app_mention",
            "text": text,
            "user": user,
            "ts": ts,
            "team": TEAM_ID,
            "channel": channel,
            "event_ts": ts,
        }
        return self._push_event(event)

    def slash_command(self, user: str, channel: str, text: str, command: str = "/iwant") -> str:
        trigger = f"{int(time.time())}.{uuid.uuid4().hex[:12]}"
        channel_name = (
            "directmessage"
            if channel.startswith("D")
            else self.channels.get(channel, {}).get("name", "unknown")
        )
        payload = {
            "token": "verification-token-unused",
            "team_id": TEAM_ID,
            "team_domain": "iwant-test",
            "channel_id": channel,
            "channel_name": channel_name,
            "user_id": user,
            "user_name": self.users.get(user, {}).get("name", user),
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": f"http://127.0.0.1:{self.port}/commands/{trigger}",
            "trigger_id": trigger,
        }
        return self._push("slash_commands", payload, accepts_response_payload=True)

    def click(self, user: str, message: Posted, label: str) -> str:
        """``user`` clicks the button labelled ``label`` on a message the bot posted."""
        button = next((b for b in message.buttons() if b["text"]["text"] == label), None)
        if button is None:
            raise AssertionError(f"no button {label!r} on {message}")
        trigger = f"{int(time.time())}.{uuid.uuid4().hex[:12]}"
        user_info = self.users.get(user, {"name": user})
        payload = {
            "type": "block_actions",
            "user": {
                "id": user,
                "username": user_info["name"],
                "name": user_info["name"],
                "team_id": TEAM_ID,
            },
            "api_app_id": APP_ID,
            "token": "verification-token-unused",
            "container": {
                "type": "message",
                "message_ts": message.ts,
                "channel_id": message.channel,
                "is_ephemeral": False,
            },
            "trigger_id": trigger,
            "team": {"id": TEAM_ID, "domain": "iwant-test"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": message.channel, "name": "directmessage"},
            "message": {
                "type": "message",
                "user": BOT_USER_ID,
                "bot_id": BOT_ID,
                "ts": message.ts,
                "text": message.text,
                "blocks": message.blocks,
                "team": TEAM_ID,
            },
            "state": {"values": {}},
            "response_url": f"http://127.0.0.1:{self.port}/commands/{trigger}",
            "actions": [
                {
                    "action_id": button.get("action_id"),
                    "block_id": button["block_id"],
                    "text": button["text"],
                    "value": button.get("value"),
                    "type": "button",
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        return self._push("interactive", payload)

    def redeliver(self, envelope_id: str) -> None:
        """Send an envelope again, as Slack does when it believes an ack was lost."""
        with self.lock:
            envelope = self.envelopes[envelope_id]
            envelope["retry_attempt"] += 1
            envelope["retry_reason"] = "timeout"
        self._call(self._deliver(envelope))

    def _push_event(self, event: dict[str, Any]) -> str:
        payload = {
            "token": "verification-token-unused",
            "team_id": TEAM_ID,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": "Ev" + uuid.uuid4().hex[:10].upper(),
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": TEAM_ID,
                    "user_id": BOT_USER_ID,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": "4-" + uuid.uuid4().hex,
        }
        return self._push("events_api", payload)

    def _push(
        self, kind: str, payload: dict[str, Any], accepts_response_payload: bool = False
    ) -> str:
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": kind,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": 0,
            "retry_reason": "",
        }
        with self.lock:
            self.envelopes[envelope_id] = envelope
        if self._loop is not None and threading.current_thread() is not self._thread:
            self._call(self._deliver(envelope))
        else:
            asyncio.ensure_future(self._deliver(envelope))
        return envelope_id

    async def _deliver(self, envelope: dict[str, Any]) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            self._pending.append(envelope)  # delivered once the bot reconnects
            return
        try:
            await ws.send_str(json.dumps(envelope))
        except Exception:
            self._pending.append(envelope)
            return
        with self.lock:
            self.sent_times.setdefault(envelope["envelope_id"], time.monotonic())

    async def _send_raw(self, frame: dict[str, Any]) -> None:
        if self._ws is not None:
            await self._ws.send_str(json.dumps(frame))

    # ------------------------------------------------------------------ WebSocket

    async def _link(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        with self.lock:
            self.connections_opened += 1
        old = self._ws
        self._ws, self._ws_request = ws, request
        if old is not None and not old.closed:
            # Slack keeps the old connection briefly; the client closes it. Nothing to do.
            pass
        await ws.send_str(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "debug_info": {"host": "standin", "approximate_connection_time": 18060},
                    "connection_info": {"app_id": APP_ID},
                }
            )
        )
        # What was queued while nobody listened, then what was sent but never acknowledged.
        backlog, self._pending = self._pending, []
        if self.redeliver_unacked:
            with self.lock:
                lost = [
                    self.envelopes[e]
                    for e in self.sent_times
                    if e not in self.acks and self.envelopes[e] not in backlog
                ]
            for envelope in lost:
                envelope["retry_attempt"] += 1
                envelope["retry_reason"] = "timeout"
            backlog = lost + backlog
        for envelope in backlog:
            await self._deliver(envelope)
        async for frame in ws:
            if frame.type == WSMsgType.TEXT:
                with contextlib.suppress(ValueError):
                    ack = json.loads(frame.data)
                    envelope_id = ack.get("envelope_id")
                    if envelope_id:
                        with self.lock:
                            self.ack_counts[envelope_id] = self.ack_counts.get(envelope_id, 0) + 1
                            self.acks.setdefault(envelope_id, ack)
                            self.ack_times.setdefault(envelope_id, time.monotonic())
        if self._ws is ws:
            self._ws = None
        return ws

    async def _response_url(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self.lock:
            self.response_url_posts.append({"trigger": request.match_info["trigger"], **body})
        return web.Response(text="ok")

    async def _upload(self, request: web.Request) -> web.Response:
        """The upload_url files.getUploadURLExternal hands out: takes the file's raw bytes.
        ``fail("upload", ...)`` makes it answer with that rule's status instead."""
        file_id = request.match_info["file_id"]
        content = await request.content.read()  # raw body, no size cap (unlike read())
        with self.lock:
            rule = next((r for r in self.rules if r.matches("upload", {"file_id": file_id})), None)
            if rule is not None:
                rule.times -= 1
                return web.Response(status=rule.status, text=rule.error)
            upload = self.uploads.get(file_id)
            if upload is None:
                return web.Response(status=404, text="file_not_found")
            upload.content = content
        return web.Response(text=f"OK - {len(content)}")

    # ------------------------------------------------------------------ Web API

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        if request.body_exists:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update(dict(await request.post()))
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() or str(params.pop("token", ""))
        with self.lock:
            status, headers, body, limited_by = self._answer(method, params, token)
            call = Call(method, params, token, status, body, time.monotonic(), limited_by)
            self.calls.append(call)
            if limited_by:
                self._limited.append(call)
        return web.json_response(body, status=status, headers=headers)

    def _answer(
        self, method: str, params: dict[str, Any], token: str
    ) -> tuple[int, dict[str, str], dict[str, Any], tuple[str, ...]]:
        with self.lock:
            rule = next((r for r in self.rules if r.matches(method, params)), None)
            if rule is not None:
                rule.times -= 1
                headers = {}
                if rule.retry_after is not None:
                    headers["Retry-After"] = str(rule.retry_after)
                return rule.status, headers, {"ok": False, "error": rule.error}, ()
            expected = self.app_token if method in APP_TOKEN_METHODS else self.bot_token
            if self.reject_all_tokens or token != expected:
                error = "not_authed" if not token else "invalid_auth"
                return 200, {}, {"ok": False, "error": error}, ()
            refused, wait = self._check_limits(method, params)
            if refused:
                # Slack's answer: 429, the wait in whole seconds, nothing done.
                retry_after = str(max(1, math.ceil(wait)))
                return 429, {"Retry-After": retry_after}, self._err("ratelimited"), refused
            handler = getattr(self, "_m_" + method.replace(".", "_"), None)
            if handler is None:
                return 200, {}, {"ok": False, "error": "unknown_method"}, ()
            body = handler(params)
            return 200, {}, body, ()

    def _ok(self, **kw: Any) -> dict[str, Any]:
        return {"ok": True, **kw}

    @staticmethod
    def _err(error: str) -> dict[str, Any]:
        return {"ok": False, "error": error}

    def _m_auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._ok(
            url="https://iwant-test.slack.com/",
            team="iwant test",
            user=BOT_NAME,
            team_id=TEAM_ID,
            user_id=BOT_USER_ID,
            bot_id=BOT_ID,
            is_enterprise_install=False,
        )

    def _m_apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        ticket = uuid.uuid4().hex
        return self._ok(url=f"ws://127.0.0.1:{self.port}/link?ticket={ticket}&app_id={APP_ID}")

    def _user_json(self, user: dict[str, Any]) -> dict[str, Any]:
        profile = {
            "real_name": user["real_name"],
            "real_name_normalized": user["real_name"],
            "display_name": user["display_name"],
            "display_name_normalized": user["display_name"],
            "email": f"{user['name']}@example.com",
            "team": TEAM_ID,
            "image_24": "https://example.com/a.png",
        }
        tz = user["tz"]
        return {
            "id": user["id"],
            "team_id": TEAM_ID,
            "name": user["name"],
            "deleted": user["deleted"],
            "color": "9f69e7",
            "real_name": user["real_name"],
            "tz": tz,
            "tz_label": tz or "",
            "tz_offset": 0,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_bot": user["is_bot"],
            "is_app_user": False,
            "updated": 1700000000,
        }

    def _m_users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(params.get("user")))
        if user is None:
            return self._err("user_not_found")
        return self._ok(user=self._user_json(user))

    def _m_conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        ids = [u for u in str(params.get("users", "")).split(",") if u]
        if not ids:
            return self._err("not_enough_users")
        if len(ids) > 8:
            return self._err("too_many_users")
        for uid in ids:
            user = self.users.get(uid)
            if user is None:
                return self._err("user_not_found")
            if user["deleted"]:
                return self._err("user_disabled")
            if user["is_bot"]:
                return self._err("cannot_dm_bot")
        return self._ok(channel={"id": self._open(ids)})

    def _open(self, ids: list[str]) -> str:
        """The bot's conversation with these people (an IM for one, an MPIM for more),
        created if it does not exist yet; returns its id."""
        if len(ids) == 1:
            channel_id = self.dm_of(ids[0])
            members = [ids[0], BOT_USER_ID]
            is_im, is_mpim = True, False
        else:
            key = tuple(sorted(ids))
            channel_id = self._mpims.setdefault(key, f"G0MPIM{len(self._mpims) + 1}")
            members = [*key, BOT_USER_ID]
            is_im, is_mpim = False, True
        self.channels.setdefault(
            channel_id,
            {
                "id": channel_id,
                "name": "mpdm-" + "--".join(members) if is_mpim else ids[0],
                "members": members,
                "is_im": is_im,
                "is_mpim": is_mpim,
                "is_archived": False,
            },
        )
        return channel_id

    def _post_target(self, channel: str) -> tuple[str, str | None]:
        """Where chat.postMessage's ``channel`` posts (a user id: the bot's DM with them, which
        the post opens if it is not open yet), and the error Slack answers instead, if any."""
        if channel[:1] not in ("U", "W"):
            return channel, self._channel_error(channel)
        user = self.users.get(channel)
        if user is None:
            return channel, "channel_not_found"
        dm = self.dm_of(channel)
        if dm not in self.channels:
            # As conversations.open: no new conversation with a bot or a deactivated person.
            if user["is_bot"]:
                return channel, "cannot_dm_bot"
            if user["deleted"]:
                return channel, "user_disabled"
            return dm, None
        return dm, self._channel_error(dm)

    def _channel_error(self, channel_id: str) -> str | None:
        channel = self.channels.get(channel_id)
        if channel is None:
            return "channel_not_found"
        if channel["is_archived"]:
            return "is_archived"
        if BOT_USER_ID not in channel["members"]:
            return "not_in_channel"
        return None

    @staticmethod
    def _blocks(params: dict[str, Any]) -> list[dict[str, Any]]:
        blocks = params.get("blocks") or []
        return json.loads(blocks) if isinstance(blocks, str) else blocks

    def _m_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        channel_id, error = self._post_target(str(params.get("channel", "")))
        if error:
            return self._err(error)
        text = str(params.get("text") or "")
        blocks = self._blocks(params)
        if not text and not blocks:
            return self._err("no_text")
        if len(text) > 40000:
            return self._err("msg_too_long")
        if channel_id not in self.channels:  # a first message to a person opens the DM
            self._open([str(params["channel"])])
        ts = self.next_ts()
        thread_ts = params.get("thread_ts")
        self.posted.append(Posted(channel_id, ts, text, blocks, thread_ts))
        message = {
            "type": "message",
            "text": text,
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "ts": ts,
            "team": TEAM_ID,
            "blocks": blocks,
        }
        if self.echo_bot_messages:
            # Slack sends the bot's own message back to it as an event; it must be ignored.
            event = {
                **message,
                "channel": channel_id,
                "event_ts": ts,
                "channel_type": "im" if channel_id.startswith("D") else "channel",
            }
            asyncio.get_running_loop().call_soon(self._push_event, event)
        return self._ok(channel=channel_id, ts=ts, message=message)

    def _m_chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel_id, ts = str(params.get("channel")), str(params.get("ts"))
        posted = next((p for p in self.posted if p.channel == channel_id and p.ts == ts), None)
        if posted is None:
            return self._err("message_not_found")
        posted.history.append({"text": posted.text, "blocks": posted.blocks})
        if "text" in params:
            posted.text = str(params["text"])
        if "blocks" in params:
            posted.blocks = self._blocks(params)
        return self._ok(channel=channel_id, ts=ts, text=posted.text)

    def _m_conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(str(params.get("channel")))
        if channel is None:
            return self._err("channel_not_found")
        return self._ok(channel=self._channel_json(channel))

    def _channel_json(self, channel: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": channel["id"],
            "name": channel["name"],
            "is_channel": not (channel["is_im"] or channel["is_mpim"]),
            "is_im": channel["is_im"],
            "is_mpim": channel["is_mpim"],
            "is_private": channel["is_mpim"],
            "is_archived": channel["is_archived"],
            "is_member": BOT_USER_ID in channel["members"],
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }

    def _m_users_conversations(self, params: dict[str, Any]) -> dict[str, Any]:
        mine = [
            self._channel_json(c)
            for c in self.channels.values()
            if BOT_USER_ID in c["members"] and not c["is_im"]
        ]
        return self._ok(channels=mine, response_metadata={"next_cursor": ""})

    def _m_conversations_members(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(str(params.get("channel")))
        if channel is None:
            return self._err("channel_not_found")
        return self._ok(members=channel["members"], response_metadata={"next_cursor": ""})

    def _m_files_getUploadURLExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        filename = str(params.get("filename") or "")
        try:
            length = int(params.get("length", ""))
        except ValueError:
            return self._err("invalid_arguments")
        if not filename or length < 0:
            return self._err("invalid_arguments")
        file_id = "F0" + uuid.uuid4().hex[:9].upper()
        self.uploads[file_id] = Upload(file_id, filename, length)
        upload_url = f"http://127.0.0.1:{self.port}/upload/{file_id}"
        return self._ok(upload_url=upload_url, file_id=file_id)

    def _m_files_completeUploadExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            wanted = json.loads(str(params.get("files") or ""))
        except ValueError:
            return self._err("invalid_arguments")
        if not isinstance(wanted, list) or not wanted:
            return self._err("invalid_arguments")
        uploads: list[tuple[Upload, str]] = []
        for item in wanted:
            upload = self.uploads.get(str(item.get("id")))
            if upload is None or upload.content is None:
                return self._err("file_not_found")
            if len(upload.content) != upload.length:
                return self._err("file_size_mismatch")
            uploads.append((upload, str(item.get("title") or upload.filename)))
        targets: list[str | None] = []
        if params.get("channel_id"):
            targets.append(str(params["channel_id"]))
        targets += [c for c in str(params.get("channels") or "").split(",") if c]
        for channel_id in targets:
            error = self._channel_error(str(channel_id))
            if error:
                return self._err(error)
        comment = params.get("initial_comment")
        thread_ts = params.get("thread_ts")
        for upload, _title in uploads:
            del self.uploads[upload.file_id]
        for channel_id in targets or [None]:
            ts = self.next_ts()
            shared = [
                SharedFile(
                    channel_id,
                    upload.file_id,
                    upload.filename,
                    title,
                    upload.content or b"",
                    str(comment) if comment is not None else None,
                    str(thread_ts) if thread_ts is not None else None,
                    ts,
                )
                for upload, title in uploads
            ]
            self.files += shared
            if channel_id is not None and self.echo_bot_messages:
                # Slack tells the bot about its own share, as a file_share message event.
                event = {
                    "type": "message",
                    "subtype": "file_share",
                    "text": str(comment or ""),
                    "user": BOT_USER_ID,
                    "bot_id": BOT_ID,
                    "files": [
                        {"id": f.file_id, "name": f.filename, "title": f.title} for f in shared
                    ],
                    "upload": False,
                    "ts": ts,
                    "channel": channel_id,
                    "event_ts": ts,
                    "channel_type": "im" if channel_id.startswith("D") else "channel",
                }
                asyncio.get_running_loop().call_soon(self._push_event, event)
        return self._ok(files=[{"id": u.file_id, "title": title} for u, title in uploads])
