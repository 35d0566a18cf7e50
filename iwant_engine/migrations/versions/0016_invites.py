"""Calendar invites that go with a note: the outbox's ``invites`` (issue 27).

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("invites", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("invites")
