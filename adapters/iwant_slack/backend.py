"""errbot backend for Slack: events over Socket Mode, sending over the Web API (slack-sdk).

One ErrBot subclass, ``IWantSlackBackend`` (errbot name ``IWantSlack``). What it adds to a
plain errbot backend, and why:

- Socket Mode with our own reconnect loop (slack-sdk's built-in client, its auto-reconnect
  off): a dropped socket is noticed within a second and reopened with exponential backoff,
  while plugins stay active (no errbot disconnect/connect cycle for a network blip).
- Every envelope is acknowledged before it is handled; Slack's redeliveries, and the
  ``message`` + ``app_mention`` pair one mention produces, are handled once.
- ``!iwant …`` typed, ``@iwant …`` mentioned and ``/iwant …`` slash-commanded all reach
  errbot as ``!iwant …`` from the person, in the channel where they typed it.
- Buttons (``iwant_platform.buttons``) render as Block Kit; a
  click runs the command as the clicker and, if the message was theirs, updates it.
- ``send_message`` raises on failure (``undeliverable = True`` when it can never work).
- ``send_file`` uploads bytes as a file into a person's DM (files_upload_v2); raises alike.
- A ``user_change`` event (a renamed person) replaces their cached ``users.info`` at once.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import select
import socket
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from errbot.backends.base import (
    ONLINE,
    Identifier,
    Message,
    RoomDoesNotExistError,
    RoomOccupant,
)
from errbot.core import ErrBot
from iwant_platform import buttons as button_extras
from iwant_platform import redaction
from iwant_platform.contract import (
    Budget,
    Capabilities,
    LocalId,
    Outgoing,
    Spend,
)
from iwant_platform.errbot_backends import ErrbotChat
from iwant_platform.shutdown import RecentKeys, graceful_sigterm
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.webhook import WebhookClient

from .ids import (
    SlackPerson,
    SlackRoom,
    SlackRoomOccupant,
    UserDirectory,
    parse_identifier,
    set_current_directory,
)
from .text import (
    button_blocks,
    clicked_blocks,
    incoming_text,
    is_our_button,
    outgoing_text,
    owner_of_block,
    slash_text,
)
from .web import (
    AUTH_ERRORS,
    SlackDeliveryError,
    SlackUndeliverable,
    api_error,
    delivery_error,
    make_web_client,
)

log = logging.getLogger(__name__)

# Message subtypes that are people writing; everything else (edits, joins, bot posts) is not.
HUMAN_SUBTYPES = {None, "thread_broadcast", "file_share"}
HELLO_TIMEOUT = 15.0
FIRST_BACKOFF, MAX_BACKOFF = 1.0, 60.0
# Slack's limit for conversations.open with several users.
MAX_GROUP_DM = 8
#: Slack's bot, user and app-level tokens.
SLACK_TOKEN = re.compile(r"\b(?:xox[abposr]|xapp)-[A-Za-z0-9-]+")


class _FatalAuth(Exception):
    def __init__(self, which: str, error: str) -> None:
        super().__init__(f"Slack rejected the {which}: {error}")
        self.which, self.error = which, error


class IWantSlackBackend(ErrBot, ErrbotChat):  # type: ignore[misc]  # errbot is untyped
    """errbot backend for Slack (Socket Mode + Web API), and iwant's ``ChatPlatform``."""

    platform = "slack"
    capabilities = Capabilities(
        buttons=True,
        group_conversations=True,
        group_max=MAX_GROUP_DM,
        threads=True,
        files=True,
        images=True,
        mentions=True,
    )
    # Slack's published limits, bursts kept below theirs so that network jitter between
    # reserving a slot and arriving never makes a 429.
    budgets = (
        Budget("channel", "1/s burst 2", most_sends=2, about="chat.postMessage, per channel or DM"),
        Budget("workspace", "600/min burst 10", most_sends=2, about="chat.postMessage, all of it"),
        Budget("open", "50/min burst 5", about="conversations.open, for a group DM (Tier 3)"),
    )
    paused_by_rate_limit = "workspace"
    secret_patterns = (SLACK_TOKEN,)
    secret_variables = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN")
    command = "/iwant"

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        redaction.install(self.secret_patterns, self.secret_variables)
        identity = getattr(config, "BOT_IDENTITY", {}) or {}
        self._token = (identity.get("token") or "").strip()
        self._app_token = (identity.get("app_token") or "").strip()
        base_url = (identity.get("base_url") or "").strip() or None
        if not self._token or not self._app_token:
            log.critical(
                "The IWantSlack backend needs SLACK_BOT_TOKEN (xoxb-…) and SLACK_APP_TOKEN "
                "(xapp-…, an app-level token with connections:write); see docs/slack.md."
            )
            sys.exit(1)
        redaction.install(values=(self._token, self._app_token))
        self.web = make_web_client(self._token, base_url, on_rate_limited=self.rate_limited)
        self.directory = UserDirectory(self.web)
        set_current_directory(self.directory)
        self.bot_identifier: SlackPerson | None = None
        self.bot_user_id: str | None = None
        self.bot_id: str | None = None
        self._socket: SocketModeClient | None = None
        self._stop = threading.Event()
        self._plugins_ready = threading.Event()
        self._seen = RecentKeys()
        self._exit_code: int | None = None
        graceful_sigterm()

    # ------------------------------------------------------------------ errbot basics

    @property
    def mode(self) -> str:
        return "slack"

    def set_message_size_limit(self, limit: int = 4000, hard_limit: int = 40000) -> None:
        # Slack truncates text past 40000 characters and advises staying under 4000.
        super().set_message_size_limit(limit, hard_limit)

    def build_identifier(self, txtrep: str) -> SlackPerson | SlackRoom | SlackRoomOccupant:
        identifier = parse_identifier(txtrep, self.directory)
        if (
            self.bot_identifier is not None
            and type(identifier) is SlackPerson
            and identifier.person == self.bot_user_id
        ):
            return self.bot_identifier
        return identifier

    def is_from_self(self, msg: Message) -> bool:
        return getattr(msg.frm, "person", None) == self.bot_user_id

    def build_reply(
        self, msg: Message, text: str | None = None, private: bool = False, threaded: bool = False
    ) -> Message:
        response = self.build_message(text or "")
        response.frm = self.bot_identifier
        frm = msg.frm
        in_room = isinstance(frm, RoomOccupant) and not private
        if in_room:
            response.to = frm.room
            if msg.extras.get("thread_ts"):
                response.extras["thread_ts"] = msg.extras["thread_ts"]
            elif threaded and msg.extras.get("slack_ts"):
                response.extras["thread_ts"] = msg.extras["slack_ts"]
        else:
            response.to = SlackPerson(frm.person, self.directory)
        # Who the reply is for: their click on its buttons may update it.
        response.extras["slack_for"] = frm.person
        if in_room and msg.extras.get("slack_response_url"):
            response.extras["slack_response_url"] = msg.extras["slack_response_url"]
        return response

    def change_presence(self, status: str = ONLINE, message: str = "") -> None:
        log.debug("Presence is not settable with a bot token; ignoring %s", status)

    def query_room(self, room: str) -> SlackRoom:
        try:
            identifier = parse_identifier(room, self.directory)
            if isinstance(identifier, SlackRoom):
                return identifier
        except ValueError:
            pass
        name = room.strip().lstrip("#")
        for candidate in self.rooms():
            if candidate.name == name:
                return candidate
        raise RoomDoesNotExistError(f"The bot is in no Slack channel named {name!r}.")

    def rooms(self) -> list[SlackRoom]:
        """Channels the bot is a member of."""
        found: list[SlackRoom] = []
        cursor = None
        for _ in range(50):  # bounded pagination
            response = self.web.users_conversations(
                types="public_channel,private_channel,mpim",
                exclude_archived=True,
                limit=200,
                cursor=cursor,
            )
            found += [SlackRoom(c["id"], self.directory) for c in response["channels"]]
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return found

    # ------------------------------------------------------------------ connection

    def serve_once(self) -> bool:
        """Authenticate, then keep a Socket Mode connection open until shutdown.

        A dropped socket is reopened here, with backoff, without telling errbot: the
        plugins keep running (and keep sending through the Web API) meanwhile."""
        try:
            auth = self.web.auth_test()
        except SlackApiError as exc:
            if api_error(exc) in AUTH_ERRORS:
                return self._fatal(_FatalAuth("bot token (SLACK_BOT_TOKEN)", api_error(exc)))
            raise
        self.bot_user_id = auth["user_id"]
        self.bot_id = auth.get("bot_id")
        self.bot_identifier = SlackPerson(auth["user_id"], self.directory)
        log.info(
            "Slack token accepted: workspace %r, bot user %s", auth.get("team"), auth["user_id"]
        )

        backoff = FIRST_BACKOFF
        while not self._stop.is_set():
            try:
                if self._run_socket_session():
                    backoff = FIRST_BACKOFF  # it worked for a while: start backoff afresh
            except _FatalAuth as exc:
                return self._fatal(exc)
            except Exception as exc:
                log.warning("Slack Socket Mode connection failed: %s", exc)
            if self._stop.is_set():
                break
            delay = backoff + random.uniform(0, backoff / 2)
            log.info("Reconnecting to Slack Socket Mode in %.1f s", delay)
            self._stop.wait(delay)
            backoff = min(backoff * 2, MAX_BACKOFF)
        return True

    def _fatal(self, exc: _FatalAuth) -> bool:
        log.critical("%s. Check the token and the app's installation; stopping.", exc)
        self._exit_code = 1
        return True  # errbot shuts down cleanly; shutdown() then exits non-zero

    def _open_socket_url(self) -> str:
        try:
            response = self.web.apps_connections_open(app_token=self._app_token)
        except SlackApiError as exc:
            if api_error(exc) in AUTH_ERRORS:
                raise _FatalAuth("app-level token (SLACK_APP_TOKEN)", api_error(exc)) from exc
            raise
        return str(response["url"])

    def _run_socket_session(self) -> bool:
        """One Socket Mode connection, from apps.connections.open until it drops.
        Returns True when the connection got as far as Slack's hello."""
        url = self._open_socket_url()
        hello = threading.Event()

        def on_frame(client: Any, message: dict[str, Any], raw: str | None) -> None:
            if message.get("type") == "hello":
                hello.set()

        client = SocketModeClient(
            app_token=self._app_token,
            web_client=self.web,
            auto_reconnect_enabled=False,  # we reconnect, with backoff, in serve_once
            concurrency=8,
        )
        client.message_listeners.append(on_frame)
        client.socket_mode_request_listeners.append(self._on_request)  # type: ignore[arg-type]
        try:
            client.wss_uri = url
            client.connect()
            self._socket = client
            if not self._wait(hello, HELLO_TIMEOUT):
                if not self._stop.is_set():
                    log.warning("Slack sent no hello within %.0f s", HELLO_TIMEOUT)
                return False
            log.info("Connected to Slack (Socket Mode)")
            if not self._plugins_ready.is_set():
                self.connect_callback()  # activates plugins: once, not on every reconnect
                self._plugins_ready.set()
            self.reset_reconnection_count()
            while not self._stop.is_set() and (_alive(client) or self._recheck(client)):
                self._stop.wait(0.2)
            if not self._stop.is_set():
                log.warning("Slack Socket Mode connection dropped")
            return True
        finally:
            self._socket = None
            _close(client)

    def _recheck(self, client: SocketModeClient) -> bool:
        # slack-sdk swaps sessions when Slack asks for a refresh; do not mistake the
        # moment of the swap for a drop.
        self._stop.wait(0.3)
        return _alive(client)

    def _wait(self, event: threading.Event, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self._stop.is_set() and time.monotonic() < deadline:
            if event.wait(0.1):
                return True
        return event.is_set()

    def shutdown(self) -> None:
        self._stop.set()
        client = self._socket
        if client is not None:
            _close(client)
        super().shutdown()
        if self._exit_code is not None:
            raise SystemExit(self._exit_code)

    # ------------------------------------------------------------------ incoming

    def _on_request(self, client: SocketModeClient, req: SocketModeRequest) -> None:
        # Acknowledge first: Slack redelivers envelopes not acknowledged within 3 s.
        try:
            client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
        except Exception as exc:
            log.warning("Could not acknowledge envelope %s: %s", req.envelope_id, exc)
        if not self._seen.first(("envelope", req.envelope_id)):
            return
        # Plugins activate right after hello; hold early envelopes until they have.
        if not self._wait(self._plugins_ready, 60):
            log.warning("Dropping a %s envelope: plugins never became ready", req.type)
            return
        try:
            payload = req.payload or {}
            if req.type == "events_api":
                self._handle_event(payload.get("event") or {}, req.envelope_id)
            elif req.type == "slash_commands":
                self._handle_slash(payload, req.envelope_id)
            elif req.type == "interactive":
                self._handle_interactive(payload, req.envelope_id)
            else:
                log.debug("Ignoring Socket Mode envelope of type %s", req.type)
        except Exception:
            log.exception("Failed to handle a Slack %s envelope", req.type)

    def _sender(self, user_id: str, channel_id: str) -> SlackPerson:
        """Who spoke, and where: a person in a DM, an occupant in a channel."""
        if channel_id.startswith("D"):
            return SlackPerson(user_id, self.directory)
        return SlackRoomOccupant(user_id, channel_id, self.directory)

    def _deliver(self, text: str, user_id: str, channel_id: str, extras: dict[str, Any]) -> None:
        frm = self._sender(user_id, channel_id)
        msg = Message(text, extras={"slack_channel": channel_id, **extras})
        msg.frm = frm
        msg.to = frm.room if isinstance(frm, SlackRoomOccupant) else self.bot_identifier
        self.callback_message(msg)

    def _handle_event(self, event: dict[str, Any], envelope_id: str) -> None:
        if event.get("type") == "user_change":
            # A profile changed (a new name, a new time zone): Slack sends the whole user,
            # so names shown from now on are the new ones, not those cached for an hour.
            user = event.get("user") or {}
            if user.get("id"):
                self.directory.remember(str(user["id"]), dict(user))
            return
        if event.get("type") not in ("message", "app_mention"):
            return
        user, channel, ts = event.get("user"), event.get("channel"), event.get("ts")
        if event.get("subtype") not in HUMAN_SUBTYPES or event.get("bot_id"):
            return
        if not user or not channel or user == self.bot_user_id:
            return
        # A mention arrives twice (message + app_mention) with one ts; handle it once.
        if not self._seen.first(("message", channel, ts or envelope_id)):
            return
        text = incoming_text(event.get("text") or "", self.bot_user_id, self.prefix)
        # The plugin's idempotency key: Slack re-sends an event it thinks was not received.
        extras = {
            "slack_event": event,
            "slack_ts": ts,
            "event_id": f"{channel}:{ts or envelope_id}",
        }
        if event.get("thread_ts"):
            extras["thread_ts"] = event["thread_ts"]
        self._deliver(text, user, channel, extras)

    def _handle_slash(self, payload: dict[str, Any], envelope_id: str) -> None:
        if not self._seen.first(("slash", payload.get("trigger_id") or envelope_id)):
            return
        text = slash_text(payload.get("command", ""), payload.get("text", ""), self.prefix)
        extras = {
            "slack_command": payload,
            "slack_response_url": payload.get("response_url"),
            "event_id": f"slash:{payload.get('trigger_id') or envelope_id}",
        }
        self._deliver(text, payload["user_id"], payload["channel_id"], extras)

    def _handle_interactive(self, payload: dict[str, Any], envelope_id: str) -> None:
        if payload.get("type") != "block_actions":
            return
        user = (payload.get("user") or {}).get("id")
        container = payload.get("container") or {}
        channel = container.get("channel_id") or (payload.get("channel") or {}).get("id")
        message = payload.get("message") or {}
        if not user or not channel:
            return
        for action in payload.get("actions") or []:
            if not is_our_button(action):
                continue
            key = ("click", payload.get("trigger_id") or envelope_id, action.get("action_id"))
            if not self._seen.first(key):
                continue
            label = (action.get("text") or {}).get("text", "")
            if owner_of_block(action.get("block_id")) == user and message.get("ts"):
                self._mark_clicked(channel, message, user, label)
            extras = {
                "slack_action": action,
                "slack_message_ts": message.get("ts"),
                "event_id": "click:" + ":".join(str(part) for part in key[1:]),
            }
            self._deliver(self.prefix + str(action.get("value", "")), user, channel, extras)

    def _mark_clicked(self, channel: str, message: dict[str, Any], user: str, label: str) -> None:
        """Show the click on the message itself: its buttons go, a line says who chose what."""
        try:
            self.web.chat_update(
                channel=channel,
                ts=message["ts"],
                text=message.get("text") or " ",
                blocks=clicked_blocks(message.get("blocks") or [], user, label),
            )
        except Exception as exc:
            log.warning("chat.update after a click failed: %s", delivery_error(exc, "update"))

    # ------------------------------------------------------------------ outgoing

    def _channel_for(self, to: Any, *, post: bool = False) -> str:
        """Where a message to ``to`` goes. A person (or a person in a room) privately: for
        chat.postMessage (``post``) their user id, which posts in the app's DM with them
        without a conversations.open (Tier 3, 50 a minute: a lunch rush would wait minutes
        for it; Slack answers with the DM's id, kept for ``SlackPerson.channelid``); for other
        methods, their DM channel (conversations.open, cached)."""
        if isinstance(to, SlackRoom):
            return to.id
        if isinstance(to, SlackPerson):
            if post:
                return to.person
            try:
                return self.directory.dm_channel(to.person)
            except Exception as exc:
                raise delivery_error(exc, f"conversations.open with {to.person}") from exc
        raise SlackUndeliverable(f"cannot send to {to!r}: not a Slack identifier")

    @staticmethod
    def _owner(msg: Message) -> str | None:
        if isinstance(msg.to, SlackPerson):
            return msg.to.person
        owner = msg.extras.get("slack_for")
        return str(owner) if owner else None

    def send_message(self, msg: Message) -> Message:
        """Post a message; raises SlackDeliveryError (``undeliverable`` when permanent)."""
        super().send_message(msg)
        channel = self._channel_for(msg.to, post=True)
        text = outgoing_text(msg.body)
        kwargs: dict[str, Any] = {
            "channel": channel,
            "text": text,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if msg.extras.get("thread_ts"):
            kwargs["thread_ts"] = msg.extras["thread_ts"]
        buttons = button_extras.of(msg)
        if buttons:
            kwargs["blocks"] = button_blocks(text, buttons, self._owner(msg))
        try:
            response = self.web.chat_postMessage(**kwargs)
        except Exception as exc:
            error = delivery_error(exc, f"chat.postMessage to {channel}")
            if error.error in ("not_in_channel", "channel_not_found") and msg.extras.get(
                "slack_response_url"
            ):
                # A slash command in a channel the bot is not in: answer through its
                # response_url, which Slack accepts for 30 minutes.
                self._respond_via_url(msg.extras["slack_response_url"], kwargs)
                return msg
            raise error from exc
        if isinstance(msg.to, SlackPerson) and str(response.get("channel", "")).startswith("D"):
            self.directory.remember_dm(msg.to.person, str(response["channel"]))
        msg.extras["slack_channel"] = response.get("channel", channel)
        msg.extras["slack_ts"] = response.get("ts")
        return msg

    def _respond_via_url(self, url: str, kwargs: dict[str, Any]) -> None:
        try:
            response = WebhookClient(url, timeout=15).send(
                text=kwargs["text"], blocks=kwargs.get("blocks"), response_type="in_channel"
            )
        except Exception as exc:
            raise SlackDeliveryError(f"response_url: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            raise SlackUndeliverable(f"response_url answered {response.status_code}")

    def upload(self, to: Identifier, filename: str, content: bytes, caption: str) -> None:
        """Upload ``content`` as a file named ``filename`` into the direct-message channel of
        the person ``to`` (conversations.open, as send_message), with ``caption`` as its
        comment. Uses files_upload_v2: files.getUploadURLExternal, a POST of the bytes to
        the URL it gives, files.completeUploadExternal. Raises like send_message
        (SlackDeliveryError, ``undeliverable`` when permanent), so a caller can fall back to
        text. Never posts into a room: a person in a room gets the file privately."""
        if not isinstance(to, SlackPerson):
            raise SlackUndeliverable(f"cannot send a file to {to!r}: not a Slack person")
        channel = self._channel_for(to)
        try:
            response = self.web.files_upload_v2(
                channel=channel,
                content=bytes(content),
                filename=filename,
                title=filename,
                initial_comment=outgoing_text(caption) if caption else None,
            )
        except Exception as exc:
            raise delivery_error(exc, f"file upload to {channel}") from exc
        file_ids = [f.get("id") for f in response.get("files") or []]
        log.debug("Uploaded %s (%d bytes) to %s as %s", filename, len(content), channel, file_ids)

    # ------------------------------------------------------------------ iwant's contract

    def timezone_of(self, identifier: Any) -> str | None:
        return identifier.timezone if isinstance(identifier, SlackPerson) else None

    def send_file(self, to: LocalId, filename: str, content: bytes, caption: str) -> None:
        self.upload(self.build_identifier(to), filename, content, caption)

    def send_image(self, to: LocalId, filename: str, content: bytes, caption: str) -> None:
        """An image shared into the channel ``to`` (files_upload_v2), ``caption`` as its
        comment. Raises like ``send_message``."""
        channel = self._channel_for(self.build_identifier(to))
        try:
            self.web.files_upload_v2(
                channel=channel,
                content=bytes(content),
                filename=filename,
                title=filename,
                initial_comment=outgoing_text(caption) if caption else None,
            )
        except Exception as exc:
            raise delivery_error(exc, f"image upload to {channel}") from exc

    def spends(self, out: Outgoing) -> Sequence[Spend]:
        if out.members is None:
            return (Spend("workspace"), Spend("channel", out.to))
        if len(out.members) > MAX_GROUP_DM:
            # A short message in the channel, then the members in its thread: two posts.
            return (Spend("workspace", sends=2), Spend("channel", out.room, 2)) if out.room else ()
        return (Spend("workspace"), Spend("open"))

    def open_group(self, members: Sequence[LocalId], text: str, room: LocalId | None) -> None:
        self.open_group_dm(list(members), text, room)

    def open_group_dm(self, person_ids: list[str], text: str, room: str | None = None) -> None:
        """Open one group DM with these people (Slack user ids) and post ``text`` in it, so a
        formed group can talk at once. A group larger than a group DM holds is announced in a
        thread in ``room`` (the channel it formed in), naming everyone, or, formed in direct
        messages, not at all: each member has had their own message. Raises like
        send_message."""
        ids: list[str] = []
        for raw in person_ids:
            user_id = str(raw).strip().removeprefix("slack:")
            if user_id and user_id != self.bot_user_id and user_id not in ids:
                ids.append(user_id)
        if not ids:
            raise SlackUndeliverable("a group DM needs at least one person")
        if len(ids) > MAX_GROUP_DM:
            if room:
                self._announce_in_thread(room, ids, text)
            return
        try:
            channel = self.web.conversations_open(users=",".join(ids))["channel"]["id"]
            self.web.chat_postMessage(
                channel=channel, text=outgoing_text(text), unfurl_links=False, unfurl_media=False
            )
        except Exception as exc:
            raise delivery_error(exc, f"group DM with {len(ids)} people") from exc

    def _announce_in_thread(self, room: str, ids: list[str], text: str) -> None:
        """A big group's hello: a short message in ``room`` and, in its thread, the text with
        every member mentioned (so each is notified and can answer there)."""
        mentions = " ".join(f"<@{user_id}>" for user_id in ids)
        try:
            parent = self.web.chat_postMessage(
                channel=room,
                text=f"A group of {len(ids)} has formed; see the thread.",
                unfurl_links=False,
                unfurl_media=False,
            )
            self.web.chat_postMessage(
                channel=room,
                thread_ts=parent["ts"],
                text=f"{mentions} {outgoing_text(text)}",
                unfurl_links=False,
                unfurl_media=False,
            )
        except Exception as exc:
            raise delivery_error(exc, f"thread for a group of {len(ids)} in {room}") from exc


def _close(client: SocketModeClient) -> None:
    """Close a Socket Mode client now. Shutting the socket down first wakes its reader,
    which otherwise holds the socket for up to its 3 s receive timeout."""
    sock = getattr(client.current_session, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    try:
        client.close()
    except Exception:
        log.debug("closing the Socket Mode client failed", exc_info=True)


def _alive(client: SocketModeClient) -> bool:
    """Is the socket still open? slack-sdk's built-in client only notices a peer that
    closed without a close frame after 4 missed pongs (20 s), so peek for EOF too."""
    if not client.is_connected():
        return False
    session = client.current_session
    sock = getattr(session, "sock", None)
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return True
        # Peek at the raw TCP stream (under TLS too): b"" means the peer has closed it.
        return socket.socket.recv(sock, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except (BlockingIOError, InterruptedError, TimeoutError):
        return True  # nothing to read after all (the reader thread took it): open
    except (OSError, ValueError):
        return False  # closed or reset under us
