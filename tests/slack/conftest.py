"""Fixtures for the Slack backend tests: a stand-in Slack and real errbot processes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from slack_harness import BotProcess, make_workspace  # noqa: E402
from slack_standin import SlackStandIn  # noqa: E402


@pytest.fixture
def workspace() -> Iterator[SlackStandIn]:
    standin = make_workspace()
    yield standin
    standin.stop()


@pytest.fixture
def bot(workspace: SlackStandIn, tmp_path: Path) -> Iterator[BotProcess]:
    """A running bot (probe config), connected to a fresh stand-in."""
    process = BotProcess(workspace, tmp_path).start()
    try:
        workspace.wait_connected(1, timeout=30)
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def shared_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotProcess]:
    """One bot for a module of tests that do not disturb it (saves process starts)."""
    standin = make_workspace()
    process = BotProcess(standin, tmp_path_factory.mktemp("slackbot")).start()
    try:
        standin.wait_connected(1, timeout=30)
        yield process
    finally:
        process.stop()
        standin.stop()
