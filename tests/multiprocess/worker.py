"""One OS process of the multi-process tests: ``python -m tests.multiprocess.worker JOB.json``.

The database URL comes from ``IWANT_DATABASE_URL``; everything else from the job file:

- ``role``: ``load`` (submit ``commands``, optionally delivering after each like the plugin
  does), ``deliver`` (drain one platform's outbox), ``sweep`` (expire and mark done) or
  ``sweep_standing`` (make standing wishes' days at each of ``clocks``).
- ``clock``: ISO moment of the fixed clock, so that every process agrees on "now".
- ``pools``: room -> pool name, as ``Settings.pools``.
- ``ready`` / ``go``: the worker writes ``ready`` once its engine is built, then waits (bounded)
  for the file ``go`` to exist, so that all workers start their load at the same instant.
- ``outcomes``: JSON lines, one per command, written with one ``os.write`` each so that a
  SIGKILL leaves whole lines behind; ``sent``: JSON lines, one per delivered outbox row, written
  inside the send function (that is the moment the platform "has" the message).
- ``summary``: written at a clean exit only.

Every loop is bounded by ``max_seconds``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path

from iwant_engine import Engine, FixedClock, Person, Unavailable, UserError, settings


class Lines:
    """Append-only JSON lines through a raw file descriptor: each line is one write(2)."""

    def __init__(self, path: str | None) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if path else None

    def add(self, **record: object) -> None:
        if self.fd is not None:
            os.write(self.fd, (json.dumps(record) + "\n").encode())


def build_engine(job: dict) -> Engine:
    base = settings.load(environ={})
    cfg = dataclasses.replace(
        base,
        database_url=os.environ["IWANT_DATABASE_URL"],
        pools=dict(job.get("pools") or {}),
        pool_size=int(job.get("pool_size", 3)),
    )
    return Engine(cfg, FixedClock(datetime.fromisoformat(job["clock"])))


def wait_for_go(job: dict, limit: float) -> None:
    Path(job["ready"]).write_text(str(os.getpid()))
    end = time.monotonic() + limit
    while not Path(job["go"]).exists():
        if time.monotonic() > end:
            sys.exit("no go signal")
        time.sleep(0.005)


def request_id(note_buttons: list[dict[str, str]]) -> int | None:
    for button in note_buttons:
        command = button.get("command", "")
        if "#" in command:
            return int(command.rsplit("#", 1)[1])
    return None


def make_sender(sent: Lines, label: str):  # noqa: ANN201
    def send(item) -> None:  # noqa: ANN001
        sent.add(id=item.id, to=item.recipient, by=label, body=item.body[:300], t=time.time())

    return send


def deliver_all(engine: Engine, platform: str, send, limit: int) -> tuple[int, str | None]:  # noqa: ANN001
    """One plugin-style delivery: rounds until fewer than ``limit`` rows come back."""
    total = 0
    for _ in range(1000):
        try:
            report = engine.deliver(platform, send, limit=limit)
        except Unavailable:
            return total, "Unavailable"
        total += report.delivered
        if report.delivered + report.retried < limit:
            break
    return total, None


def run_load(job: dict, engine: Engine, out: Lines, sent: Lines) -> dict:
    label = job["label"]
    recorded = make_sender(sent, label)
    # ``hang_after``: from that command on, the second send of a delivery round hangs (as if
    # the platform's API never answered) after writing ``hang_marker``: the process then holds
    # the lease of the rows it claimed, and the test kills it there.
    hang_after = job.get("hang_after")
    state = {"i": 0, "round_sends": 0}

    def send(item) -> None:  # noqa: ANN001
        if hang_after is not None and state["i"] >= hang_after and state["round_sends"] == 1:
            Path(job["hang_marker"]).write_text(str(item.id))
            time.sleep(120)
        recorded(item)
        state["round_sends"] += 1

    every = int(job.get("deliver_every", 1))  # 0: never; 1: after each command, as the plugin
    platform = job.get("platform", "text")
    pause = float(job.get("unavailable_pause", 0))
    end = time.monotonic() + float(job.get("max_seconds", 60))
    counts = {"accepted": 0, "user_error": 0, "unavailable": 0, "error": 0, "delivered": 0}
    slowest = 0.0
    answered: list[int] = []  # answers written down, acknowledged every 10 commands
    for i, (pid, name, room, text) in enumerate(job["commands"]):
        if time.monotonic() > end:
            break
        t0 = time.time()
        record: dict[str, object] = {"i": i, "person": pid, "room": room, "text": text}
        try:
            note = engine.submit(
                Person(pid, name), text, room, event_id=f"{label}:{i}", durable_reply=True
            )
        except UserError as err:
            record.update(kind="user_error", msg=str(err)[:200])
        except Unavailable as err:
            record.update(kind="unavailable", msg=str(err))
        except Exception as err:  # recorded, never hidden: the test fails on it
            record.update(kind="error", exc=type(err).__name__, msg=str(err)[:300])
        else:
            record.update(
                kind="accepted",
                request_id=request_id(note.buttons),
                matched=note.body.startswith(("Matched!", "You join")),
            )
        record.update(t0=t0, dt=time.time() - t0)
        slowest = max(slowest, time.time() - t0)
        out.add(**record)  # the answer reached its person
        if record["kind"] == "accepted":
            answered.append(int(str(record["request_id"])))
        if len(answered) >= 10 or i + 1 == len(job["commands"]):
            try:  # as the plugin does: kept for the next round while the database is away
                engine.replied(answered)
                answered = []
            except Unavailable:
                pass
        counts[str(record["kind"])] += 1
        if record["kind"] == "unavailable" and pause:
            time.sleep(pause)  # a person waits a moment before the next try
        if every and (i + 1) % every == 0 or every and i + 1 == len(job["commands"]):
            state.update(i=i, round_sends=0)
            t1 = time.time()
            try:
                n, problem = deliver_all(engine, platform, send, int(job.get("limit", 50)))
            except Exception as err:
                out.add(i=i, kind="deliver_error", exc=type(err).__name__, msg=str(err)[:300])
                counts["error"] += 1
                continue
            counts["delivered"] += n
            slowest = max(slowest, time.time() - t1)
            if problem and pause:
                time.sleep(pause)
    return {**counts, "slowest_call": slowest}


def run_hang_in_submit(job: dict, engine: Engine) -> dict:
    """Submit one command, and hang (as a process stuck in a GC pause, a swap storm or a
    debugger would) inside its transaction, when the storage asks for a matching decision:
    the person's and the (pool, activity)'s locks are held, the connection stays open."""
    decide = engine.decide

    def hanging(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        Path(job["hang_marker"]).write_text("in the transaction")
        time.sleep(float(job.get("hang_seconds", 120)))
        return decide(*args, **kwargs)

    engine.decide = hanging
    pid, name, room, text = job["commands"][0]
    engine.submit(Person(pid, name), text, room)
    return {}


def run_deliver(job: dict, engine: Engine, sent: Lines) -> dict:
    send = make_sender(sent, job["label"])
    limit = int(job.get("limit", 50))
    idle_rounds = int(job.get("idle_rounds", 5))
    end = time.monotonic() + float(job.get("max_seconds", 30))
    stop = Path(job["stop"]) if job.get("stop") else None  # keep going until it exists
    delivered = rounds = idle = unavailable = 0
    while time.monotonic() < end and not (idle >= idle_rounds and (stop is None or stop.exists())):
        rounds += 1
        try:
            engine.answer_again(job["platform"])
            report = engine.deliver(job["platform"], send, limit=limit)
        except Unavailable:
            unavailable += 1
            time.sleep(0.1)
            continue
        delivered += report.delivered
        if report.delivered:
            idle = 0
        else:
            idle += 1
            time.sleep(0.02)
    return {"delivered": delivered, "rounds": rounds, "unavailable": unavailable}


def run_sweep(job: dict, engine: Engine) -> dict:
    end = time.monotonic() + float(job.get("max_seconds", 30))
    expired = done = calls = 0
    quiet = 0
    while time.monotonic() < end and quiet < 3:
        calls += 1
        if job.get("batch"):  # what Engine.sweep() does, with a smaller claim per transaction
            e, d = engine.sweep(batch=int(job["batch"]))
        else:
            e, d = engine.sweep()
        expired, done = expired + e, done + d
        quiet = quiet + 1 if (e, d) == (0, 0) else 0
        if quiet:
            time.sleep(0.02)
    return {"expired": expired, "done": done, "calls": calls}


def run_sweep_standing(job: dict, engine: Engine) -> dict:
    """Make the due days of standing wishes at each of ``clocks`` in turn, as the poller does."""
    looked_at = 0
    for moment in job["clocks"]:
        engine.clock.set(datetime.fromisoformat(moment))  # type: ignore[attr-defined]
        for _ in range(100):
            seen = engine.sweep_standing(batch=int(job.get("batch", 20)))
            looked_at += seen
            if not seen:
                break
    return {"looked_at": looked_at}


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[1]).read_text())
    engine = build_engine(job)
    out, sent = Lines(job.get("outcomes")), Lines(job.get("sent"))
    try:
        wait_for_go(job, float(job.get("go_timeout", 60)))
        started = time.time()
        if job["role"] == "load":
            summary = run_load(job, engine, out, sent)
        elif job["role"] == "hang_in_submit":
            summary = run_hang_in_submit(job, engine)
        elif job["role"] == "deliver":
            summary = run_deliver(job, engine, sent)
        elif job["role"] == "sweep":
            summary = run_sweep(job, engine)
        elif job["role"] == "sweep_standing":
            summary = run_sweep_standing(job, engine)
        else:
            raise SystemExit(f"unknown role {job['role']!r}")
        summary.update(started=started, finished=time.time(), pid=os.getpid())
        Path(job["summary"]).write_text(json.dumps(summary))
    finally:
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
