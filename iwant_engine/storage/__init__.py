"""Storages of the engine. The built-in one is ``sql`` (SQLAlchemy: SQLite, PostgreSQL)."""
