"""A person's request to be forgotten, until they confirm it.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from iwant_engine.storage.schema import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("forget_asked_at", UTCDateTime()))


def downgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.drop_column("forget_asked_at")
