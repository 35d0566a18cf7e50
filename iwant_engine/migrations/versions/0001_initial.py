"""People, requests, results and the outbox.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from iwant_engine.storage.schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UNDELIVERED = "delivered_at IS NULL AND failed_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("timezone", sa.String(64)),
        sa.Column("platform_timezone", sa.String(64)),
    )
    op.create_table(
        "results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pool", sa.String(200), nullable=False),
        sa.Column("activity", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("start", UTCDateTime()),
        sa.Column("end", UTCDateTime()),
        sa.Column("max_size", sa.Integer, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("due_at", UTCDateTime()),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_results_live_due", "results", ["status", "due_at"])
    op.create_index(
        "ix_results_pool_activity_status", "results", ["pool", "activity", "status", "start"]
    )
    op.create_table(
        "requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("person", sa.String(200), sa.ForeignKey("people.id"), nullable=False),
        sa.Column("pool", sa.String(200), nullable=False),
        sa.Column("origin", sa.String(200)),
        sa.Column("activity", sa.String(100), nullable=False),
        sa.Column("earliest", UTCDateTime(), nullable=False),
        sa.Column("latest", UTCDateTime(), nullable=False),
        sa.Column("deadline", UTCDateTime(), nullable=False),
        sa.Column("length_minutes", sa.Integer, nullable=False),
        sa.Column("max_size", sa.Integer, nullable=False),
        sa.Column("min_size", sa.Integer, nullable=False, server_default=sa.text("2")),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("result_id", sa.Integer, sa.ForeignKey("results.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
    )
    op.create_index("ix_requests_candidates", "requests", ["pool", "activity", "status", "latest"])
    op.create_index("ix_requests_person_status", "requests", ["person", "status"])
    op.create_index("ix_requests_result", "requests", ["result_id"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("recipient", sa.String(200), nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("buttons", sa.JSON),
        sa.Column("origin", sa.String(200)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("claimed_until", UTCDateTime()),
        sa.Column("delivered_at", UTCDateTime()),
        sa.Column("failed_at", UTCDateTime()),
        sa.Column("error", sa.String(500)),
    )
    op.create_index(
        "ix_outbox_due",
        "outbox",
        ["platform", "next_attempt_at"],
        postgresql_where=sa.text(UNDELIVERED),
        sqlite_where=sa.text(UNDELIVERED),
    )


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("requests")
    op.drop_table("results")
    op.drop_table("people")
