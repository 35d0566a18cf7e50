"""Secrets out of every log line: one filter for every adapter and the plugin.

An adapter declares its secrets (``ChatPlatform.secret_patterns``, ``secret_variables``);
``install`` adds them to the one filter on every handler of the root logger, beside what
always counts as secret (a password in a URL: ``user:password@``).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable

REPLACEMENT = "[secret]"
#: ``user:password@`` in a URL (a database URL in an error, a proxy).
URL_CREDENTIALS = re.compile(r"(?<=://)[^:/@\s]+:[^@/\s]+(?=@)")
#: Shorter values are not secrets worth replacing (and would mangle ordinary words).
MIN_SECRET = 8


class Redactor:
    """What counts as secret: text patterns, and exact values (tokens read from settings)."""

    def __init__(self) -> None:
        self._patterns: list[re.Pattern[str]] = [URL_CREDENTIALS]
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, patterns: Iterable[re.Pattern[str]] = (), values: Iterable[str] = ()) -> None:
        with self._lock:
            for pattern in patterns:
                if pattern not in self._patterns:
                    self._patterns.append(pattern)
            self._values.update(v for v in values if len(v) >= MIN_SECRET)

    def add_variables(self, names: Iterable[str]) -> None:
        """The values of these environment variables are secrets."""
        self.add(values=(os.environ.get(name, "").strip() for name in names))

    def __call__(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, REPLACEMENT)
        for pattern in self._patterns:
            text = pattern.sub(REPLACEMENT, text)
        return text


#: The process's one redactor: what every adapter declared, and URL credentials.
redact = Redactor()


class RedactingFilter(logging.Filter):
    """A handler filter that rewrites a record's message, traceback and stack without
    secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not ours to fix
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install(
    patterns: Iterable[re.Pattern[str]] = (),
    variables: Iterable[str] = (),
    values: Iterable[str] = (),
) -> None:
    """Count these as secret too, and make sure every handler of the root logger has the
    filter (idempotent; called by a backend at start and by the plugin when it activates)."""
    redact.add(patterns, values)
    redact.add_variables(variables)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
