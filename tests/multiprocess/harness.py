"""Helpers of the multi-process tests: worker processes, their records, SQL checks, a proxy."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from iwant_engine.model import LIVE, SUPERSEDED, Status
from iwant_engine.storage.schema import Outbox, Request, Result

try:  # the engine's conformance kit, where the matching invariants now live
    from iwant_engine.testing import check_invariants as _kit_check_invariants

    def check_invariants(engine, now: datetime) -> None:  # noqa: ANN001
        """No request in two live groups, no group above its max, every member's window
        covers the meeting, and no two waiting requests that fit each other."""
        _kit_check_invariants(engine, now, liveness=True)

except ImportError:  # older tree: the property tests' own checker
    from ..engine.test_matching_properties import check_invariants  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
Command = tuple[str, str, str | None, str]  # person id, display name, room, text after !iwant


# -- the load ---------------------------------------------------------------------------------


def hhmm(moment: datetime) -> str:
    return f"{moment:%H:%M}"


def crowded_load(
    n: int, start: datetime, seed: int, people: int = 800, rooms: Iterable[str | None] = ()
) -> list[Command]:
    """``n`` commands into a few pools and activities with heavily overlapping windows.

    Windows start between 10:00 and 12:45 in quarter hours and are 0-2 h longer than the
    activity; a quarter of them cap the group (``max 2..4``), a tenth want at least three
    (``min 3``), a fifth give a deadline. People
    are reused, so some commands are refused (overlap with one's own request, or the cap of 5
    open requests), and the same person often submits from two processes at once.
    """
    rng = random.Random(seed)
    rooms = list(rooms) or ["r1", "r2", None]
    lengths = {"coffee": 15, "lunch": 45, "tennis": 30}
    commands: list[Command] = []
    day = start.replace(hour=10, minute=0, second=0, microsecond=0)
    for _ in range(n):
        who = rng.randrange(people)
        activity = rng.choice(["coffee", "coffee", "lunch", "tennis"])
        begin = day + timedelta(minutes=15 * rng.randrange(12))
        end = begin + timedelta(minutes=lengths[activity] + 15 * rng.randrange(9))
        words = [activity, f"{hhmm(begin)}-{hhmm(end)}"]
        if rng.random() < 0.2:
            words.append(f"by {hhmm(begin - timedelta(minutes=5 * rng.randrange(1, 6)))}")
        cap = rng.randrange(2, 5) if rng.random() < 0.25 else None
        if cap:
            words.append(f"max {cap}")
        if rng.random() < 0.1 and (cap is None or cap >= 3):
            words.append("min 3")
        commands.append((f"text:@u{who}", f"U{who}", rng.choice(rooms), " ".join(words)))
    return commands


def split(items: list, parts: int) -> list[list]:
    return [items[i::parts] for i in range(parts)]


# -- worker processes -------------------------------------------------------------------------


@dataclass
class Worker:
    label: str
    job: dict
    proc: subprocess.Popen
    stderr: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def outcomes(self) -> list[dict]:
        return read_lines(self.job.get("outcomes"))

    def sent(self) -> list[dict]:
        return read_lines(self.job.get("sent"))

    def summary(self) -> dict | None:
        path = Path(self.job["summary"])
        return json.loads(path.read_text()) if path.exists() else None

    def errors(self) -> str:
        return self.stderr.read_text(errors="replace")[-3000:] if self.stderr.exists() else ""


@dataclass
class Fleet:
    """Worker processes of one test; every one of them is killed at teardown."""

    directory: Path
    url: str
    workers: list[Worker] = field(default_factory=list)

    @property
    def go(self) -> Path:
        return self.directory / "go"

    def spawn(self, label: str, url: str | None = None, **job: object) -> Worker:
        base = self.directory / label
        job = {
            "label": label,
            "ready": f"{base}.ready",
            "go": str(self.go),
            "outcomes": f"{base}.outcomes.jsonl",
            "sent": f"{base}.sent.jsonl",
            "summary": f"{base}.summary.json",
            **job,
        }
        path = Path(f"{base}.job.json")
        path.write_text(json.dumps(job, default=str))
        env = {k: v for k, v in os.environ.items() if not k.startswith("IWANT_")}
        env["IWANT_DATABASE_URL"] = url or self.url
        stderr = Path(f"{base}.stderr")
        with stderr.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.multiprocess.worker", str(path)],
                cwd=REPO,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        worker = Worker(label, job, proc, stderr)
        self.workers.append(worker)
        return worker

    def wait_ready(self, workers: Iterable[Worker], timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        for w in workers:
            while not Path(w.job["ready"]).exists():
                assert w.alive(), f"{w.label} died while starting:\n{w.errors()}"
                assert time.monotonic() < end, f"{w.label} not ready in {timeout} s"
                time.sleep(0.02)

    def start(self, workers: list[Worker], timeout: float = 60) -> float:
        """Wait until all are ready, then let them go together; the moment they went."""
        self.wait_ready(workers, timeout)
        self.go.write_text("go")
        return time.time()

    def reset_go(self) -> None:
        self.go.unlink(missing_ok=True)

    def wait(self, workers: Iterable[Worker], timeout: float = 90) -> None:
        end = time.monotonic() + timeout
        for w in workers:
            try:
                w.proc.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise AssertionError(f"{w.label} still running after {timeout} s") from None
            assert w.proc.returncode == 0, f"{w.label} exited {w.proc.returncode}:\n{w.errors()}"

    def kill(self, worker: Worker) -> None:
        worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait(timeout=10)

    def close(self) -> None:
        for w in self.workers:
            if w.proc.poll() is None:
                w.proc.kill()
        for w in self.workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                w.proc.wait(timeout=10)


def read_lines(path: str | None) -> list[dict]:
    if not path or not Path(path).exists():
        return []
    lines = Path(path).read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


# -- SQL checks beyond check_invariants ---------------------------------------------------------


@dataclass
class Snapshot:
    requests: list[Request]
    results: dict[int, Result]
    outbox: list[Outbox]


def snapshot(engine) -> Snapshot:  # noqa: ANN001
    with Session(engine.storage.engine) as session:
        return Snapshot(
            list(session.scalars(select(Request).order_by(Request.id))),
            {r.id: r for r in session.scalars(select(Result))},
            list(session.scalars(select(Outbox).order_by(Outbox.id))),
        )


ANSWER_AGAIN = "In case my answer did not reach you"


def is_answer_again(row: Outbox) -> bool:
    """A direct message that repeats a command's answer nobody acknowledged."""
    return row.body.startswith(ANSWER_AGAIN)


