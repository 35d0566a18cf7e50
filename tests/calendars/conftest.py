"""The calendar tests' servers: the feed server (``feed_server.py``) and a real Radicale."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from iwant_engine.calendars.provider import FetchLimits

from .feed_server import SECRET, FeedServer, serve_feeds

LOCAL = FetchLimits(allow_private_addresses=True, timeout_seconds=5)


@pytest.fixture(scope="session")
def feed_server() -> Iterator[FeedServer]:
    with serve_feeds() as server:
        yield server


@dataclass
class Radicale:
    """A real CalDAV server with one user, ``RADICALE_USER`` (``RADICALE_PASSWORD``)."""

    port: int

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{path}"


RADICALE_USER = "alice"
RADICALE_PASSWORD = "w0nder/land:" + SECRET  # '/' and ':' must survive the address form


@pytest.fixture(scope="session")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    """Radicale on 127.0.0.1 with plain htpasswd auth and storage in a temporary folder,
    started once per run (its tests share the ``radicale`` xdist group)."""
    folder = tmp_path_factory.mktemp("radicale")
    users = folder / "users"
    users.write_text(f"{RADICALE_USER}:{RADICALE_PASSWORD}\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (folder / "radicale.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "radicale",
            "--config", "",  # no /etc/radicale or ~/.config/radicale
            "--server-hosts", f"127.0.0.1:{port}",
            "--storage-filesystem-folder", str(folder / "collections"),
            "--auth-type", "htpasswd",
            "--auth-htpasswd-filename", str(users),
            "--auth-htpasswd-encryption", "plain",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait_for_port(port, process, timeout=30)
        yield Radicale(port)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Radicale exited with {process.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)  # the process gives no signal of readiness but its port
    raise RuntimeError(f"Radicale did not listen on {port} within {timeout} s")
