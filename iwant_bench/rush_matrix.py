"""The lunch rush on Matrix (issue 24): a real Synapse instead of a stand-in.

The set-up, before any bot runs (history to the bots, not measured): a Synapse of its own
(``synapse_rig``: the Matrix tests' harness), the bot's account, and the people, registered
through the admin's shared-secret API, each a matrix-nio client with encryption (the Matrix
tests' ``Person``, syncing on one loop) whose limits an admin lifted (``override_ratelimit``:
the people are not what is measured). The bot's account, its limits lifted for the set-up
alone, makes three encrypted rooms with the people invited (each joins) and joins each
person's direct chat, which the person made as Element does (encrypted, ``is_direct``); its
``m.direct`` lists them. Then, for the run under Synapse's default limits, an admin gives
the bot its limits back (``DELETE override_ratelimit``): from the bots' start on, every event
it sends counts against ``rc_message`` (0.2/s burst 10), as on any homeserver whose admin did
nothing. For the lifted run the override stays and the bots' pacing is raised to match
(``tests/matrix/matrix_bot.LIFTED``, what docs/matrix.md tells an admin to do).

Two errbot processes of IWantMatrix (the tests' ``BotProcess``), two devices of the bot's
account (its registration's and a second password login), share one PostgreSQL database.

What a platform's stand-in counts is read here from Synapse's access log: the requests of
the bot's account since the bots started, their answers (200, 429) and times. What people
were sent is what their clients show (decrypted), collected across everyone.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import importlib
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from iwant_platform.contract import Button, with_commands

from iwant_engine import Person
from iwant_engine import pacing as pacing_mod

from . import synapse_rig
from .rush import ROOMS, START_TIMEOUT, Bot, Side

#: Synapse's limit behind each scope kind the rush counts (the bot's budgets' names).
SCOPES = {
    "message": "rc_message",
    "room_creation": "rc_room_creation",
    "invites": "rc_invites.per_issuer",
}
#: Requests that create an event and so count against rc_message.
EVENTS = ("send", "create", "join", "invite", "leave")
#: The people's /sync: a long poll (no request a second per person while nothing happens),
#: enough timeline per room that a burst of the bot's never leaves a gap they do not fill.
SYNC_MS = 25_000
PEOPLE_FILTER: dict[str, Any] = {
    "room": {"timeline": {"limit": 200}, "state": {"lazy_load_members": False}},
    "presence": {"not_types": ["*"]},
}
#: How long the people's clients may take, after the last send, to show everything.
SETTLE_SECONDS = 30.0
GROUP_ROOM = "group"  # where a group's room of its own shows (not made by a rush in rooms)


def unavailable() -> str | None:
    """Why the Matrix rush cannot run here, or None."""
    return synapse_rig.missing()


_PERSON: type | None = None


def person_class() -> type:
    """The Matrix tests' ``Person`` (a matrix-nio client with encryption that keeps what the
    bot said to them, decrypted), syncing by long poll with a wide timeline."""
    global _PERSON
    if _PERSON is None:
        base: Any = synapse_rig.harness("matrix_people").Person
        nio: Any = importlib.import_module("nio")

        class RushPerson(base):  # type: ignore[misc]
            async def _sync_forever(self) -> None:
                first = True
                while not self._stopping:
                    try:
                        resp = await self.client.sync(
                            timeout=SYNC_MS, sync_filter=PEOPLE_FILTER, full_state=first
                        )
                    except Exception:  # Synapse busy or going: try again
                        await asyncio.sleep(0.2)
                        continue
                    if not isinstance(resp, nio.SyncResponse):
                        await asyncio.sleep(0.5)
                        continue
                    first = False
                    await self._keys()
                    self._read(resp)
                    self.synced += 1

        _PERSON = RushPerson
    return _PERSON


class MatrixSide(Side):
    """The rush's view of a real Synapse: people, rooms, two bot devices, and what the access
    log and the people's clients say."""

    platform = "matrix"
    kinds = tuple(SCOPES)
    all_kind = "message"
    send_method = "send"

    def __init__(self, lifted: bool = False) -> None:
        self.lifted = lifted
        self.variant = "lifted" if lifted else "synapse defaults"
        self.workdir: Path | None = None
        self.synapse: Any = None
        self.loop: Any = None
        self.bot: Any = None
        self.devices: list[Any] = []
        self.clients: list[Any] = []  # the people's clients
        self.rooms: list[str] = []
        self.members: dict[str, list[str]] = {}  # lunch room -> its people
        self.bots_started = 0.0  # epoch seconds: the access log counts from here
        self.bots: list[Bot] = []
        self.marks: dict[str, tuple[float, dict[str, float | None]]] = {}
        self.submitting = 0.0  # epoch seconds: the rush's first submission
        self.setup_s = 0.0
        self._no_proxy: contextlib.ExitStack | None = None

    # -- the set-up ---------------------------------------------------------------------

    def start(self) -> None:
        started = time.monotonic()
        folder = (self.workdir or Path(".")) / "synapse"
        self._no_proxy = contextlib.ExitStack()
        self._no_proxy.enter_context(synapse_rig.no_proxy())
        self.synapse = synapse_rig.start_synapse(folder)
        self.loop = synapse_rig.new_loop()
        self.bot = self.synapse.register("iwantbot", displayname="iwant")
        # For the set-up (joins to every room): given back before the bots start, unless lifted.
        self.synapse.lift_rate_limits(self.bot.user_id)
        self.setup_s += time.monotonic() - started

    def stop(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):
                client.stop()
        if self.loop is not None:
            with contextlib.suppress(Exception):
                self.loop.close()
            self.loop = None
        if self.synapse is not None:
            with contextlib.suppress(Exception):
                self.synapse.stop()
        if self._no_proxy is not None:
            self._no_proxy.close()
            self._no_proxy = None

    def add_people(self, count: int, rooms: int = ROOMS) -> list[tuple[Person, str]]:
        started = time.monotonic()
        synapse, bot = self.synapse, self.bot
        folder = (self.workdir or Path(".")) / "people"
        cls = person_class()
        accounts = []
        for i in range(count):
            account = synapse.register(f"p{i:03d}", displayname=f"Person {i:03d}")
            synapse.lift_rate_limits(account.user_id)  # people are not what is measured
            accounts.append(account)
            client = cls(self.loop, synapse.url, account, folder / f"p{i:03d}", bot.user_id)
            self.clients.append(client.start())
        # Three rooms, encrypted (as Element makes a private room); the bot invites, people join.
        by_room = [[a.user_id for a in accounts[k::rooms]] for k in range(rooms)]
        for k, invite in enumerate(by_room):
            made = synapse_rig.as_user(
                synapse,
                bot,
                "POST",
                "/createRoom",
                {
                    "name": f"Lunch {k + 1}",
                    "preset": "private_chat",
                    "invite": invite,
                    "initial_state": [_ENCRYPTION],
                },
            )
            self.rooms.append(str(made["room_id"]))
            self.members[self.rooms[-1]] = invite
        # Each person's direct chat with the bot, made by them; the bot joins it.
        direct: dict[str, list[str]] = {}
        for account, client in zip(accounts, self.clients, strict=True):
            room_id = client.create_direct()
            synapse_rig.as_user(synapse, bot, "POST", f"/join/{synapse_rig.quoted(room_id)}", {})
            direct[account.user_id] = [room_id]
        synapse_rig.as_user(
            synapse,
            bot,
            "PUT",
            f"/user/{synapse_rig.quoted(bot.user_id)}/account_data/m.direct",
            direct,
        )
        deadline = time.monotonic() + 60 + count
        for room_id, invite in self.members.items():
            while not set(invite) <= synapse.joined(room_id):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"people did not join {room_id}")
                time.sleep(0.2)
        if not self.lifted:
            synapse.restore_rate_limits(bot.user_id)
        self.devices = [bot, synapse_rig.log_in(synapse, bot, "IWANTBOT2")]
        self.setup_s += time.monotonic() - started
        return [
            (Person(f"matrix:{a.user_id}", f"Person {i:03d}"), self.rooms[i % rooms])
            for i, a in enumerate(accounts)
        ]

    def make_bot(self, workdir: Path, env: dict[str, str], index: int) -> Bot:
        bots = synapse_rig.harness("matrix_bot")
        pacing = bots.LIFTED if self.lifted else None
        process = bots.BotProcess(self.synapse, self.devices[index], workdir, pacing, env=env)
        process.port = None  # one server; the access log does not say which device
        return Bot(process, lambda: str(process.output(10**9)), index)

    def start_bots(self, bots: Sequence[Bot]) -> None:
        """Both at once (each waits for its first sync); the access log counts from here."""
        self.bots_started = time.time()
        self.bots = list(bots)
        errors: list[BaseException] = []

        def start(bot: Bot) -> None:
            try:
                bot.process.start(timeout=START_TIMEOUT)
            except BaseException as err:  # reported below, on the caller's thread
                errors.append(err)

        threads = [threading.Thread(target=start, args=(bot,)) for bot in bots]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(START_TIMEOUT + 30)
        if errors:
            raise RuntimeError(f"a Matrix bot did not start: {errors[0]}")

    def pacing_overrides(self) -> dict[str, pacing_mod.Limit]:
        if not self.lifted:
            return {}
        lifted = synapse_rig.harness("matrix_bot").LIFTED
        return {k: pacing_mod.Limit.parse(v) for k, v in lifted.items()}

    # -- what Synapse saw ---------------------------------------------------------------

    def requests(self, since: float | None = None) -> list[Any]:
        """The bot's requests (both devices) since the bots started (or ``since``, epoch)."""
        since = self.bots_started if since is None else since
        return list(synapse_rig.requests_of(self.synapse, self.bot.user_id, since))

    def limits(self) -> dict[str, pacing_mod.Limit]:
        """Synapse's limits on the bot: its config's (defaults), none once lifted."""
        if self.lifted:
            return {}
        limits = synapse_rig.rate_limits(self.synapse)
        return {kind: limits[name] for kind, name in SCOPES.items()}

    def accepted_times(self, kind: str) -> dict[Any, list[float]]:
        """Per scope (the bot), the monotonic times of the requests Synapse let through that
        count against ``kind``: every event (rc_message), rooms made, invites sent (a room
        made for a person invites one)."""
        counted = {
            "message": EVENTS,
            "room_creation": ("create",),
            "invites": ("invite", "create"),
        }[kind]
        offset = time.time() - time.monotonic()
        times = [r.at - offset for r in self.requests() if r.status == 200 and r.kind in counted]
        return {self.bot.user_id: sorted(times)} if times else {}

    def rate_limited(self) -> int:
        return sum(r.status == 429 for r in self.requests())

    def peak(self, kind: str, window: float) -> int:
        times = [t for ts in self.accepted_times(kind).values() for t in ts]
        best, start = 0, 0
        for end, at in enumerate(times):
            while at - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best

    def sends_by_bot(self, ports: Sequence[int]) -> dict[int, list[tuple[float, int]]] | None:
        return None  # Synapse's access log names the user, not the device

    def request_figures(self) -> dict[str, Any]:
        """The bot's requests of the rush by kind and answer, and Synapse's time on them."""
        requests = self.requests(self.submitting or None)
        kinds = collections.Counter(f"{r.kind} {r.status}" for r in requests)
        sends = sorted(r.seconds for r in requests if r.kind == "send" and r.status == 200)
        # Synapse's time answering the bot's requests but its long polls (/sync): sends, and
        # what encryption needs (keys, room keys to devices). Each bot process waits for one
        # answer before its next request: with no limit, what bounds the rush.
        answering = sum(r.seconds for r in requests if r.kind != "sync")
        return {
            "by_kind": dict(sorted(kinds.items())),
            "send_ms_p50": round(1000 * sends[len(sends) // 2], 1) if sends else None,
            "send_ms_max": round(1000 * sends[-1], 1) if sends else None,
            "round_trips_s": round(answering, 2),
            "round_trips_per_process_s": round(answering / max(len(self.bots), 1), 2),
        }

    # -- what people were told ----------------------------------------------------------

    def _seen(self) -> tuple[dict[str, tuple[str, str]], dict[str, set[str]]]:
        """Every message of the bot that someone's client shows: event id -> (where, text);
        and event id -> who saw it. A direct chat is ``dm:<person>``."""
        events: dict[str, tuple[str, str]] = {}
        seen_by: dict[str, set[str]] = collections.defaultdict(set)
        lunch = set(self.rooms)
        for client in self.clients:
            for s in list(client.said):
                if s.room_id in client.direct:
                    where = f"dm:{client.user_id}"
                else:
                    where = s.room_id if s.room_id in lunch else GROUP_ROOM
                events.setdefault(s.event_id, (where, s.text))
                seen_by[s.event_id].add(client.user_id)
        return events, seen_by

    def delivered(self) -> list[tuple[str, str]]:
        return list(self._seen()[0].values())

    def unread(self) -> int:
        """Messages of the bot in a lunch room that one of its members' clients does not show
        (each counted once per member)."""
        events, seen_by = self._seen()
        return sum(
            len(set(self.members[where]) - seen_by[event])
            for event, (where, _) in events.items()
            if where in self.members
        )

    def undecrypted(self) -> int:
        return sum(len(getattr(client, "_undecrypted", ())) for client in self.clients)

    def direct_rooms(self) -> int:
        """Direct chats with the bot beyond the one each person made."""
        return sum(max(len(client.direct) - 1, 0) for client in self.clients)

    def expected(self, row: Any) -> list[tuple[str, str]]:
        if row.group_members is None:
            # No buttons on Matrix: the plugin writes each command under the text.
            buttons = [Button(b["label"], b["command"]) for b in row.buttons or []]
            return [(f"dm:{_local(row.recipient)}", with_commands(row.body, buttons, "!"))]
        people = [_local(m) for m in row.group_members if _local(m) != self.bot.user_id]
        room = _local(row.origin) if row.origin else ""
        if room:
            return [
                (room, f"A group of {len(people)} has formed here; see the thread."),
                (room, row.body),
            ]
        return [(GROUP_ROOM, row.body)] if len(people) <= _group_max() else []

    def settle(self, wanted: collections.Counter[tuple[str, str]], timeout: float) -> float:
        """Wait until the people's clients show everything ``wanted`` (and every lunch-room
        message to each member), at most ``timeout`` seconds; how long it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            got = collections.Counter(self.delivered())
            if all(got[k] >= n for k, n in wanted.items()) and not self.unread():
                break
            time.sleep(0.25)
        return time.monotonic() - started

    def mark(self, moment: str) -> None:
        """CPU seconds so far of Synapse, the bots and this process (people, engine)."""
        pids = {"synapse": self.synapse.proc.pid if self.synapse.proc else None}
        for bot in self.bots:
            pids[f"bot{bot.index}"] = bot.pid if bot.alive() else None
        cpu: dict[str, float | None] = {k: _cpu_seconds(v) for k, v in pids.items()}
        cpu["benchmark"] = time.process_time()
        self.marks[moment] = (time.monotonic(), cpu)
        if moment == "submitting":
            self.submitting = time.time()

    def cpu(self) -> dict[str, Any] | None:
        """CPU seconds each process spent from the first submission to an empty outbox."""
        if not {"submitting", "delivered"} <= set(self.marks):
            return None
        (t0, before), (t1, after) = self.marks["submitting"], self.marks["delivered"]
        out: dict[str, Any] = {"window_s": round(t1 - t0, 2)}
        for name, value in after.items():
            start = before.get(name)
            out[name] = round(value - start, 2) if value is not None and start is not None else None
        return out

    def figures(self) -> dict[str, Any]:
        return {
            "matrix": {
                **self.request_figures(),
                "cpu_s": self.cpu(),
                "unread_by_members": self.unread(),
                "undecrypted": self.undecrypted(),
                "direct_rooms_made": self.direct_rooms(),
                "set_up_people_s": round(self.setup_s, 1),
            }
        }

    def calls(self, method: str) -> list[Any]:
        return [r for r in self.requests() if r.kind == method]


def _cpu_seconds(pid: int | None) -> float | None:
    """User and system CPU seconds of process ``pid`` so far (Linux: /proc), or None."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _local(platform_id: str) -> str:
    return platform_id.split(":", 1)[1]


def _group_max() -> int:
    from iwant_matrix.backend import GROUP_MAX

    return int(GROUP_MAX)


_ENCRYPTION = {
    "type": "m.room.encryption",
    "state_key": "",
    "content": {"algorithm": "megolm.v1.aes-sha2"},
}
