"""The ``iwant`` errbot plugin: chat commands and pollers; every decision is the engine's."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast, overload

from errbot import BotPlugin, Message
from errbot.backends.base import RoomOccupant

from iwant_engine import (
    Engine,
    Note,
    OutboxItem,
    Person,
    SettingsError,
    Unavailable,
    UserError,
    redact,
    settings,
)
from iwant_engine.messages import quote, visible

if TYPE_CHECKING:  # errbot is untyped: how ``botcmd`` is used here, for mypy only
    _F = TypeVar("_F", bound=Callable[..., Any])

    @overload
    def botcmd(func: _F, /) -> _F: ...
    @overload
    def botcmd(*, admin_only: bool = ...) -> Callable[[_F], _F]: ...
    def botcmd(*args: Any, **kwargs: Any) -> Any: ...
else:
    from errbot import botcmd

log = logging.getLogger("errbot.plugins.iwant")
REPO = Path(__file__).resolve().parents[2]
LOCAL_MODES = ("text", "test")  # backends where one console plays several people
SLASH_PLATFORMS = ("slack", "telegram")  # where people type /iwant
RATE_LIMIT = 20  # commands per person per minute
ACK_AFTER = timedelta(seconds=1)  # see IWant._acknowledge
MAX_MESSAGE = 1000
EXPORT_FILE = "iwant-export.json"


class Form(NamedTuple):
    """One line of the command table: what follows ``!iwant``, and what it does. (A
    NamedTuple: errbot loads this module without registering it, which dataclasses need.)"""

    example: str
    help: str
    command: str = ""  # the command word (``list``); "" for a wish
    admin: bool = False


#: Every command word and wish form, once. The help text, the ``as`` dispatch, the words that
#: can never be activities and the README's command list (a test compares) come from it.
COMMANDS = (
    Form("coffee", "from now, for the default window (1 hour)"),
    Form("coffee now", "the same"),
    Form("lunch 12:00", "meet at 12:00 (window = 12:00 + activity length)"),
    Form("lunch at 12:30", 'the same form with "at"'),
    Form("lunch 11:30-13:00", "free any time between 11:30 and 13:00 (also: from 11:30 to 13:00)"),
    Form("coffee for 1h", 'from now, for one hour ("for 90 min", "for 2h", "for 1h 30m" too)'),
    Form("coffee 10:00 for 2h", "free 10:00–12:00"),
    Form("coffee until 11:00", "from now until 11:00"),
    Form("coffee in 20 min", 'meet in 20 minutes ("in 1h 25m", "in 1:26" too)'),
    Form("lunch tomorrow 12:30", 'a day ahead (weekdays too: "friday noon")'),
    Form("coffee 10:00 by 9:30", "tell me by 9:30"),
    Form("lunch 12:00 max 4", "at most 4 people in the group"),
    Form("lunch 12:00 min 3", "only if at least 3 people can make it"),
    Form(
        "lunch 12:00 every weekday",
        "a standing wish, made anew each day (every day, every mon wed fri, every friday)",
    ),
    Form("list", "my open requests and groups, with numbers", "list"),
    Form("board", "what is wanted here today and tomorrow (or: !iwant board coffee)", "board"),
    Form(
        "cancel",
        "cancel my only open request (or: !iwant cancel 2, !iwant cancel lunch)",
        "cancel",
    ),
    Form("standing", "my standing wishes, with numbers", "standing"),
    Form("stop 1", "end standing wish 1 (or: !iwant stop lunch)", "stop"),
    Form(
        "skip friday", "skip one day of my standing wishes (today, tomorrow, lunch friday)", "skip"
    ),
    Form("pause until 2026-12-14", "pause my standing wishes (or: !iwant pause 2 weeks)", "pause"),
    Form("resume", "end the pause", "resume"),
    Form("tz Europe/Prague", "set my time zone (!iwant tz shows it)", "tz"),
    Form("link", "a code to join my account on another platform (!iwant link CODE there)", "link"),
    Form("unlink", "make my linked accounts separate people again", "unlink"),
    Form("export", "everything iwant keeps about me, as JSON, in a direct message", "export"),
    Form("forget me", "delete everything iwant keeps about me (asks to confirm)", "forget"),
    Form("ignore @someone", "never be grouped with them; they are not told", "ignore"),
    Form("unignore @someone", "undo it", "unignore"),
    Form("ignored", "whom I ignore", "ignored"),
    Form("plugins", "(admins) installed and active engine plugins", "plugins", admin=True),
    Form("help", "usage with these examples", "help"),
    Form("as @bob coffee 10:00", "(admins, local console) act as @bob", "as", admin=True),
)
#: Words that name a command, so never an activity.
RESERVED = frozenset(f.command for f in COMMANDS if f.command)


def command_list(prefix: str = "!") -> str:
    """The table as the README and ``help`` show it."""
    width = max(len(f.example) for f in COMMANDS)
    return "\n".join(f"{prefix}iwant {f.example:<{width}} {f.help}" for f in COMMANDS)


class IWant(BotPlugin):  # type: ignore[misc]  # errbot is untyped (Any)
    """Meet people for coffee, lunch or anything else: !iwant coffee 10:00"""

    engine: Engine | None = None

    def activate(self) -> None:
        redact.install()
        self._cfg = os.environ.get("IWANT_PLUGINS_CFG") or str(REPO / "plugins.cfg")
        try:
            poll_seconds = settings.load(self._cfg).poll_seconds
            started = self._start_engine()
        except (SettingsError, RuntimeError) as err:
            log.critical("iwant cannot start: %s", err)
            if self._bot.mode != "test":  # errbot's test backend runs inside pytest
                # On the console too: once the Text backend owns it, a log line is lost.
                print(f"iwant cannot start: {err}", file=sys.stderr, flush=True)
                os._exit(2)  # a misconfigured bot must not look alive
            raise
        if not started:
            log.warning("iwant: the database is unavailable; retrying every %ss", poll_seconds)
        self._recent: dict[str, deque[float]] = {}
        self._recent_lock = threading.Lock()
        # Requests whose answer went out, with when (engine clock); acknowledged in batches.
        self._answered: list[tuple[int, datetime]] = []
        self._delivering = threading.Lock()
        if hasattr(self._bot, "on_rate_limited"):  # our Slack and Telegram backends
            self._bot.on_rate_limited = self._rate_limited
        super().activate()
        self.start_poller(poll_seconds, self.tick)

    def _start_engine(self) -> bool:
        """Build the engine; False while the database cannot be reached (the poller retries)."""
        try:
            self.engine = Engine.from_environment(self._cfg, data_dir=self.bot_config.BOT_DATA_DIR)
        except Unavailable:
            return False
        return True

    def _engine(self) -> Engine:
        """The running engine; ``Unavailable`` while the database has not been reached."""
        if self.engine is None:
            raise Unavailable()
        return self.engine

    def deactivate(self) -> None:
        super().deactivate()
        if self.engine is not None:
            self.engine.close()
            self.engine = None

    # -- who is talking ----------------------------------------------------------------------

    @property
    def platform(self) -> str:
        return cast(str, self._bot.mode)

    def person_of(self, frm: object) -> Person:
        local = str(getattr(frm, "person", frm))
        if self.platform == "text" and not local.startswith("@"):
            local = "@" + local
        name = getattr(frm, "fullname", None) or getattr(frm, "nick", None) or local.lstrip("@")
        # A display name is the platform's, and may hold anything: only visible characters.
        shown = visible(str(name))[:100] or visible(local)[:100] or "someone"
        return Person(f"{self.platform}:{local}", shown, getattr(frm, "timezone", None))

    def room_of(self, msg: Message) -> str | None:
        return str(msg.frm.room) if isinstance(msg.frm, RoomOccupant) else None

    # -- commands ----------------------------------------------------------------------------

    @botcmd
    def iwant(self, msg: Message, args: str) -> str | None:
        """Ask for company: !iwant coffee 10:00 by 9:30 (see !iwant help)"""
        person = self.person_of(msg.frm)
        event = msg.extras.get("event_id")
        room = self.room_of(msg)
        return self._run(
            msg,
            person,
            lambda: self._engine().submit(person, args, room, event, durable_reply=True),
        )

    @botcmd
    def iwant_list(self, msg: Message, args: str) -> str | None:
        """Your open requests and groups, numbered: !iwant list"""
        person = self.person_of(msg.frm)
        return self._run(msg, person, lambda: self._engine().list_text(person))

    @botcmd
    def iwant_cancel(self, msg: Message, args: str) -> str | None:
        """Cancel a request: !iwant cancel, !iwant cancel 2, !iwant cancel lunch"""
        person = self.person_of(msg.frm)
        return self._run(msg, person, lambda: self._engine().cancel(person, args))

    @botcmd
    def iwant_board(self, msg: Message, args: str) -> str | None:
        """What is wanted here today and tomorrow: !iwant board (or !iwant board coffee)"""
        person = self.person_of(msg.frm)
        room = self.room_of(msg)
        return self._run(msg, person, lambda: self._engine().board(person, room, args))

    @botcmd
    def iwant_standing(self, msg: Message, args: str) -> str | None:
        """Your standing wishes, numbered: !iwant standing"""
        person = self.person_of(msg.frm)
        return self._run(msg, person, lambda: self._engine().standing_text(person))

    @botcmd
    def iwant_stop(self, msg: Message, args: str) -> str | None:
        """End a standing wish: !iwant stop 1, !iwant stop lunch"""
        person = self.person_of(msg.frm)
        return self._run(msg, person, lambda: self._engine().stop(person, args))

    @botcmd
    def iwant_skip(self, msg: Message, args: str) -> str | None:
        """Skip one day of your standing wishes: !iwant skip friday, !iwant skip lunch tomorrow"""
        person = self.person_of(msg.frm)
        return self._run(msg, person, lambda: self._engine().skip(person, args))

    @botcmd
    def iwant_pause(self, msg: Message, args: str) -> str | None:
        """Pause your standing wishes: !iwant pause until 2026-12-14, !iwant pause 2 weeks"""
        person = self.person_of(msg.frm)
        return self._run(msg, person, lambda: self._engine().pause(person, args))

    @botcmd
    def iwant_resume(self, msg: Message, args: str) -> str | None:
        """End a pause of your standing wishes: !iwant resume"""
        person = self.person_of(msg.frm)
        return self._run(msg, person, lambda: self._engine().resume(person))

    @botcmd
    def iwant_export(self, msg: Message, args: str) -> str | None:
        """Everything iwant keeps about you, as JSON, in a direct message: !iwant export"""
        person = self.person_of(msg.frm)
        return self._run(msg, person, lambda: self._export(msg, person))

    def _export(self, msg: Message, person: Person) -> str:
        document = self._engine().export(person)
        send_file = getattr(self._bot, "send_file", None)
        if send_file is not None:  # a platform that takes files: a JSON file in a DM
            try:
                send_file(
                    self._identifier(person.id),
                    EXPORT_FILE,
                    document.encode(),
                    "Everything iwant keeps about you (JSON).",
                )
            except Exception:  # the platform refused the file: the text still goes
                log.warning("sending the export as a file failed; sending it as text")
            else:
                return "I sent you everything iwant keeps about you as a file, privately."
        text = f"Everything iwant keeps about you (JSON):\n```\n{document}\n```"
        if self.room_of(msg) is None:
            return text
        self.send(self._identifier(person.id), text)  # never in a room
        return "I sent you everything iwant keeps about you in a direct message."

    @botcmd
    def iwant_link(self, msg: Message, args: str) -> str | None:
        """One person across platforms: !iwant link, then !iwant link CODE on the other"""
        person = self.person_of(msg.frm)
        return self._run(msg, person, lambda: self._link(msg, person, args))

    def _link(self, msg: Message, person: Person, args: str) -> Note | str:
        note = self._engine().link(person, args)
        if args.strip() or self.room_of(msg) is None:
            return note
        self.send(self._identifier(person.id), self._localize(note.body))  # a code is private
        return "I sent you a link code in a direct message."

    @botcmd
    def iwant_unlink(self, msg: Message, args: str) -> str | None:
        """Make linked accounts separate people again: !iwant unlink"""
        person = self.person_of(msg.frm)
        return self._run(msg, person, lambda: self._engine().unlink(person))

    @botcmd
    def iwant_forget(self, msg: Message, args: str) -> str | None:
        """Delete everything iwant keeps about you: !iwant forget me"""
        person = self.person_of(msg.frm)
        return self._run(msg, person, lambda: self._engine().forget_me(person, args))

    @botcmd
    def iwant_tz(self, msg: Message, args: str) -> str | None:
        """Show or set your time zone: !iwant tz Europe/Prague"""
        person = self.person_of(msg.frm)
        return self._run(msg, person, lambda: self._engine().set_timezone(person, args))

    @botcmd
    def iwant_ignore(self, msg: Message, args: str) -> str | None:
        """Never be grouped with someone (they are not told): !iwant ignore @bob"""
        person = self.person_of(msg.frm)
        return self._run(msg, person, lambda: self._engine().ignore(person, self._someone(args)))

    @botcmd
    def iwant_unignore(self, msg: Message, args: str) -> str | None:
        """Undo !iwant ignore: !iwant unignore @bob"""
        person = self.person_of(msg.frm)
        return self._run(msg, person, lambda: self._engine().unignore(person, self._someone(args)))

    @botcmd
    def iwant_ignored(self, msg: Message, args: str) -> str | None:
        """Whom you ignore: !iwant ignored"""
        person = self.person_of(msg.frm)
        return self._run(msg, person, lambda: self._ignored_text(person))

    def _ignored_text(self, person: Person) -> str:
        engine = self._engine()
        ids = engine.ignored(person)
        if not ids:
            return "You ignore nobody. !iwant ignore @someone keeps you apart from them."
        names = engine.display_names(ids)
        return "You ignore: " + ", ".join(names) + ". Undo with !iwant unignore @someone."

    def _localize(self, text: str) -> str:
        """Every ``!iwant`` in a text as it works where it is read: ``/iwant`` on Slack and
        Telegram, errbot's prefix (``!`` unless configured) elsewhere."""
        if self.platform in SLASH_PLATFORMS:
            return text.replace("!iwant", "/iwant")
        prefix = getattr(self.bot_config, "BOT_PREFIX", "!")
        return text if prefix == "!" else text.replace("!iwant", f"{prefix}iwant")

    @botcmd(admin_only=True)
    def iwant_plugins(self, msg: Message, args: str) -> str | None:
        """Installed engine plugins and the active ones (admins): !iwant plugins"""
        person = self.person_of(msg.frm)
        return self._run(msg, person, lambda: self._engine().plugins_report())

    def _someone(self, args: str) -> Person:
        """The person named in ``args`` (``@bob``, a Slack ``<@U123>`` mention, an id)."""
        word = args.strip().split(" ")[0] if args.strip() else ""
        if word.startswith("<@") and word.endswith(">"):
            word = word[2:-1].split("|", 1)[0]
        if not word or len(word) > 100:
            raise UserError("Say who, like !iwant ignore @bob.")
        try:
            identifier = self.build_identifier(word)
        except Exception:
            raise UserError(
                f"I don't know who '{quote(word)}' is; try !iwant ignore @bob."
            ) from None
        return self.person_of(identifier)

    @botcmd
    def iwant_help(self, msg: Message, args: str) -> str:
        """How to use iwant, with examples: !iwant help"""
        zone = self.engine.settings.default_timezone if self.engine else "UTC"
        try:
            zone = cast(Engine, self.engine).zone_of(self.person_of(msg.frm)).key
        except Exception:  # help must answer even when the database is away
            log.debug("zone lookup for help failed", exc_info=True)
        return self._localize(
            "iwant puts you together with people who want the same thing at the same time.\n"
            + command_list()
            + f"\nYour time zone: {zone}."
        )

    @botcmd(admin_only=True)
    def iwant_as(self, msg: Message, args: str) -> str | None:
        """Act as another person on the local console: !iwant as @bob coffee 10:00"""
        if self.platform not in LOCAL_MODES:
            return "!iwant as works only on the local Text backend."
        who, _, rest = args.strip().partition(" ")
        if not who.startswith("@") or len(who) < 2 or len(who) > 40:
            return "Say who you are acting as: !iwant as @bob coffee 10:00"
        person = Person(f"{self.platform}:{who}", who[1:])
        command, _, tail = rest.strip().partition(" ")
        actions: dict[str, Callable[[], Note | str]] = {
            "list": lambda: self._engine().list_text(person),
            "cancel": lambda: self._engine().cancel(person, tail),
            "tz": lambda: self._engine().set_timezone(person, tail),
            "ignore": lambda: self._engine().ignore(person, self._someone(tail)),
            "unignore": lambda: self._engine().unignore(person, self._someone(tail)),
            "ignored": lambda: self._ignored_text(person),
            "board": lambda: self._engine().board(person, None, tail),
            "export": lambda: self._engine().export(person),
            "link": lambda: self._engine().link(person, tail),
            "unlink": lambda: self._engine().unlink(person),
            "forget": lambda: self._engine().forget_me(person, tail),
            "standing": lambda: self._engine().standing_text(person),
            "stop": lambda: self._engine().stop(person, tail),
            "skip": lambda: self._engine().skip(person, tail),
            "pause": lambda: self._engine().pause(person, tail),
            "resume": lambda: self._engine().resume(person),
        }
        word = command.lower()
        if word in RESERVED and word not in actions:
            return f"{word} is not something to do as someone else; try !iwant as {who} list."
        action = actions.get(word, lambda: self._engine().submit(person, rest, None))
        return self._run(msg, person, action, prefix=f"[{who}] ")

    # -- the one place where a command meets the engine --------------------------------------

    def _run(
        self, msg: Message, person: Person, action: Callable[[], Note | str], prefix: str = ""
    ) -> str | None:
        if self.engine is None:
            return str(Unavailable())
        if len(msg.body) > MAX_MESSAGE:
            return (
                f"That message is too long ({len(msg.body)} characters); try !iwant coffee 10:00."
            )
        if not self._allow(person.id):
            return (
                f"You're sending commands faster than I take them ({RATE_LIMIT} a "
                "minute); wait a minute and try again."
            )
        try:
            result = action()
        except UserError as err:
            result = visible(str(err))  # one line, never a control character
        except Unavailable as err:
            result = str(err)
        except Exception:
            log.exception("iwant command failed: %r", msg.body[:200])
            result = (
                "Something went wrong on my side; please try again. "
                "If it keeps happening, tell the bot's admin."
            )
        # Reply first, then deliver what the command made due (a match is announced at once).
        note = result if isinstance(result, Note) else Note("", result)
        body = note.body if note.body.startswith(prefix) else prefix + note.body
        reply = self._bot.build_reply(msg, self._localize(body))
        if note.buttons:
            reply.extras["buttons"] = note.buttons
        try:
            self._bot.send_message(reply)
        except Exception:  # the platform failed the reply; what was stored still goes out
            log.exception("reply to %s could not be sent", person.id)
        else:
            if note.request_id is not None and self.engine is not None:
                with self._recent_lock:
                    self._answered.append((note.request_id, self.engine.clock.now()))
        if note.queued:  # a wish that waits told nobody else: nothing new to deliver now
            self.deliver()
        return None

    def _allow(self, person_id: str) -> bool:
        now = time.monotonic()
        with self._recent_lock:
            recent = self._recent.setdefault(person_id, deque())
            while recent and recent[0] < now - 60:
                recent.popleft()
            if len(recent) >= RATE_LIMIT:
                return False
            recent.append(now)
            if len(self._recent) > 10000:  # forget idle people; bounded memory
                for key in [k for k, v in self._recent.items() if not v]:
                    del self._recent[key]
            return True

    # -- pollers: expiry, done-marking and delivery ------------------------------------------

    def tick(self) -> None:
        """One poller round: expire due requests, mark done meetings, deliver the outbox."""
        if self.engine is None and not self._start_engine():
            return
        assert self.engine is not None  # set by _start_engine() above
        self._acknowledge(everything=True)
        try:
            self.engine.sweep()
            self.engine.answer_again(self.platform)
        except Unavailable:
            log.warning("sweep skipped: database unavailable")
        except Exception:
            log.exception("sweep failed")
        self.deliver()

    def _acknowledge(self, everything: bool) -> None:
        """Tell the engine which answers went out: every one (a poller round), or, after a
        command, all of them once the oldest waited ``ACK_AFTER`` (well before another
        process would send it again as a direct message)."""
        if self.engine is None:
            return
        with self._recent_lock:
            oldest = self._answered[0][1] if self._answered else None
            if oldest is None or not (everything or oldest <= self.engine.clock.now() - ACK_AFTER):
                return
            answered, self._answered = self._answered, []
        try:
            self.engine.replied([request_id for request_id, _ in answered])
        except Exception:  # kept for the next round; unacknowledged ones are sent again
            log.warning("acknowledging %s answers failed", len(answered))
            with self._recent_lock:
                self._answered[:0] = answered

    def deliver(self) -> None:
        """Send this platform's due notifications; safe from any thread."""
        self._acknowledge(everything=False)
        if self.engine is None or not self._delivering.acquire(blocking=False):
            return  # another thread of this process is delivering right now
        try:
            scopes = self.engine.scopes_of(
                self.platform, self._bot_key(), getattr(self._bot, "group_dm_max", None)
            )
            while True:
                report = self.engine.deliver(self.platform, self._send, _is_permanent, 50, scopes)
                for item in report.undeliverable or []:
                    self._tell_origin(item)
                handled = report.delivered + report.retried + len(report.undeliverable or [])
                if handled == 0 and report.deferred < 50:
                    break  # nothing more is due now; deferred rows are, later, for a round
        except Unavailable:
            log.warning("delivery skipped: database unavailable")
        except Exception:
            log.exception("delivery failed")
        finally:
            self._delivering.release()

    def _bot_key(self) -> str:
        """The bot's own id: the budgets of its token are shared by its processes."""
        return str(self._bot.bot_identifier)

    def _rate_limited(self, wait: float) -> None:
        """The platform answered 429: every process of this bot waits ``wait`` seconds."""
        try:
            self._engine().rate_limited(self.platform, self._bot_key(), wait)
        except Unavailable:
            log.warning("a 429 could not be shared: database unavailable")

    def _identifier(self, person_id: str) -> object:
        return self.build_identifier(person_id.split(":", 1)[1])

    def _send(self, item: OutboxItem) -> None:
        if item.group_members is not None:
            opener = getattr(self._bot, "open_group_dm", None)
            if opener is not None:  # backends without group conversations skip these
                members = [pid.split(":", 1)[1] for pid in item.group_members]
                room = item.origin.split(":", 1)[1] if item.origin else None
                opener(members, self._localize(item.body), room)
            return
        body = self._localize(item.body)
        if self.platform == "text":  # one console shows everyone's messages
            body = f"[to {item.recipient.split(':', 1)[1]}] {body}"
        message = Message(
            body=body, frm=self._bot.bot_identifier, to=self._identifier(item.recipient)
        )
        if item.buttons:
            message.extras["buttons"] = item.buttons
        self._bot.send_message(message)

    def _tell_origin(self, item: OutboxItem) -> None:
        log.warning("notification %s to %s is undeliverable", item.id, item.recipient)
        if item.group_members is not None:
            return  # a group conversation: each member has had their own message
        if not item.origin or item.origin.split(":", 1)[0] != self.platform:
            return
        try:
            room = self._identifier(item.origin)
            who = self._engine().display_names([item.recipient])[0] if self.engine else "Someone"
            self.send(
                room,
                f"{who}: I can't send you direct messages, so you may miss who "
                "you meet. Please open a direct chat with me and say hi.",
            )
        except Exception:
            log.exception("telling the origin room about undeliverable %s failed", item.id)


def _is_permanent(err: Exception) -> bool:
    return bool(getattr(err, "undeliverable", False))
