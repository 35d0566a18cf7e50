"""The plugin's tests on errbot's Test backend: set before errbot's ``testbot`` starts the
bot (autouse fixtures come first), so that the plugin reads them when it activates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .chat import Chat, on_sqlite

PLUGIN_DIR = str(Path(__file__).resolve().parents[2] / "iwant_plugins")


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The tests tick the pollers themselves: a poller of its own would deliver a command's
    # notes from its thread, racing the command's own delivery.
    monkeypatch.setenv("IWANT_POLL_SECONDS", "3600")
    monkeypatch.delenv("IWANT_DATABASE_URL", raising=False)  # SQLite in errbot's data dir
    monkeypatch.delenv("IWANT_PLUGINS_CFG", raising=False)


@pytest.fixture
def errbot_setup() -> tuple[str | None, dict[str, Any] | None]:
    # Commands run in the caller's thread, so a test sees a command's reply and
    # notifications as soon as callback_message returns.
    return PLUGIN_DIR, {"BOT_ASYNC": False}


@pytest.fixture
def chat(monkeypatch: pytest.MonkeyPatch, testbot: Any) -> Chat:
    """Several people on the plugin, on SQLite in errbot's data folder."""
    return on_sqlite(monkeypatch, testbot)
