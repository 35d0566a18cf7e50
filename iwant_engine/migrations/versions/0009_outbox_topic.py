"""Notes of one topic to one person: only the newest waiting one is sent (issue 15).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("topic", sa.String(64)))
    pending = sa.text("delivered_at IS NULL AND failed_at IS NULL")
    op.create_index(
        "ix_outbox_topic",
        "outbox",
        ["recipient", "topic"],
        postgresql_where=pending,
        sqlite_where=pending,
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_topic", "outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("topic")
