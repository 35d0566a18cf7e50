"""The ``iwant`` errbot plugin: chat commands and pollers; every decision is the engine's."""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast, overload

from errbot import BotPlugin, Message
from iwant_platform import charts, redaction
from iwant_platform.contract import (
    Button,
    ChatPlatform,
    LocalId,
    Outgoing,
    SendError,
    format_command,
    with_commands,
)
from iwant_platform.errbot_backends import adapter_for
from iwant_platform.shutdown import graceful_sigterm

from iwant_engine import (
    DeliveryReport,
    Engine,
    Note,
    OutboxItem,
    Person,
    SendFailed,
    SettingsError,
    Unavailable,
    UserError,
    hookimpl,
    settings,
)
from iwant_engine.invites import caption as invite_caption
from iwant_engine.messages import quote, visible
from iwant_engine.model import Invite
from iwant_engine.pacing import Limit, Scope
from iwant_ops import jsonlog
from iwant_ops.http import OpsServer, address_from_environment
from iwant_ops.metrics import Metrics

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
RATE_LIMIT = 20  # commands per person per minute
ACK_AFTER = timedelta(seconds=1)  # see IWant._acknowledge
MAX_MESSAGE = 1000
EXPORT_FILE = "iwant-export.json"
#: A calendar address is a password: never in a log line (errbot logs each command's
#: text and arguments; the plugin logs a failed command's text).
CALENDAR_ADDRESS = (
    re.compile(r"(?i)(?<=calendar )(?!off\b)[^\s\"']+"),
    re.compile(r"(?i)(?<=calendar\" with parameters \")[^\"]+"),
)
DIGEST_FILE = "iwant-digest.png"
#: How often a process records its heartbeat in the database (``!iwant status``).
HEARTBEAT_SECONDS = 10.0
#: On SIGTERM, how long a delivery in flight may take to end before the process goes on.
STOP_WAIT_SECONDS = 8.0


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
    Form(
        "met #12 all",
        "after a meeting: did we meet? all, none, some, or: !iwant met #12 without Bob",
        "met",
    ),
    Form("feedback off", 'no more "Did you meet?" questions (!iwant feedback on)', "feedback"),
    Form(
        "stats month",
        "this room's figures, counts only (week, month, year; admins: !iwant stats all)",
        "stats",
    ),
    Form(
        "digest on",
        "(admins, in a room) the week's figures here every week (!iwant digest off)",
        "digest",
    ),
    Form("tz Europe/Prague", "set my time zone (!iwant tz shows it)", "tz"),
    Form("link", "a code to join my account on another platform (!iwant link CODE there)", "link"),
    Form("unlink", "make my linked accounts separate people again", "unlink"),
    Form(
        "calendar https://…/basic.ics",
        "link my calendar's private address (direct message only; !iwant calendar off)",
        "calendar",
    ),
    Form("export", "everything iwant keeps about me, as JSON, in a direct message", "export"),
    Form("forget me", "delete everything iwant keeps about me (asks to confirm)", "forget"),
    Form("ignore @someone", "never be grouped with them; they are not told", "ignore"),
    Form("unignore @someone", "undo it", "unignore"),
    Form("ignored", "whom I ignore", "ignored"),
    Form("plugins", "(admins) installed and active engine plugins", "plugins", admin=True),
    Form(
        "status",
        "(admins) version, database, outbox, last 429, live processes",
        "status",
        admin=True,
    ),
    Form("help", "usage with these examples", "help"),
    Form("as @bob coffee 10:00", "(admins, local console) act as @bob", "as", admin=True),
)
#: Words that name a command, so never an activity.
RESERVED = frozenset(f.command for f in COMMANDS if f.command)


def command_kind(body: str) -> str:
    """The command word of a message (``cancel`` of ``!iwant cancel 2``), or ``wish``: a
    metric's label, from the command table only."""
    words = body.lower().split()
    for i, word in enumerate(words[:-1]):
        if word.endswith("iwant"):
            return words[i + 1] if words[i + 1] in RESERVED else "wish"
    return "wish"


