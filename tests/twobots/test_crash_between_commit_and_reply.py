"""Issue 11, defects 6 and 7, with real errbot processes on PostgreSQL: a bot killed after a
command's commit and before its answer, and a platform that re-delivers the same event to
the bot started in its place. Every person gets exactly one answer; nothing is stored twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from ..support import truncate_postgres

REPO = Path(__file__).resolve().parents[2]
ERRBOT = Path(sys.executable).with_name("errbot")


class Chat:
    """The platform's side: one inbox and outbox shared by the bot processes that serve it."""

    def __init__(self, tmp: Path, database_url: str, cfg: Path) -> None:
        self.dir, self.database_url, self.cfg = tmp, database_url, cfg
        self.inbox, self.outbox = tmp / "in.jsonl", tmp / "out.jsonl"
        self.inbox.touch()
        self.outbox.touch()
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, die_on_reply: str | None = None) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IWANT_", "FAKECHAT_"))}
        env.update(
            IWANT_BACKEND="FakeChat",
            IWANT_BACKEND_DIR=str(Path(__file__).parent / "backend"),
            IWANT_DATA_DIR=str(self.dir / f"data{len(self.procs)}"),
            IWANT_DATABASE_URL=self.database_url,
            IWANT_PLUGINS_CFG=str(self.cfg),
            IWANT_POLL_SECONDS="0.3",
            IWANT_BOT_ADMINS="admin",
            FAKECHAT_PLATFORM="telegram",
            FAKECHAT_INBOX=str(self.inbox),
            FAKECHAT_OUTBOX=str(self.outbox),
        )
        if die_on_reply:
            env["FAKECHAT_DIE_ON_REPLY"] = die_on_reply
        log = (self.dir / f"errbot{len(self.procs)}.log").open("w")
        proc = subprocess.Popen(
            [str(ERRBOT), "-c", str(REPO / "config.py")],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def say(self, person: str, words: str, event_id: str) -> None:
        with self.inbox.open("a") as f:
            f.write(json.dumps({"from": person, "text": words, "event_id": event_id}) + "\n")

    def received(self, person: str) -> list[str]:
        lines = self.outbox.read_text().splitlines()
        return [m["text"] for m in map(json.loads, lines) if m["to"] == person]

    def wait_for(self, person: str, count: int, timeout: float = 60) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.received(person)
            if len(got) >= count:
                return got
            time.sleep(0.1)
        logs = "".join(p.read_text()[-1500:] for p in self.dir.glob("errbot*.log"))
        raise AssertionError(f"{person} got {self.received(person)}; logs: {logs}")

    def stop(self) -> None:
        with self.inbox.open("a") as f:
            f.write(json.dumps({"quit": True}) + "\n")
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def chat(pg_database, tmp_path):
    truncate_postgres(pg_database)
    cfg = tmp_path / "plugins.cfg"
    cfg.write_text(
        "[engine]\nstrategy = overlap\n[activities]\ncoffee = 15, 6\n"
        "[limits]\nreply_grace_seconds = 3\n"
    )
    platform = Chat(tmp_path, pg_database, cfg)
    yield platform
    platform.stop()


def requests_of(database_url: str, person: str) -> int:
    eng = create_engine(database_url)
    with eng.connect() as conn:
        n = conn.scalar(text("SELECT count(*) FROM requests WHERE person = :p"), {"p": person})
    eng.dispose()
    return int(n or 0)


def test_a_bot_killed_before_its_answer_and_the_event_delivered_again(chat):
    first = chat.start(die_on_reply="Waiting for")
    chat.say("alice", "!iwant coffee in 30 min", event_id="-5:101")
    assert first.wait(timeout=60) == 9, "it died between the commit and the answer"
    assert chat.received("alice") == []
    assert requests_of(chat.database_url, "telegram:alice") == 1, "the commit happened"

    chat.start()  # reads the inbox from the start: the platform re-delivers the event
    got = chat.wait_for("alice", 1)
    assert got[0].startswith("I have that one already: coffee "), got
    assert ", waiting; you'll hear by " in got[0]
    time.sleep(5)  # past the grace period: the answer was acknowledged, no second one
    assert len(chat.received("alice")) == 1, chat.received("alice")
    assert requests_of(chat.database_url, "telegram:alice") == 1, "stored once"


def test_a_bot_killed_before_its_answer_is_answered_by_direct_message(chat):
    first = chat.start(die_on_reply="Matched!")
    chat.say("bob", "!iwant coffee in 30 min", event_id="-5:201")
    assert chat.wait_for("bob", 1)[0].startswith("Waiting for coffee company")
    time.sleep(1.5)  # a poller round acknowledges that answer
    chat.say("carol", "!iwant coffee for 1h", event_id="-5:202")
    assert first.wait(timeout=60) == 9
    with chat.inbox.open("w"):
        pass  # this platform does not re-deliver: only the grace period saves carol
    chat.start()
    got = chat.wait_for("carol", 1, timeout=30)
    assert got == [got[0]] and got[0].startswith(
        "In case my answer did not reach you: your request is coffee at "
    ), got
    assert got[0].endswith("with telegram bob.\nCancel: !iwant cancel #2")
    bob = chat.wait_for("bob", 2)
    assert bob[1].startswith("telegram carol joins you for coffee at"), "it was in the outbox"
    time.sleep(4)
    assert len(chat.received("carol")) == 1 and len(chat.received("bob")) == 2
