"""One redaction for every adapter: what each declares, and URL credentials, never reach a
log line (message, traceback or stack)."""

from __future__ import annotations

import logging
import sys

import pytest
from iwant_platform import redaction
from iwant_platform.redaction import RedactingFilter, Redactor
from iwant_slack.backend import IWantSlackBackend
from iwant_telegram.backend import IWantTelegramBackend

SLACK_BOT = "xoxb-1234-5678-secretvalue"
SLACK_APP = "xapp-1-A0123-99-abcdef"
TELEGRAM = "123456789:AAH" + "x" * 32


def test_each_adapters_token_shapes_and_url_passwords_are_redacted() -> None:
    redact = Redactor()
    redact.add(IWantSlackBackend.secret_patterns + IWantTelegramBackend.secret_patterns)
    line = (
        f"connect postgresql+psycopg://bot:hunter2@db/iwant with {SLACK_BOT}, {SLACK_APP} "
        f"and https://api.telegram.org/bot{TELEGRAM}/getMe"
    )
    assert redact(line) == (
        "connect postgresql+psycopg://[secret]@db/iwant with [secret], [secret] "
        "and https://api.telegram.org/bot[secret]/getMe"
    )


def test_the_values_of_declared_variables_are_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_CHAT_TOKEN", "plain-looking-secret")
    monkeypatch.setenv("SHORT_TOKEN", "abc")  # too short to be a secret worth replacing
    redact = Redactor()
    redact.add_variables(["SOME_CHAT_TOKEN", "SHORT_TOKEN", "UNSET_TOKEN"])
    assert redact("auth plain-looking-secret abc") == "auth [secret] abc"


def test_the_filter_cleans_message_traceback_and_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    redaction.install(IWantTelegramBackend.secret_patterns)
    record = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, "POST %s", (f"https://x/bot{TELEGRAM}/getMe",), None
    )
    try:
        raise RuntimeError(f"url https://x/bot{TELEGRAM}/sendMessage")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    record.stack_info = f"stack with {TELEGRAM}"
    RedactingFilter().filter(record)
    assert TELEGRAM not in record.getMessage() and "[secret]" in record.getMessage()
    assert TELEGRAM not in (record.exc_text or "") and "[secret]" in (record.exc_text or "")
    assert record.stack_info == "stack with [secret]"


def test_install_puts_one_filter_on_every_root_handler() -> None:
    handler = logging.StreamHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        redaction.install()
        redaction.install()
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
    finally:
        root.removeHandler(handler)
