"""IWantXMPP: errbot's own XMPP backend (slixmpp), with what it needs to run iwant.

errbot 6.2.1's ``XMPPBackend`` stays the backend: its identifiers (``XMPPPerson``,
``XMPPRoom``, ``XMPPRoomOccupant``), ``build_reply``, rooms and presence handling. This
subclass changes only what does not work or is not enough, each for a reason:

- Serving: errbot calls ``ClientXMPP.process()``, which slixmpp (1.15, the version errbot's
  ``xmpp`` extra pins) no longer has, and ``connect(server)`` with the ``(host, port)``
  tuple as the host, which slixmpp ignores. ``serve_forever`` runs slixmpp's asyncio loop
  itself, connects to ``XMPP_SERVER`` (``host:port``), reconnects when the stream drops,
  and stops cleanly on SIGTERM/SIGINT (plugins deactivated while still connected, then
  the stream closed, so the server keeps what arrives later as offline messages).
- TLS and authentication: ``XMPP_TLS`` is ``starttls`` (the default: the stream must be
  encrypted before the password is sent), ``direct`` (TLS from the first byte, XEP-0368)
  or ``off`` (a local server without certificates: plain connection, SASL PLAIN or SCRAM
  allowed in clear, which slixmpp refuses by default). A login that fails (a wrong password,
  or no TLS where it is required) stops the bot with one line, instead of retrying forever.
- Threads: slixmpp is asyncio and not thread-safe, while errbot sends from its command
  threads and pollers. Sends are handed to the loop (``run_coroutine_threadsafe``), and
  incoming messages go to errbot's blocking ``callback_message`` on one thread of their own
  (in order), so a plugin never blocks the loop.
- Send errors: XMPP reports a failed message later, as an error stanza. Each send waits for
  a ping of the bot's own server (answered after any bounce of the message, as the server
  handles one stream in order), so a person who blocked the bot (XEP-0191) or does not
  exist is ``Undeliverable`` at once, and the room the wish came from is told.
- Old messages: errbot marks every message carrying a delay stamp as history and ignores
  it, which drops the direct messages the server kept while the bot was offline (they
  carry one too). Here only a room's history is dropped (a restart would answer old
  commands again); rooms are joined asking for no history at all, and the bot's own
  messages reflected by a room are not read as commands.
- Event ids: the stanza's id, per sender's session (``ann@example.org/phone#<id>``, as some
  clients count ids from 1 in each session): the engine stores a wish once per id, and
  ``RecentKeys`` drops a stanza delivered twice to this process.
- Person ids: a bare JID (``ann@example.org``), the same in direct messages and rooms. errbot
  names a room's occupant by room and nick, which changes with the nick and differs from
  the direct chat; here it is the occupant's real bare JID where the room shows it (a
  non-anonymous room, or the bot a moderator), else ``room@service/nick``. A private message
  from a room's occupant is a direct message from that occupant, not from the room.
- Identifiers: errbot's ``build_identifier`` asks the server (service discovery) with a
  slixmpp call that now returns a future, and breaks; here a JID is a room if the bot is in
  it or was told to join it, an occupant if its bare part is such a room, else a person.
- Text: sent as written (iwant writes plain text; errbot's markdown-to-text would eat a
  name's underscores and asterisks), never as XHTML-IM.

Settings (environment, read by iwant's config.py into ``BOT_IDENTITY`` or here):
``XMPP_JID``, ``XMPP_PASSWORD``, ``XMPP_SERVER`` (``host:port``; default: the JID's domain,
through DNS SRV), ``XMPP_TLS``, ``XMPP_ROOMS`` (room JIDs to join, comma-separated),
``XMPP_NICK`` (the bot's nick in rooms; default: the JID's local part).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from errbot.backends.base import ONLINE, Message, Room, RoomOccupant
from errbot.backends.xmpp import (
    XMPPBackend,
    XMPPConnection,
    XMPPPerson,
    XMPPRoom,
    XMPPRoomOccupant,
)
from errbot.core import ErrBot
from iwant_platform import redaction
from iwant_platform.contract import (
    Budget,
    Button,
    Capabilities,
    ChatPlatform,
    LocalId,
    Outgoing,
    RetryLater,
    SendError,
    Spend,
    Undeliverable,
)
from iwant_platform.shutdown import RecentKeys
from slixmpp import JID
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.jid import InvalidJID

log = logging.getLogger(__name__)

TLS_MODES = ("starttls", "direct", "off")


def parse_server(server: object) -> tuple[str, int] | None:
    """``XMPP_SERVER`` as ``host:port`` (or errbot's ``(host, port)``); None: DNS SRV."""
    if isinstance(server, (tuple, list)) and len(server) == 2:
        return str(server[0]), int(server[1])
    text = str(server or "").strip()
    if not text:
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"XMPP_SERVER must be host:port, not {text!r}")
    return host.strip("[]"), int(port)


