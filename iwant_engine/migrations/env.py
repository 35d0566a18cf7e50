"""Alembic environment: runs on the connection the storage hands over (see storage/sql.py)."""

from alembic import context

from iwant_engine.storage.schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
