"""The index of open groups holds formed groups only, not every waiting request's result.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    matched = sa.text("status = 'MATCHED'")
    op.create_index(
        "ix_results_open_groups",
        "results",
        ["pool", "activity", "start"],
        postgresql_where=matched,
        sqlite_where=matched,
    )
    op.drop_index("ix_results_pool_activity_status", "results")


def downgrade() -> None:
    op.create_index(
        "ix_results_pool_activity_status", "results", ["pool", "activity", "status", "start"]
    )
    op.drop_index("ix_results_open_groups", "results")
