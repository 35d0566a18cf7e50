"""The lunch rush (issue 15, point 4): notifications at the platforms' pace, measured
against the least time the platforms' limits allow for them.

For one platform at a time: its stand-in (``tests/slack/slack_standin.py`` or
``tests/telegram/telegram_standin.py``, run in a thread of this process) enforces the
platform's published rate limits (its defaults) and answers 429 over them. People and three
rooms are added to it (Slack: users and three channels the bot is in; Telegram: users who
started the bot and three groups). Two real ``errbot`` processes of the platform run the
iwant plugin with one token, on one fresh PostgreSQL database, and deliver the outbox every
``IWANT_POLL_SECONDS`` (0.2 s), pacing every send with the budgets they share through the
database.

The rush: every person asks for lunch (``lunch tomorrow 12:00``, ``... 11:30-13:00`` and
other windows, seeded) in one of the three rooms, through an ``Engine`` of this process on
the same database with the real clock, one submission after another as fast as the engine
takes them (a few seconds for hundreds of people: all within one wall-clock minute). Groups
form as people arrive; each join tells the group's earlier members, each new group gets a
group conversation on Slack. The bots deliver what the submissions queued.

When the outbox is empty (a bounded wait) it reads:

- the notifications the stand-in accepted (direct messages, group DMs, thread posts) and the
  429s it answered over its limits (the target is none);
- the time from the first submission's commit to the last accepted notification (both on
  ``time.monotonic()`` of this process: the stand-in runs in it);
- the least time the stand-in's limits allow for exactly those notifications: per scope
  (each channel or chat, the workspace or the bot, conversations.open) the count the
  stand-in let through, and ``pacing.minimum_seconds`` with the stand-in's own rates and
  bursts; and the ratio of the two (target <= 1.2);
- the worst lateness (``delivered_at - created_at`` of the outbox rows, wall-clock UTC, both
  written by engines on the real clock) of the rows made in the first minute (target <= 120 s);
- duplicates: every outbox row delivered once, no person told the same text twice, the
  stand-in's messages against the outbox rows (none missing, none extra);
- the busiest second and minute of every scope kind against what its limit allows.

On Matrix (issue 24, ``rush_matrix``) the platform is a real Synapse, run twice: under its
default limits and with the bot's lifted; its access log stands for the stand-in's counts and
the people's clients for what it shows.

``RushRig`` is the set-up without the measurement, for the tests in ``tests/rush``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import importlib
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from iwant_platform.contract import ChatPlatform
from sqlalchemy import create_engine, text

from iwant_engine import Engine, Person, SystemClock
from iwant_engine import pacing as pacing_mod
from iwant_engine.errors import UserError

from . import databases as dbs
from .measure import REPO, load_settings, outcome
from .progress import bar, note

TESTS = REPO / "tests"
PLATFORMS = ("slack", "telegram")
ROOMS = 3
#: What people type, with weights: most at noon, some flexible, some later, some small groups.
TEXTS = (
    ("lunch tomorrow 12:00", 8),
    ("lunch tomorrow 11:30-13:00", 5),
    ("lunch tomorrow 12:30", 3),
    ("lunch tomorrow 12:00-13:30", 2),
    ("lunch tomorrow 12:00 max 4", 2),
)
POLL_SECONDS = 0.2
START_TIMEOUT = 60.0
#: Rows made this long after the first commit count as "groups formed in the first minute".
FIRST_MINUTE = 60.0
LATENESS_TARGET = 120.0
RATIO_TARGET = 1.2
READY = "Plugin activation done."
#: The error of an outbox row a newer note of the same topic made unnecessary: never sent
#: (``iwant_engine.model.SUPERSEDED`` where the engine supersedes notes).
SUPERSEDED = "superseded by a newer note"


def _tests_module(folder: str, name: str) -> ModuleType:
    """A harness module of the repository's tests (the benchmark runs from a checkout)."""
    path = str(TESTS / folder)
    if path not in sys.path:
        sys.path.insert(0, path)
    return importlib.import_module(name)


def _backend(platform: str) -> type[ChatPlatform]:
    """The adapter (errbot backend class) of ``platform`` that the rush runs."""
    if platform == "matrix":
        from iwant_matrix.backend import IWantMatrixBackend

        return IWantMatrixBackend
    from iwant_slack.backend import IWantSlackBackend
    from iwant_telegram.backend import IWantTelegramBackend

    return {"slack": IWantSlackBackend, "telegram": IWantTelegramBackend}[platform]


def _adapter_budgets(platform: str) -> dict[str, pacing_mod.Limit]:
    """The budgets the platform's adapter declares, by ``platform.budget``: what a bot keeps
    to where plugins.cfg ``[pacing]`` says nothing."""
    budgets = _backend(platform).budgets
    return {f"{platform}.{b.name}": pacing_mod.Limit.parse(b.limit) for b in budgets if b.limit}