class XMPPOccupant(XMPPRoomOccupant):  # type: ignore[misc]  # errbot is untyped
    """A person in a room, with their real bare JID when the room shows it."""

    def __init__(self, node: str, domain: str, nick: str, room: XMPPRoom, real: str | None):
        super().__init__(node, domain, nick, room)
        self.real = real

    @property
    def aclattr(self) -> str:  # errbot's would be the room's JID
        return self.real or str(self)


class IWantXMPPBackend(XMPPBackend, ChatPlatform):  # type: ignore[misc]
    """errbot's XMPP backend, made to run on slixmpp 1.15, and iwant's ``ChatPlatform``."""

    platform = "xmpp"
    capabilities = Capabilities()  # text: commands written out, no group conversations
    # An XMPP server imposes no message limits on a bot by default: kept only where
    # plugins.cfg sets them ([pacing] xmpp.chat = 1/s).
    budgets = (
        Budget("bot", "", about="every message of the bot"),
        Budget("chat", "", about="one person or room"),
    )
    secret_variables = ("XMPP_PASSWORD",)
    command = ""  # errbot's prefix + iwant: !iwant

    #: Bound on one send (the message and the ping after it).
    send_timeout: float = 30.0
    #: Backoff bounds between reconnection attempts after the stream dropped.
    min_backoff: float = 1.0
    max_backoff: float = 60.0

    def __init__(self, config: Any) -> None:
        identity = getattr(config, "BOT_IDENTITY", None) or {}
        missing = [k for k in ("username", "password") if not str(identity.get(k) or "")]
        if missing:
            log.critical("XMPP needs the bot's account: set XMPP_JID and XMPP_PASSWORD.")
            sys.exit(1)
        self._tls = os.environ.get("XMPP_TLS", "starttls").strip().lower() or "starttls"
        if self._tls not in TLS_MODES:
            log.critical("XMPP_TLS must be one of %s, not %r.", ", ".join(TLS_MODES), self._tls)
            sys.exit(1)
        try:
            self._address = parse_server(identity.get("server"))
        except ValueError as err:
            log.critical("%s", err)
            sys.exit(1)
        redaction.install(
            self.secret_patterns, self.secret_variables, values=(str(identity["password"]),)
        )
        super().__init__(config)
        jid = JID(str(identity["username"]))
        self._nick = os.environ.get("XMPP_NICK", "").strip() or str(jid.user)
        self._room_jids = {
            JID(r.strip()).bare for r in os.environ.get("XMPP_ROOMS", "").split(",") if r.strip()
        }
        client = self.conn.client
        # errbot's connection says "online" as soon as the session starts; here that waits
        # until the plugins are active (connected), or the first messages would find none.
        client.del_event_handler("session_start", self.conn.session_start)
        client.enable_direct_tls = self._tls == "direct"
        client.enable_starttls = self._tls == "starttls"
        client.enable_plaintext = self._tls == "off"
        client.add_event_handler("message_error", self._bounced)
        client.add_event_handler("failed_all_auth", self._failed_auth)

        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._stop_event: asyncio.Event | None = None
        self._stopping = threading.Event()
        self._fatal = False
        self._activated = False
        self._session_up = False
        self._backoff = self.min_backoff
        self._bounces: dict[str, asyncio.Future[Any]] = {}
        self._seen = RecentKeys()
        # One thread keeps incoming messages in order; errbot runs commands in its own pool.
        self._incoming = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xmpp-in")

    def create_connection(self) -> XMPPConnection:
        if self._tls == "off":
            # slixmpp sends no password over an unencrypted stream unless told to.
            feature: dict[str, Any] = dict(getattr(self, "feature", None) or {})
            self.feature = {"unencrypted_plain": True, "unencrypted_scram": True, **feature}
        return super().create_connection()

    # -- errbot's side ---------------------------------------------------------------------

    def build_identifier(self, txtrep: str) -> XMPPPerson | XMPPRoom | XMPPRoomOccupant:
        text = str(txtrep).strip().removeprefix("xmpp:")
        if text.startswith("@") and "@" in text[1:]:
            text = text[1:]  # "@ann@example.org", as a person might write it
        try:
            jid = JID(text)
        except InvalidJID as err:
            raise ValueError(f"not a JID: {text!r}") from err
        if not jid.user:
            raise ValueError(f"not a person's or room's JID: {text!r}")
        if jid.bare in self._rooms_known():
            room = self.query_room(jid.bare)
            if jid.resource:
                real = self._real_jid(jid.bare, jid.resource)
                return XMPPOccupant(jid.user, jid.domain, jid.resource, room, real)
            return room
        return XMPPPerson(jid.user, jid.domain, jid.resource or None)

    def _rooms_known(self) -> set[str]:
        joined = self.conn.client.plugin["xep_0045"].get_joined_rooms()
        return self._room_jids | {JID(r).bare for r in joined}

    def _real_jid(self, room: str, nick: str) -> str | None:
        found = self.conn.client.plugin["xep_0045"].get_jid_property(JID(room), nick, "jid")
        return JID(found).bare if found else None

    def change_presence(self, status: str = ONLINE, message: str = "") -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            client = self.conn.client
            loop.call_soon_threadsafe(lambda: client.send_presence(pshow=status, pstatus=message))

    def incoming_message(self, xmppmsg: Any) -> None:
        """A message stanza with a body (on the loop): to errbot, or dropped (see above)."""
        kind = xmppmsg["type"]
        if kind == "error":
            return  # a bounce: _bounced
        sender = xmppmsg["from"]
        rooms = self._rooms_known()
        if kind == "groupchat":
            room_jid = sender.bare
            nick = sender.resource
            muc = self.conn.client.plugin["xep_0045"]
            ours = muc.our_nicks[None].get(JID(room_jid)) or self._nick
            if not nick or nick == ours:
                return  # the room's own notice, or the bot's message reflected
            if xmppmsg["delay"]["stamp"] is not None:
                log.debug("not answering a room's history: %s", room_jid)
                return
            room = self.query_room(room_jid)
            frm: Any = XMPPOccupant(
                sender.user, sender.domain, nick, room, self._real_jid(room_jid, nick)
            )
            to: Any = room
        elif sender.bare in rooms and sender.resource:
            # A private message from a room's occupant: a direct message from them.
            room = self.query_room(sender.bare)
            real = self._real_jid(sender.bare, sender.resource)
            frm = XMPPOccupant(sender.user, sender.domain, sender.resource, room, real)
            to = self.bot_identifier
        else:
            frm = XMPPPerson(sender.user, sender.domain, sender.resource or None)
            to = self.bot_identifier
        msg = Message(xmppmsg["body"], frm=frm, to=to)
        msg.nick = xmppmsg["mucnick"]
        msg.delayed = False  # a direct message kept while the bot was offline is answered
        if xmppmsg["id"]:
            # Per sender's session (full JID): some clients count ids from 1 in each session.
            event = f"{sender.full}#{xmppmsg['id']}"
            if not self._seen.first(event):
                log.debug("dropped a message delivered twice: %s", event)
                return
            msg.extras["event_id"] = event
        self._incoming.submit(self._hand_to_errbot, msg)

    def _hand_to_errbot(self, msg: Message) -> None:
        try:
            self.callback_message(msg)
        except Exception:
            log.exception("errbot failed on a message")

    def send_message(self, msg: Message) -> None:
        """Everything the bot says goes out here (the plugin's and errbot's own answers);
        raises SendError, Undeliverable or RetryLater."""
        to = msg.to
        if isinstance(to, Room):
            target, kind = str(JID(str(to)).bare), "groupchat"
        else:
            target, kind = str(to), "chat"
        body = msg.body or ""
        if not body.strip():
            log.warning("not sending an empty message to %s", target)
            return
        self._run(self._send(target, body, kind), target)
        ErrBot.send_message(self, msg)  # errbot's callback_botmessage; not XMPPBackend's send

    # -- sending on the loop ---------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, None], target: str) -> None:
        loop = self._loop
        if loop is None or loop.is_closed() or not self._session_up:
            coro.close()
            raise SendError(f"not connected to the XMPP server (to {target})")
        if threading.get_ident() == self._loop_thread:
            loop.create_task(coro)  # never block the loop; errbot does not send from it
            return
        try:
            future = asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError as err:  # the loop closed under us: shutting down
            coro.close()
            raise SendError("not connected to the XMPP server") from err
        try:
            future.result(timeout=self.send_timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise SendError(f"timed out sending to {target}") from None
        except concurrent.futures.CancelledError:
            raise SendError("sending cancelled (shutting down)") from None

    async def _send(self, target: str, body: str, kind: str) -> None:
        client = self.conn.client
        if not self._session_up:
            raise SendError("not connected to the XMPP server")
        stanza = client.make_message(mto=target, mbody=body, mtype=kind)
        stanza_id = stanza["id"] or client.new_id()
        stanza["id"] = stanza_id
        loop = asyncio.get_running_loop()
        bounce: asyncio.Future[Any] = loop.create_future()
        self._bounces[stanza_id] = bounce
        try:
            stanza.send()
            # The server handles one stream in order: its answer to this ping comes after
            # any bounce of the message above.
            try:
                await client.plugin["xep_0199"].send_ping(
                    JID(client.boundjid.domain), timeout=self.send_timeout / 2
                )
            except IqError:
                pass  # an error answer is an answer: it came after the bounce too
            except IqTimeout:
                log.warning("the server did not answer a ping after a message to %s", target)
            if bounce.done():
                raise _send_error(target, bounce.result())
        finally:
            self._bounces.pop(stanza_id, None)

    def _bounced(self, stanza: Any) -> None:
        found = self._bounces.get(stanza["id"])
        if found is not None and not found.done():
            found.set_result(stanza["error"])
        else:
            log.info("a message to %s bounced: %s", stanza["from"], stanza["error"]["condition"])

    # -- running -------------------------------------------------------------------------------

    def serve_forever(self) -> None:
        client = self.conn.client
        loop = client.loop
        asyncio.set_event_loop(loop)
        self._loop, self._loop_thread = loop, threading.get_ident()
        try:
            loop.run_until_complete(self._serve())
        except KeyboardInterrupt:
            log.info("interrupted")
        finally:
            self._session_up = False
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop = None
            loop.close()
            self._incoming.shutdown(wait=False, cancel_futures=True)
        if self._fatal:
            sys.exit(1)

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        client = self.conn.client
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.stop)
        self._connect()
        await self._stop_event.wait()
        log.info("stopping: deactivating plugins, then closing the stream")
        # errbot's shutdown (plugins deactivate) while still connected: a poller's last
        # delivery or a command's answer still goes out.
        await loop.run_in_executor(None, self._errbot_shutdown)
        self._session_up = False
        if client.transport is not None:
            try:
                await asyncio.wait_for(client.disconnect(wait=2.0), timeout=5.0)
            except (TimeoutError, OSError):
                log.warning("the XMPP stream did not close cleanly")

    def _connect(self) -> None:
        if self._address is None:
            self.conn.client.connect()
        else:
            self.conn.client.connect(*self._address)

    def stop(self) -> None:
        """Ask the bot to stop (thread-safe, idempotent)."""
        self._stopping.set()
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(event.set)

    def _errbot_shutdown(self) -> None:
        if self._activated:
            self.disconnect_callback()
        self.shutdown()

    def connected(self, data: Any) -> None:
        """slixmpp's session_start: plugins activate (once), then the bot says it is online
        (the server hands over the messages it kept) and joins its rooms."""
        self._backoff = self.min_backoff
        self.conn.client.loop.create_task(self._session_started())

    async def _session_started(self) -> None:
        loop = asyncio.get_running_loop()
        if not self._activated:
            self._activated = True
            # On errbot's own thread for messages: the first message waits for it.
            await loop.run_in_executor(self._incoming, self._activate)
        if self._stopping.is_set():
            return
        self._session_up = True
        client = self.conn.client
        client.send_presence()
        muc = client.plugin["xep_0045"]
        for room in sorted(self._room_jids):
            try:
                await muc.join_muc_wait(JID(room), self._nick, maxstanzas=0, timeout=30)
                log.info("joined %s as %s", room, self._nick)
            except Exception as err:
                log.error("could not join %s: %s", room, err)

    def _activate(self) -> None:
        self.connect_callback()
        self.reset_reconnection_count()

    def disconnected(self, data: Any) -> None:
        """The stream dropped: connect again with backoff (errbot's plugins stay active)."""
        self._session_up = False
        if self._stopping.is_set():
            return
        wait, self._backoff = self._backoff, min(self._backoff * 2, self.max_backoff)
        log.warning("disconnected from the XMPP server; reconnecting in %g s", wait)
        self.conn.client.loop.call_later(wait, self._reconnect)

    def _reconnect(self) -> None:
        if not self._stopping.is_set() and self.conn.client.transport is None:
            self._connect()

    def _failed_auth(self, data: Any) -> None:
        log.critical(
            "could not log in to the XMPP server: check XMPP_JID and XMPP_PASSWORD, and "
            "XMPP_TLS=%s (no password is sent where TLS is required and missing)",
            self._tls,
        )
        self._fatal = True
        self.stop()

    # -- iwant's side: the contract ----------------------------------------------------------

    def person_id(self, identifier: Any) -> LocalId:
        if isinstance(identifier, XMPPOccupant) and identifier.real:
            return identifier.real
        if isinstance(identifier, RoomOccupant):
            return f"{identifier.node}@{identifier.domain}/{identifier.resource}"
        return f"{identifier.node}@{identifier.domain}"

    def display_name(self, identifier: Any) -> str:
        if isinstance(identifier, RoomOccupant):
            return str(identifier.resource or "")  # the nick
        return str(identifier.node or "")

    def room_id(self, message: Any) -> LocalId | None:
        if isinstance(message.to, Room) and isinstance(message.frm, RoomOccupant):
            return f"{message.frm.node}@{message.frm.domain}"
        return None

    def event_id(self, message: Any) -> str | None:
        found = message.extras.get("event_id")
        return str(found) if found else None

    def bot_key(self) -> str:
        return f"{self.bot_identifier.node}@{self.bot_identifier.domain}"

    def send_text(self, to: LocalId, text: str, buttons: Sequence[Button] = ()) -> None:
        try:
            target = self.build_identifier(to)
        except ValueError as err:
            raise Undeliverable(str(err)) from None
        self.send_message(Message(body=text, frm=self.bot_identifier, to=target))

    def reply(self, message: Any, text: str, buttons: Sequence[Button] = ()) -> None:
        self.send_message(self.build_reply(message, text))

    def spends(self, out: Outgoing) -> Sequence[Spend]:
        if out.members is not None:
            return ()  # a group conversation: XMPP has none here, so nothing is sent
        return (Spend("bot"), Spend("chat", out.to))


def _send_error(target: str, error: Any) -> SendError:
    """The contract's error for a bounce (RFC 6120 §8.3: its type says whether to retry)."""
    condition, kind = str(error["condition"]), str(error["type"])
    said = f"{target} bounced the message: {condition}"
    if kind == "wait":
        return RetryLater(said, 5.0)
    if kind in ("cancel", "auth") or condition in ("forbidden", "not-allowed"):
        return Undeliverable(said)
    return SendError(said)
