"""JSON log lines (``IWANT_LOG_FORMAT=json``) with secrets redacted, and the operations
server's settings and pages, in-process (the real bot process is test_http_endpoints)."""

from __future__ import annotations

import json
import logging
import sys
import urllib.error
import urllib.request

import pytest
from iwant_platform.redaction import RedactingFilter, Redactor

from iwant_ops import jsonlog
from iwant_ops.http import Address, OpsServer, address_from_environment
from iwant_ops.metrics import Metrics

SECRET = "xoxb-1234567890-abcdefghij"


def logged(records: list[logging.LogRecord], redact: Redactor) -> list[dict]:
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Capture()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(jsonlog.JsonFormatter(redact, platform="slack"))
    for record in records:
        handler.handle(record)
    return [json.loads(line) for line in lines]


def record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise RuntimeError(f"token {SECRET} refused")
        except RuntimeError:
            info = sys.exc_info()
    return logging.LogRecord(
        "errbot.plugins.iwant", logging.WARNING, __file__, 1, message, args, info
    )


def test_one_json_object_a_line_with_the_fields_and_no_secret(monkeypatch):
    from iwant_platform import redaction

    redaction.redact.add(values=[SECRET])
    with jsonlog.request("slack:C1:1700000000.1"):
        first = logged([record("sending with %s failed", SECRET, exc=True)], redaction.redact)
    second = logged(
        [record("database postgresql://iwant:hunter22@db/iwant away")], redaction.redact
    )
    line = first[0]
    assert set(line) == {
        "time", "level", "logger", "message", "platform", "request_id", "exception",
    }  # fmt: skip
    assert line["level"] == "WARNING" and line["logger"] == "errbot.plugins.iwant"
    assert line["platform"] == "slack" and line["request_id"] == "slack:C1:1700000000.1"
    assert line["message"] == "sending with [secret] failed"
    assert "RuntimeError: token [secret] refused" in line["exception"]
    assert line["time"].endswith("+00:00")
    assert second[0]["message"] == "database postgresql://[secret]@db/iwant away"
    assert "request_id" not in second[0], "no request: no id"


def test_the_formatter_redacts_even_without_the_filter():
    redact = Redactor()
    redact.add(values=[SECRET])
    formatter = jsonlog.JsonFormatter(redact)
    line = formatter.format(record("token is %s", SECRET))
    assert SECRET not in line and json.loads(line)["message"] == "token is [secret]"


def test_json_is_asked_for_by_the_environment_only():
    assert jsonlog.wanted({"IWANT_LOG_FORMAT": "JSON"})
    assert not jsonlog.wanted({"IWANT_LOG_FORMAT": "text"})
    assert not jsonlog.wanted({})


def test_the_http_address_comes_from_the_environment():
    assert address_from_environment({}) is None
    assert address_from_environment({"IWANT_HTTP_PORT": " 9100 "}) == Address("127.0.0.1", 9100)
    both = {"IWANT_HTTP_PORT": "9100", "IWANT_HTTP_HOST": "0.0.0.0"}
    assert address_from_environment(both) == Address("0.0.0.0", 9100)
    for bad in ("http", "-1", "70000"):
        with pytest.raises(ValueError, match=r"is not a port; e\.g\. IWANT_HTTP_PORT=9100"):
            address_from_environment({"IWANT_HTTP_PORT": bad})


def test_the_server_answers_health_and_metrics_and_a_failing_check_is_a_503():
    problems: list[str] = []
    readings: list[tuple[str, int, float]] | None = [("slack", 3, 12.5)]
    metrics = Metrics(lambda: readings)
    metrics.commands.labels("wish", "ok").inc()
    server = OpsServer(Address("127.0.0.1", 0), lambda: problems, metrics.render)
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=30) as answer:
            assert (answer.status, answer.read()) == (200, b"ok\n")
        page = urllib.request.urlopen(base + "/metrics", timeout=30).read().decode()
        assert 'iwant_commands_total{kind="wish",outcome="ok"} 1.0' in page
        assert 'iwant_outbox_depth{platform="slack"} 3.0' in page
        assert 'iwant_outbox_oldest_age_seconds{platform="slack"} 12.5' in page
        assert "iwant_database_up 1.0" in page
        problems[:] = ["the database is unreachable", "the poller last ran 95 s ago"]
        readings = None
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(base + "/healthz", timeout=30)
        assert failed.value.code == 503
        assert failed.value.read() == (
            b"unhealthy: the database is unreachable; the poller last ran 95 s ago\n"
        )
        page = urllib.request.urlopen(base + "/metrics", timeout=30).read().decode()
        assert "iwant_database_up 0.0" in page and "iwant_outbox_depth{" not in page
    finally:
        server.stop()
