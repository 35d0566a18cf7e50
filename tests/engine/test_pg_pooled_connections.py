"""PostgreSQL: a pooled connection is checked without a round trip (``pg_alive``), and one the
server ended while it sat in the pool is replaced before a unit of work uses it."""

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, event, text

from iwant_engine import Engine, FixedClock, Person

from ..support import make_engine


@pytest.fixture
def pg_engine(pg_database: str, clock: FixedClock) -> Iterator[Engine]:
    from ..support import truncate_postgres

    truncate_postgres(pg_database)
    engine = make_engine(pg_database, clock)
    yield engine
    engine.close()


def _statements(engine: Engine) -> list[str]:
    sent: list[str] = []
    sa_engine = engine.storage.engine  # type: ignore[attr-defined]
    event.listen(sa_engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
    return sent


def _backends(url: str, exclude: int) -> list[int]:
    admin = create_engine(url)
    with admin.connect() as conn:
        pids = conn.execute(
            text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
        ).scalars()
        found = [pid for pid in pids if pid != exclude]
    admin.dispose()
    return found


def _terminate(url: str, pids: list[int]) -> None:
    admin = create_engine(url)
    with admin.connect() as conn:
        for pid in pids:
            conn.execute(text("SELECT pg_terminate_backend(:p, 5000)"), {"p": pid})
    admin.dispose()


def test_a_healthy_pooled_connection_is_used_without_a_ping(pg_engine):
    alice = Person("text:@alice", "Alice")
    pg_engine.submit(alice, "coffee 10:00", "r1")
    sent = _statements(pg_engine)
    pg_engine.submit(Person("text:@bob", "Bob"), "tea 10:00", "r1")
    assert sent, "the submission ran statements"
    assert not any(sql.strip().upper() == "SELECT 1" for sql in sent)


def test_connections_ended_by_the_server_while_pooled_are_replaced(pg_engine, pg_database):
    alice, bob = Person("text:@alice", "Alice"), Person("text:@bob", "Bob")
    assert pg_engine.submit(alice, "coffee 10:00-11:00", "r1").body.startswith("Waiting")
    pooled = _backends(pg_database, exclude=-1)
    assert pooled, "the engine keeps a connection in its pool"
    _terminate(pg_database, pooled)  # as a server restart would, while nobody asks anything

    note = pg_engine.submit(bob, "coffee 10:00-11:00", "r1")

    assert note.body.startswith("Matched"), note.body  # no "unavailable", nothing lost
    assert [r.activity for r in pg_engine.open_requests(alice)] == ["coffee"]
    assert set(_backends(pg_database, exclude=-1)).isdisjoint(pooled)
