"""Keep secrets (platform tokens, database passwords) out of log lines and stored errors."""

from __future__ import annotations

import logging
import os
import re

_PATTERNS = (
    re.compile(r"xox[abposr]-[A-Za-z0-9-]+"),  # Slack bot and user tokens
    re.compile(r"xapp-[A-Za-z0-9-]+"),  # Slack app-level tokens
    re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{30,}\b"),  # Telegram bot tokens
    re.compile(r"(?<=://)[^:/@\s]+:[^@/\s]+(?=@)"),  # user:password@ in URLs
)
_ENV_SECRETS = ("TELEGRAM_TOKEN", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN")


def redact(text: str) -> str:
    for name in _ENV_SECRETS:
        value = os.environ.get(name, "")
        if len(value) >= 8:
            text = text.replace(value, "[secret]")
    for pattern in _PATTERNS:
        text = pattern.sub("[secret]", text)
    return text


class RedactingFilter(logging.Filter):
    """A handler filter that rewrites each record's message without secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install() -> None:
    """Add the filter to every handler of the root logger (idempotent)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
