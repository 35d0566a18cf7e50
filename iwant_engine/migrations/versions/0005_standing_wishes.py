"""Standing wishes: "lunch 12:00 every weekday".

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from iwant_engine.storage.schema import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "standing",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("person", sa.String(200), sa.ForeignKey("people.id"), nullable=False),
        sa.Column("pool", sa.String(200), nullable=False),
        sa.Column("origin", sa.String(200)),
        sa.Column("activity", sa.String(100), nullable=False),
        sa.Column("text", sa.String(200), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("next_day", sa.Date(), nullable=False),
        sa.Column("create_at", UTCDateTime()),
        sa.Column("paused_until", sa.Date()),
        sa.Column("skips", sa.String(200), nullable=False, server_default=sa.text("''")),
        sa.Column("ended_at", UTCDateTime()),
    )
    op.create_index("ix_standing_create_at", "standing", ["create_at"])
    op.create_index("ix_standing_person", "standing", ["person"])


def downgrade() -> None:
    op.drop_index("ix_standing_person", "standing")
    op.drop_index("ix_standing_create_at", "standing")
    op.drop_table("standing")