def command_list(prefix: str = "!") -> str:
    """The table as the README and ``help`` show it."""
    width = max(len(f.example) for f in COMMANDS)
    return "\n".join(f"{prefix}iwant {f.example:<{width}} {f.help}" for f in COMMANDS)


class IWant(BotPlugin):  # type: ignore[misc]  # errbot is untyped (Any)
    """Meet people for coffee, lunch or anything else: !iwant coffee 10:00"""

    engine: Engine | None = None

    def activate(self) -> None:
        # The one place that reaches errbot's backend: from here on, only the contract.
        self.chat: ChatPlatform = adapter_for(self._bot)
        redaction.install(
            (*self.chat.secret_patterns, *CALENDAR_ADDRESS),
            (*self.chat.secret_variables, "IWANT_SECRET_KEY"),
        )
        if jsonlog.wanted():
            jsonlog.install(self.chat.platform, redaction.redact)
        graceful_sigterm()  # every backend, errbot's own too: SIGTERM stops cleanly
        self._cfg = os.environ.get("IWANT_PLUGINS_CFG") or str(REPO / "plugins.cfg")
        self._stopping = False
        self._active = False
        self._last_429: tuple[datetime, float] | None = None
        self._process = f"{socket.gethostname()}:{os.getpid()}"
        self._started_at = datetime.now(UTC)
        self._beaten: float | None = None  # time.monotonic() of the latest heartbeat
        self._ticked = time.monotonic()  # the latest poller round (activation counts as one)
        if getattr(self, "metrics", None) is None:  # kept across reactivations
            self.metrics = Metrics(self._outbox_reading)
        try:
            loaded = settings.load(self._cfg)
            poll_seconds = loaded.poll_seconds
            self._poll_seconds = poll_seconds
            self._limits = budget_limits(self.chat, loaded.pacing)
            self._serve_http()
            started = self._start_engine()
        except (SettingsError, RuntimeError, ValueError, OSError) as err:
            log.critical("iwant cannot start: %s", err)
            if self.mode != "test":  # errbot's test backend runs inside pytest
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
        self.chat.rate_limit_listener = self._rate_limited
        super().activate()
        self._active = True
        self.start_poller(poll_seconds, self.tick)
        # Calendars are read on a poller of their own: a slow feed never delays delivery.
        self.start_poller(max(poll_seconds, 10.0), self.refresh_calendars)

    def _start_engine(self) -> bool:
        """Build the engine; False while the database cannot be reached (the poller retries)."""
        try:
            engine = Engine.from_environment(self._cfg, data_dir=self.bot_config.BOT_DATA_DIR)
        except Unavailable:
            self.metrics.database_unavailable.labels("start").inc()
            return False
        engine.pm.register(_Observer(self.metrics))
        pacer = engine.pacer
        pacer.sleep = _timed(pacer.sleep, self.metrics.pacing_waits.observe)
        self.engine = engine
        return True

    # -- operations: /healthz, /metrics, heartbeats ------------------------------------------

    def _serve_http(self) -> None:
        """Start the process's /healthz and /metrics server (``IWANT_HTTP_PORT``), once: it
        outlives a reconnection of the backend."""
        address = address_from_environment()
        if address is None or getattr(self, "http", None) is not None:
            return
        self.http = OpsServer(address, self.health, self.metrics.render)
        self.http.start()

    def health(self) -> list[str]:
        """What keeps this process from working, in a few words each; empty: healthy."""
        problems = []
        if self._stopping:
            problems.append("the process is stopping")
        elif not self._active:
            problems.append("the chat backend is not connected")
        engine = self.engine
        problem = "the database is unreachable" if engine is None else engine.problem()
        if problem is not None:
            problems.append(problem)
        idle = time.monotonic() - self._ticked
        if idle > max(30.0, 10 * self._poll_seconds):
            problems.append(f"the poller last ran {idle:.0f} s ago")
        return problems

    def _outbox_reading(self) -> list[tuple[str, int, float]] | None:
        """The outbox per platform for /metrics (this one's always listed); None without
        the database."""
        engine = self.engine
        if engine is None:
            return None
        try:
            depths = engine.outbox_depths()
        except Exception:  # a scrape reports the database down, never fails
            return None
        now = engine.clock.now()
        found = {d.platform: (d.depth, (now - d.oldest).total_seconds()) for d in depths}
        found.setdefault(self.platform, (0, 0.0))
        return [(platform, n, max(age, 0.0)) for platform, (n, age) in sorted(found.items())]

    def _beat(self) -> None:
        """Record this process's heartbeat, every ``HEARTBEAT_SECONDS``."""
        beaten = self._beaten
        if self.engine is None or (
            beaten is not None and time.monotonic() - beaten < HEARTBEAT_SECONDS
        ):
            return
        self.engine.beat(self._process, self.platform, self._started_at, self._last_429)
        self._beaten = time.monotonic()

    def _engine(self) -> Engine:
        """The running engine; ``Unavailable`` while the database has not been reached."""
        if self.engine is None:
            raise Unavailable()
        return self.engine

    def deactivate(self) -> None:
        """Stop cleanly (SIGTERM, a disconnect, a reload): the delivery in flight finishes
        and gives back the rows it had claimed, answers sent are acknowledged, and the
        process leaves the list of live ones."""
        self._stopping = True
        engine = self.engine
        if engine is not None:
            engine.stop_delivering()
        super().deactivate()  # the pollers
        if self._delivering.acquire(timeout=STOP_WAIT_SECONDS):
            self._delivering.release()
        else:
            log.warning("a delivery still runs after %ss; its rows return after their lease",
                        STOP_WAIT_SECONDS)  # fmt: skip
        self._active = False
        if engine is not None:
            self._acknowledge(everything=True)
            engine.stopped(self._process)
            self.engine = None
            engine.close()
        self._stopping = False

    # -- who is talking ----------------------------------------------------------------------

    @property
    def platform(self) -> str:
        return self.chat.platform

    def person_of(self, frm: object) -> Person:
        local = self.chat.person_id(frm)
        name = self.chat.display_name(frm) or local.lstrip("@")
        # A display name is the platform's, and may hold anything: only visible characters.
        shown = visible(str(name))[:100] or visible(local)[:100] or "someone"
        return Person(f"{self.platform}:{local}", shown, self.chat.timezone_of(frm))

    def room_of(self, msg: Message) -> str | None:
        return self.chat.room_id(msg)

    # -- commands ----------------------------------------------------------------------------

    @botcmd
    def iwant(self, msg: Message, args: str) -> str | None:
        """Ask for company: !iwant coffee 10:00 by 9:30 (see !iwant help)"""
        person = self.person_of(msg.frm)
        event = self.chat.event_id(msg)
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
        if self.chat.capabilities.files:  # a platform that takes files: a JSON file in a DM
            try:
                self.chat.send_file(
                    local_id(person.id),
                    EXPORT_FILE,
                    document.encode(),
                    "Everything iwant keeps about you (JSON).",
                )
            except Exception:  # the platform refused the file: the text still goes
                log.warning("sending the export as a file failed; sending it as text")
            else:
                return "I sent you everything iwant keeps about you as a file, privately."
        # The block opens with an empty line: errbot's text renderers (console, XMPP, IRC)
        # begin every paragraph after the first with a space, which would start the JSON.
        text = f"Everything iwant keeps about you (JSON):\n```\n\n{document}\n```"
        if self.room_of(msg) is None:
            return text
        self.chat.send_text(local_id(person.id), text)  # never in a room
        return "I sent you everything iwant keeps about you in a direct message."

    @botcmd
    def iwant_calendar(self, msg: Message, args: str) -> str | None:
        """Link your calendar privately, in a direct message: !iwant calendar ADDRESS"""
        person = self.person_of(msg.frm)
        room = self.room_of(msg)
        return self._run(msg, person, lambda: self._engine().calendar(person, args, room))

    @botcmd
    def iwant_link(self, msg: Message, args: str) -> str | None:
        """One person across platforms: !iwant link, then !iwant link CODE on the other"""
        person = self.person_of(msg.frm)
        return self._run(msg, person, lambda: self._link(msg, person, args))

    def _link(self, msg: Message, person: Person, args: str) -> Note | str:
        note = self._engine().link(person, args)
        if args.strip() or self.room_of(msg) is None:
            return note
        self.chat.send_text(local_id(person.id), self._localize(note.body))  # a code is private
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
    def iwant_met(self, msg: Message, args: str) -> str | None:
        """Answer "Did you meet?": !iwant met #12 all, none, some, without Bob"""
        person = self.person_of(msg.frm)
        return self._run(msg, person, lambda: self._engine().met(person, args))

    @botcmd
    def iwant_feedback(self, msg: Message, args: str) -> str | None:
        """Switch "Did you meet?" questions off or on: !iwant feedback off"""
        person = self.person_of(msg.frm)
        return self._run(msg, person, lambda: self._engine().feedback_setting(person, args))

    @botcmd
    def iwant_stats(self, msg: Message, args: str) -> str | None:
        """Figures of this room, counts only: !iwant stats, !iwant stats month (admins: all)"""
        person = self.person_of(msg.frm)
        room, admin = self.room_of(msg), self._is_admin(msg)
        return self._run(msg, person, lambda: self._engine().stats_text(person, room, args, admin))

    @botcmd
    def iwant_digest(self, msg: Message, args: str) -> str | None:
        """The week's figures in this room every week (admins): !iwant digest on, off"""
        person = self.person_of(msg.frm)
        room, admin = self.room_of(msg), self._is_admin(msg)
        return self._run(
            msg, person, lambda: self._engine().digest_setting(person, room, args, admin)
        )

    def _is_admin(self, msg: Message) -> bool:
        """Whether the sender is one of errbot's ``BOT_ADMINS`` (glob patterns, matched as
        errbot's own ACLs match them)."""
        who = getattr(msg.frm, "aclattr", None) or getattr(msg.frm, "person", msg.frm)
        admins = self.bot_config.BOT_ADMINS
        patterns = (admins,) if isinstance(admins, str) else tuple(admins or ())
        return any(fnmatch.fnmatchcase(str(who), str(p)) for p in patterns)

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
        """Every ``!iwant`` in a text as it is typed where it is read: the platform's own
        command (``ChatPlatform.command``, ``/iwant``), else errbot's prefix + ``iwant``."""
        typed = format_command(self.chat, str(self.bot_config.BOT_PREFIX))
        return text if typed == "!iwant" else text.replace("!iwant", typed)

    def _present(self, text: str, buttons: list[dict[str, str]]) -> tuple[str, list[Button]]:
        """A text and its buttons as the platform shows them: with its buttons where it has
        them, else each button's command written where the button would be; every command
        in the form typed there."""
        typed = [Button(b["label"], b["command"]) for b in buttons]
        if typed and not self.chat.capabilities.buttons:
            text, typed = with_commands(text, typed, "!"), []
        return self._localize(text), typed

    @botcmd(admin_only=True)
    def iwant_plugins(self, msg: Message, args: str) -> str | None:
        """Installed engine plugins and the active ones (admins): !iwant plugins"""
        person = self.person_of(msg.frm)
        return self._run(msg, person, lambda: self._engine().plugins_report())

    @botcmd(admin_only=True)
    def iwant_status(self, msg: Message, args: str) -> str | None:
        """Version, database, outbox, last 429 and live processes (admins): !iwant status"""
        person = self.person_of(msg.frm)
        return self._run(msg, person, lambda: self._engine().status_text())

    def _someone(self, args: str) -> Person:
        """The person named in ``args`` (``@bob``, a mention as the platform writes it, an
        id): whatever the backend's ``build_identifier`` reads."""
        word = args.strip().split(" ")[0] if args.strip() else ""
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
        if not self.chat.capabilities.shared_screen:
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
        kind = command_kind(msg.body)
        event = self.chat.event_id(msg)
        with jsonlog.request(f"{self.platform}:{event}" if event else f"{self._process}:{id(msg)}"):
            return self._run_counted(msg, person, action, prefix, kind)

    def _run_counted(
        self,
        msg: Message,
        person: Person,
        action: Callable[[], Note | str],
        prefix: str,
        kind: str,
    ) -> str | None:
        commands = self.metrics.commands
        if self.engine is None:
            commands.labels(kind, "unavailable").inc()
            self.metrics.database_unavailable.labels("command").inc()
            return str(Unavailable())
        if len(msg.body) > MAX_MESSAGE:
            commands.labels(kind, "too_long").inc()
            return (
                f"That message is too long ({len(msg.body)} characters); try !iwant coffee 10:00."
            )
        if not self._allow(person.id):
            commands.labels(kind, "rate_limited").inc()
            return (
                f"You're sending commands faster than I take them ({RATE_LIMIT} a "
                "minute); wait a minute and try again."
            )
        began = time.perf_counter()
        try:
            result = action()
            outcome = "ok"
        except UserError as err:
            result = visible(str(err))  # one line, never a control character
            outcome = "refused"
        except Unavailable as err:
            result = str(err)
            outcome = "unavailable"
            self.metrics.database_unavailable.labels("command").inc()
        except Exception:
            log.exception("iwant command failed: %r", msg.body[:200])
            result = (
                "Something went wrong on my side; please try again. "
                "If it keeps happening, tell the bot's admin."
            )
            outcome = "error"
        commands.labels(kind, outcome).inc()
        if kind == "wish" and outcome in ("ok", "refused"):
            self.metrics.submission.observe(time.perf_counter() - began)
        # Reply first, then deliver what the command made due (a match is announced at once).
        note = result if isinstance(result, Note) else Note("", result)
        body = note.body if note.body.startswith(prefix) else prefix + note.body
        body = self._with_invite_lines(body, note.invites, person.id)
        try:
            self.chat.reply(msg, *self._present(body, note.buttons))
        except Exception:  # the platform failed the reply; what was stored still goes out
            log.exception("reply to %s could not be sent", person.id)
        else:
            if note.request_id is not None and self.engine is not None:
                with self._recent_lock:
                    self._answered.append((note.request_id, self.engine.clock.now()))
            self._send_invites(person.id, note.invites)
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
            self._beat()
            self.engine.sweep()
            self.engine.answer_again(self.platform)
        except Unavailable:
            log.warning("sweep skipped: database unavailable")
            self.metrics.database_unavailable.labels("poller").inc()
        except Exception:
            log.exception("sweep failed")
        self.deliver()
        self._ticked = time.monotonic()

    def refresh_calendars(self) -> None:
        """Read the linked calendars that are due (their own poller, off every command's path
        and off delivery's thread)."""
        engine = self.engine
        if engine is None or self._stopping:
            return
        try:
            engine.refresh_calendars()
        except Unavailable:
            log.warning("calendar refresh skipped: database unavailable")
            self.metrics.database_unavailable.labels("poller").inc()
        except Exception:
            log.exception("calendar refresh failed")
        self.deliver()  # a person told that their calendar fails hears it now

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
            while not self._stopping:
                report = self.engine.deliver(self.platform, self._send, 50, self._scopes)
                self._count(report)
                for item in report.undeliverable or []:
                    self._tell_origin(item)
                handled = report.delivered + report.retried + len(report.undeliverable or [])
                if handled == 0 and report.deferred < 50:
                    break  # nothing more is due now; deferred rows are, later, for a round
        except Unavailable:
            log.warning("delivery skipped: database unavailable")
            self.metrics.database_unavailable.labels("delivery").inc()
        except Exception:
            log.exception("delivery failed")
        finally:
            self._delivering.release()

    def _count(self, report: DeliveryReport) -> None:
        counted = self.metrics.deliveries
        for result, n in (
            ("delivered", report.delivered),
            ("retry", report.retried),
            ("undeliverable", len(report.undeliverable or [])),
            ("deferred", report.deferred),
        ):
            if n:
                counted.labels(self.platform, result).inc(n)

    def _scope(self, budget: str, part: str = "", sends: int = 1) -> Scope:
        """A budget of this bot (``slack:B1:channel:C2``): its processes share the scope."""
        key = f"{self.platform}:{self.chat.bot_key()}:{budget}" + (f":{part}" if part else "")
        return Scope(key, self._limits[budget], sends)

    def _scopes(self, item: OutboxItem) -> list[Scope]:
        """The budgets one notification spends, as its platform says (``spends``)."""
        members = item.group_members
        out = Outgoing(
            local_id(item.recipient),
            tuple(local_id(m) for m in members) if members is not None else None,
            local_id(item.origin) if item.origin else None,
        )
        spent = self.chat.spends(out)
        return [self._scope(s.budget, s.part, s.sends) for s in spent if s.budget in self._limits]

    def _rate_limited(self, wait: float) -> None:
        """The platform answered 429: every process of this bot waits ``wait`` seconds."""
        self.metrics.rate_limited.labels(self.platform).inc()
        self.metrics.rate_limit_pause.labels(self.platform).inc(max(wait, 0.0))
        self._last_429 = (datetime.now(UTC), wait)
        self._beaten = None  # the next poller round tells the other processes' status
        budget = self.chat.paused_by_rate_limit
        if budget not in self._limits:
            return
        try:
            self._engine().pause_sending([self._scope(budget)], wait)
        except Unavailable:
            log.warning("a 429 could not be shared: database unavailable")

    def _send(self, item: OutboxItem) -> None:
        """Hand one notification to the platform; its failures as the engine reads them."""
        try:
            if item.chart is not None and self.chat.capabilities.images:
                self._send_chart(item)
            elif item.group_members is None:
                body = self._with_invite_lines(item.body, item.invites, item.recipient)
                self.chat.send_text(local_id(item.recipient), *self._present(body, item.buttons))
                self._send_invites(item.recipient, item.invites)
            elif self.chat.capabilities.group_conversations:  # elsewhere: nothing to send
                members = [local_id(m) for m in item.group_members]
                room = local_id(item.origin) if item.origin else None
                self.chat.open_group(members, self._localize(item.body), room)
        except SendError as err:
            text = redaction.redact(f"{type(err).__name__}: {err}")
            raise SendFailed(text, err.undeliverable, err.retry_after) from err

    def _send_chart(self, item: OutboxItem) -> None:
        """A digest where the platform takes images: its chart, the text as the caption. A
        chart that cannot be drawn leaves the text alone, never the digest unsent."""
        assert item.chart is not None
        try:
            image = charts.digest_png(item.chart)
        except Exception:
            log.exception("drawing the digest chart of %s failed; sending its text", item.id)
            self.chat.send_text(local_id(item.recipient), self._localize(item.body))
            return
        try:
            self.chat.send_image(
                local_id(item.recipient), DIGEST_FILE, image, self._localize(item.body)
            )
        except SendError as err:
            if not err.undeliverable:
                raise  # retried later, the image with it
            # The room refuses files (a missing scope, a setting): its text still goes.
            log.warning("the digest chart of %s was refused (%s); sending its text", item.id, err)
            self.chat.send_text(local_id(item.recipient), self._localize(item.body))

    # -- calendar invites (issue 27): a file where the platform takes files, else a line ----

    def _with_invite_lines(self, text: str, invites: tuple[Invite, ...], recipient: str) -> str:
        """``text`` with a line per invite where the platform takes no files (a link to add
        the meeting to a calendar, or what to remove); a line that cannot be made is left
        out, never the text."""
        if not invites or self.chat.capabilities.files or self.engine is None:
            return text
        lines = [text]
        for invite in invites:
            try:
                lines.append(self.engine.invite_line(invite, recipient))
            except Exception:
                log.exception("the calendar line of group %s could not be made", invite.group)
        return "\n".join(lines)

    def _send_invites(self, recipient: str, invites: tuple[Invite, ...]) -> None:
        """Each invite as an ``.ics`` file to the person privately, after the text; a file
        that fails is logged and the rest go on (the text has gone already)."""
        if not invites or not self.chat.capabilities.files or self.engine is None:
            return
        for invite in invites:
            try:
                filename, content = self.engine.invite_file(invite)
                self.chat.send_file(local_id(recipient), filename, content, invite_caption(invite))
            except Exception:
                log.warning(
                    "the calendar invite of group %s to %s could not be sent",
                    invite.group,
                    recipient,
                    exc_info=True,
                )

    def _tell_origin(self, item: OutboxItem) -> None:
        log.warning("notification %s to %s is undeliverable", item.id, item.recipient)
        if item.group_members is not None:
            return  # a group conversation: each member has had their own message
        if not item.origin or item.origin.split(":", 1)[0] != self.platform:
            return
        try:
            who = self._engine().display_names([item.recipient])[0] if self.engine else "Someone"
            self.chat.send_text(
                local_id(item.origin),
                f"{who}: I can't send you direct messages, so you may miss who "
                "you meet. Please open a direct chat with me and say hi.",
            )
        except Exception:
            log.exception("telling the origin room about undeliverable %s failed", item.id)


