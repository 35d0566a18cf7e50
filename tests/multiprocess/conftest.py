"""Fixtures of the multi-process tests: a clean PostgreSQL database, worker processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from iwant_engine import Engine, FixedClock

from ..support import START, make_engine, truncate_postgres
from .harness import CuttableProxy, Fleet


@pytest.fixture
def mp_url(pg_database: str) -> str:
    """The session's PostgreSQL database, emptied for this test (skips or fails without it)."""
    truncate_postgres(pg_database)
    return pg_database


@pytest.fixture
def checker(mp_url: str) -> Iterator[Engine]:
    """An engine of the test process itself (migrates the schema; used for SQL checks)."""
    eng = make_engine(mp_url, FixedClock(START))
    yield eng
    eng.close()


@pytest.fixture
def fleet(mp_url: str, tmp_path) -> Iterator[Fleet]:
    """Worker OS processes; each one still running at teardown is killed."""
    f = Fleet(tmp_path, mp_url)
    yield f
    f.close()


@pytest.fixture
def proxy(mp_url: str) -> Iterator[CuttableProxy]:
    """A cuttable TCP proxy on 127.0.0.1 in front of the test server."""
    url = make_url(mp_url)
    p = CuttableProxy((url.host or "127.0.0.1", url.port or 5432))
    p.start()
    yield p
    p.close()
