"""A real errbot process on the FakeChat backend (tests/twobots/backend) with its /healthz
and /metrics on a port of its own: what the two-platform and operations tests drive."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
ERRBOT = Path(sys.executable).with_name("errbot")
BACKEND = Path(__file__).resolve().parent / "backend"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeBot:
    """One bot process of ``platform`` (the name its adapter reports); ``admin`` is its
    admin. Its inbox and outbox are JSON-lines files in ``directory``."""

    def __init__(
        self,
        directory: Path,
        database_url: str,
        cfg: Path,
        platform: str = "telegram",
        **env: str,
    ) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.inbox, self.outbox = self.dir / "in.jsonl", self.dir / "out.jsonl"
        self.inbox.touch()
        self.outbox.touch()
        self.port = free_port()
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("IWANT_", "FAKECHAT_"))}
        environ.update(
            IWANT_BACKEND="FakeChat",
            IWANT_BACKEND_DIR=str(BACKEND),
            IWANT_DATA_DIR=str(self.dir / "data"),
            IWANT_DATABASE_URL=database_url,
            IWANT_PLUGINS_CFG=str(cfg),
            IWANT_POLL_SECONDS="0.3",
            IWANT_BOT_ADMINS="admin",
            IWANT_HTTP_PORT=str(self.port),
            FAKECHAT_PLATFORM=platform,
            FAKECHAT_INBOX=str(self.inbox),
            FAKECHAT_OUTBOX=str(self.outbox),
        )
        environ.update(env)
        self.log_path = self.dir / "errbot.log"
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [str(ERRBOT), "-c", str(REPO / "config.py")],
            env=environ,
            cwd=REPO,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    # -- chat --------------------------------------------------------------------------------

    def say(self, person: str, text: str, room: str | None = None) -> None:
        with self.inbox.open("a") as f:
            f.write(json.dumps({"from": person, "room": room, "text": text}) + "\n")

    def sent(self) -> list[dict[str, str]]:
        return [json.loads(line) for line in self.outbox.read_text().splitlines()]

    def ask(self, person: str, text: str, room: str | None = None) -> str:
        """Say ``text`` and wait for the next message to ``room`` or ``person``: the answer."""
        seen = len(self.sent())
        self.say(person, text, room)
        where = room or person
        sent = self.wait_for(lambda s: any(m["to"] == where for m in s[seen:]))
        return next(m["text"] for m in sent[seen:] if m["to"] == where)

    def wait_for(
        self, predicate: Callable[[list[dict[str, str]]], bool], timeout: float = 60
    ) -> list[dict[str, str]]:
        return self.until(lambda: (lambda s: s if predicate(s) else None)(self.sent()), timeout)

    # -- http --------------------------------------------------------------------------------

    def get(self, path: str) -> tuple[int, str]:
        """(status, body) of GET ``path``; (0, why) when nothing answers."""
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=30) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()
        except OSError as err:
            return 0, str(err)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of /metrics: (name, sorted labels) -> value."""
        status, body = self.get("/metrics")
        assert status == 200, body
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body)
            for s in family.samples
        }

    def wait_healthy(self, timeout: float = 90) -> None:
        self.until(lambda: self.get("/healthz")[0] == 200, timeout)

    # -- the process -------------------------------------------------------------------------

    def until(self, check: Callable[[], T | None], timeout: float = 60) -> T:
        """Call ``check`` until it gives something truthy (its value); fail with the log."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            assert self.proc.poll() is None, f"the bot exited: {self.tail()}"
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; sent {self.sent()[-5:]}; log: {self.tail()}")
            time.sleep(0.1)

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with self.inbox.open("a") as f:
                f.write(json.dumps({"quit": True}) + "\n")
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
