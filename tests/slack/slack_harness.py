"""Test harness for the Slack backend: a populated stand-in workspace and real errbot
processes on the IWantSlack backend."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path[:0] = [p for p in (str(HERE),) if p not in sys.path]

from slack_standin import Posted, SlackStandIn  # noqa: E402

ERRBOT = str(Path(sys.executable).with_name("errbot"))
PROBE_CONFIG = HERE / "errbot_config.py"  # config.py + the test-only SlackProbe plugin
PROJECT_CONFIG = ROOT / "config.py"  # the real thing: the iwant plugin

ALICE, BOB, CAROL, ADMIN = "U0ALICE", "U0BOB", "U0CAROL", "U0ADMIN"
GENERAL, RANDOM = "C0GENERAL", "C0RANDOM"


def make_workspace() -> SlackStandIn:
    standin = SlackStandIn().start()
    standin.add_user(ALICE, "alice", "Alice Novak", "Alice", tz="Europe/Prague")
    standin.add_user(BOB, "bob", "Bob Smith", "bob", tz="America/New_York")
    standin.add_user(CAROL, "carol", "Carol Tanaka", "", tz="Asia/Tokyo")
    standin.add_user("U0GONE", "gone", "Gone Person", deleted=True)
    standin.add_user(ADMIN, "admin", "Ada Admin", tz=None)
    standin.add_channel(GENERAL, "general", [ALICE, BOB, CAROL])
    standin.add_channel(RANDOM, "random", [ALICE, BOB], bot_member=False)
    return standin


class BotProcess:
    """One real ``errbot`` process on the IWantSlack backend, pointed at a stand-in."""

    def __init__(
        self,
        standin: SlackStandIn,
        workdir: Path,
        config: Path = PROBE_CONFIG,
        env: dict[str, str] | None = None,
    ) -> None:
        self.standin = standin
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "errbot.log"
        # Everything here talks to 127.0.0.1: slack-sdk would send it to a proxy from the
        # environment (it ignores NO_PROXY).
        inherited = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        self.env = {
            **inherited,
            "IWANT_BACKEND": "IWantSlack",
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_APP_TOKEN": "xapp-test",
            "SLACK_API_URL": standin.api_url,
            "IWANT_DATA_DIR": str(self.data_dir),
            "IWANT_DATABASE_URL": f"sqlite:///{workdir / 'iwant.db'}",
            "IWANT_POLL_SECONDS": "1",
            "IWANT_BOT_ADMINS": ADMIN,
            "IWANT_LOG_LEVEL": "DEBUG",
            **(env or {}),
        }
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> BotProcess:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [ERRBOT, "-c", str(self.config)],
            cwd=str(ROOT),
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so teardown can end all of it
        )
        return self

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
                # errbot deactivates the plugin, which lets a delivery in flight end (up to
                # 8 s): on a busy machine a clean stop takes longer than that.
                self.proc.wait(30)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if getattr(self, "_log", None):
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, text: str, timeout: float = 30) -> None:
        self.standin.wait_for(lambda: text in self.log(), timeout, f"{text!r} in the bot's log")


def say(
    standin: SlackStandIn,
    user: str,
    channel: str,
    text: str,
    contains: str = "",
    reply_in: str | None = None,
    timeout: float = 30,
) -> Posted:
    """``user`` writes ``text`` in ``channel``; wait for the bot's next message there (or in
    ``reply_in``) that contains ``contains``."""
    where = reply_in or channel
    before = len(standin.messages_in(where))
    standin.user_message(user, channel, text)
    return standin.wait_message(where, contains, timeout=timeout, after=before)


def quiet_for(seconds: float) -> None:
    """Let a moment pass in which something must NOT happen (kept short on purpose)."""
    time.sleep(seconds)
