"""Linked accounts: one person across platforms (``!iwant link``).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from iwant_engine.storage.schema import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("canonical", sa.String(200)))
        batch.add_column(
            sa.Column("link_failures", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(sa.Column("link_failures_since", UTCDateTime()))
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("account", sa.String(200)))
    op.create_table(
        "link_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("link_codes")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("account")
    with op.batch_alter_table("people") as batch:
        batch.drop_column("link_failures_since")
        batch.drop_column("link_failures")
        batch.drop_column("canonical")
