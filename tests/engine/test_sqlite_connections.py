"""SQLite keeps a few connections between units of work (``SQLStorage._sqlite_transaction``):
none of them may hold a transaction, or a lock, once its unit of work has ended."""

import sqlite3
import threading
from collections.abc import Iterator

import pytest

from iwant_engine.model import PersonInfo
from iwant_engine.storage.sql import KEEP_CONNECTIONS, SQLStorage

from ..support import ALICE, at, make_engine


@pytest.fixture
def storage(tmp_path, clock) -> Iterator[SQLStorage]:
    engine = make_engine(f"sqlite:///{tmp_path / 'iwant.db'}", clock)
    yield engine.storage
    engine.close()


def _write_lock_is_free(storage: SQLStorage) -> bool:
    """Whether another connection takes the write lock at once."""
    other = sqlite3.connect(storage.engine.url.database, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


def test_a_failed_unit_of_work_leaves_nothing_written_and_no_lock(storage):
    with pytest.raises(RuntimeError), storage.transaction() as uow:
        uow.save_person(PersonInfo("text:@zed", "Zed"))
        raise RuntimeError("the step failed")
    assert storage.person("text:@zed") is None
    assert _write_lock_is_free(storage)
    with storage.transaction() as uow:  # the next unit of work runs as usual
        uow.save_person(PersonInfo("text:@zed", "Zed"))
    assert storage.person("text:@zed") is not None
    assert _write_lock_is_free(storage)


def test_units_of_work_from_many_threads_keep_few_connections_and_no_lock(storage):
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                with storage.transaction() as uow:
                    uow.save_person(PersonInfo(f"text:@t{n}-{i}", f"T{n}"))
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(storage.people([f"text:@t{n}-19" for n in range(8)])) == 8
    assert 1 <= len(storage._kept) <= KEEP_CONNECTIONS
    assert storage.engine.pool.checkedout() == len(storage._kept)
    assert _write_lock_is_free(storage)
    storage.release_connections()
    assert storage.engine.pool.checkedout() == 0


def test_a_submission_after_a_refused_one_is_stored(tmp_path, clock):
    engine = make_engine(f"sqlite:///{tmp_path / 'iwant.db'}", clock)
    try:
        engine.submit(ALICE, "coffee 10:00")
        with pytest.raises(Exception, match="already"):
            engine.submit(ALICE, "coffee 10:00")
        clock.set(at(9, 5))
        reply = engine.submit(ALICE, "lunch 12:00")
        assert reply.body.startswith("Waiting for lunch company"), reply.body
        assert _write_lock_is_free(engine.storage)
    finally:
        engine.close()


def test_a_unit_of_work_that_ends_after_close_keeps_no_connection(storage):
    with storage.transaction() as uow:
        uow.save_person(PersonInfo("text:@late", "Late"))
        storage.close()  # another thread shutting the bot down meanwhile
    assert storage._kept == []
    assert storage.engine.pool.checkedout() == 0
