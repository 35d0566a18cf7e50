"""Shared fixtures: engines on a real SQLite file and on the real local PostgreSQL."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from iwant_engine import Engine, FixedClock

from .support import MEMORY, START, make_engine, truncate_postgres

PG_URL = os.environ.get(
    "IWANT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _pg_admin_url() -> str:
    return (
        make_url(PG_URL).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    )


def postgres_available() -> str | None:
    """None when the server answers, else why not."""
    try:
        eng = create_engine(_pg_admin_url(), connect_args={"connect_timeout": 3})
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
        eng.dispose()
        return None
    except Exception as err:  # any failure means: not available
        return f"{type(err).__name__}: {str(err).splitlines()[0]}"


# Folders and modules whose tests start real processes (bots, engines, the benchmark).
SLOW = ("multiprocess", "twobots", "slack", "telegram", "xmpp", "matrix", "bench")
SLOW_MODULES = (
    "test_strategy_kit.py",  # the kit's hypothesis runs: 5-25 s a test
    "test_strategy_builders.py",
    "test_console.py",
    "test_restart.py",
    "test_wheel.py",
    "test_example_strategy_package.py",
)


# Folders whose tests share one server a session (tests/matrix: Synapse, tests/xmpp:
# Prosody, tests/calendars: Radicale and the feed server): with ``--dist loadgroup`` each
# folder runs on one worker, which starts it once.
SERVER_GROUPS = {"matrix": "synapse", "xmpp": "prosody", "calendars": "radicale"}


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker more than there are cores. About half of the suite's time is
    waiting (bots starting, servers answering), so a third worker on 2 cores keeps them
    busy: 1200 tests took 445 s with 2 workers and 327-339 s with 3 on this 2-core machine."""
    return (os.cpu_count() or 1) + 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the slow tests, so that ``pytest -m "not slow"`` is a quick edit loop, and run
    them first: with ``-n``, the workers then end together on short tests instead of one
    waiting for another's long last test."""
    for item in items:
        parts = item.path.parts
        if any(folder in parts for folder in SLOW) or item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
        for folder, group in SERVER_GROUPS.items():
            if folder in parts[-2:-1]:
                item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable


@pytest.fixture
def errbot_setup() -> tuple[str | None, dict[str, Any] | None]:
    """(extra_plugin_dir, extra_config) of ``testbot`` where a test module names neither."""
    return None, None


@pytest.fixture
def testbot(request: pytest.FixtureRequest) -> Iterator[Any]:
    """errbot's ``testbot`` (set up by the test module's ``extra_plugin_dir``,
    ``extra_config`` and ``loglevel``, else by the folder's ``errbot_setup``), waiting up
    to a minute for the started bot's first answer where errbot's waits 2 s: on a busy
    machine, activating the iwant plugin (an engine, its migrations) can take longer."""
    # Imported here: errbot registers this module as a pytest plugin, which must come first.
    from errbot.backends.test import TestBot

    plugin_dir, config = request.getfixturevalue("errbot_setup")
    bot = TestBot(
        extra_plugin_dir=getattr(request.module, "extra_plugin_dir", plugin_dir),
        extra_config=getattr(request.module, "extra_config", config),
        loglevel=getattr(request.module, "loglevel", logging.DEBUG),
    )
    bot.start(timeout=60)
    yield bot
    bot.stop()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of our own on the local PostgreSQL, dropped at the end; its URL."""
    problem = postgres_available()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI and not reachable at {PG_URL}: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {problem}")
    name = f"iwant_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(_pg_admin_url()).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


def _database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "memory":
        return MEMORY
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'iwant.db'}"
    url = request.getfixturevalue("pg_database")
    truncate_postgres(url)
    return url


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """Where an engine test keeps its data: every installed storage, by parametrisation."""
    return _database_url(request, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """The SQL storage's databases: a SQLite file and the local PostgreSQL."""
    return _database_url(request, tmp_path)


@pytest.fixture
def engine(database_url: str, clock: FixedClock) -> Iterator[Engine]:
    eng = make_engine(database_url, clock)
    yield eng
    eng.close()
