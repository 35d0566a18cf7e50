"""A real Synapse for the tests: generated in a temporary folder (SQLite, a free port on
127.0.0.1, its default rate limits), started and stopped as a process, with the admin API's
helpers the tests need (shared-secret registration, override_ratelimit, room members) and a
count of the 429s it answered a user, read from its own access log."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SERVER_NAME = "localhost"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(done: Any, timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll ``done`` until it returns something truthy (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = done()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        time.sleep(every)
        every = min(every * 1.5, 0.5)


@dataclass(frozen=True)
class Account:
    """A registered user: its id, password, and the access token and device of the
    registration (a first login, as Element would make)."""

    user_id: str
    password: str
    access_token: str
    device_id: str

    @property
    def localpart(self) -> str:
        return self.user_id[1:].split(":", 1)[0]


class HttpError(Exception):
    def __init__(self, status: int, body: dict[str, Any], headers: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status, self.body, self.headers = status, body, headers


class Synapse:
    """One Synapse process in ``folder``; ``start``/``stop`` keep its database and port."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = folder / "homeserver.yaml"
        self.log = folder / "homeserver.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._admin: Account | None = None
        self._registered = 0

    # -- the process ----------------------------------------------------------------------

    def generate(self) -> Synapse:
        self.folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "synapse.app.homeserver",
                "--server-name",
                SERVER_NAME,
                "--config-path",
                str(self.config),
                "--data-directory",
                str(self.folder),
                "--generate-config",
                "--report-stats=no",
            ],
            cwd=self.folder,
            check=True,
            capture_output=True,
            timeout=120,
        )
        config = yaml.safe_load(self.config.read_text())
        config["listeners"] = [
            {
                "port": self.port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ]
        config["trusted_key_servers"] = []  # no internet here; nothing federates
        config["enable_metrics"] = False
        config["presence"] = {"enabled": False}
        # Synapse's default rate limits stay as they are: tests lift them per user
        # (override_ratelimit) where they are not what is being tested.
        self.config.write_text(yaml.safe_dump(config))
        # Write the log at once (the default buffers INFO lines for up to 5 s): the tests
        # count 429s in it.
        log_config = self.folder / f"{SERVER_NAME}.log.config"
        logging = yaml.safe_load(log_config.read_text())
        logging["handlers"]["file"]["filename"] = str(self.log)
        logging["root"]["handlers"] = ["file"]
        log_config.write_text(yaml.safe_dump(logging))
        return self

    def start(self, timeout: float = 60.0) -> Synapse:
        out = (self.folder / "synapse.out").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.config)],
            cwd=self.folder,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()

        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                tail = (self.folder / "synapse.out").read_text(errors="replace")[-3000:]
                raise AssertionError(f"Synapse exited ({self.proc.returncode}):\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.url}/_matrix/client/versions", timeout=2):
                    return True
            except (OSError, urllib.error.URLError):
                return False

        wait_until(up, timeout, "Synapse to answer /_matrix/client/versions")
        return self

    def stop(self, timeout: float = 30.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    # -- HTTP -----------------------------------------------------------------------------

    def request(
        self, method: str, path: str, body: object = None, token: str | None = None
    ) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                parsed = json.loads(raw or b"{}")
            except ValueError:
                parsed = {"raw": raw.decode(errors="replace")}
            raise HttpError(err.code, parsed, err.headers) from None
        return dict(json.loads(raw or b"{}"))

    # -- the admin API --------------------------------------------------------------------

    def register(self, localpart: str, admin: bool = False, displayname: str = "") -> Account:
        """A new user through the shared-secret admin API (what register_new_matrix_user
        does), with a first device and its access token."""
        secret = yaml.safe_load(self.config.read_text())["registration_shared_secret"]
        nonce = self.request("GET", "/_synapse/admin/v1/register")["nonce"]
        password = f"pw-{localpart}-{os.getpid()}"
        body = {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": admin,
            "mac": _mac(secret, nonce, localpart, password, admin),
        }
        if displayname:
            body["displayname"] = displayname
        made = self.request("POST", "/_synapse/admin/v1/register", body)
        self._registered += 1
        return Account(made["user_id"], password, made["access_token"], made["device_id"])

    @property
    def admin(self) -> Account:
        if self._admin is None:
            self._admin = self.register("admin", admin=True)
        return self._admin

    def lift_rate_limits(self, user_id: str) -> None:
        """What an admin does for a bot: no rate limits for this user (0 = unlimited)."""
        self.request(
            "POST",
            f"/_synapse/admin/v1/users/{user_id}/override_ratelimit",
            {"messages_per_second": 0, "burst_count": 0},
            token=self.admin.access_token,
        )

    def restore_rate_limits(self, user_id: str) -> None:
        """Synapse's defaults again for this user."""
        self.request(
            "DELETE",
            f"/_synapse/admin/v1/users/{user_id}/override_ratelimit",
            token=self.admin.access_token,
        )

    def joined(self, room_id: str) -> set[str]:
        """Who is joined to a room now (the admin API's view, whatever a person sees)."""
        members = self.request(
            "GET", f"/_synapse/admin/v1/rooms/{room_id}/members", token=self.admin.access_token
        )
        return set(members.get("members", []))

    # -- what Synapse logged --------------------------------------------------------------

    def answered_429(self, user_id: str, not_in: str = "") -> int:
        """How many requests of ``user_id`` Synapse answered 429 (its access log), leaving out
        those whose path contains ``not_in``."""
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return 0
        pattern = re.compile(
            r"\{" + re.escape(user_id) + r"\} Processed request: .* 429 \"(\S+) (\S+)"
        )
        return sum(
            1
            for match in pattern.finditer(text)
            if not (not_in and not_in in urllib.parse.unquote(match.group(2)))
        )


def _mac(secret: str, nonce: str, user: str, password: str, admin: bool) -> str:
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha1)
    mac.update(nonce.encode())
    mac.update(b"\x00")
    mac.update(user.encode())
    mac.update(b"\x00")
    mac.update(password.encode())
    mac.update(b"\x00")
    mac.update(b"admin" if admin else b"notadmin")
    return mac.hexdigest()
