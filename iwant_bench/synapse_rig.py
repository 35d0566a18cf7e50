"""A real Synapse for the benchmark's Matrix rush, on the Matrix tests' own harness
(``tests/matrix/synapse_harness.py``, ``matrix_people.py``, ``matrix_bot.py``: imported,
not copied). What the tests do in fixtures is here as plain functions: a Synapse generated in a
folder and started on a free port of 127.0.0.1 (the ``synapse`` fixture), the people's
asyncio loop (``loop``), no proxy for 127.0.0.1 (``_no_proxy_for_localhost``); and what the
rush needs besides: a second login of one account (a device per bot process), the client
API as one user, the rate limits in Synapse's config, and its access log read back as
requests (who, when, what, the answer).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import re
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml  # type: ignore[import-untyped]

from iwant_engine.pacing import Limit

from .measure import REPO

MATRIX_TESTS = REPO / "tests" / "matrix"
HARNESS = ("synapse_harness", "matrix_people", "matrix_bot")
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")
#: Synapse's defaults (synapse/config/ratelimiting.py) for the limits a bot meets, used
#: where homeserver.yaml says nothing: (per second, burst).
SYNAPSE_DEFAULTS = {
    "rc_message": (0.2, 10),
    "rc_room_creation": (0.016, 10),
    "rc_joins.local": (0.1, 10),
    "rc_invites.per_issuer": (0.3, 10),
    "rc_invites.per_user": (0.003, 5),
}


def missing() -> str | None:
    """Why a Synapse cannot be run here, or None."""
    for name in HARNESS:
        if not (MATRIX_TESTS / f"{name}.py").is_file():
            return f"no Matrix test harness at {MATRIX_TESTS} (run from a checkout)"
    for module, install in (
        ("synapse.app.homeserver", "matrix-synapse is not installed (pip install matrix-synapse)"),
        ("nio", "matrix-nio is not installed (pip install 'matrix-nio[e2e]')"),
    ):
        try:
            found = importlib.util.find_spec(module)
        except ImportError:
            found = None
        if found is None:
            return install
    return None


def harness(name: str) -> ModuleType:
    """One module of the Matrix tests' harness (they import one another by bare name)."""
    path = str(MATRIX_TESTS)
    if path not in sys.path:
        sys.path.insert(0, path)
    return importlib.import_module(name)


@contextlib.contextmanager
def no_proxy() -> Iterator[None]:
    """No HTTP proxy from the environment while inside (aiohttp under matrix-nio and urllib
    may honour one; Synapse is on 127.0.0.1)."""
    saved = {name: os.environ.pop(name) for name in PROXY_VARIABLES if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def start_synapse(folder: Path, bcrypt_rounds: int = 4) -> Any:
    """A Synapse generated in ``folder`` and started (the tests' ``synapse`` fixture): SQLite,
    a free port on 127.0.0.1, its default rate limits. Passwords are hashed with
    ``bcrypt_rounds`` (Synapse's default is 12, a third of a second a registration):
    registering the people is set-up, not what is measured."""
    server = harness("synapse_harness").Synapse(folder).generate()
    config = yaml.safe_load(server.config.read_text())
    config["bcrypt_rounds"] = bcrypt_rounds
    server.config.write_text(yaml.safe_dump(config))
    try:
        return server.start()
    except BaseException:
        server.stop()
        raise


def new_loop() -> Any:
    """An asyncio loop on a thread of its own for the people's clients (the ``loop``
    fixture); ``close()`` it at the end."""
    return harness("matrix_people").Loop()


def log_in(synapse: Any, account: Any, device_id: str) -> Any:
    """Another device of ``account``: a password login as ``device_id`` (one login; Synapse's
    rc_login allows 3 at once). An ``Account`` with that device's access token."""
    made = synapse.request(
        "POST",
        "/_matrix/client/v3/login",
        {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": account.localpart},
            "password": account.password,
            "device_id": device_id,
            "initial_device_display_name": device_id,
        },
    )
    return type(account)(account.user_id, account.password, made["access_token"], made["device_id"])


def as_user(synapse: Any, account: Any, method: str, path: str, body: object = None) -> Any:
    """The client-server API as ``account`` (``path`` after ``/_matrix/client/v3``)."""
    return synapse.request(method, "/_matrix/client/v3" + path, body, token=account.access_token)


def quoted(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def rate_limits(synapse: Any) -> dict[str, Limit]:
    """The per-user limits in force for everyone whose limits no admin lifted: those of
    homeserver.yaml, else Synapse's defaults."""
    config = yaml.safe_load(synapse.config.read_text()) or {}
    out: dict[str, Limit] = {}
    for name, (rate, burst) in SYNAPSE_DEFAULTS.items():
        section: Any = config
        for part in name.split("."):
            section = section.get(part) if isinstance(section, dict) else None
        if isinstance(section, dict):
            rate = float(section.get("per_second", rate))
            burst = int(section.get("burst_count", burst))
        out[name] = Limit(rate, burst)
    return out


@dataclass(frozen=True)
class Request:
    """One request Synapse answered, from its access log."""

    at: float  # when it was answered, seconds since the epoch (the log's local time)
    user: str
    status: int
    method: str
    path: str  # unquoted
    seconds: float  # Synapse's processing time

    @property
    def kind(self) -> str:
        """What it was, for a bot: ``send`` (an event in a room), ``create`` (a room),
        ``join``, ``invite``, ``leave``, ``to_device``, ``keys``, ``sync``, else ``other``."""
        path = self.path.split("?", 1)[0]
        if self.method == "PUT" and "/send/" in path:
            return "send"
        for kind, pattern in _KINDS:
            if pattern.search(path):
                return kind
        return "other"


_KINDS = (
    ("create", re.compile(r"/createRoom$")),
    ("join", re.compile(r"/join/|/rooms/[^/]+/join$")),
    ("invite", re.compile(r"/rooms/[^/]+/invite$")),
    ("leave", re.compile(r"/rooms/[^/]+/(leave|forget)$")),
    ("to_device", re.compile(r"/sendToDevice/")),
    ("keys", re.compile(r"/keys/")),
    ("sync", re.compile(r"/sync$")),
)
_ACCESS = re.compile(
    r"^(\S+ \S+) - synapse\.access\S* - .*? - \{([^}]*)\} Processed request: "
    r"([\d.]+)sec/.*? (\d{3})!? \"(\S+) (\S+) ",
    re.MULTILINE,
)


def requests_of(synapse: Any, user_id: str, since: float = 0.0) -> list[Request]:
    """The requests of ``user_id`` (any of its devices) that Synapse answered at or after
    ``since`` (epoch seconds), in order (its access log, written at once by the harness's
    log config)."""
    try:
        text = Path(synapse.log).read_text(errors="replace")
    except FileNotFoundError:
        return []
    out: list[Request] = []
    for match in _ACCESS.finditer(text):
        who = match.group(2).split("|", 1)[0]
        if who != user_id:
            continue
        at = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if at < since:
            continue
        out.append(
            Request(
                at,
                who,
                int(match.group(4)),
                match.group(5),
                urllib.parse.unquote(match.group(6)),
                float(match.group(3)),
            )
        )
    return out
