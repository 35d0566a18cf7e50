"""The index of a person's requests by status also holds their result: ``!iwant stats``
looks back over a pair's earlier groups in it alone, without reading the requests' rows.

Revision ID: 0018
Revises: 0017
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_requests_person_status", table_name="requests")
    op.create_index("ix_requests_person_status", "requests", ["person", "status", "result_id"])


def downgrade() -> None:
    op.drop_index("ix_requests_person_status", table_name="requests")
    op.create_index("ix_requests_person_status", "requests", ["person", "status"])
