"""Linked calendars: one per person (address encrypted by the engine), and their busy blocks
(issue 27).

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

from iwant_engine.storage.schema import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendars",
        sa.Column("person", sa.String(200), primary_key=True),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("shown", sa.String(300), nullable=False),
        sa.Column("linked_at", UTCDateTime(), nullable=False),
        sa.Column("next_refresh_at", UTCDateTime(), nullable=False),
        sa.Column("last_ok_at", UTCDateTime()),
        sa.Column("failing_since", UTCDateTime()),
        sa.Column("told_failing_at", UTCDateTime()),
        sa.Column("claimed_until", UTCDateTime()),
    )
    op.create_index("ix_calendars_next_refresh_at", "calendars", ["next_refresh_at"])
    op.create_table(
        "busy_blocks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("person", sa.String(200), nullable=False),
        sa.Column("start", UTCDateTime(), nullable=False),
        sa.Column("end", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_busy_blocks_person_end", "busy_blocks", ["person", "end"])


def downgrade() -> None:
    op.drop_index("ix_busy_blocks_person_end", "busy_blocks")
    op.drop_table("busy_blocks")
    op.drop_index("ix_calendars_next_refresh_at", "calendars")
    op.drop_table("calendars")
