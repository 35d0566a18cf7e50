"""Fixtures of the XMPP tests: one real Prosody for the session, people's clients, and real
errbot processes on the IWantXMPP backend (killed at teardown if a test left one)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from xmpp_harness import BotProcess, People, Prosody, prosody_missing  # noqa: E402


@pytest.fixture(scope="session")
def prosody(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prosody]:
    """A Prosody of its own (a temporary config, data and port), stopped at the end."""
    problem = prosody_missing()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Prosody is required in CI: {problem}")
        pytest.skip(f"Prosody is not available: {problem}")
    server = Prosody(tmp_path_factory.mktemp("prosody")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def people(prosody: Prosody) -> Iterator[People]:
    clients = People(prosody)
    try:
        yield clients
    finally:
        clients.close()


@pytest.fixture
def bot_factory(prosody: Prosody, tmp_path: Path) -> Iterator[Callable[..., BotProcess]]:
    """Makes BotProcess objects, each in a folder of its own under the test's tmp_path."""
    made: list[BotProcess] = []

    def make(jid: str, rooms: tuple[str, ...] = (), **kwargs: Any) -> BotProcess:
        bot = BotProcess(prosody, tmp_path / f"bot{len(made)}", jid, rooms, **kwargs)
        made.append(bot)
        return bot

    yield make
    for bot in made:
        bot.kill()
