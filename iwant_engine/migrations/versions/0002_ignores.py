"""Ignore lists.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from iwant_engine.storage.schema import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ignores",
        sa.Column("person", sa.String(200), primary_key=True),
        sa.Column("ignored", sa.String(200), primary_key=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_ignores_ignored", "ignores", ["ignored"])


def downgrade() -> None:
    op.drop_table("ignores")
