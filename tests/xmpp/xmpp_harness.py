"""Harness of the XMPP tests: a real Prosody with a configuration of its own, people as
slixmpp clients, and real errbot processes (the iwant plugin on the IWantXMPP backend).

Everything listens and connects on 127.0.0.1 only; every wait is on a condition with a
deadline. Test modules import from here, never from ``conftest``."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from slixmpp import JID, ClientXMPP

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ERRBOT = Path(sys.executable).with_name("errbot")
DOMAIN = "localhost"
MUC = f"conference.{DOMAIN}"
PASSWORD = "s3cret-xmpp-pw"

T = TypeVar("T")


def wait_until(found: Callable[[], T], timeout: float, what: str) -> T:
    """Poll ``found`` until it returns something truthy; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        value = found()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prosody_missing() -> str | None:
    """None when Prosody can run here, else why not."""
    missing = [name for name in ("prosody", "prosodyctl") if shutil.which(name) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (apt-get install -y prosody)"
    return None


def midday_zone() -> str:
    """A fixed-offset zone where it is about noon now, so that "in 6h" and "for 7h" never
    cross midnight, whatever time the tests run."""
    offset = 12 - datetime.now(UTC).hour
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc/GMT-3 is UTC+3


# ---------------------------------------------------------------------------- Prosody

CONFIG = """\
-- Prosody for iwant's tests: its own folder, one port on 127.0.0.1, no TLS.
daemonize = false
run_as_root = {root}
pidfile = "{folder}/prosody.pid"
data_path = "{folder}/data"
certificates = "{folder}/certs"
interfaces = {{ "127.0.0.1" }}
c2s_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {port} }}
c2s_direct_tls_ports = {{}}
s2s_ports = {{}}
s2s_direct_tls_ports = {{}}
http_ports = {{}}
https_ports = {{}}
authentication = "internal_plain"
c2s_require_encryption = false
s2s_require_encryption = false
allow_unencrypted_plain_auth = true
modules_enabled = {{ "roster", "saslauth", "disco", "ping", "blocklist", "posix" }}
log = {{ info = "{folder}/prosody.log" }}

VirtualHost "{domain}"

Component "{muc}" "muc"
    muc_room_locking = false
    -- Rooms show who everyone is (non-anonymous): the bot knows people by their JID.
    muc_room_default_public_jids = true
"""


class Prosody:
    """A Prosody server of its own in ``folder``, on a free port of 127.0.0.1."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.config = folder / "prosody.cfg.lua"
        self.proc: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)
        for sub in ("data", "certs"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            CONFIG.format(
                root="true" if os.geteuid() == 0 else "false",
                folder=folder,
                port=self.port,
                domain=DOMAIN,
                muc=MUC,
            )
        )

    def start(self, timeout: float = 20.0) -> Prosody:
        out = (self.folder / "prosody.out").open("wb")
        self.proc = subprocess.Popen(
            ["prosody", "--config", str(self.config)],
            cwd=self.folder,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()

        def listening() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"Prosody exited ({self.proc.returncode}):\n{self.log()}")
            with socket.socket() as sock:
                sock.settimeout(0.5)
                return sock.connect_ex(("127.0.0.1", self.port)) == 0

        wait_until(listening, timeout, f"Prosody to listen on port {self.port}")
        return self

    def register(self, name: str) -> str:
        """A new account (``prosodyctl register``); its JID."""
        subprocess.run(
            ["prosodyctl", "--config", str(self.config), "register", name, DOMAIN, PASSWORD],
            check=True,
            capture_output=True,
            timeout=30,
        )
        return f"{name}@{DOMAIN}"

    def unique(self, stem: str) -> str:
        """A new account named after ``stem``, unique in this server (tests share it)."""
        return self.register(f"{stem}{next(self._names)}")

    def room(self, stem: str) -> str:
        """A new room's JID (it is made when someone first joins it)."""
        return f"{stem}{next(self._names)}@{MUC}"

    def log(self) -> str:
        texts = []
        for name in ("prosody.out", "prosody.log"):
            with contextlib.suppress(FileNotFoundError):
                texts.append((self.folder / name).read_text(errors="replace"))
        return "\n".join(texts)[-5000:]

    def stop(self, timeout: float = 15.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# ---------------------------------------------------------------------------- people


@dataclass(frozen=True)
class Received:
    """A message a person's client received."""

    frm: str  # the full JID it came from (room/nick in a room)
    kind: str  # chat, groupchat, normal, error
    body: str
    stanza_id: str
    delayed: bool


@dataclass(frozen=True)
class Said:
    """A message a person sent: what ``People.resend`` sends again, id and all."""

    person: str
    to: str
    kind: str
    body: str
    stanza_id: str


class People:
    """People's XMPP clients (slixmpp, as a person's client would be), on one asyncio loop
    in a thread of the test process. Methods are called from the test's thread."""

    def __init__(self, server: Prosody) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="xmpp-people")
        self._thread.daemon = True
        self._thread.start()
        self.clients: dict[str, ClientXMPP] = {}
        self._lock = threading.Lock()
        self._received: dict[str, list[Received]] = {}
        #: (room, nick) -> how many times that nick came online in the room, and went.
        self.joins: dict[tuple[str, str], int] = {}
        self.leaves: dict[tuple[str, str], int] = {}

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    # -- connecting -----------------------------------------------------------------------

    def connect(self, jid: str) -> str:
        """Log ``jid`` in (available, so messages reach it at once); returns the JID."""
        self._call(self._connect(jid))
        return jid

    async def _connect(self, jid: str) -> None:
        client = ClientXMPP(
            jid,
            PASSWORD,
            plugin_config={"feature_mechanisms": {"unencrypted_plain": True}},
        )
        client.enable_starttls = False
        client.enable_direct_tls = False
        client.enable_plaintext = True
        for plugin in ("xep_0030", "xep_0045", "xep_0191", "xep_0199", "xep_0203"):
            client.register_plugin(plugin)
        with self._lock:
            self._received[jid] = []
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def session_start(_: Any) -> None:
            client.send_presence()
            if not started.done():
                started.set_result(None)

        def failed(_: Any) -> None:
            if not started.done():
                started.set_exception(AssertionError(f"{jid} could not log in"))

        client.add_event_handler("session_start", session_start)
        client.add_event_handler("failed_auth", failed)
        client.add_event_handler("message", lambda m: self._record(jid, m))
        client.add_event_handler("groupchat_presence", self._presence)
        client.connect("127.0.0.1", self.server.port)
        await asyncio.wait_for(started, 20)
        self.clients[jid] = client

    def _record(self, jid: str, msg: Any) -> None:
        delayed = msg.get_plugin("delay", check=True) is not None
        seen = Received(str(msg["from"]), msg["type"], msg["body"], msg["id"], delayed)
        with self._lock:
            self._received[jid].append(seen)

    def _presence(self, pres: Any) -> None:
        key = (str(pres["from"].bare), str(pres["from"].resource))
        with self._lock:
            counts = self.leaves if pres["type"] == "unavailable" else self.joins
            counts[key] = counts.get(key, 0) + 1

    def close(self) -> None:
        async def disconnect_all() -> None:
            await asyncio.gather(
                *(c.disconnect(wait=1.0) for c in self.clients.values()),
                return_exceptions=True,
            )
            # slixmpp's tasks end here, not in a finalizer after the loop has closed.
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self._call(disconnect_all(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()

    # -- what people do -------------------------------------------------------------------

    def join(self, jid: str, room: str, nick: str) -> None:
        async def join() -> None:
            muc = self.clients[jid].plugin["xep_0045"]
            await muc.join_muc_wait(JID(room), nick, maxstanzas=0, timeout=20)

        self._call(join())

    def say(self, jid: str, to: str, body: str, kind: str = "chat") -> Said:
        said = Said(jid, to, kind, body, f"kit-{uuid.uuid4().hex[:12]}")  # as clients do
        self.resend(said)
        return said

    def resend(self, said: Said) -> None:
        """Send ``said`` (again): the same stanza, the same id."""

        async def send() -> None:
            client = self.clients[said.person]
            msg = client.make_message(mto=said.to, mbody=said.body, mtype=said.kind)
            msg["id"] = said.stanza_id
            msg.send()

        self._call(send())

    def block(self, jid: str, blocked: str) -> None:
        """``jid`` blocks ``blocked`` (XEP-0191): the server bounces what it sends them."""

        async def block() -> None:
            await self.clients[jid].plugin["xep_0191"].block([JID(blocked)])

        self._call(block())

    # -- what people see ------------------------------------------------------------------

    def received(self, jid: str) -> list[Received]:
        with self._lock:
            return list(self._received.get(jid, ()))

    def from_bot(self, jid: str, bot: str) -> list[Received]:
        """What ``bot`` wrote to ``jid`` in their direct chat, oldest first."""
        return [
            r for r in self.received(jid) if r.kind in ("chat", "normal") and JID(r.frm).bare == bot
        ]

    def in_room(self, jid: str, room: str, nick: str) -> list[Received]:
        """What the nick ``nick`` wrote in ``room``, as ``jid`` (in the room) saw it."""
        return [
            r
            for r in self.received(jid)
            if r.kind == "groupchat" and r.frm == f"{room}/{nick}" and not r.delayed
        ]

    def count(self, counts: dict[tuple[str, str], int], room: str, nick: str) -> int:
        with self._lock:
            return counts.get((room, nick), 0)


# ---------------------------------------------------------------------------- the bot


class BotProcess:
    """A real ``errbot`` process with iwant's config.py on the IWantXMPP backend."""

    def __init__(
        self,
        server: Prosody,
        workdir: Path,
        jid: str,
        rooms: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.server, self.workdir, self.jid = server, workdir, jid
        self.nick = JID(jid).user
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_file = workdir / "errbot.log"
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("IWANT_", "XMPP_")) and not k.lower().endswith("_proxy")
        }
        self.env = {
            **inherited,
            "IWANT_BACKEND": "IWantXMPP",
            "XMPP_JID": jid,
            "XMPP_PASSWORD": PASSWORD,
            "XMPP_SERVER": f"127.0.0.1:{server.port}",
            "XMPP_TLS": "off",
            "XMPP_ROOMS": ",".join(rooms),
            "IWANT_DATA_DIR": str(workdir / "data"),
            "IWANT_DATABASE_URL": f"sqlite:///{workdir / 'iwant.db'}",
            "IWANT_LOG_FILE": str(self.log_file),
            "IWANT_POLL_SECONDS": "0.5",
            "IWANT_TIMEZONE": midday_zone(),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self) -> BotProcess:
        """Start errbot (returns at once: wait for what it does)."""
        self.runs += 1
        out = (self.workdir / f"errbot-run{self.runs}.out").open("wb")
        self.proc = subprocess.Popen(
            [str(ERRBOT), "-c", str(ROOT / "config.py")],
            cwd=self.workdir,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        return self

    def check_running(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"errbot exited ({self.proc.returncode}):\n{self.output()}")

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, as an operator stops it; its exit code."""
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
            proc.wait(5)

    def output(self, chars: int = 8000) -> str:
        texts = [f.read_text(errors="replace") for f in sorted(self.workdir.glob("errbot-*.out"))]
        if self.log_file.exists():
            texts.append(self.log_file.read_text(errors="replace"))
        return "\n".join(texts)[-chars:]
