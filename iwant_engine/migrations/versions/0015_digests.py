"""Room statistics and the weekly digest (issue 26): which wishes took a near miss, the
indexes the statistics read by, the rooms that get a digest, and an outbox row's chart.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

from iwant_engine.storage.schema import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(
            sa.Column("suggested", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # The statistics read a period of wishes by window start, of some pools or of all.
    op.create_index("ix_requests_pool_earliest", "requests", ["pool", "earliest"])
    op.create_index("ix_requests_earliest", "requests", ["earliest"])
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("chart", sa.JSON()))
    op.create_table(
        "digests",
        sa.Column("room", sa.String(200), primary_key=True),
        sa.Column("pool", sa.String(200), nullable=False),
        sa.Column("next_at", UTCDateTime(), nullable=False),
        sa.Column("last_sent_at", UTCDateTime()),
    )
    op.create_index("ix_digests_next_at", "digests", ["next_at"])


def downgrade() -> None:
    op.drop_index("ix_digests_next_at", "digests")
    op.drop_table("digests")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("chart")
    op.drop_index("ix_requests_earliest", "requests")
    op.drop_index("ix_requests_pool_earliest", "requests")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("suggested")