def unavailable(pg_admin_url: str | None = None) -> str | None:
    """Why no rush can run here (no platform), or None."""
    if not (REPO / "iwant_plugins" / "iwant").is_dir():
        return f"no iwant plugin at {REPO / 'iwant_plugins'} (run from a checkout)"
    if not Path(sys.executable).with_name("errbot").exists():
        return f"no errbot next to {sys.executable}"
    problem = dbs.postgres_problem(dbs.postgres_admin_url(pg_admin_url))
    if problem:
        return f"PostgreSQL not reachable: {problem}"
    return None


def platform_problems() -> dict[str, str]:
    """Platforms that cannot run here, with the reason: ``stand-ins`` (Slack and Telegram),
    ``matrix`` (a real Synapse)."""
    out: dict[str, str] = {}
    for folder, name in (("slack", "slack_harness.py"), ("telegram", "telegram_harness.py")):
        if not (TESTS / folder / name).is_file():
            out["stand-ins"] = f"no {folder} stand-in at {TESTS / folder} (run from a checkout)"
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        out.setdefault("stand-ins", "aiohttp is not installed (pip install -e '.[bench]')")
    from .rush_matrix import unavailable as matrix_unavailable

    matrix = matrix_unavailable()
    if matrix:
        out["matrix"] = matrix
    return out


def texts_for(count: int, seed: int) -> list[str]:
    """``count`` lunch wishes in the weighted mix, in a seeded order."""
    rng = random.Random(seed)
    pool = [t for t, weight in TEXTS for _ in range(weight)]
    return [rng.choice(pool) for _ in range(count)]


def _localize(body: str) -> str:
    """What the plugin does to a body on Slack and Telegram (``IWant._localize``)."""
    return body.replace("!iwant", "/iwant")


