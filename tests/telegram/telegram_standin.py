"""A small stand-in of the Telegram Bot API for tests, on aiohttp, on 127.0.0.1.

The real python-telegram-bot client talks HTTP to it exactly as it talks to
api.telegram.org (``base_url`` = :attr:`BotApiStandin.base_url`).  It keeps a little model
of Telegram (people, private chats, groups, who started the bot, the messages the bot
sent), answers with genuine Bot API JSON shapes, records every call, lets a test inject
updates (messages, commands, button presses) and fail calls on demand (429 with
``retry_after``, 5xx, 403, a dropped connection).

Telegram behaviour it reproduces, because the backend depends on it:
- getUpdates long-polls up to ``timeout`` seconds; an update is confirmed (and dropped for
  good) by a later call whose ``offset`` is above its id; a second concurrent getUpdates
  terminates the first with 409 Conflict.
- A bot cannot write first to a person who never started it in private (403), nor to a
  person who blocked it (403); an unknown chat id is 400 "chat not found".
- Texts over 4096 UTF-16 units, empty texts and callback_data over 64 bytes are refused.
- sendDocument takes a multipart upload (or the file_id of an earlier one), refuses empty
  files, files over 50 MB and captions over 1024 UTF-16 units, and answers with a Message
  whose ``document`` has file_id, file_unique_id, file_name, mime_type and file_size.

Rate limits (``BotApiStandin(limits=TelegramLimits())``; the default ``limits=None``
enforces none).  The Bot FAQ ("My bot is hitting limits, how do I avoid this?") says: "avoid
sending more than one message per second" in a particular chat, "no more than 20 messages
per minute" in a group, and "not be able to send more than about 30 messages per second" in
bulk.  :class:`TelegramLimits` holds those figures as token buckets (GCRA, on
``time.monotonic()``), each a rate and a burst, keyed by scope: ``bot`` (every sendMessage
and sendDocument), ``chat`` (one private chat, chat id > 0) and ``group`` (one group, chat
id < 0).  A send that would exceed any of its scopes is answered as Telegram answers flood
control: HTTP 429 with ``{"ok": false, "error_code": 429, "description": "Too Many
Requests: retry after N", "parameters": {"retry_after": N}}`` (N whole seconds, at least
1); it has no effect and uses no budget.  The :meth:`~BotApiStandin.fail` rules and the
token check come first; a send the limits let through uses budget even if it then fails.
Whether enforced or not, the stand-in records when each scope's sends were let through:
``accepted_times(kind)``, ``peak(kind, window)`` (most sends of one scope in any ``window``
seconds), ``rate_limited()`` / ``rate_limited_calls()`` and ``limits_report()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import mimetypes
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.web_request import FileField

# The limits code both stand-ins share lives beside their folders (tests/).
if str(Path(__file__).resolve().parent.parent) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parent.parent))

from standin_limits import Gcra  # noqa: E402
from standin_limits import peak as _peak  # noqa: E402

T = TypeVar("T")

JSON = dict[str, Any]

#: Telegram's limit for a photo a bot uploads (10 MB).
MAX_PHOTO_BYTES = 10 * 1024 * 1024
#: Telegram's limits for documents a bot uploads.
MAX_CAPTION_LENGTH = 1024
MAX_UPLOAD_BYTES = 50_000_000


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def wait_until(
    condition: Callable[[], T],
    timeout: float = 30.0,
    what: str = "condition",
    interval: float = 0.05,
) -> T:
    """Poll ``condition`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Call:
    """One HTTP call the bot made."""

    method: str
    params: JSON
    status: int | None = None  # None while in flight (a long poll); 0 for a dropped one
    response: JSON | None = None
    at: float = field(default_factory=time.monotonic)
    limited_by: tuple[str, ...] = ()  # the limit scopes that refused it (a 429 of the limits)

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class Upload:
    """A file part of a multipart call, as the bot uploaded it (in ``Call.params``)."""

    filename: str | None
    content_type: str
    content: bytes


@dataclass
class Rule:
    """A failure to inject: the next ``times`` matching calls fail this way."""

    method: str
    status: int = 500
    description: str = "Internal Server Error"
    retry_after: int | None = None
    chat_id: int | None = None
    times: int = 1
    drop: bool = False  # close the connection without answering
    delay: float = 0.0  # seconds to wait before failing (e.g. mid long-poll)
    migrate_to_chat_id: int | None = None

    def matches(self, method: str, params: JSON) -> bool:
        if self.times <= 0 or self.method.lower() != method.lower():
            return False
        if self.chat_id is None:
            return True
        try:
            return int(params.get("chat_id")) == self.chat_id
        except (TypeError, ValueError):
            return False


@dataclass(frozen=True)
class TelegramLimits:
    """Telegram's published flood limits, as token buckets (a rate and a burst per scope).

    ``per_second``: sendMessage + sendDocument per second across all chats ("about 30
    messages per second"), ``burst`` at once; ``per_chat``: per second in one private chat
    ("no more than one message per second"), ``chat_burst`` at once; ``per_group_minute``:
    per minute in one group ("no more than 20 messages per minute"), ``group_burst`` at
    once."""

    per_second: float = 30.0
    burst: int = 30
    per_chat: float = 1.0
    chat_burst: int = 3
    per_group_minute: float = 20.0
    group_burst: int = 5

    def __post_init__(self) -> None:
        rates = (self.per_second, self.per_chat, self.per_group_minute)
        if min(rates) <= 0 or min(self.burst, self.chat_burst, self.group_burst) < 1:
            raise ValueError(f"rates must be positive and bursts at least 1: {self}")

    def buckets(self) -> dict[str, Gcra]:
        """One bucket per scope kind."""
        return {
            "bot": Gcra(1.0 / self.per_second, self.burst),
            "chat": Gcra(1.0 / self.per_chat, self.chat_burst),
            "group": Gcra(60.0 / self.per_group_minute, self.group_burst),
        }


#: The limit scope kinds, in the order limits_report lists them.
LIMIT_KINDS = ("bot", "chat", "group")
#: The methods the limits count (lower case).
LIMITED_METHODS = {"sendmessage", "senddocument", "sendphoto"}


_INT_FIELDS = {"chat_id", "message_id", "offset", "limit", "timeout", "user_id", "cache_time"}
_JSON_FIELDS = {"reply_markup", "allowed_updates", "commands", "scope", "entities"}
#: Free text that stays a string even when it reads "true" or "false".
_TEXT_FIELDS = {"caption"}


def _coerce(params: dict[str, Any]) -> JSON:
    """PTB posts form fields as strings (objects JSON-encoded); turn them back into values."""
    out: JSON = {}
    for key, value in params.items():
        if isinstance(value, str):
            if key in _INT_FIELDS:
                with contextlib.suppress(ValueError):
                    value = int(value)
            elif key in _TEXT_FIELDS:
                pass
            elif key in _JSON_FIELDS or value in ("true", "false"):
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
        out[key] = value
    return out


class BotApiStandin:
    """The stand-in server.  Start it with :meth:`start`, stop with :meth:`stop`.

    ``limits``: the flood limits to enforce (:class:`TelegramLimits`); None enforces none."""

    def __init__(
        self,
        token: str = "123456789:TEST-secret-token-AAAA",
        bot_username: str = "IWantTestBot",
        first_update_id: int = 700_000,
        limits: TelegramLimits | None = None,
    ) -> None:
        self.token = token
        self.limits = limits
        self._buckets = limits.buckets() if limits is not None else {}
        self._accepted: dict[str, dict[int, list[float]]] = {k: {} for k in LIMIT_KINDS}
        self._limited: list[Call] = []  # calls the limits answered 429
        bot_id = int(token.split(":", 1)[0])
        self.bot_user: JSON = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "IWant",
            "username": bot_username,
        }
        self._lock = threading.RLock()
        self.users: dict[int, JSON] = {}
        self.chats: dict[int, JSON] = {}
        self.started: set[int] = set()  # people who have a private chat with the bot
        self.blocked: set[int] = set()
        self.messages: dict[tuple[int, int], JSON] = {}  # (chat_id, message_id) -> message
        self.pending: list[JSON] = []  # updates not yet confirmed
        self.pushed: dict[int, JSON] = {}  # every update ever made, by id
        self.confirmed_below: int = 0  # every update id below this was confirmed
        self.calls: list[Call] = []
        self.rules: list[Rule] = []
        self.commands: list[JSON] = []
        self.answered_queries: dict[str, JSON] = {}
        self.files: dict[str, Upload] = {}  # uploaded files by file_id
        self._documents: list[JSON] = []  # documents the bot sent, in order
        self._photos: list[JSON] = []  # photos the bot sent, in order
        self.issued_queries: set[str] = set()
        self._update_ids = itertools.count(first_update_id)
        self._message_ids = itertools.count(1)
        self._query_ids = itertools.count(9_000_000)
        self._file_ids = itertools.count(1)
        self._poll_generation = 0
        self._closing = False
        self._version = 0  # bumped by every injected update; long polls wait for a change
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._wakeup: asyncio.Condition | None = None
        self.port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """What to give PTB as ``base_url`` (TELEGRAM_API_URL)."""
        return f"http://127.0.0.1:{self.port}/bot"

    def start(self) -> BotApiStandin:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._start_server())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="bot-api-standin", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("stand-in did not start")
        return self

    async def _start_server(self) -> None:
        self._wakeup = asyncio.Condition()
        # Room for the 50 MB Telegram accepts (aiohttp's default body limit is 1 MB).
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES + 1_000_000)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            self._closing = True
            if self._wakeup is not None:
                async with self._wakeup:
                    self._wakeup.notify_all()  # end waiting long polls now
            if self._runner is not None:
                await self._runner.cleanup()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        loop.close()
        self._loop = None

    def __enter__(self) -> BotApiStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ the model

    def add_user(
        self,
        user_id: int,
        first_name: str,
        username: str | None = None,
        last_name: str | None = None,
        started: bool = True,
    ) -> JSON:
        """A person; ``started`` means they have pressed Start in a private chat with the bot."""
        user: JSON = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        with self._lock:
            self.users[user_id] = user
            chat = {"id": user_id, "type": "private", "first_name": first_name}
            if username:
                chat["username"] = username
            self.chats[user_id] = chat
            if started:
                self.started.add(user_id)
        return user

    def add_group(self, chat_id: int, title: str, kind: str = "supergroup") -> JSON:
        """A group chat the bot is a member of."""
        assert chat_id < 0
        chat = {"id": chat_id, "type": kind, "title": title}
        with self._lock:
            self.chats[chat_id] = chat
        return chat

    def rename(self, user_id: int, first_name: str, last_name: str | None = None) -> JSON:
        """The person changes their name in Telegram's settings: their next messages and
        presses carry it (messages already sent keep the name they had)."""
        with self._lock:
            user = {k: v for k, v in self.users[user_id].items() if k != "last_name"}
            user["first_name"] = first_name
            if last_name:
                user["last_name"] = last_name
            self.users[user_id] = user
            chat = {**self.chats[user_id], "first_name": first_name}
            chat.pop("last_name", None)
            if last_name:
                chat["last_name"] = last_name
            self.chats[user_id] = chat
        return user

    def block(self, user_id: int) -> None:
        """The person blocks the bot (sending to them gets 403 from now on)."""
        with self._lock:
            self.blocked.add(user_id)

    def _push(self, update: JSON) -> int:
        with self._lock:
            update_id = next(self._update_ids)
            update = {"update_id": update_id, **update}
            self.pending.append(update)
            self.pushed[update_id] = update
            self._version += 1
        self._notify()
        return update_id

    def redeliver(self, update_id: int) -> None:
        """Offer an update again, as Telegram does when the bot that got it died before
        confirming it (its next getUpdates offset never came)."""
        with self._lock:
            self.pending.append(self.pushed[update_id])
            self.pending.sort(key=lambda u: u["update_id"])
            self.confirmed_below = min(self.confirmed_below, update_id)
            self._version += 1
        self._notify()

    def _notify(self) -> None:
        loop, cond = self._loop, self._wakeup
        if loop is None or cond is None:
            return

        async def wake() -> None:
            async with cond:
                cond.notify_all()

        asyncio.run_coroutine_threadsafe(wake(), loop)

    def user_says(self, user_id: int, text: str, chat_id: int | None = None) -> int:
        """Inject a text message from a person, in their private chat with the bot (default)
        or in a group.  A leading ``/command`` gets its ``bot_command`` entity as Telegram
        sends it.  Returns the update id."""
        with self._lock:
            user = self.users[user_id]
            chat_id = user_id if chat_id is None else chat_id
            chat = self.chats[chat_id]
            if chat["type"] == "private":
                self.started.add(user_id)  # writing to the bot starts the chat
                self.blocked.discard(user_id)
            message: JSON = {
                "message_id": next(self._message_ids),
                "from": user,
                "chat": chat,
                "date": int(time.time()),
                "text": text,
            }
            if text.startswith("/"):
                token = text.split(maxsplit=1)[0]
                message["entities"] = [
                    {"type": "bot_command", "offset": 0, "length": utf16_len(token)}
                ]
            self.messages[(chat_id, message["message_id"])] = message
        return self._push({"message": message})

    def press(self, user_id: int, message: JSON, label: str | None = None) -> int:
        """Inject a press of an inline button of a message the bot sent (the first button,
        or the one with this label).  Returns the update id."""
        with self._lock:
            current = self.messages[(message["chat"]["id"], message["message_id"])]
            rows = (current.get("reply_markup") or {}).get("inline_keyboard") or []
            buttons = [b for row in rows for b in row]
            if label is not None:
                buttons = [b for b in buttons if b["text"] == label]
            if not buttons:
                raise AssertionError(f"no button {label!r} on message {current!r}")
            query = {
                "id": str(next(self._query_ids)),
                "from": self.users[user_id],
                "message": json.loads(json.dumps(current)),  # as it is now
                "chat_instance": str(abs(current["chat"]["id"])),
                "data": buttons[0]["callback_data"],
            }
            self.issued_queries.add(query["id"])
        return self._push({"callback_query": query})

    def press_data(self, user_id: int, message: JSON, data: str) -> int:
        """Inject a press with arbitrary callback data (a forged or stale button)."""
        with self._lock:
            current = self.messages[(message["chat"]["id"], message["message_id"])]
            query = {
                "id": str(next(self._query_ids)),
                "from": self.users[user_id],
                "message": json.loads(json.dumps(current)),  # as it is now
                "chat_instance": "1",
                "data": data,
            }
            self.issued_queries.add(query["id"])
        return self._push({"callback_query": query})

    # ------------------------------------------------------------------ failures

    def fail(
        self,
        method: str,
        status: int = 500,
        description: str | None = None,
        *,
        retry_after: int | None = None,
        chat_id: int | None = None,
        times: int = 1,
        delay: float = 0.0,
        migrate_to_chat_id: int | None = None,
    ) -> Rule:
        """The next ``times`` calls of ``method`` (to ``chat_id``, if given) fail."""
        if description is None:
            description = {
                429: f"Too Many Requests: retry after {retry_after}",
                403: "Forbidden: bot was blocked by the user",
                400: "Bad Request: chat not found",
                502: "Bad Gateway",
            }.get(status, "Internal Server Error")
        rule = Rule(
            method,
            status,
            description,
            retry_after,
            chat_id,
            times,
            delay=delay,
            migrate_to_chat_id=migrate_to_chat_id,
        )
        with self._lock:
            self.rules.append(rule)
        return rule

    def drop(self, method: str, times: int = 1, delay: float = 0.0) -> Rule:
        """The next ``times`` calls of ``method`` lose their connection (after ``delay``)."""
        rule = Rule(method, times=times, drop=True, delay=delay)
        with self._lock:
            self.rules.append(rule)
        return rule

    # ------------------------------------------------------------------ inspection

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method.lower() == method.lower()]

    def sent(self, chat_id: int | None = None) -> list[JSON]:
        """Messages the bot sent successfully (current state, e.g. after edits)."""
        with self._lock:
            out = [
                m
                for (cid, _), m in sorted(self.messages.items(), key=lambda kv: kv[0][1])
                if m["from"]["id"] == self.bot_user["id"] and (chat_id is None or cid == chat_id)
            ]
        return [json.loads(json.dumps(m)) for m in out]

    def texts(self, chat_id: int) -> list[str]:
        """Texts of the text messages the bot sent (documents have none)."""
        return [m["text"] for m in self.sent(chat_id) if "text" in m]

    def documents(self, chat_id: int | None = None) -> list[JSON]:
        """Documents the bot sent successfully, in order: ``chat_id``, ``message_id``,
        ``file_name``, ``content`` (the bytes), ``caption`` (None without one),
        ``mime_type``, ``file_id``.  Their messages are in :meth:`sent` too."""
        with self._lock:
            return [dict(d) for d in self._documents if chat_id is None or d["chat_id"] == chat_id]

    def message(self, chat_id: int, message_id: int) -> JSON:
        with self._lock:
            return json.loads(json.dumps(self.messages[(chat_id, message_id)]))

    def wait_for_text(
        self, chat_id: int, needle: str, timeout: float = 30.0, after: int = 0
    ) -> JSON:
        """The first message the bot sent to ``chat_id`` (from the ``after``-th on) whose
        text contains ``needle`` (case-insensitive)."""

        def find() -> JSON | None:
            for m in self.sent(chat_id)[after:]:
                if needle.lower() in m.get("text", "").lower():
                    return m
            return None

        return wait_until(find, timeout, f"a message to {chat_id} containing {needle!r}")

    def wait_for_calls(self, method: str, count: int = 1, timeout: float = 30.0) -> list[Call]:
        return wait_until(
            lambda: len(self.calls_to(method)) >= count and self.calls_to(method),
            timeout,
            f"{count} call(s) of {method}",
        )

    # ------------------------------------------------------------------ rate limits

    def rate_limited(self) -> int:
        """How many sends the limits answered 429 (the :meth:`fail` rules not counted)."""
        with self._lock:
            return len(self._limited)

    def answered_429(self) -> int:
        """How many calls were answered 429, by the limits or by :meth:`fail` rules."""
        with self._lock:
            return sum(1 for c in self.calls if c.status == 429)

    def rate_limited_calls(self) -> list[Call]:
        """The sends the limits answered 429, in order (``Call.limited_by``: which scopes)."""
        with self._lock:
            return list(self._limited)

    def accepted_times(self, kind: str) -> dict[int, list[float]]:
        """For a scope kind (``bot``, ``chat``, ``group``): each scope's key (the chat id; the
        bot's id for ``bot``) -> the ``time.monotonic()`` times of the sends the limits let
        through (recorded even when no limits are enforced)."""
        with self._lock:
            return {key: list(times) for key, times in self._accepted[kind].items()}

    def peak(self, kind: str, window: float) -> int:
        """The most sends let through in one scope of ``kind`` within any ``window`` seconds
        (a closed interval).  A bucket of rate r and burst b allows at most b + floor(window*r)."""
        with self._lock:
            scopes = list(self._accepted[kind].values())
        return max((_peak(times, window) for times in scopes), default=0)

    def limits_report(self) -> JSON:
        """The limits and the counts: sends let through and refused per kind, and the peaks
        per second and per minute."""
        with self._lock:
            refused = {k: sum(k in c.limited_by for c in self._limited) for k in LIMIT_KINDS}
            accepted = {
                k: sum(len(times) for times in self._accepted[k].values()) for k in LIMIT_KINDS
            }
            report: JSON = {
                "limits": None if self.limits is None else dict(vars(self.limits)),
                "rate_limited": len(self._limited),
                "rate_limited_by_kind": refused,
                "accepted": accepted,
            }
        report["peak_per_second"] = {k: self.peak(k, 1.0) for k in LIMIT_KINDS}
        report["peak_per_minute"] = {k: self.peak(k, 60.0) for k in LIMIT_KINDS}
        return report

    def _limit_scopes(self, method: str, params: JSON) -> list[tuple[str, int]]:
        """The (kind, key) scopes a call counts against."""
        if method.lower() not in LIMITED_METHODS:
            return []
        scopes = [("bot", int(self.bot_user["id"]))]
        chat_id = params.get("chat_id")
        if isinstance(chat_id, int) and chat_id != 0:
            scopes.append(("chat" if chat_id > 0 else "group", chat_id))
        return scopes

    def _check_limits(self, method: str, params: JSON) -> tuple[tuple[str, ...], float]:
        """Let a send through (record it and use its budget: returns ``((), 0.0)``) or refuse
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

    # ------------------------------------------------------------------ HTTP

    async def _params(self, request: web.Request) -> JSON:
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    params.update(body)
            else:
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, str):
                        params[key] = value
                    elif isinstance(value, FileField):  # a multipart file part
                        params[key] = Upload(value.filename, value.content_type, value.file.read())
        return _coerce(params)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params = await self._params(request)
        call = Call(method, params)
        with self._lock:
            self.calls.append(call)  # at arrival, so a test sees a long poll in flight
        if request.match_info["token"] != self.token:
            return self._record(call, 401, self._error(401, "Unauthorized"))

        with self._lock:
            rule = next((r for r in self.rules if r.matches(method, params)), None)
            if rule is not None:
                rule.times -= 1
        if rule is not None:
            if rule.delay:
                await asyncio.sleep(rule.delay)
            if rule.drop:
                call.status = 0
                assert request.transport is not None
                request.transport.close()
                return web.Response(status=500)  # never reaches the client
            error = self._error(rule.status, rule.description)
            if rule.retry_after is not None:
                error["parameters"] = {"retry_after": rule.retry_after}
            if rule.migrate_to_chat_id is not None:
                error["parameters"] = {"migrate_to_chat_id": rule.migrate_to_chat_id}
            return self._record(call, rule.status, error)

        with self._lock:
            refused, wait = self._check_limits(method, params)
            if refused:
                # Telegram's flood control: 429, the wait in whole seconds, nothing sent.
                retry_after = max(1, math.ceil(wait))
                call.limited_by = refused
                self._limited.append(call)
                error = self._error(429, f"Too Many Requests: retry after {retry_after}")
                error["parameters"] = {"retry_after": retry_after}
                return self._record(call, 429, error)

        handler = getattr(self, f"_api_{method.lower()}", None)
        if handler is None:
            return self._record(call, 404, self._error(404, "Not Found"))
        try:
            status, body = await handler(params)
        except (KeyError, TypeError, ValueError) as exc:
            status, body = 400, self._error(400, f"Bad Request: {exc!r}")
        return self._record(call, status, body)

    def _record(self, call: Call, status: int, body: JSON) -> web.Response:
        with self._lock:
            call.status, call.response = status, body
        return web.json_response(body, status=status)

    @staticmethod
    def _error(code: int, description: str) -> JSON:
        return {"ok": False, "error_code": code, "description": description}

    @staticmethod
    def _ok(result: Any) -> tuple[int, JSON]:
        return 200, {"ok": True, "result": result}

    # ------------------------------------------------------------------ Bot API methods

    async def _api_getme(self, params: JSON) -> tuple[int, JSON]:
        return self._ok(
            {
                **self.bot_user,
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        )

    async def _api_deletewebhook(self, params: JSON) -> tuple[int, JSON]:
        return self._ok(True)

    async def _api_getwebhookinfo(self, params: JSON) -> tuple[int, JSON]:
        return self._ok({"url": "", "has_custom_certificate": False, "pending_update_count": 0})

    async def _api_setmycommands(self, params: JSON) -> tuple[int, JSON]:
        commands = params.get("commands")
        if not isinstance(commands, list) or not all(
            isinstance(c, dict) and c.get("command") and c.get("description") for c in commands
        ):
            return 400, self._error(400, "Bad Request: commands are invalid")
        with self._lock:
            self.commands = commands
        return self._ok(True)

    async def _api_getmycommands(self, params: JSON) -> tuple[int, JSON]:
        with self._lock:
            return self._ok(list(self.commands))

    async def _api_getupdates(self, params: JSON) -> tuple[int, JSON]:
        offset = params.get("offset")
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        with self._lock:
            self._poll_generation += 1
            generation = self._poll_generation
            if isinstance(offset, int) and offset > 0:
                # Confirm everything below the offset: gone for good.
                self.pending = [u for u in self.pending if u["update_id"] >= offset]
                self.confirmed_below = max(self.confirmed_below, offset)
            elif isinstance(offset, int) and offset < 0:
                self.pending = self.pending[offset:]
            self._version += 1
        self._notify()  # a waiting older poll sees it was superseded
        deadline = time.monotonic() + timeout
        cond = self._wakeup
        assert cond is not None
        while True:
            with self._lock:
                if self._poll_generation != generation:
                    return 409, self._error(
                        409,
                        "Conflict: terminated by other getUpdates request; make sure that "
                        "only one bot instance is running",
                    )
                ready = self.pending[:limit]
                seen = self._version
            remaining = deadline - time.monotonic()
            if ready or remaining <= 0 or self._closing:
                return self._ok(json.loads(json.dumps(ready)))
            # Wait for a change after `seen`: a push in between is not missed.
            async with cond:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(
                        cond.wait_for(lambda seen=seen: self._version != seen or self._closing),
                        remaining,
                    )

    def _check_markup(self, markup: Any) -> str | None:
        if markup is None:
            return None
        if not isinstance(markup, dict):
            return "Bad Request: can't parse reply keyboard markup JSON object"
        for row in markup.get("inline_keyboard", []):
            for button in row:
                if not button.get("text"):
                    return "Bad Request: text buttons are unallowed in the inline keyboard"
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode("utf-8")) <= 64:
                    return "Bad Request: BUTTON_DATA_INVALID"
        return None

    def _writable_chat(self, chat_id: Any) -> tuple[JSON | None, tuple[int, JSON] | None]:
        """The chat the bot may write to, or the error Telegram answers (under the lock)."""
        chat = self.chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            return None, (400, self._error(400, "Bad Request: chat not found"))
        if chat["type"] == "private":
            if chat_id in self.blocked:
                return None, (403, self._error(403, "Forbidden: bot was blocked by the user"))
            if chat_id not in self.started:
                return None, (
                    403,
                    self._error(403, "Forbidden: bot can't initiate conversation with a user"),
                )
        return chat, None

    async def _api_sendmessage(self, params: JSON) -> tuple[int, JSON]:
        chat_id = params.get("chat_id")
        text = params.get("text") or ""
        with self._lock:
            chat, refusal = self._writable_chat(chat_id)
            if refusal is not None:
                return refusal
            assert chat is not None
            if not text.strip():
                return 400, self._error(400, "Bad Request: message text is empty")
            if utf16_len(text) > 4096:
                return 400, self._error(400, "Bad Request: message is too long")
            markup = params.get("reply_markup")
            problem = self._check_markup(markup)
            if problem:
                return 400, self._error(400, problem)
            message: JSON = {
                "message_id": next(self._message_ids),
                "from": self.bot_user,
                "chat": chat,
                "date": int(time.time()),
                "text": text,
            }
            if params.get("parse_mode"):
                message["parse_mode_used"] = params["parse_mode"]  # not Telegram's; for tests
            if markup and markup.get("inline_keyboard"):
                message["reply_markup"] = markup
            self.messages[(chat_id, message["message_id"])] = message
        return self._ok(message)

    async def _api_senddocument(self, params: JSON) -> tuple[int, JSON]:
        chat_id = params.get("chat_id")
        document = params.get("document")
        caption = params.get("caption")
        with self._lock:
            chat, refusal = self._writable_chat(chat_id)
            if refusal is not None:
                return refusal
            assert chat is not None and isinstance(chat_id, int)
            if isinstance(document, str):  # the file_id of an earlier upload (or a URL)
                upload = self.files.get(document)
                if upload is None:
                    return 400, self._error(
                        400, "Bad Request: wrong file identifier/HTTP URL specified"
                    )
                file_id = document
            elif isinstance(document, Upload):
                upload, file_id = document, ""
            else:
                return 400, self._error(400, "Bad Request: there is no document in the request")
            if not upload.content:
                return 400, self._error(400, "Bad Request: file must be non-empty")
            if len(upload.content) > MAX_UPLOAD_BYTES:
                return 413, self._error(413, "Request Entity Too Large")
            if (refusal := self._caption_refusal(caption)) is not None:
                return refusal
            if not file_id:
                number = next(self._file_ids)
                file_id = f"BQACAgIAAxkDAAI{number:08d}"
                self.files[file_id] = upload
            else:
                number = int(file_id[-8:])
            file_name = upload.filename or "document"
            mime_type = upload.content_type
            if not mime_type or mime_type == "application/octet-stream":
                guessed = mimetypes.guess_type(file_name, strict=False)[0]
                mime_type = guessed or "application/octet-stream"
            attached = {
                "file_name": file_name,
                "mime_type": mime_type,
                "file_id": file_id,
                "file_unique_id": f"AgAD{number:08d}",
                "file_size": len(upload.content),
            }
            message = self._file_message(chat, "document", attached, caption)
            if params.get("parse_mode"):
                message["parse_mode_used"] = params["parse_mode"]  # not Telegram's; for tests
            self.messages[(chat_id, message["message_id"])] = message
            self._documents.append(
                {
                    "chat_id": chat_id,
                    "message_id": message["message_id"],
                    "file_name": file_name,
                    "content": upload.content,
                    "caption": caption or None,
                    "mime_type": mime_type,
                    "file_id": file_id,
                }
            )
        return self._ok(message)

    def _caption_refusal(self, caption: Any) -> tuple[int, JSON] | None:
        """Telegram's answer to a caption it refuses; None for a caption it takes."""
        if caption is not None and not isinstance(caption, str):
            return 400, self._error(400, "Bad Request: can't parse caption")
        if caption and utf16_len(caption) > MAX_CAPTION_LENGTH:
            return 400, self._error(400, "Bad Request: message caption is too long")
        return None

    def _file_message(self, chat: JSON, kind: str, media: Any, caption: str | None) -> JSON:
        """The bot's new message with a file (``kind``: its field, "document" or "photo")."""
        message: JSON = {
            "message_id": next(self._message_ids),
            "from": self.bot_user,
            "chat": chat,
            "date": int(time.time()),
            kind: media,
        }
        if caption:
            message["caption"] = caption
        return message

    async def _api_sendphoto(self, params: JSON) -> tuple[int, JSON]:
        """A photo, uploaded multipart (``photo``), to any chat, groups included; the
        message's ``photo`` is its sizes (one here, as Telegram's smallest answer has)."""
        chat_id = params.get("chat_id")
        photo = params.get("photo")
        caption = params.get("caption")
        with self._lock:
            chat, refusal = self._writable_chat(chat_id)
            if refusal is not None:
                return refusal
            assert chat is not None and isinstance(chat_id, int)
            if not isinstance(photo, Upload) or not photo.content:
                return 400, self._error(400, "Bad Request: there is no photo in the request")
            if len(photo.content) > MAX_PHOTO_BYTES:
                return 400, self._error(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
            if (refusal := self._caption_refusal(caption)) is not None:
                return refusal
            number = next(self._file_ids)
            size = {
                "file_id": f"AgACAgIAAxkDAAI{number:08d}",
                "file_unique_id": f"AQAD{number:08d}",
                "width": 700,
                "height": 360,
                "file_size": len(photo.content),
            }
            message = self._file_message(chat, "photo", [size], caption)
            self.messages[(chat_id, message["message_id"])] = message
            self._photos.append(
                {
                    "chat_id": chat_id,
                    "message_id": message["message_id"],
                    "content": photo.content,
                    "caption": caption or None,
                }
            )
        return self._ok(message)

    def photos(self, chat_id: int | None = None) -> list[JSON]:
        """Photos the bot sent, in order: ``chat_id``, ``message_id``, ``content`` (the
        bytes), ``caption``."""
        with self._lock:
            return [dict(p) for p in self._photos if chat_id is None or p["chat_id"] == chat_id]

    def _bot_message(self, params: JSON) -> JSON | None:
        key = (params.get("chat_id"), params.get("message_id"))
        message = self.messages.get(key)  # type: ignore[arg-type]
        if message is None or message["from"]["id"] != self.bot_user["id"]:
            return None
        return message

    async def _api_editmessagereplymarkup(self, params: JSON) -> tuple[int, JSON]:
        with self._lock:
            message = self._bot_message(params)
            if message is None:
                return 400, self._error(400, "Bad Request: message to edit not found")
            markup = params.get("reply_markup")
            problem = self._check_markup(markup)
            if problem:
                return 400, self._error(400, problem)
            new = markup if markup and markup.get("inline_keyboard") else None
            if new == message.get("reply_markup"):
                return 400, self._error(
                    400,
                    "Bad Request: message is not modified: specified new message content "
                    "and reply markup are exactly the same as a current content and reply "
                    "markup of the message",
                )
            if new is None:
                message.pop("reply_markup", None)
            else:
                message["reply_markup"] = new
            message["edit_date"] = int(time.time())
            return self._ok(message)

    async def _api_editmessagetext(self, params: JSON) -> tuple[int, JSON]:
        with self._lock:
            message = self._bot_message(params)
            if message is None:
                return 400, self._error(400, "Bad Request: message to edit not found")
            if "text" not in message:
                return 400, self._error(400, "Bad Request: there is no text in the message to edit")
            text = params.get("text") or ""
            if not text.strip():
                return 400, self._error(400, "Bad Request: message text is empty")
            markup = params.get("reply_markup")
            problem = self._check_markup(markup)
            if problem:
                return 400, self._error(400, problem)
            new = markup if markup and markup.get("inline_keyboard") else None
            if text == message["text"] and new == message.get("reply_markup"):
                return 400, self._error(400, "Bad Request: message is not modified")
            message["text"] = text
            if new is None:
                message.pop("reply_markup", None)
            else:
                message["reply_markup"] = new
            message["edit_date"] = int(time.time())
            return self._ok(message)

    async def _api_answercallbackquery(self, params: JSON) -> tuple[int, JSON]:
        query_id = str(params.get("callback_query_id"))
        with self._lock:
            if query_id in self.answered_queries or query_id not in self.issued_queries:
                return 400, self._error(
                    400,
                    "Bad Request: query is too old and response timeout expired or query ID "
                    "is invalid",
                )
            self.answered_queries[query_id] = params
        return self._ok(True)
