"""A member who leaves a formed group keeps, on their own result, the group they left: its
meeting and the others' requests then (``!iwant export`` of a cancelled match, issue 25).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("results") as batch:
        batch.add_column(sa.Column("left_group", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("results") as batch:
        batch.drop_column("left_group")