@dataclass
class Bot:
    """One errbot process of the rig: the harness's object, its log, and its pid."""

    process: Any
    log: Callable[[], str]
    index: int

    @property
    def pid(self) -> int:
        return int(self.process.proc.pid)

    def alive(self) -> bool:
        return self.process.proc is not None and self.process.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: a crash, nothing cleaned up (its process group, as errbot may fork)."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.proc.wait(10)

    def stop(self) -> None:
        """SIGINT (errbot shuts down), then SIGKILL for whatever is left."""
        self.resume()
        with contextlib.suppress(Exception):
            self.process.stop()
        self.kill()

    def suspend(self) -> None:
        """SIGSTOP: the process holds still (its claims, its connections) until ``resume``."""
        if self.alive():
            os.killpg(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT: a suspended process goes on where it stopped."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGCONT)


# -- the platforms -------------------------------------------------------------------------


def _tagged(base: type, handler: str) -> type:
    """``base`` (a stand-in class) that can listen on more ports (``listen()``: one per bot
    process) and records, for every HTTP call its ``handler`` answers, the port it came in
    on: which process made it (``by_port``: port, method, monotonic time, status)."""

    class Tagged(base):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.by_port: list[tuple[int | None, str, float, int]] = []

        def listen(self) -> int:
            """One more port on 127.0.0.1 for the same server."""
            from aiohttp import web

            async def add() -> int:
                site = web.TCPSite(self._runner, "127.0.0.1", 0)
                await site.start()
                server: Any = site._server
                return int(server.sockets[0].getsockname()[1])

            return asyncio.run_coroutine_threadsafe(add(), self._loop).result(10)

    async def tagged(self: Any, request: Any) -> Any:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        at = time.monotonic()
        response = await getattr(base, handler)(self, request)
        entry = (sockname[1] if sockname else None, request.match_info.get("method", ""))
        self.by_port.append((*entry, at, response.status))  # list.append: thread-safe
        return response

    setattr(Tagged, handler, tagged)
    Tagged.__name__ = Tagged.__qualname__ = f"Tagged{base.__name__}"
    return Tagged


class Side:
    """What differs between the platforms: the stand-in, its people, its bots, its counts."""

    platform = ""
    kinds: tuple[str, ...] = ()
    all_kind = ""  # the scope kind every message counts against

    standin: Any = None
    #: A folder of the rig's for whatever the side keeps on disk (set before ``start``).
    workdir: Path | None = None
    #: What the run is, when a platform runs more than one way (Matrix: lifted or not).
    variant = ""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        if self.standin is not None:
            self.standin.stop()

    def add_people(self, count: int, rooms: int = ROOMS) -> list[tuple[Person, str]]:
        """``count`` people and ``rooms`` rooms; each person with the room they ask in
        (person ``i`` in room ``i % rooms``)."""
        raise NotImplementedError

    #: The HTTP method of a message (what ``sends_by_bot`` counts).
    send_method = ""

    def make_bot(self, workdir: Path, env: dict[str, str], index: int) -> Bot:
        raise NotImplementedError

    def port_for(self, index: int) -> int:
        """The port bot ``index`` talks to (the first one the stand-in's own)."""
        return int(self.standin.port) if index == 0 else int(self.standin.listen())

    def sends_by_bot(self, ports: Sequence[int]) -> dict[int, list[tuple[float, int]]] | None:
        """Per bot process (by index): (monotonic time, HTTP status) of its message calls;
        None where the platform cannot tell the processes apart."""
        index = {port: i for i, port in enumerate(ports)}
        out: dict[int, list[tuple[float, int]]] = {i: [] for i in range(len(ports))}
        for port, method, at, status in list(self.standin.by_port):
            if method == self.send_method and port in index:
                out[index[port]].append((at, status))
        return out

    def start_bot(self, bot: Bot) -> None:
        bot.process.start()

    def start_bots(self, bots: Sequence[Bot]) -> None:
        for bot in bots:
            self.start_bot(bot)

    def pacing_overrides(self) -> dict[str, pacing_mod.Limit]:
        """Budgets the rig gives its bots beyond plugins.cfg (``platform.budget``: limit)."""
        return {}

    def peak(self, kind: str, window: float) -> int:
        """The most messages of scope kind ``kind`` let through within ``window`` seconds."""
        return int(self.standin.peak(kind, window))

    def settle(self, wanted: collections.Counter[tuple[str, str]], timeout: float) -> float:
        """Wait (at most ``timeout`` s) until what was sent shows where it was sent; the
        stand-ins show it at once."""
        time.sleep(0.5)  # a last message in flight when the last ack was read
        return 0.5

    def figures(self) -> dict[str, Any]:
        """What only this platform reports."""
        return {}

    def mark(self, moment: str) -> None:
        """The rush reached ``moment`` (``submitting``, ``delivered``)."""

    def limits(self) -> dict[str, pacing_mod.Limit]:
        """The stand-in's limit of every scope kind, as a ``pacing.Limit``."""
        raise NotImplementedError

    def delivered(self) -> list[tuple[str, str]]:
        """Every message the stand-in accepted: (where, text)."""
        raise NotImplementedError

    def expected(self, row: Any) -> list[tuple[str, str]]:
        """Where and what the outbox row ``row`` makes the stand-in show."""
        raise NotImplementedError

    def accepted_times(self, kind: str) -> dict[Any, list[float]]:
        return dict(self.standin.accepted_times(kind))

    def rate_limited(self) -> int:
        return int(self.standin.rate_limited())

    def calls(self, method: str) -> list[Any]:
        raise NotImplementedError


class SlackSide(Side):
    platform = "slack"
    kinds = ("channel", "workspace", "open")
    all_kind = "workspace"

    def __init__(self) -> None:
        self.harness = _tests_module("slack", "slack_harness")
        self.mod = _tests_module("slack", "slack_standin")
        self.text_mod = importlib.import_module("iwant_slack.text")  # the adapter's
        self.rooms: list[str] = []

    send_method = "chat.postMessage"

    def start(self) -> None:
        standin = _tagged(self.mod.SlackStandIn, "_api")
        self.standin = standin(limits=self.mod.SlackLimits()).start()

    def add_people(self, count: int, rooms: int = ROOMS) -> list[tuple[Person, str]]:
        self.rooms = [f"C0LUNCH{k + 1}" for k in range(rooms)]
        people: list[tuple[Person, str]] = []
        members: dict[str, list[str]] = {room: [] for room in self.rooms}
        for i in range(count):
            user = f"U0R{i:05d}"
            room = self.rooms[i % rooms]
            self.standin.add_user(user, f"p{i:03d}", f"Person {i:03d}", tz="Europe/Prague")
            members[room].append(user)
            people.append((Person(f"slack:{user}", f"Person {i:03d}"), room))
        for k, room in enumerate(self.rooms):
            self.standin.add_channel(room, f"lunch{k + 1}", members[room])
        return people

    def make_bot(self, workdir: Path, env: dict[str, str], index: int) -> Bot:
        port = self.port_for(index)
        env = {**env, "SLACK_API_URL": f"http://127.0.0.1:{port}/api/"}
        process = self.harness.BotProcess(
            self.standin, workdir, config=self.harness.PROJECT_CONFIG, env=env
        )
        process.port = port
        return Bot(process, process.log, index)

    def limits(self) -> dict[str, pacing_mod.Limit]:
        lim = self.standin.limits
        return {
            "channel": pacing_mod.Limit(lim.per_channel, lim.channel_burst),
            "workspace": pacing_mod.Limit(lim.workspace_per_minute / 60, lim.workspace_burst),
            "open": pacing_mod.Limit(lim.open_per_minute / 60, lim.open_burst),
        }

    def _where(self, channel: str) -> str:
        info = self.standin.channels.get(channel) or {}
        if info.get("is_mpim"):
            bot = self.mod.BOT_USER_ID
            return "group:" + ",".join(sorted(m for m in info["members"] if m != bot))
        return channel

    def delivered(self) -> list[tuple[str, str]]:
        with self.standin.lock:
            posted = list(self.standin.posted)
        return [(self._where(p.channel), p.text) for p in posted]

    def expected(self, row: Any) -> list[tuple[str, str]]:
        out = self.text_mod.outgoing_text
        body = _localize(row.body)
        if row.group_members is None:
            user = row.recipient.split(":", 1)[1]
            return [(self.mod.SlackStandIn.dm_of(user), out(body))]
        users = sorted(m.split(":", 1)[1] for m in row.group_members)
        if len(users) <= self.harness_group_dm_max():
            return [("group:" + ",".join(users), out(body))]
        room = (row.origin or "").split(":", 1)[-1]
        if not room:
            return []
        mentions = " ".join(f"<@{u}>" for u in (m.split(":", 1)[1] for m in row.group_members))
        return [
            (room, f"A group of {len(users)} has formed; see the thread."),
            (room, f"{mentions} {out(body)}"),
        ]

    @staticmethod
    def harness_group_dm_max() -> int:
        return _backend("slack").capabilities.group_max

    def calls(self, method: str) -> list[Any]:
        return list(self.standin.calls_of(method))


class TelegramSide(Side):
    platform = "telegram"
    kinds = ("bot", "chat", "group")
    all_kind = "bot"

    def __init__(self) -> None:
        self.harness = _tests_module("telegram", "telegram_harness")
        self.mod = _tests_module("telegram", "telegram_standin")
        self.rooms: list[str] = []

    send_method = "sendMessage"

    def start(self) -> None:
        standin = _tagged(self.mod.BotApiStandin, "_handle")
        self.standin = standin(token=self.harness.TOKEN, limits=self.mod.TelegramLimits()).start()

    def add_people(self, count: int, rooms: int = ROOMS) -> list[tuple[Person, str]]:
        groups = [-1001000000001 - k for k in range(rooms)]
        self.rooms = [str(g) for g in groups]
        for k, group in enumerate(groups):
            self.standin.add_group(group, f"Lunch {k + 1}")
        people: list[tuple[Person, str]] = []
        for i in range(count):
            user = 7_000_000 + i
            self.standin.add_user(user, f"Person {i:03d}", username=f"p{i:03d}", started=True)
            people.append((Person(f"telegram:{user}", f"Person {i:03d}"), self.rooms[i % rooms]))
        return people

    def make_bot(self, workdir: Path, env: dict[str, str], index: int) -> Bot:
        port = self.port_for(index)
        env = {**env, "TELEGRAM_API_URL": f"http://127.0.0.1:{port}/bot"}
        process = self.harness.ErrbotProcess(self.standin, workdir, env=env)
        process.port = port
        return Bot(process, process.output, index)

    def start_bot(self, bot: Bot) -> None:
        bot.process.start(timeout=START_TIMEOUT)

    def limits(self) -> dict[str, pacing_mod.Limit]:
        lim = self.standin.limits
        return {
            "bot": pacing_mod.Limit(lim.per_second, lim.burst),
            "chat": pacing_mod.Limit(lim.per_chat, lim.chat_burst),
            "group": pacing_mod.Limit(lim.per_group_minute / 60, lim.group_burst),
        }

    def delivered(self) -> list[tuple[str, str]]:
        return [(str(m["chat"]["id"]), m.get("text", "")) for m in self.standin.sent()]

    def expected(self, row: Any) -> list[tuple[str, str]]:
        if row.group_members is not None:
            return []  # Telegram has no group conversation a bot can open: nothing is sent
        return [(row.recipient.split(":", 1)[1], _localize(row.body))]

    def calls(self, method: str) -> list[Any]:
        return list(self.standin.calls_to(method))


def _matrix_side(lifted: bool = False) -> Side:
    from .rush_matrix import MatrixSide

    return MatrixSide(lifted)


SIDES: dict[str, Callable[[], Side]] = {
    "slack": SlackSide,
    "telegram": TelegramSide,
    "matrix": _matrix_side,
}


# -- the rig -------------------------------------------------------------------------------


@dataclass
class Submitted:
    """What the rush's submissions did, on this process's clocks."""

    count: int
    first_commit: float  # time.monotonic() when the first submission returned
    first_commit_wall: datetime  # the same moment, UTC
    last_commit: float
    outcomes: dict[str, int]
    refused: list[str] = field(default_factory=list)


@dataclass
class OutboxRow:
    id: int
    recipient: str
    body: str
    origin: str | None
    group_members: list[str] | None
    created_at: datetime
    delivered_at: datetime | None
    failed_at: datetime | None
    attempts: int
    error: str | None
    buttons: list[dict[str, str]] | None = None

    @property
    def sent(self) -> bool:
        """Delivered to the platform (not given up, not superseded by a newer note)."""
        return self.delivered_at is not None and self.error != SUPERSEDED


class RushRig:
    """A platform's limited stand-in with people and rooms, ``processes`` errbot processes on
    one fresh PostgreSQL database, and an engine of this process on it (the real clock).

    Use as a context manager; ``start()`` returns when every bot's plugin is active."""

    def __init__(
        self,
        platform: str,
        people: int,
        pg_admin_url: str | None = None,
        processes: int = 2,
        workdir: Path | None = None,
        db_url: str | None = None,
        env: dict[str, str] | None = None,
        rooms: int = ROOMS,
        side: Side | None = None,
    ) -> None:
        if platform not in SIDES:
            raise ValueError(f"unknown platform {platform!r}; known: {', '.join(SIDES)}")
        self.platform = platform
        self.count = people
        self.rooms = rooms
        self.processes = processes
        self.pg_admin_url = pg_admin_url
        self.side = side if side is not None else SIDES[platform]()
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix=f"iwant-rush-{platform}-"))
        self._db_url = db_url
        self.db: dbs.BenchDatabase | None = None
        self.engine: Engine | None = None
        self.bots: list[Bot] = []
        self.people: list[tuple[Person, str]] = []
        self.extra_env = env or {}
        self._reader: Any = None

    # lifecycle

    @property
    def url(self) -> str:
        if self._db_url is not None:
            return self._db_url
        assert self.db is not None
        return self.db.url

    def start(self) -> RushRig:
        try:
            if self._db_url is None:
                self.db = dbs.BenchDatabase.create("postgresql", self.pg_admin_url)
            # The engine first: it migrates the fresh database before any bot starts.
            self.engine = Engine(replace(load_settings(self.url)), SystemClock())
            self._reader = create_engine(self.url, pool_size=1, max_overflow=1)
            self.side.workdir = self.workdir
            self.side.start()
            self.people = self.side.add_people(self.count, self.rooms)
            env = {
                "IWANT_DATABASE_URL": self.url,
                "IWANT_POLL_SECONDS": str(POLL_SECONDS),
                "IWANT_LOG_LEVEL": "INFO",
                **self.extra_env,
            }
            for index in range(self.processes):
                workdir = self.workdir / f"bot{index}"
                workdir.mkdir(parents=True, exist_ok=True)
                self.bots.append(self.side.make_bot(workdir, env, index))
            self.side.start_bots(self.bots)
            self.wait_up()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_up(self, timeout: float = START_TIMEOUT) -> None:
        """Every bot's plugins are active (its poller delivers from now on)."""
        deadline = time.monotonic() + timeout
        for bot in self.bots:
            while READY not in bot.log():
                if not bot.alive():
                    raise RuntimeError(
                        f"{self.platform} bot {bot.index} exited:\n{bot.log()[-3000:]}"
                    )
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{self.platform} bot {bot.index} not up in {timeout:g} s:\n"
                        f"{bot.log()[-3000:]}"
                    )
                time.sleep(0.1)

    def stop(self) -> None:
        for bot in self.bots:
            with contextlib.suppress(Exception):
                bot.stop()
        with contextlib.suppress(Exception):
            self.side.stop()
        if self.engine is not None:
            with contextlib.suppress(Exception):
                self.engine.close()
            self.engine = None
        if self._reader is not None:
            self._reader.dispose()
            self._reader = None
        if self.db is not None:
            with contextlib.suppress(Exception):
                self.db.drop()
            self.db = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RushRig:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # the rush

    def submit(
        self,
        texts: Sequence[str] | None = None,
        seed: int = 15,
        people: slice = slice(None),
    ) -> Submitted:
        """Every person of ``people`` (all of them by default) asks once (``texts[i]`` for
        its ``i``-th person, else the seeded mix), one after another as fast as the engine
        takes them."""
        assert self.engine is not None
        asking = self.people[people]
        wishes = list(texts) if texts is not None else texts_for(len(asking), seed)
        outcomes: collections.Counter[str] = collections.Counter()
        refused: list[str] = []
        first = last = 0.0
        first_wall = datetime.now(UTC)
        for n, ((person, room), wish) in enumerate(zip(asking, wishes, strict=True)):
            try:
                note_ = self.engine.submit(person, wish, room)
                outcomes[outcome(note_.body)] += 1
            except UserError as err:
                outcomes["refused"] += 1
                refused.append(f"{wish}: {err}")
            last = time.monotonic()
            if n == 0:
                first, first_wall = last, datetime.now(UTC)
        return Submitted(len(wishes), first, first_wall, last, dict(outcomes), refused)

    def rows(self) -> list[OutboxRow]:
        """This platform's outbox rows, in id order."""
        with self._reader.connect() as conn:
            found = conn.execute(
                text(
                    "SELECT id, recipient, body, origin, group_members, created_at, delivered_at,"
                    " failed_at, attempts, error, buttons FROM outbox WHERE platform = :p"
                    " ORDER BY id"
                ),
                {"p": self.platform},
            ).all()
        return [
            OutboxRow(r[0], r[1], r[2], r[3], r[4], r[5], _utc(r[6]), _utc(r[7]), *r[8:])
            for r in map(_row_utc, found)
        ]

    def pending(self) -> int:
        """Rows of this platform neither delivered nor given up."""
        with self._reader.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT count(*) FROM outbox WHERE platform = :p"
                        " AND delivered_at IS NULL AND failed_at IS NULL"
                    ),
                    {"p": self.platform},
                ).scalar_one()
            )

    def put_off(self, after_id: int) -> list[int]:
        """Rows after ``after_id`` that a delivery round claimed and gave back for later (a
        busy or paused budget): their next attempt is set past when they were made."""
        with self._reader.connect() as conn:
            found = conn.execute(
                text(
                    "SELECT id FROM outbox WHERE platform = :p AND id > :after"
                    " AND delivered_at IS NULL"
                    " AND next_attempt_at > created_at + interval '1 second' ORDER BY id"
                ),
                {"p": self.platform, "after": after_id},
            ).scalars()
            return list(found)

    def paused_until(self) -> float:
        """The latest slot of the bot's shared budgets (wall-clock seconds; 0: none yet): a
        429's pause, once a process has written it."""
        with self._reader.connect() as conn:
            latest = conn.execute(text("SELECT max(at) FROM pacing")).scalar_one()
        return float(latest or 0.0)

    def wait_delivered(
        self, timeout: float, show: bool = False, on_tick: Callable[[], None] | None = None
    ) -> bool:
        """Wait until the outbox is empty (True) or ``timeout`` seconds pass (False)."""
        total = len(self.rows())
        deadline = time.monotonic() + timeout
        with bar(total, f"rush {self.platform}: delivered", show) as progress:
            done = 0
            while True:
                left = self.pending()
                progress.update(total - left - done)
                done = total - left
                if on_tick is not None:
                    on_tick()
                if left == 0:
                    return True
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.2)

    def sends_by_bot(self) -> dict[int, list[tuple[float, int]]] | None:
        """Per bot process: (monotonic time, HTTP status) of each message call it made (None:
        the platform cannot tell)."""
        return self.side.sends_by_bot([bot.process.port for bot in self.bots])

    def bot_logs(self) -> list[str]:
        return [bot.log() for bot in self.bots]

    # the figures

    def wanted(
        self, rows: Sequence[OutboxRow] | None = None
    ) -> collections.Counter[tuple[str, str]]:
        """What the outbox rows sent make the platform show: (where, text), how often."""
        rows = self.rows() if rows is None else rows
        wanted: collections.Counter[tuple[str, str]] = collections.Counter()
        for row in rows:
            if row.sent:
                wanted.update(self.side.expected(row))
        return wanted

    def settle(self, timeout: float = 30.0) -> float:
        """Until the platform shows what the outbox sent (people's clients read it)."""
        return self.side.settle(self.wanted(), timeout)

    def check_messages(self, rows: Sequence[OutboxRow] | None = None) -> dict[str, Any]:
        """The stand-in's messages against the outbox rows: duplicates, missing, extra."""
        wanted = self.wanted(rows)
        got = collections.Counter(self.side.delivered())
        # The same text in one place more often than the outbox asked (a person told twice).
        duplicates = {k: n - max(wanted[k], 1) for k, n in got.items() if n > max(wanted[k], 1)}
        missing = {k: n - got.get(k, 0) for k, n in wanted.items() if got.get(k, 0) < n}
        extra = {k: n - wanted.get(k, 0) for k, n in got.items() if n > wanted.get(k, 0)}
        return {
            "expected": sum(wanted.values()),
            "accepted": sum(got.values()),
            "duplicates": sum(duplicates.values()),
            "missing": sum(missing.values()),
            "extra": sum(extra.values()),
            "examples": {
                "duplicates": [list(k) for k in list(duplicates)[:3]],
                "missing": [list(k) for k in list(missing)[:3]],
                "extra": [list(k) for k in list(extra)[:3]],
            },
        }

    def scope_counts(self) -> tuple[dict[str, int], dict[str, pacing_mod.Limit]]:
        """Per scope (``kind:key``) the messages the platform let through, and its limit
        (none where the platform has none: Matrix with the bot's limits lifted)."""
        limits = self.side.limits()
        sends: dict[str, int] = {}
        scope_limits: dict[str, pacing_mod.Limit] = {}
        for kind in self.side.kinds:
            for key, times in self.side.accepted_times(kind).items():
                sends[f"{kind}:{key}"] = len(times)
                if kind in limits:
                    scope_limits[f"{kind}:{key}"] = limits[kind]
        return sends, scope_limits

    def peaks(self) -> dict[str, dict[str, int | None]]:
        """The busiest second and minute of each scope kind, and what its limit allows
        there (burst + window x rate)."""
        limits = self.side.limits()
        out: dict[str, dict[str, int | None]] = {}
        for kind in self.side.kinds:
            lim = limits.get(kind)
            out[kind] = {
                "per_second": self.side.peak(kind, 1.0),
                "allowed_per_second": lim.burst + math.floor(1.0 * lim.rate + 1e-9)
                if lim
                else None,
                "per_minute": self.side.peak(kind, 60.0),
                "allowed_per_minute": lim.burst + math.floor(60.0 * lim.rate + 1e-9)
                if lim
                else None,
            }
        return out

    def last_accepted(self) -> float | None:
        times = [t for ts in self.side.accepted_times(self.side.all_kind).values() for t in ts]
        return max(times) if times else None