def local_id(person_or_room: str) -> LocalId:
    """``slack:U123`` -> ``U123``: the id the platform's adapter deals in."""
    return person_or_room.split(":", 1)[1]


def budget_limits(chat: ChatPlatform, overrides: dict[str, Limit]) -> dict[str, Limit]:
    """The limit of each budget ``chat`` declares: its default (a budget without one is not
    kept unless configured), or ``[pacing]
    <platform>.<budget>`` of plugins.cfg. An override of a budget the platform does not have,
    or with a burst below what one notification spends in it, is a ``SettingsError``."""
    declared = {b.name: b for b in chat.budgets}
    paused = chat.paused_by_rate_limit
    if paused is not None and paused not in declared:
        raise SettingsError(
            f"the {chat.platform} adapter pauses {paused!r} on a 429 but declares no such budget"
        )
    limits = {b.name: Limit.parse(b.limit) for b in chat.budgets if b.limit}
    for key, limit in overrides.items():
        platform, _, name = key.partition(".")
        if platform != chat.platform:
            continue  # another platform's bot reads it
        budget = declared.get(name)
        if budget is None:
            known = ", ".join(f"{platform}.{b}" for b in sorted(declared)) or "none"
            raise SettingsError(f"plugins.cfg [pacing] {key}: unknown; {platform} has {known}")
        if limit.burst < budget.most_sends:
            raise SettingsError(
                f"plugins.cfg [pacing] {key} = {limit}: needs a burst of at least "
                f"{budget.most_sends} (one notification posts {budget.most_sends} times back "
                f"to back there), e.g. {limit.rate:g}/s burst {budget.most_sends}"
            )
        limits[name] = limit
    return limits


class _Observer:
    """Counts what the engine reports through ``iwant_observe`` (registered on its plugin
    manager like any plugin)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    @hookimpl
    def iwant_observe(self, event: str) -> None:
        if event == "matched":
            self.metrics.matches.inc()
        elif event == "standing_made":
            self.metrics.standing_made.inc()
        elif event in ("calendar_ok", "calendar_failed"):
            self.metrics.calendar_refreshes.labels(event.removeprefix("calendar_")).inc()


def _timed(
    sleep: Callable[[float], None], observe: Callable[[float], None]
) -> Callable[[float], None]:
    """``sleep`` that reports each wait (a pacer's waits for a send slot)."""

    def timed(seconds: float) -> None:
        observe(seconds)
        sleep(seconds)

    return timed
