"""A request's platform event id (idempotency key) and whether its answer went out.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from iwant_engine.storage.schema import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("event_key", sa.String(200)))
        batch.add_column(sa.Column("replied_at", UTCDateTime()))
    # Requests made before this revision were answered the old way.
    op.execute("UPDATE requests SET replied_at = created_at")
    op.create_index(
        "ix_requests_event_key",
        "requests",
        ["event_key"],
        unique=True,
        postgresql_where=sa.text("event_key IS NOT NULL"),
        sqlite_where=sa.text("event_key IS NOT NULL"),
    )
    op.create_index(
        "ix_requests_unreplied",
        "requests",
        ["created_at"],
        postgresql_where=sa.text("replied_at IS NULL"),
        sqlite_where=sa.text("replied_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_requests_unreplied", "requests")
    op.drop_index("ix_requests_event_key", "requests")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("replied_at")
        batch.drop_column("event_key")