def row_request_id(row: Outbox) -> int | None:
    for button in row.buttons or []:
        command = button.get("command", "")
        if "#" in command:
            return int(command.rsplit("#", 1)[1])
    return None


def check_people(snap: Snapshot, now: datetime, max_open: int) -> None:
    """The per-person lock held: at most ``max_open`` live requests, no overlapping twins."""
    live = defaultdict(list)
    for r in snap.requests:
        if r.status in LIVE and r.latest > now:
            live[r.person].append(r)
    for person, mine in live.items():
        assert len(mine) <= max_open, f"{person} has {len(mine)} open requests"
        for i, a in enumerate(mine):
            for b in mine[i + 1 :]:
                overlap = a.earliest < b.latest and b.earliest < a.latest
                assert not (a.activity == b.activity and overlap), (
                    f"{person} has overlapping {a.activity} requests {a.id} and {b.id}"
                )


def check_no_waiting_request_fits_an_open_group(snap: Snapshot, now: datetime) -> None:
    """A waiting request never fits a formed group that has room for it."""
    members = defaultdict(list)
    for r in snap.requests:
        members[r.result_id].append(r)
    groups = [g for g in snap.results.values() if g.status == Status.MATCHED and g.start >= now]
    for r in snap.requests:
        if r.status != Status.PENDING or r.deadline <= now:
            continue
        for g in groups:
            if (g.pool, g.activity) != (r.pool, r.activity):
                continue
            inside = r.earliest <= g.start and g.end <= r.latest
            room = len(members[g.id]) + 1 <= min(g.max_size, r.max_size)
            stranger = all(m.person != r.person for m in members[g.id])
            assert not (inside and room and stranger), (
                f"request {r.id} waits although group {g.id} at {g.start:%H:%M} has room for it"
            )


def expected_notes(k: int, formed_with: int) -> list[int]:
    """Notes each member of a group of ``k`` gets (members in order of entry), when the group
    was formed by ``formed_with`` requests and the rest joined one by one.

    Forming tells every initial member but the one who formed it (that one gets the reply);
    every join tells every member already in."""
    return [k - formed_with + 1 if i < formed_with - 1 else k - 1 - i for i in range(k)]


