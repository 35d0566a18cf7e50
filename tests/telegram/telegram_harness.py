"""Harness of the Telegram backend tests: the backend run in this process (fast, precise)
and real errbot processes on the backend (end to end), both against the Bot API stand-in.

Test modules import from here, never from ``conftest`` (several test folders have one)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
for _p in (str(HERE),):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from telegram_standin import BotApiStandin, wait_until  # noqa: E402

# errbot next to the interpreter that runs the tests, whatever environment that is.
ERRBOT = Path(sys.executable).with_name("errbot")
TOKEN = "123456789:TEST-secret-token-AAAA"


# ---------------------------------------------------------------------------- in process


class _NoPlugins:
    """Just enough of errbot's plugin manager for the backend's own code paths."""

    def get_all_active_plugins(self) -> list[Any]:
        return []

    def activate_non_started_plugins(self) -> str:
        return ""

    def deactivate_all_plugins(self) -> None:
        pass

    def shutdown(self) -> None:
        pass


def make_config(data_dir: Path, base_url: str, token: str = TOKEN) -> SimpleNamespace:
    from errbot.bootstrap import bot_config_defaults

    config = SimpleNamespace(
        BACKEND="IWantTelegram",
        BOT_IDENTITY={"token": token, "base_url": base_url},
        BOT_DATA_DIR=str(data_dir),
        BOT_ADMINS=("4242",),
        BOT_PREFIX="!",
        BOT_ASYNC=False,
    )
    bot_config_defaults(config)
    return config


class InProcessBot:
    """The backend class in a thread of the test process; errbot's message handling is
    replaced by a recorder (``received``), so tests see exactly what the backend hands
    errbot and can call ``send_message`` directly."""

    def __init__(self, data_dir: Path, api: BotApiStandin) -> None:
        from iwant_telegram.backend import IWantTelegramBackend

        received: list[Any] = []
        connected = threading.Event()

        class Recording(IWantTelegramBackend):
            poll_timeout = 2
            min_backoff = 0.1
            max_backoff = 0.5

            def callback_message(self, msg: Any) -> None:
                received.append(msg)

            def connect_callback(self) -> None:
                connected.set()

            def disconnect_callback(self) -> None:
                pass

        self.api = api
        self.received = received
        self.connected = connected
        self.backend = Recording(make_config(data_dir, api.base_url))
        self.backend.attach_plugin_manager(_NoPlugins())
        self._thread: threading.Thread | None = None
        self.result: Any = None

    def start(self) -> InProcessBot:
        def run() -> None:
            self.result = self.backend.serve_once()

        self._thread = threading.Thread(target=run, name="backend-under-test", daemon=True)
        self._thread.start()
        if not self.connected.wait(10):
            raise AssertionError("backend did not connect")
        self.api.wait_for_calls("getUpdates")
        return self

    def stop(self) -> None:
        self.backend.stop()
        if self._thread is not None:
            self._thread.join(10)
            assert not self._thread.is_alive(), "backend did not stop"

    def wait_received(self, count: int, timeout: float = 30.0) -> list[Any]:
        return wait_until(
            lambda: len(self.received) >= count and list(self.received),
            timeout,
            f"{count} message(s) handed to errbot",
        )

    def send(self, to: Any, text: str, buttons: list[dict[str, str]] | None = None) -> None:
        from errbot.backends.base import Message

        msg = Message(text)
        msg.to = to if not isinstance(to, (str, int)) else self.backend.build_identifier(str(to))
        msg.frm = self.backend.bot_identifier
        if buttons:
            msg.extras["buttons"] = buttons
        self.backend.send_message(msg)


# ---------------------------------------------------------------------------- errbot process

_CONFIG_WRAPPER = """\
# Test configuration: the project's config.py plus extra plugin folders.
import importlib.util as _u
_spec = _u.spec_from_file_location("iwant_project_config", {config!r})
_cfg = _u.module_from_spec(_spec)
_spec.loader.exec_module(_cfg)
globals().update({{k: v for k, v in vars(_cfg).items() if k.isupper()}})
BOT_EXTRA_PLUGIN_DIR = [p for p in [BOT_EXTRA_PLUGIN_DIR, *{extra!r}] if p]
"""


class ErrbotProcess:
    """A real ``errbot`` process on the IWantTelegram backend, talking to the stand-in."""

    def __init__(
        self,
        api: BotApiStandin,
        workdir: Path,
        extra_plugin_dirs: tuple[Path, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.api = api
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.log_file = workdir / "errbot.log"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if extra_plugin_dirs:
            self.config = workdir / "config.py"
            self.config.write_text(
                _CONFIG_WRAPPER.format(
                    config=str(ROOT / "config.py"), extra=[str(p) for p in extra_plugin_dirs]
                )
            )
        else:
            self.config = ROOT / "config.py"
        # Everything talks to 127.0.0.1: a proxy from the environment must not get in between.
        inherited = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        self.env = {
            **inherited,
            "IWANT_BACKEND": "IWantTelegram",
            "TELEGRAM_TOKEN": api.token,
            "TELEGRAM_API_URL": api.base_url,
            "TELEGRAM_POLL_TIMEOUT": "5",
            "IWANT_DATA_DIR": str(self.data_dir),
            "IWANT_DATABASE_URL": f"sqlite:///{workdir / 'iwant.db'}",
            "IWANT_POLL_SECONDS": "1",
            "IWANT_BOT_ADMINS": "4242",
            "IWANT_LOG_FILE": str(self.log_file),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self, timeout: float = 30.0) -> ErrbotProcess:
        """Start errbot and wait until it polls (plugins are active by then)."""
        polls_before = len(self.api.calls_to("getUpdates"))
        self.runs += 1
        out = (self.workdir / f"errbot-run{self.runs}.out").open("wb")
        self.proc = subprocess.Popen(
            [str(ERRBOT), "-c", str(self.config)],
            cwd=self.workdir,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        deadline = time.monotonic() + timeout
        while len(self.api.calls_to("getUpdates")) <= polls_before:
            if self.proc.poll() is not None:
                raise AssertionError(f"errbot exited with {self.proc.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"errbot did not start polling:\n{self.output()}")
            time.sleep(0.05)
        return self

    def output(self) -> str:
        texts = []
        for f in sorted(self.workdir.glob("errbot-run*.out")):
            texts.append(f.read_text(errors="replace"))
        if self.log_file.exists():
            texts.append(self.log_file.read_text(errors="replace"))
        return "\n".join(texts)[-20000:]

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> int | None:
        """Stop the process with ``sig`` (SIGKILL for a crash) and wait for it."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            raise AssertionError(f"errbot ignored {sig!r}:\n{self.output()}") from None

    def kill(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
