"""The HTTP endpoint of a bot process: ``/healthz`` and ``/metrics`` on
``IWANT_HTTP_HOST:IWANT_HTTP_PORT`` (127.0.0.1 unless told; no port, no server).

A ``ThreadingHTTPServer`` of the standard library in a daemon thread: it starts before the
chat backend connects and outlives a reconnection, so it can say "not connected" instead of
going silent, and it needs no web framework and no ``!plugin config`` step.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)

#: What is wrong with this process, in a few words each; empty: healthy.
Health = Callable[[], Sequence[str]]


@dataclass(frozen=True)
class Address:
    host: str
    port: int


def address_from_environment(environ: dict[str, str] | None = None) -> Address | None:
    """``IWANT_HTTP_PORT`` (and ``IWANT_HTTP_HOST``, default 127.0.0.1); None without a port.
    A port that is not one is a ``ValueError`` with a one-line reason."""
    env = os.environ if environ is None else environ
    text = env.get("IWANT_HTTP_PORT", "").strip()
    if not text:
        return None
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise ValueError(f"IWANT_HTTP_PORT={text!r} is not a port; e.g. IWANT_HTTP_PORT=9100")
    return Address(env.get("IWANT_HTTP_HOST", "").strip() or "127.0.0.1", int(text))


class OpsServer:
    """Serves ``health`` at /healthz (200 "ok", or 503 with the reasons) and ``metrics``
    (the page's bytes) at /metrics; both are called on the server's threads."""

    def __init__(self, address: Address, health: Health, metrics: Callable[[], bytes]) -> None:
        self.health = health
        self.metrics = metrics
        self._server = ThreadingHTTPServer((address.host, address.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="iwant-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        log.info("serving /healthz and /metrics on port %s", self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        ops = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    problems = list(ops.health())
                    body = ("unhealthy: " + "; ".join(problems) if problems else "ok") + "\n"
                    self._answer(503 if problems else 200, "text/plain; charset=utf-8", body)
                elif path == "/metrics":
                    self._answer(200, CONTENT_TYPE_LATEST, ops.metrics())
                else:
                    self._answer(404, "text/plain; charset=utf-8", "try /healthz or /metrics\n")

            def _answer(self, status: int, content_type: str, body: str | bytes) -> None:
                data = body.encode() if isinstance(body, str) else body
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                log.debug("http: " + format, *args)

        return Handler
