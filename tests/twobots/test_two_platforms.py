"""Two real errbot processes, one per platform, on one PostgreSQL database: a pool joined
across platforms matches a Slack person with a Telegram person, and each process tells only
its own person."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..support import truncate_postgres

REPO = Path(__file__).resolve().parents[2]
ERRBOT = Path(sys.executable).with_name("errbot")


class Bot:
    def __init__(self, platform: str, tmp: Path, database_url: str, cfg: Path) -> None:
        self.dir = tmp / platform
        self.dir.mkdir()
        self.inbox, self.outbox = self.dir / "in.jsonl", self.dir / "out.jsonl"
        self.inbox.touch()
        self.outbox.touch()
        env = {k: v for k, v in os.environ.items() if not k.startswith("IWANT_")}
        env.update(
            IWANT_BACKEND="FakeChat",
            IWANT_BACKEND_DIR=str(Path(__file__).parent / "backend"),
            IWANT_DATA_DIR=str(self.dir / "data"),
            IWANT_DATABASE_URL=database_url,
            IWANT_PLUGINS_CFG=str(cfg),
            IWANT_POLL_SECONDS="0.5",
            IWANT_BOT_ADMINS="admin",
            FAKECHAT_PLATFORM=platform,
            FAKECHAT_INBOX=str(self.inbox),
            FAKECHAT_OUTBOX=str(self.outbox),
        )
        self.log = (self.dir / "errbot.log").open("w")
        self.proc = subprocess.Popen(
            [str(ERRBOT), "-c", str(REPO / "config.py")],
            env=env,
            cwd=REPO,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def say(self, person: str, text: str, room: str | None = None) -> None:
        with self.inbox.open("a") as f:
            f.write(json.dumps({"from": person, "room": room, "text": text}) + "\n")

    def sent(self) -> list[dict[str, str]]:
        return [json.loads(line) for line in self.outbox.read_text().splitlines()]

    def wait_for(self, predicate, timeout: float = 60) -> list[dict[str, str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sent = self.sent()
            if predicate(sent):
                return sent
            assert self.proc.poll() is None, (self.dir / "errbot.log").read_text()[-3000:]
            time.sleep(0.1)
        raise AssertionError(f"timed out; sent so far: {self.sent()}")

    def stop(self) -> None:
        with self.inbox.open("a") as f:
            f.write(json.dumps({"quit": True}) + "\n")
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def bots(pg_database, tmp_path):
    truncate_postgres(pg_database)
    cfg = tmp_path / "plugins.cfg"
    cfg.write_text(
        "[engine]\nstrategy = overlap\n[activities]\ncoffee = 15, 6\n"
        "[pools]\noffice = slack:C1, telegram:-5\n"
    )
    started = [Bot(p, tmp_path, pg_database, cfg) for p in ("slack", "telegram")]
    yield started
    for bot in started:
        bot.stop()


def test_a_joined_pool_matches_across_platforms_and_each_bot_tells_its_own(bots):
    slack, telegram = bots
    slack.say("U1", "!iwant coffee in 30 min", room="C1")
    slack.wait_for(lambda sent: any(m["text"].startswith("Waiting for coffee") for m in sent))
    telegram.say("42", "!iwant coffee for 2h", room="-5")
    sent = telegram.wait_for(lambda sent: any("Matched!" in m["text"] for m in sent))
    assert sent[0] == {"to": "-5", "text": sent[0]["text"]}
    assert sent[0]["text"].startswith("Matched! You meet slack U1 for coffee at")
    notes = slack.wait_for(lambda sent: any("joins you" in m["text"] for m in sent))
    dm = [m for m in notes if "joins you" in m["text"]]
    assert [m["to"] for m in dm] == ["U1"]
    assert dm[0]["text"].startswith("telegram 42 joins you for coffee at")
    time.sleep(1.5)  # a few poller rounds: nothing more, and nothing crosses platforms
    assert [m["to"] for m in telegram.sent()] == ["-5"]
    assert len([m for m in slack.sent() if "joins you" in m["text"]]) == 1