def check_group_notes(snap: Snapshot) -> dict[str, int]:
    """Every matched group owes its members exactly the notes of some formation + joins.

    Members enter in id order (a request's id is taken after its (pool, activity) lock, and
    every member before it committed before that lock was free), and each match note carries
    the recipient's request id in its cancel button. So for a group of k the counts per member
    must equal ``expected_notes(k, f)`` for some f in 2..k: fewer means a lost note, more a
    duplicated one."""
    notes = Counter(row_request_id(row) for row in snap.outbox if not is_answer_again(row))
    members = defaultdict(list)
    for r in snap.requests:
        members[r.result_id].append(r.id)
    groups = formed_ok = 0
    for g in snap.results.values():
        if g.status not in (Status.MATCHED, Status.DONE):
            continue
        ids = sorted(members[g.id])
        k = len(ids)
        got = [notes.get(i, 0) for i in ids]
        fits = [f for f in range(2, k + 1) if expected_notes(k, f) == got]
        assert fits, f"group {g.id}: members {ids} got {got} match notes; no formation explains it"
        groups += 1
        formed_ok += 1
    stray = sum(n for rid, n in notes.items() if rid is not None and rid not in _all(members))
    assert stray == 0, f"{stray} match notes name requests that are in no group"
    return {"groups": groups, "match_notes": sum(n for rid, n in notes.items() if rid)}


def _all(members: dict[int, list[int]]) -> set[int]:
    return {i for ids in members.values() for i in ids}


def delivery_report(snap: Snapshot, sent: list[dict]) -> dict[str, object]:
    """How the outbox rows were delivered according to the send logs of all processes."""
    by_row = defaultdict(list)
    for s in sent:
        by_row[s["id"]].append(s)
    rows = {row.id: row for row in snap.outbox}
    # A note that waited while a newer one of its topic (who is in the group now) was queued
    # for the same person is never sent: the newer one, which was, says it all.
    superseded = {i for i, row in rows.items() if row.error == SUPERSEDED and i not in by_row}
    unexplained = [
        i
        for i in superseded
        if not any(
            r.id > i
            and r.id in by_row
            and (r.recipient, r.topic) == (rows[i].recipient, rows[i].topic)
            for r in rows.values()
        )
    ]
    assert unexplained == [], f"superseded by nothing that was sent: {unexplained}"
    never = sorted(i for i in rows if i not in by_row and i not in superseded)
    twice = {i: [s["by"] for s in ss] for i, ss in by_row.items() if len(ss) > 1}
    unknown = sorted(i for i in by_row if i not in rows)
    wrong = [s for s in sent if s["id"] in rows and s["to"] != rows[s["id"]].recipient]
    undelivered = sorted(i for i, row in rows.items() if row.delivered_at is None)
    return {
        "rows": len(rows),
        "sends": len(sent),
        "never_sent": never,
        "superseded": len(superseded),
        "duplicates": twice,
        "unknown_rows": unknown,
        "wrong_recipient": wrong,
        "undelivered": undelivered,
    }


# -- a TCP proxy the test can cut ---------------------------------------------------------------


class CuttableProxy:
    """127.0.0.1:<random port> -> 127.0.0.1:5432, run by an asyncio loop in a thread.

    ``cut()`` closes every connection and stops listening (a client gets "connection
    refused", like a stopped server); ``blackhole()`` listens again but never answers (like a
    host that is gone, so only the client's connect timeout ends the wait); ``restore()``
    forwards again. ``close()`` ends it all; a fixture calls it."""

    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.upstream = upstream
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.mode = "open"
        self.writers: set[asyncio.StreamWriter] = set()
        self.connections = 0
        self.killed = 0

    def _run(self, coro, timeout: float = 10):  # noqa: ANN001, ANN202
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> int:
        self.thread.start()
        self._run(self._listen())
        return self.port

    async def _listen(self) -> None:
        self.server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            if self.mode != "open":  # blackhole: swallow everything, answer nothing
                while await reader.read(65536):
                    pass
                return
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(*self.upstream), 5
                )
            except (OSError, TimeoutError):
                return
            self.writers.add(up_writer)
            self.connections += 1
            try:
                await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
            finally:
                self.writers.discard(up_writer)
                up_writer.transport.abort()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self.writers.discard(writer)
            writer.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, ConnectionError):
            pass
        finally:
            writer.transport.abort()

    async def _drop_all(self) -> None:
        for w in list(self.writers):
            w.transport.abort()
            self.killed += 1
        self.writers.clear()

    async def _cut(self) -> None:
        self.mode = "cut"
        if self.server is not None:
            self.server.close()
            self.server = None
        await self._drop_all()

    async def _blackhole(self) -> None:
        self.mode = "blackhole"
        await self._drop_all()
        if self.server is None:
            await self._listen()

    async def _restore(self) -> None:
        await self._drop_all()  # the held blackhole connections
        self.mode = "open"
        if self.server is None:
            await self._listen()

    def cut(self) -> None:
        self._run(self._cut())

    def blackhole(self) -> None:
        self._run(self._blackhole())

    def restore(self) -> None:
        self._run(self._restore())

    def close(self) -> None:
        if self.thread.is_alive():
            self._run(self._cut())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
        self.loop.close()
