"""The migration that stores a waiting request as one row (issue 29) keeps the data: a
waiting request lets go of its own result, which is deleted; groups and ended requests keep
theirs; going back gives each request without a result one of its own again."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from iwant_engine.model import UNSTORED, Status
from iwant_engine.storage.sql import SQLStorage

from ..support import at


def _config(conn) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("iwant_engine") / "migrations"))
    cfg.attributes["connection"] = conn
    return cfg


def _revisions() -> tuple[str, str]:
    """(ours, the one before it), found by what it says rather than by number."""
    scripts = ScriptDirectory.from_config(_config(None))
    for rev in scripts.walk_revisions():
        if "A waiting request is one row" in (rev.module.__doc__ or ""):
            assert isinstance(rev.down_revision, str)
            return rev.revision, rev.down_revision
    raise AssertionError("no migration of waiting requests as one row")


def _at(moment) -> str:
    return moment.replace(tzinfo=None).isoformat(" ", "microseconds")


def _rows(conn, sql: str) -> list[tuple]:
    return [tuple(r) for r in conn.execute(text(sql))]


def test_waiting_requests_let_go_of_their_results_and_get_them_back(tmp_path):
    ours, before = _revisions()
    url = f"sqlite:///{tmp_path / 'old.db'}"
    eng = create_engine(url)
    with eng.begin() as conn:
        command.upgrade(_config(conn), before)
        for person in ("text:@alice", "text:@bob", "text:@carol"):
            conn.execute(
                text("INSERT INTO people (id, display_name) VALUES (:id, :id)"), {"id": person}
            )
        results = [  # Alice's own (waiting), Bob and Carol's group, Alice's cancelled one
            (1, "PENDING", None, None, 1, at(10)),
            (2, "MATCHED", at(12), at(13), 2, at(13)),
            (3, "CANCELLED", None, None, 1, None),
        ]
        for rid, status, start, end, size, due in results:
            conn.execute(
                text(
                    'INSERT INTO results (id, pool, activity, status, start, "end", max_size, '
                    "size, due_at, updated_at) VALUES (:id, 'text:dm', 'lunch', :status, "
                    ":start, :end, 6, :size, :due, :now)"
                ),
                {
                    "id": rid,
                    "status": status,
                    "start": start and _at(start),
                    "end": end and _at(end),
                    "size": size,
                    "due": due and _at(due),
                    "now": _at(at(9)),
                },
            )
        requests = [
            (1, "text:@alice", 1, "PENDING"),
            (2, "text:@bob", 2, "MATCHED"),
            (3, "text:@carol", 2, "MATCHED"),
            (4, "text:@alice", 3, "CANCELLED"),
        ]
        for qid, person, rid, status in requests:
            conn.execute(
                text(
                    "INSERT INTO requests (id, person, pool, activity, earliest, latest, "
                    "deadline, length_minutes, max_size, min_size, created_at, result_id, "
                    "status) VALUES (:id, :person, 'text:dm', 'lunch', :earliest, :latest, "
                    ":deadline, 60, 6, 2, :now, :result, :status)"
                ),
                {
                    "id": qid,
                    "person": person,
                    "earliest": _at(at(11)),
                    "latest": _at(at(14)),
                    "deadline": _at(at(10)),
                    "now": _at(at(9)),
                    "result": rid,
                    "status": status,
                },
            )
    eng.dispose()

    storage = SQLStorage(url)
    try:
        storage.migrate()
        pairs = {q.id: (q.result_id, r.id, r.status, r.due_at) for q, r in storage.snapshot()}
        assert pairs == {
            1: (None, UNSTORED, Status.PENDING, at(10)),
            2: (2, 2, Status.MATCHED, at(13)),
            3: (2, 2, Status.MATCHED, at(13)),
            4: (3, 3, Status.CANCELLED, None),
        }
        assert storage.has_due(at(10)) and not storage.has_due(at(9, 59))
        with storage.transaction() as uow:
            due = uow.due(at(10), 10)
        assert [([m.id for m in g.members], g.result.id) for g in due] == [([1], UNSTORED)]
    finally:
        storage.close()

    eng = create_engine(url)
    with eng.begin() as conn:
        assert _rows(conn, "SELECT id FROM results ORDER BY id") == [(2,), (3,)]
        command.downgrade(_config(conn), before)
        (own,) = _rows(conn, "SELECT result_id FROM requests WHERE id = 1")[0]
        assert own not in (None, 2, 3)
        assert _rows(
            conn, f"SELECT status, size, max_size, due_at FROM results WHERE id = {own}"
        ) == [("PENDING", 1, 6, _at(at(10)))]
        assert _rows(conn, "SELECT id, result_id FROM requests WHERE id > 1 ORDER BY id") == [
            (2, 2),
            (3, 2),
            (4, 3),
        ]
        command.upgrade(_config(conn), ours)
    eng.dispose()
