"""A local web server of calendar feeds (``feeds/``): ``url("feed/NAME.ics")`` serves one,
other paths misbehave on purpose (redirects, errors, stalls, endless bodies).

Every path carries ``SECRET`` the way Google's and Outlook's private addresses carry their
token, so tests can check that no message ever repeats it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

FEEDS = Path(__file__).parent / "feeds"
SECRET = "private-5f3c9a7e1d2b4c6a8e0f"


@dataclass
class FeedServer:
    port: int
    #: Set at teardown: handlers that stall wait on it, so none outlives the test session.
    release: threading.Event
    #: The Host header of each request, in order.
    hosts: list[str]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/{SECRET}/{path}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.server.hosts.append(self.headers.get("Host", ""))
        secret, _, rest = self.path.lstrip("/").partition("/")
        if secret != SECRET:
            return self._send(404, b"no such calendar")
        kind, _, arg = rest.partition("/")
        if kind == "feed":
            return self._send(200, (FEEDS / arg).read_bytes(), "text/calendar; charset=utf-8")
        if kind == "login":
            return self._send(200, (FEEDS / "login.html").read_bytes(), "text/html")
        if kind == "status":
            return self._send(int(arg), b"nope")
        if kind == "redirect":  # redirect/N/PATH: N redirects, the last one to PATH
            hops, _, target = arg.partition("/")
            left = int(hops)
            to = f"/{SECRET}/redirect/{left - 1}/{target}" if left > 1 else f"/{SECRET}/{target}"
            self.send_response(302)
            self.send_header("Location", to)
            self.end_headers()
            return None
        if kind == "to":  # to/URL-ENCODED-LOCATION: one redirect there
            self.send_response(302)
            self.send_header("Location", unquote(arg))
            self.end_headers()
            return None
        if kind == "huge":  # no Content-Length: the body runs until the client stops reading
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar")
            self.end_headers()
            line = b"BEGIN:VCALENDAR\r\n" + b"X-PADDING:" + b"x" * 1000 + b"\r\n"
            try:
                for _ in range(20_000):  # 20 MB at most
                    self.wfile.write(line)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return None
        if kind == "declared-huge":
            self.send_response(200)
            self.send_header("Content-Length", str(10**9))
            self.end_headers()
            return None
        if kind == "stall":  # headers, one line, then nothing until released
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar")
            self.end_headers()
            self.wfile.write(b"BEGIN:VCALENDAR\r\n")
            self.wfile.flush()
            self.server.release.wait(30)
            return None
        if kind == "silent":  # not even headers
            self.server.release.wait(30)
            return None
        return self._send(404, b"no such calendar")

    # A CalDAV client's first requests reach the same paths (the timeout tests use them).
    do_PROPFIND = do_REPORT = do_GET  # noqa: N815

    def _send(self, status: int, body: bytes, kind: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    release: threading.Event
    hosts: list[str]


@contextmanager
def serve_feeds() -> Iterator[FeedServer]:
    """The feed server on a free port of 127.0.0.1, for as long as the block runs."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.release = threading.Event()
    server.hosts = []
    thread = threading.Thread(target=server.serve_forever, name="feed-server", daemon=True)
    thread.start()
    try:
        yield FeedServer(server.server_address[1], server.release, server.hosts)
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(10)
