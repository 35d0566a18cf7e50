"""Fixtures for the Matrix tests: one real Synapse for the whole session (generated in a
temporary folder, its default rate limits), people as matrix-nio clients, and real errbot
processes on the IWantMatrix backend."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from matrix_people import Loop  # noqa: E402
from synapse_harness import Synapse  # noqa: E402


@pytest.fixture(autouse=True)
def _no_proxy_for_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    # aiohttp (under matrix-nio) may honour *_PROXY from the environment; Synapse is local.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    server = Synapse(tmp_path_factory.mktemp("synapse")).generate().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def loop() -> Iterator[Loop]:
    running = Loop()
    try:
        yield running
    finally:
        running.close()
