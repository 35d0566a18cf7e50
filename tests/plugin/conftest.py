"""The plugin's tests on errbot's Test backend: set before errbot's ``testbot`` starts the
bot (autouse fixtures come first), so that the plugin reads them when it activates."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The tests tick the pollers themselves: a poller of its own would deliver a command's
    # notes from its thread, racing the command's own delivery.
    monkeypatch.setenv("IWANT_POLL_SECONDS", "3600")
    monkeypatch.delenv("IWANT_DATABASE_URL", raising=False)  # SQLite in errbot's data dir
    monkeypatch.delenv("IWANT_PLUGINS_CFG", raising=False)
