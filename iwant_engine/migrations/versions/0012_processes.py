"""Each bot process's heartbeat and latest 429, for ``!iwant status`` (issue 28).

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

from iwant_engine.storage.schema import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "processes",
        sa.Column("process", sa.String(200), primary_key=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
        sa.Column("last_429_at", UTCDateTime()),
        sa.Column("last_429_seconds", sa.Double()),
    )


def downgrade() -> None:
    op.drop_table("processes")
