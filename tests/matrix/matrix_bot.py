"""A real errbot process with the iwant plugin on the IWantMatrix backend (iwant's own
config.py, the backend from adapters/ by default), its data and SQLite database in a
folder that outlives a restart."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from synapse_harness import Account, Synapse

ROOT = Path(__file__).resolve().parents[2]
READY = "Matrix: the plugins are active"


def midday_zone() -> str:
    """A fixed-offset zone where it is about noon now, so that "in 6h" and "for 7h" never
    cross midnight, whatever time the tests run."""
    offset = 12 - datetime.now(UTC).hour
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"


def plugins_cfg(folder: Path, pacing: dict[str, str]) -> Path:
    """iwant's plugins.cfg with ``[pacing]`` overrides (its last section)."""
    text = (ROOT / "plugins.cfg").read_text()
    lines = "".join(f"{key} = {value}\n" for key, value in pacing.items())
    path = folder / "plugins.cfg"
    path.write_text(text.rstrip("\n") + "\n" + lines)
    return path


#: For a bot whose limits an admin lifted (override_ratelimit): no pacing to speak of.
LIFTED = {
    "matrix.message": "20/s burst 20",
    "matrix.room_creation": "20/s burst 20",
    "matrix.invites": "20/s burst 20",
    "matrix.invited": "20/s burst 20",
}


class BotProcess:
    def __init__(
        self,
        synapse: Synapse,
        bot: Account,
        folder: Path,
        pacing: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.synapse, self.account, self.folder = synapse, bot, folder
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "errbot.log"
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("IWANT_", "MATRIX_")) and not k.lower().endswith("_proxy")
        }
        self.env = {
            **inherited,
            "IWANT_BACKEND": "IWantMatrix",
            "MATRIX_HOMESERVER": synapse.url,
            "MATRIX_USER_ID": bot.user_id,
            "MATRIX_ACCESS_TOKEN": bot.access_token,
            "IWANT_DATA_DIR": str(folder / "data"),
            "IWANT_DATABASE_URL": f"sqlite:///{folder / 'iwant.db'}",
            "IWANT_POLL_SECONDS": "0.5",
            "IWANT_TIMEZONE": midday_zone(),
            "IWANT_BOT_ADMINS": synapse.admin.user_id,
            "IWANT_LOG_FILE": str(self.log),
            "MATRIX_POLL_TIMEOUT": "5",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        if pacing:
            self.env["IWANT_PLUGINS_CFG"] = str(plugins_cfg(folder, pacing))
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self, timeout: float = 60.0) -> BotProcess:
        """Start errbot; return once its plugins are active (after its first sync)."""
        ready_before = self._log().count(READY)
        self.runs += 1
        out = (self.folder / f"errbot-run{self.runs}.out").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "errbot.cli", "-c", str(ROOT / "config.py")],
            cwd=self.folder,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        deadline = time.monotonic() + timeout
        delay = 0.05
        while self._log().count(READY) <= ready_before:
            if self.proc.poll() is not None:
                raise AssertionError(f"errbot exited with {self.proc.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"errbot did not become ready:\n{self.output()}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.3)
        return self

    def _log(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def output(self, chars: int = 20000) -> str:
        texts = [f.read_text(errors="replace") for f in sorted(self.folder.glob("errbot-run*"))]
        return ("\n".join(texts) + "\n" + self._log())[-chars:]

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, as an operator stops it; the exit code."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"errbot ignored SIGTERM:\n{self.output()}") from None

    def kill(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
