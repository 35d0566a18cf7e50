"""Fixtures for the Telegram backend tests: the Bot API stand-in, the backend run in this
process, and real errbot processes on the backend."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from telegram_harness import TOKEN, ErrbotProcess, InProcessBot  # noqa: E402
from telegram_standin import BotApiStandin  # noqa: E402


@pytest.fixture(autouse=True)
def _no_proxy_for_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    # httpx (under PTB) honours *_PROXY from the environment; the stand-in is local.
    for name in ("NO_PROXY", "no_proxy"):
        current = [p for p in os.environ.get(name, "").split(",") if p]
        monkeypatch.setenv(name, ",".join([*current, "127.0.0.1", "localhost"]))


@pytest.fixture
def standin() -> Iterator[BotApiStandin]:
    api = BotApiStandin(token=TOKEN).start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def inproc(standin: BotApiStandin, tmp_path: Path) -> Iterator[InProcessBot]:
    bot = InProcessBot(tmp_path / "data", standin)
    try:
        yield bot.start()
    finally:
        bot.stop()


@pytest.fixture
def errbot_factory(standin: BotApiStandin, tmp_path: Path) -> Iterator[Any]:
    """Makes ErrbotProcess objects; every process is killed at teardown."""
    made: list[ErrbotProcess] = []

    def make(**kwargs: Any) -> ErrbotProcess:
        workdir = tmp_path / f"bot{len(made)}"
        workdir.mkdir()
        bot = ErrbotProcess(standin, workdir, **kwargs)
        made.append(bot)
        return bot

    yield make
    for bot in made:
        bot.kill()
