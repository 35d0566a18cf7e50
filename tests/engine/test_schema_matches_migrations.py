"""The migrations build exactly the tables the models describe, on SQLite and PostgreSQL:
a model changed without a migration (or the other way round) fails here."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from iwant_engine.storage.schema import Base
from iwant_engine.storage.sql import SQLStorage

from ..support import truncate_postgres


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migrated_schema_equals_the_models(kind, request, tmp_path):
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'schema.db'}"
    else:
        url = request.getfixturevalue("pg_database")
        truncate_postgres(url)
    storage = SQLStorage(url)
    try:
        storage.migrate()
        with storage.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        storage.close()
