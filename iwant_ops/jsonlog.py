"""``IWANT_LOG_FORMAT=json``: one JSON object a line (time, level, logger, message, platform,
request id where there is one, traceback where there is one).

Secrets are taken out before a line is written: by the ``RedactingFilter`` each handler has
(``iwant_platform.redaction``), which rewrites the message and the traceback, and again by
the ``redact`` function the formatter is given, over the whole line.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

#: The request id of the command being handled on this thread, if any.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "iwant_request_id", default=None
)


def wanted(environ: dict[str, str] | None = None) -> bool:
    """Whether ``IWANT_LOG_FORMAT`` asks for JSON lines (anything else: errbot's text)."""
    env = os.environ if environ is None else environ
    return env.get("IWANT_LOG_FORMAT", "").strip().lower() == "json"


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON."""

    def __init__(self, redact: Callable[[str], str] = str, platform: str | None = None) -> None:
        super().__init__()
        self.redact = redact
        self.platform = platform

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "platform": self.platform,
        }
        current = request_id.get()
        if current is not None:
            line["request_id"] = current
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return self.redact(json.dumps(line, ensure_ascii=False, default=str))


def install(platform: str | None, redact: Callable[[str], str] = str) -> None:
    """Every handler of the root logger writes JSON lines from now on, naming ``platform``
    (the plugin calls it once it knows the platform; idempotent)."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(JsonFormatter(redact, platform))


@contextmanager
def request(identifier: str) -> Iterator[None]:
    """Log lines written inside the block carry ``identifier`` as their request id."""
    token = request_id.set(identifier)
    try:
        yield
    finally:
        request_id.reset(token)