def _row_utc(row: Any) -> tuple[Any, ...]:
    """An outbox row with its creation time in UTC (the others may be NULL)."""
    return (*row[:5], _utc(row[5]), *row[6:])


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# -- the measurement -----------------------------------------------------------------------


def measure(rig: RushRig, submitted: Submitted, finished: bool, waited: float) -> dict[str, Any]:
    """Every figure of one platform's rush, once its outbox is empty (or the wait ended)."""
    rows = rig.rows()
    messages = rig.check_messages(rows)
    sends, scope_limits = rig.scope_counts()
    limited = {k: n for k, n in sends.items() if k in scope_limits}
    minimum = pacing_mod.minimum_seconds(limited, scope_limits)
    # The same sends under the bots' own budgets (plugins.cfg [pacing]: the platforms' rates,
    # smaller bursts): what the pacing could do at best.
    assert rig.engine is not None
    own = {
        **_adapter_budgets(rig.platform),
        **rig.engine.settings.pacing,
        **rig.side.pacing_overrides(),
    }
    own_limits = {k: own[f"{rig.platform}.{_kind_of(k)}"] for k in sends}
    own_minimum = pacing_mod.minimum_seconds(sends, own_limits)
    last = rig.last_accepted()
    elapsed = (last - submitted.first_commit) if last is not None else None
    bound = max(limited, key=lambda k: _scope_minimum(sends, scope_limits, k), default=None)
    cutoff = submitted.first_commit_wall + timedelta(seconds=FIRST_MINUTE)
    early = [r for r in rows if r.created_at <= cutoff and r.sent]
    lateness = sorted((r.delivered_at - r.created_at).total_seconds() for r in early)  # type: ignore[operator]
    delivered = sum(r.sent for r in rows)
    by_kind = collections.Counter(
        "group" if r.group_members is not None else "direct" for r in rows
    )
    texts_per_person: collections.Counter[tuple[str, str]] = collections.Counter(
        (r.recipient, r.body) for r in rows if r.group_members is None and r.sent
    )
    logs = rig.bot_logs()
    by_bot = rig.sends_by_bot()
    return {
        "platform": rig.platform,
        **({"variant": rig.side.variant} if rig.side.variant else {}),
        "people": submitted.count,
        "processes": rig.processes,
        "submissions": {
            "seconds": round(submitted.last_commit - submitted.first_commit, 3),
            "per_second": round(
                (submitted.count - 1) / (submitted.last_commit - submitted.first_commit), 1
            )
            if submitted.last_commit > submitted.first_commit
            else None,
            "outcomes": submitted.outcomes,
            "refused_examples": submitted.refused[:3],
        },
        "outbox": {
            "rows": len(rows),
            "by_kind": dict(by_kind),
            "delivered": delivered,
            "superseded": sum(r.error == SUPERSEDED for r in rows),
            "given_up": sum(r.failed_at is not None for r in rows),
            "undelivered": sum(r.delivered_at is None and r.failed_at is None for r in rows),
            "retried": sum(r.attempts > 1 for r in rows),
            "errors": sorted({r.error for r in rows if r.error and r.error != SUPERSEDED})[:5],
            # one person given the same body twice by the engine itself
            "same_text_twice": sum(n - 1 for n in texts_per_person.values() if n > 1),
        },
        "finished": finished,
        "waited_s": round(waited, 1),
        "notifications": messages["accepted"],
        "messages": messages,
        "rate_limited": rig.side.rate_limited(),
        "first_commit_to_last_s": round(elapsed, 2) if elapsed is not None else None,
        "minimum_s": round(minimum, 2),
        "ratio": round(elapsed / minimum, 3) if elapsed is not None and minimum > 0 else None,
        "bound_by": _kind_of(bound) if bound is not None else None,
        "pacing_minimum_s": round(own_minimum, 2),
        "ratio_to_pacing": round(elapsed / own_minimum, 3)
        if elapsed is not None and own_minimum > 0
        else None,
        "pacing_limits": {k: str(own[f"{rig.platform}.{k}"]) for k in rig.side.kinds},
        "scope_sends": _by_kind(sends),
        "limits": {k: str(v) for k, v in rig.side.limits().items()},
        **rig.side.figures(),
        "peaks": rig.peaks(),
        "lateness_first_minute_s": {
            "rows": len(lateness),
            "worst": round(lateness[-1], 2) if lateness else None,
            "p50": round(lateness[len(lateness) // 2], 2) if lateness else None,
        },
        # Messages beyond what the outbox asked for: sent twice, or never asked for.
        "duplicates": messages["extra"],
        "bots": {
            "sent": [sum(st == 200 for _, st in v) for v in by_bot.values()]
            if by_bot is not None
            else None,
            "alive_at_end": sum(bot.alive() for bot in rig.bots),
            "failed_sends_logged": sum(log.count("failed (will retry)") for log in logs),
            "rate_limits_logged": sum(
                log.count("Flood control") + log.count("ratelimited") + log.count(": 429")
                for log in logs
            ),
            "getupdates_conflicts_logged": sum(log.count("getUpdates conflict") for log in logs),
        },
        "users_info_calls": len(rig.side.calls("users.info")) if rig.platform == "slack" else None,
    }


def _scope_minimum(sends: dict[str, int], limits: dict[str, pacing_mod.Limit], key: str) -> float:
    return pacing_mod.minimum_seconds({key: sends[key]}, {key: limits[key]})


def _kind_of(scope: str) -> str:
    return scope.split(":", 1)[0]


def _by_kind(sends: dict[str, int]) -> dict[str, dict[str, int]]:
    """Per scope kind: how many scopes, all their messages, the most in one scope."""
    out: dict[str, dict[str, int]] = {}
    for scope, n in sends.items():
        entry = out.setdefault(_kind_of(scope), {"scopes": 0, "messages": 0, "most_in_one": 0})
        entry["scopes"] += 1
        entry["messages"] += n
        entry["most_in_one"] = max(entry["most_in_one"], n)
    return out


def delivery_timeout(rows: int, platform: str) -> float:
    """A generous bound on the wait for ``rows`` outbox rows at the platform's overall rate
    (Matrix: Synapse's default rc_message, 0.2 a second)."""
    overall = {"slack": 10.0, "telegram": 30.0, "matrix": 0.2}[platform]
    return 90.0 + 3.0 * rows / overall


def rush_platform(
    platform: str,
    people: int,
    pg_admin_url: str | None,
    show: bool,
    seed: int,
    side: Side | None = None,
) -> dict[str, Any]:
    """One platform's rush, start to end, on a database of its own."""
    started = time.monotonic()
    with RushRig(platform, people, pg_admin_url, side=side) as rig:
        name = f"{platform} ({rig.side.variant})" if rig.side.variant else platform
        set_up = time.monotonic() - started
        note(f"rush {name}: {people} people, {rig.processes} bots up in {set_up:.0f} s", show)
        rig.side.mark("submitting")
        submitted = rig.submit(seed=seed)
        rows = len(rig.rows())
        note(
            f"rush {name}: {submitted.count} wishes in "
            f"{submitted.last_commit - submitted.first_commit:.1f} s, {rows} outbox rows",
            show,
        )
        begin = time.monotonic()
        finished = rig.wait_delivered(delivery_timeout(rows, platform), show)
        waited = time.monotonic() - begin
        rig.side.mark("delivered")
        settled = rig.settle()
        result = measure(rig, submitted, finished, waited)
        result["set_up_s"] = round(set_up, 1)
        result["settled_s"] = round(settled, 2)
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    return result


def split(total: int) -> dict[str, int]:
    """``total`` people split evenly between the platforms (Slack takes an odd one)."""
    half = total // 2
    return {"slack": total - half, "telegram": half}


#: The Matrix runs: result key, and whether the bot's limits are lifted.
MATRIX_RUNS = (("matrix", False), ("matrix_lifted", True))


def run(
    total: int,
    pg_admin_url: str | None,
    show: bool,
    seed: int,
    matrix_people: int = 0,
    problems: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The rush stage: each platform in turn (never two at once: two cores); on Matrix twice,
    under Synapse's default limits and with the bot's lifted. ``problems``: platforms that
    cannot run here (``"matrix"``, ``"stand-ins"``), with the reason, recorded as skipped."""
    problems = problems or {}
    out: dict[str, Any] = {"people": total, "platforms": {}}
    if matrix_people:
        out["matrix_people"] = matrix_people
    plan: list[tuple[str, str, int, Callable[[], Side] | None]] = []
    for platform, people in split(total).items():
        if people >= 1:
            plan.append((platform, platform, people, None))
    for key, lifted in MATRIX_RUNS if matrix_people else ():
        plan.append((key, "matrix", matrix_people, functools.partial(_matrix_side, lifted)))
    for key, platform, people, make_side in plan:
        problem = problems.get("matrix" if platform == "matrix" else "stand-ins")
        if problem:
            out["platforms"][key] = {"skipped": problem}
            note(f"rush {key} skipped: {problem}", show)
            continue
        try:
            side = make_side() if make_side is not None else None
            out["platforms"][key] = rush_platform(platform, people, pg_admin_url, show, seed, side)
        except Exception as err:
            out["platforms"][key] = {"error": f"{type(err).__name__}: {err}"}
            note(f"rush {key} failed:\n{traceback.format_exc()}", True)
    return out
