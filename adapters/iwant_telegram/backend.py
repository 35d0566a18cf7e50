"""IWantTelegram: an errbot backend on python-telegram-bot 22's async Bot API client.

errbot's bundled Telegram backend calls PTB 13's synchronous API, which PTB 22 turned into
coroutines; this one runs long polling on an asyncio loop of its own instead.

Threads: errbot's ``serve_forever`` calls :meth:`serve_once` on the main thread, which runs
the event loop (getUpdates, sending).  Incoming messages go to errbot's blocking
``callback_message`` on a one-thread executor (errbot then runs commands in its own pool),
so the loop never blocks on a plugin; ``send_message`` (and ``send_file``, for documents)
is called from errbot's command threads and plugin pollers and submits its coroutine to
the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import logging
import os
import re
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import telegram
from errbot.backends.base import ONLINE, Identifier, Message, Room, RoomOccupant
from errbot.core import ErrBot
from iwant_platform import buttons as button_extras
from iwant_platform import redaction
from iwant_platform.contract import (
    Budget,
    Button,
    Capabilities,
    LocalId,
    Outgoing,
    Spend,
)
from iwant_platform.errbot_backends import ErrbotChat
from iwant_platform.shutdown import RecentKeys, close_loop, stop_on_signals
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

from .ids import (
    PeopleDirectory,
    RoomsNotSupportedError,
    TelegramPerson,
    TelegramRoom,
    TelegramRoomOccupant,
)
from .util import (
    MAX_CAPTION_LENGTH,
    MAX_MESSAGE_LENGTH,
    MAX_UPLOAD_BYTES,
    ButtonCommands,
    OffsetStore,
    TelegramPermanentError,
    TelegramSendError,
    TelegramUndeliverable,
    is_unreachable_chat,
    normalize_incoming,
    split_text,
    truncate_text,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.telegram.org/bot"
#: A bot token: the bot's id, a colon, and the secret.
TELEGRAM_TOKEN = re.compile(r"(?<![0-9])\d{5,}:[A-Za-z0-9_-]{30,}")

#: Commands shown in Telegram's command menu (setMyCommands).
BOT_COMMANDS = (("iwant", "Find company: /iwant coffee 10:00, /iwant list, /iwant help"),)

__all__ = [
    "IWantTelegramBackend",
    "TelegramPermanentError",
    "TelegramSendError",
    "TelegramUndeliverable",
]


def _seconds(exc: RetryAfter) -> float:
    # Read the timedelta PTB keeps; the public attribute warns about its int form.
    value = getattr(exc, "_retry_after", None)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return float(exc.retry_after)  # type: ignore[arg-type]


def _event_key(update: telegram.Update) -> tuple[object, ...]:
    """What an update carries, the same however often Telegram offers it: a message (its
    chat and id) or a button press (its query id)."""
    if update.message is not None:
        return ("message", update.message.chat.id, update.message.message_id)
    if update.callback_query is not None:
        return ("button", update.callback_query.id)
    return ("update", update.update_id)


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, "") or default)
    except ValueError:
        return default


class IWantTelegramBackend(ErrBot, ErrbotChat):  # type: ignore[misc]  # errbot is untyped
    """errbot backend for Telegram (long polling, private chats and groups, inline buttons),
    and iwant's ``ChatPlatform``."""

    platform = "telegram"
    capabilities = Capabilities(buttons=True, files=True, images=True, mentions=True)
    # Telegram's published limits, bursts kept below what it lets through.
    budgets = (
        Budget("bot", "30/s burst 15", about="every message of the bot"),
        Budget("chat", "1/s burst 2", about="one private chat"),
        Budget("group", "20/min burst 3", about="one group"),
    )
    paused_by_rate_limit = "bot"
    secret_patterns = (TELEGRAM_TOKEN,)
    secret_variables = ("TELEGRAM_TOKEN",)
    command = "/iwant"

    #: getUpdates long-poll timeout in seconds (Telegram allows up to 50).
    poll_timeout: float = _env_float("TELEGRAM_POLL_TIMEOUT", 30)
    #: 429s waited out inside one send before it raises a transient error.
    max_flood_retries: int = 3
    #: a 429 asking for a longer wait than this is not waited out inside a send.
    max_flood_wait: float = 30.0
    #: overall bound on one send_message call (all parts, all 429 retries).
    send_timeout: float = 120.0
    #: backoff bounds after network errors while polling.
    min_backoff: float = 0.5
    max_backoff: float = 60.0

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        # PTB 22 warns on every RetryAfter unless its time periods are timedeltas; this
        # backend reads them either way, and nothing else in the process uses PTB.
        os.environ.setdefault("PTB_TIMEDELTA", "true")
        identity = getattr(config, "BOT_IDENTITY", None) or {}
        self._token: str = (identity.get("token") or "").strip()
        if not self._token:
            log.critical("No Telegram token: set TELEGRAM_TOKEN to the token @BotFather gave you.")
            sys.exit(1)
        redaction.install(self.secret_patterns, self.secret_variables, values=(self._token,))
        for name in ("httpx", "httpcore"):  # they log every request URL, token included, at INFO
            logging.getLogger(name).setLevel(logging.WARNING)
        self._base_url: str = identity.get("base_url") or DEFAULT_BASE_URL

        # The part before ":" is the bot's public id; keying files by it keeps two bots
        # sharing a data directory apart without ever writing the secret part to disk names.
        bot_key = self._token.split(":", 1)[0]
        if not bot_key.isdigit():
            bot_key = "bot"
        data_dir = Path(getattr(config, "BOT_DATA_DIR", ".") or ".")
        self._offsets = OffsetStore(data_dir / f"telegram-{bot_key}-offset.json")
        self._people = PeopleDirectory(data_dir / f"telegram-{bot_key}-people.json")
        self._buttons = ButtonCommands(data_dir / f"telegram-{bot_key}-buttons.json")

        self.bot_identifier: TelegramPerson | None = None
        self._tg: telegram.Bot | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._stop_event: asyncio.Event | None = None
        self._stopping = threading.Event()
        self._shut_down = False
        # Updates handled in this run: one offered again is not handed to errbot twice.
        self._seen = RecentKeys()
        # One thread keeps incoming messages in order; errbot runs commands in its own pool.
        self._incoming = ThreadPoolExecutor(max_workers=1, thread_name_prefix="telegram-in")

    # ------------------------------------------------------------------ errbot contract

    def set_message_size_limit(self, limit: int = 32768, hard_limit: int = 32768) -> None:
        # send_message splits at Telegram's 4096 UTF-16 units itself (keeping buttons on the
        # last part), so errbot's own character-based split is only a coarse outer bound.
        super().set_message_size_limit(limit, hard_limit)

    @property
    def mode(self) -> str:
        return "telegram"

    def build_identifier(self, txtrep: str) -> Identifier:
        """``"4242"`` → person (and their private chat); ``"-100123"`` → group chat;
        ``"@username"`` → a person the bot has seen."""
        text = str(txtrep).strip()
        if text.startswith("@"):
            person = self._people.by_username(text)
            if person is None:
                raise ValueError(
                    f"Unknown Telegram username {text}: Telegram tells bots about a person "
                    "only after they write to the bot."
                )
            return person
        if re.fullmatch(r"[+-]?\d+", text):
            chat_id = int(text)
            if chat_id > 0:
                return self._people.person(chat_id)
            if chat_id < 0:
                return TelegramRoom(chat_id)
        raise ValueError(
            f"Not a Telegram identifier: {text!r} (expected a numeric id or @username)"
        )

    def build_reply(
        self,
        msg: Message,
        text: str | None = None,
        private: bool = False,
        threaded: bool = False,
    ) -> Message:
        response = self.build_message(text or "")
        response.frm = self.bot_identifier
        if private:
            response.to = msg.frm
        else:
            response.to = msg.frm if msg.is_direct else msg.to
        return response

    def prefix_groupchat_reply(self, message: Message, identifier: Identifier) -> None:
        super().prefix_groupchat_reply(message, identifier)
        nick = getattr(identifier, "nick", None)
        name = f"@{nick}" if nick else getattr(identifier, "fullname", str(identifier))
        message.body = f"{name}: {message.body}"

    def is_from_self(self, msg: Message) -> bool:
        me = self.bot_identifier
        return me is not None and getattr(msg.frm, "person", None) == me.person

    def change_presence(self, status: str = ONLINE, message: str = "") -> None:
        # Telegram has no presence for bots.
        pass

    def query_room(self, room: str) -> Room:
        """A group chat by its numeric id (the Bot API cannot look groups up by name)."""
        identifier = self.build_identifier(room)
        if not isinstance(identifier, TelegramRoom):
            raise RoomsNotSupportedError(f"{room!r} is not a group chat id (those are negative)")
        return identifier

    def rooms(self) -> list[Room]:
        raise RoomsNotSupportedError("The Bot API cannot list the groups a bot is in.")

    def shutdown(self) -> None:
        if self._shut_down:
            return
        self._shut_down = True
        self.stop()
        super().shutdown()
        self._incoming.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ running

    def stop(self) -> None:
        """Ask the polling loop to finish (thread-safe, idempotent)."""
        self._stopping.set()
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(event.set)

    def serve_once(self) -> bool:
        """Connect, activate plugins, poll until stopped.

        Returns True when asked to stop (errbot then shuts down) and False when the
        connection could not be made (errbot retries with its backoff).  Network errors
        while polling are retried inside, without deactivating the plugins.
        """
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
            self._tg = None
            close_loop(loop)

    async def _serve(self) -> bool:
        loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        if self._stopping.is_set():
            return True
        signals = stop_on_signals(loop, self.stop)
        bot = telegram.Bot(
            self._token,
            base_url=self._base_url,
            # errbot sends from up to BOT_ASYNC_POOLSIZE threads at once; a send waiting for
            # a free connection is better than one failing after PTB's default 1 s.
            request=HTTPXRequest(
                connection_pool_size=16, read_timeout=15, write_timeout=15, pool_timeout=30
            ),
            # getUpdates gets its own connection so a long poll never delays a send.
            get_updates_request=HTTPXRequest(connection_pool_size=1, read_timeout=10),
        )
        try:
            try:
                await bot.initialize()  # getMe
            except InvalidToken:
                log.critical("Telegram rejected the bot token (check TELEGRAM_TOKEN).")
                raise SystemExit(2) from None
            except TelegramError as exc:
                log.warning("Could not reach the Telegram Bot API: %s", exc)
                return False
            me = bot.bot
            self.bot_identifier = TelegramPerson(me.id, me.first_name, me.last_name, me.username)
            log.info("Connected to Telegram as @%s (%s)", me.username, me.id)
            await self._announce(bot)
            self._tg = bot
            self.reset_reconnection_count()
            # Plugin activation may send messages, which needs this loop running: not inline.
            await loop.run_in_executor(self._incoming, self.connect_callback)
            try:
                await self._poll(bot)
            finally:
                await loop.run_in_executor(self._incoming, self.disconnect_callback)
                self._tg = None
            return True
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            with contextlib.suppress(Exception):
                await bot.shutdown()

    async def _announce(self, bot: telegram.Bot) -> None:
        """Start-up calls whose failure must not stop the bot."""
        try:
            # A webhook makes getUpdates fail with 409; pending updates are kept.
            await bot.delete_webhook(drop_pending_updates=False)
        except TelegramError as exc:
            log.warning("deleteWebhook failed: %s", exc)
        try:
            await bot.set_my_commands(
                [telegram.BotCommand(name, text) for name, text in BOT_COMMANDS]
            )
        except TelegramError as exc:
            log.warning("setMyCommands failed: %s", exc)

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        assert self._stop_event is not None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), timeout=seconds)

    async def _poll(self, bot: telegram.Bot) -> None:
        assert self._stop_event is not None
        stop = self._stop_event
        offset = self._offsets.load()
        log.info("Polling for updates from offset %s", offset)
        backoff = self.min_backoff
        while not stop.is_set() and not self._stopping.is_set():
            fetch = asyncio.ensure_future(
                bot.get_updates(
                    offset=offset,
                    timeout=int(self.poll_timeout),
                    allowed_updates=["message", "callback_query"],
                )
            )
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({fetch, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if not fetch.done():
                fetch.cancel()
                with contextlib.suppress(BaseException):
                    await fetch
                break
            try:
                updates = fetch.result()
            except RetryAfter as exc:
                wait = min(_seconds(exc), self.max_backoff)
                log.warning("getUpdates flood control: waiting %.1f s", wait)
                await self._sleep_unless_stopped(wait)
                continue
            except InvalidToken:
                log.critical("Telegram rejected the bot token while polling.")
                raise SystemExit(2) from None
            except Conflict as exc:
                log.error("getUpdates conflict (another instance or a webhook?): %s", exc)
                await self._sleep_unless_stopped(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            except (NetworkError, TimedOut, TelegramError) as exc:
                log.warning("getUpdates failed (%s); retrying in %.1f s", exc, backoff)
                await self._sleep_unless_stopped(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            backoff = self.min_backoff
            for update in updates:
                if stop.is_set():
                    break  # the rest stays unconfirmed on Telegram's side for the next run
                # Telegram has dropped every update below `offset`, so whatever it returns is
                # unconfirmed, even a lower id (ids restart at random after a week without
                # updates); but one whose confirmation it missed comes again, and was handled.
                if not self._seen.first(_event_key(update)):
                    log.info("Update %s offered again: handled already", update.update_id)
                else:
                    try:
                        await self._handle_update(bot, update)
                    except Exception:
                        log.exception("Failed to handle update %s", update.update_id)
                offset = update.update_id + 1
                try:
                    self._offsets.save(offset)
                except OSError:
                    log.exception("Could not save the update offset")

    # ------------------------------------------------------------------ incoming

    async def _handle_update(self, bot: telegram.Bot, update: telegram.Update) -> None:
        if update.message is not None:
            await self._on_message(update.message)
        elif update.callback_query is not None:
            await self._on_button(bot, update.callback_query)
        else:
            log.debug("Ignoring update %s of another kind", update.update_id)

    def _remember(self, user: telegram.User) -> None:
        self._people.remember(user.id, user.first_name, user.last_name, user.username)

    def _endpoints(
        self, chat: telegram.Chat, user: telegram.User
    ) -> tuple[TelegramPerson, Identifier]:
        """errbot's ``frm`` and ``to`` for something ``user`` did in ``chat``."""
        if chat.type == telegram.constants.ChatType.PRIVATE:
            frm = TelegramPerson(user.id, user.first_name, user.last_name, user.username)
            assert self.bot_identifier is not None
            return frm, self.bot_identifier
        room = TelegramRoom(chat.id, chat.title)
        occupant = TelegramRoomOccupant(
            user.id, room, user.first_name, user.last_name, user.username
        )
        return occupant, room

    def _aliases(self) -> dict[str, str]:
        # A private chat starts with /start (the Start button); answer it with iwant's help
        # when the plugin is there, errbot's otherwise.
        with self._gbl:
            has_iwant_help = "iwant_help" in self.commands
        return {"start": "iwant help" if has_iwant_help else "help"}

    async def _on_message(self, message: telegram.Message) -> None:
        user = message.from_user
        if message.text is None or user is None or user.is_bot:
            return
        self._remember(user)
        entities = message.entities or ()
        is_command = any(
            e.type == telegram.constants.MessageEntityType.BOT_COMMAND and e.offset == 0
            for e in entities
        )
        assert self.bot_identifier is not None
        text = normalize_incoming(
            message.text,
            is_command=is_command,
            bot_username=self.bot_identifier.nick,
            prefix=self.bot_config.BOT_PREFIX,
            aliases=self._aliases(),
        )
        if text is None:
            return  # a /command@OtherBot
        msg = self.build_message(text)
        msg.frm, msg.to = self._endpoints(message.chat, user)
        msg.extras["message_id"] = message.message_id
        msg.extras["chat_id"] = message.chat.id
        # The plugin's idempotency key: an update re-sent after a crash has the same ids.
        msg.extras["event_id"] = f"{message.chat.id}:{message.message_id}"
        await self._to_errbot(msg)

    async def _on_button(self, bot: telegram.Bot, query: telegram.CallbackQuery) -> None:
        self._remember(query.from_user)
        command = self._buttons.decode(query.data) if query.data else None
        try:
            await bot.answer_callback_query(
                query.id, text=None if command else "This button no longer works."
            )
        except TelegramError as exc:  # e.g. too old: the press still counts
            log.warning("answerCallbackQuery failed: %s", exc)
        message = query.message
        if command is None or message is None:
            return
        chat = message.chat
        if chat.type == telegram.constants.ChatType.PRIVATE and chat.id == query.from_user.id:
            # In a DM the presser owns the message: drop the buttons so they are not pressed
            # twice.  In a group, someone else's press must leave the message as it is.
            try:
                await bot.edit_message_reply_markup(
                    chat_id=chat.id, message_id=message.message_id, reply_markup=None
                )
            except TelegramError as exc:
                log.info("Could not remove the buttons: %s", exc)
        msg = self.build_message(f"{self.bot_config.BOT_PREFIX}{command}")
        msg.frm, msg.to = self._endpoints(chat, query.from_user)
        msg.extras["message_id"] = message.message_id
        msg.extras["chat_id"] = chat.id
        msg.extras["callback_query_id"] = query.id
        msg.extras["event_id"] = f"button:{query.id}"
        await self._to_errbot(msg)

    async def _to_errbot(self, msg: Message) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._incoming, self.callback_message, msg)

    # ------------------------------------------------------------------ iwant's contract

    def send_file(self, to: LocalId, filename: str, content: bytes, caption: str) -> None:
        self.upload(self.build_identifier(to), filename, content, caption)

    def send_image(self, to: LocalId, filename: str, content: bytes, caption: str) -> None:
        """A photo (sendPhoto) in the chat ``to``, a group's too, ``caption`` under it (cut
        to Telegram's 1,024 units). Raises like ``send_message``."""
        loop, bot = self._loop, self._tg
        if loop is None or bot is None:
            raise TelegramSendError("Not connected to Telegram")
        if threading.get_ident() == self._loop_thread:
            raise RuntimeError("send_image cannot be called on the backend's event loop")
        chat_id = self._chat_id(self.build_identifier(to))
        text = truncate_text(caption or "", MAX_CAPTION_LENGTH)

        def upload(target: int) -> Awaitable[object]:
            photo = telegram.InputFile(content, filename=filename.strip() or "image.png")
            return bot.send_photo(chat_id=target, photo=photo, caption=text or None)

        self._run_send(loop, self._deliver(chat_id, upload, "photo"), chat_id)
        log.debug("Sent photo %s (%d bytes) to %s", filename, len(content), chat_id)

    def spends(self, out: Outgoing) -> Sequence[Spend]:
        if out.members is not None:
            return ()  # a bot cannot open a group conversation on Telegram
        kind = "group" if out.to.startswith("-") else "chat"
        return (Spend("bot"), Spend(kind, out.to))

    # ------------------------------------------------------------------ outgoing

    def _chat_id(self, identifier: Identifier) -> int:
        # Sending to a person in a group (msg.frm of a group message) means a DM, as
        # errbot's build_reply(private=True) intends; rooms get the group itself.
        if isinstance(identifier, (TelegramPerson, TelegramRoom)):
            return identifier.id
        if isinstance(identifier, RoomOccupant):
            return int(str(identifier.person))
        return int(str(identifier))

    def _markup(self, buttons: Sequence[Button]) -> telegram.InlineKeyboardMarkup | None:
        if not buttons:
            return None
        keys = [
            telegram.InlineKeyboardButton(b.label, callback_data=self._buttons.encode(b.command))
            for b in buttons
        ]
        rows = [keys] if len(keys) <= 3 else [[k] for k in keys]
        return telegram.InlineKeyboardMarkup(rows)

    def send_message(self, msg: Message) -> None:
        """Send (in parts of at most 4,096 units; buttons on the last part) or raise.

        Raises :class:`TelegramUndeliverable` (``undeliverable = True``) when Telegram will
        not deliver to the chat (403, chat not found) and :class:`TelegramSendError` for
        failures worth retrying (network, 5xx, flood control beyond the retries here).
        """
        loop, bot = self._loop, self._tg
        if loop is None or bot is None:
            raise TelegramSendError("Not connected to Telegram")
        if threading.get_ident() == self._loop_thread:
            raise RuntimeError("send_message cannot be called on the backend's event loop")
        chat_id = self._chat_id(msg.to)
        parts = split_text(msg.body or "", MAX_MESSAGE_LENGTH)
        if not parts:
            log.warning("Not sending an empty message to %s", chat_id)
            return
        markup = self._markup(button_extras.of(msg))
        self._run_send(loop, self._send_parts(bot, chat_id, parts, markup), chat_id)
        super().send_message(msg)

    def upload(self, to: Identifier, filename: str, content: bytes, caption: str) -> None:
        """Send ``content`` as a document named ``filename`` to ``to``'s private chat, or raise.

        ``to`` is a person (a person seen in a group gets it privately, as with
        ``build_reply(private=True)``); a group chat is refused with :class:`ValueError`, since
        what is sent this way (an export) is private.  ``caption`` is cut to Telegram's 1,024
        units.  Callable from any thread but the backend's loop; raises like
        :meth:`send_message` (:class:`TelegramUndeliverable`, :class:`TelegramSendError`,
        :class:`TelegramPermanentError`, the latter also for a file over 50 MB).
        """
        loop, bot = self._loop, self._tg
        if loop is None or bot is None:
            raise TelegramSendError("Not connected to Telegram")
        if threading.get_ident() == self._loop_thread:
            raise RuntimeError("send_file cannot be called on the backend's event loop")
        if isinstance(to, TelegramRoom):
            raise ValueError(f"send_file sends to a person, not to group chat {to.id}")
        chat_id = self._chat_id(to)
        if chat_id <= 0:
            raise ValueError(f"send_file sends to a person, not to chat {chat_id}")
        if len(content) > MAX_UPLOAD_BYTES:
            raise TelegramPermanentError(
                f"File too large for Telegram: {len(content)} bytes (at most {MAX_UPLOAD_BYTES})",
                chat_id=chat_id,
            )
        name = filename.strip() or "file"
        text = truncate_text(caption or "", MAX_CAPTION_LENGTH)

        def upload(target: int) -> Awaitable[object]:
            # No parse_mode, as for texts: the caption is shown exactly as written.
            return bot.send_document(
                chat_id=target, document=content, filename=name, caption=text or None
            )

        self._run_send(loop, self._deliver(chat_id, upload, "document"), chat_id)
        log.debug("Sent %s (%d bytes) to %s", name, len(content), chat_id)

    def _run_send(
        self,
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, object],
        chat_id: int,
    ) -> None:
        """Run a sending coroutine on the backend's loop from another thread and wait for it
        (at most :attr:`send_timeout`), turning a closed loop or a timeout into send errors."""
        try:
            future = asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError as exc:  # loop closed under us: shutting down
            coro.close()
            raise TelegramSendError("Not connected to Telegram", chat_id=chat_id) from exc
        try:
            future.result(timeout=self.send_timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TelegramSendError("Timed out sending to Telegram", chat_id=chat_id) from None
        except concurrent.futures.CancelledError:
            raise TelegramSendError("Sending cancelled (shutting down)", chat_id=chat_id) from None

    async def _send_parts(
        self,
        bot: telegram.Bot,
        chat_id: int,
        parts: list[str],
        markup: telegram.InlineKeyboardMarkup | None,
    ) -> None:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            chat_id = await self._send_one(bot, chat_id, part, markup if last else None)

    async def _send_one(
        self,
        bot: telegram.Bot,
        chat_id: int,
        text: str,
        markup: telegram.InlineKeyboardMarkup | None,
    ) -> int:
        """Send one part; returns the chat id it went to (it changes if a group migrated)."""

        def send(target: int) -> Awaitable[object]:
            # No parse_mode: the text is shown exactly as written, so user text cannot
            # inject formatting or links.
            return bot.send_message(chat_id=target, text=text, reply_markup=markup)

        return await self._deliver(chat_id, send, "message")

    def _report_rate_limit(self, wait: float) -> None:
        try:
            self.rate_limited(wait)
        except Exception:
            log.exception("reporting a 429 failed")

    async def _deliver(
        self, chat_id: int, send: Callable[[int], Awaitable[object]], what: str
    ) -> int:
        """Await ``send(chat_id)`` until it succeeds, waiting out short flood control and
        following a group's migration; returns the chat id it went to.  Failures become
        :class:`TelegramSendError` and its subclasses (``what`` names the thing refused)."""
        floods = 0
        migrated = False
        while True:
            try:
                await send(chat_id)
                return chat_id
            except RetryAfter as exc:
                wait = _seconds(exc)
                floods += 1
                if self.rate_limit_listener is not None:
                    # Every process of the bot pauses, not only this send; the report is a
                    # database write, so it runs off the event loop.
                    asyncio.get_running_loop().run_in_executor(None, self._report_rate_limit, wait)
                if floods > self.max_flood_retries or wait > self.max_flood_wait:
                    raise TelegramSendError(
                        f"Telegram flood control: retry after {wait:g} s",
                        chat_id=chat_id,
                        retry_after=wait,
                    ) from exc
                log.info("Flood control on chat %s: waiting %.1f s", chat_id, wait)
                await asyncio.sleep(wait)
            except ChatMigrated as exc:
                if migrated:
                    raise TelegramSendError(str(exc), chat_id=chat_id) from exc
                log.info("Group %s became supergroup %s", chat_id, exc.new_chat_id)
                chat_id, migrated = int(exc.new_chat_id), True
            except Forbidden as exc:
                raise TelegramUndeliverable(
                    f"Telegram will not deliver to {chat_id}: {exc.message}", chat_id=chat_id
                ) from exc
            except BadRequest as exc:
                if is_unreachable_chat(exc.message):
                    raise TelegramUndeliverable(
                        f"Telegram will not deliver to {chat_id}: {exc.message}",
                        chat_id=chat_id,
                    ) from exc
                raise TelegramPermanentError(
                    f"Telegram refused the {what}: {exc.message}", chat_id=chat_id
                ) from exc
            except TelegramError as exc:  # NetworkError, TimedOut, 5xx, ...
                raise TelegramSendError(
                    f"Sending to Telegram failed: {exc.message}", chat_id=chat_id
                ) from exc
