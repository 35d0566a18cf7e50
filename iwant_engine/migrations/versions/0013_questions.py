""" "Did you meet?": the questions and answers, who turned them off, groups asked (issue 26).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

from iwant_engine.storage.schema import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TO_ASK = "status = 'DONE' AND asked_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "questions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("result_id", sa.Integer(), nullable=False),
        sa.Column("person", sa.String(200), nullable=False),
        sa.Column("asked_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("answer", sa.String(8)),
        sa.Column("absent", sa.JSON()),
        sa.Column("answered_at", UTCDateTime()),
        sa.UniqueConstraint("result_id", "person", name="uq_questions_result_person"),
    )
    op.create_index("ix_questions_person", "questions", ["person"])
    op.create_index("ix_questions_asked_at", "questions", ["asked_at"])
    with op.batch_alter_table("people") as batch:
        batch.add_column(
            sa.Column("feedback_off", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("results") as batch:
        batch.add_column(sa.Column("asked_at", UTCDateTime()))
    # Groups that ended before this revision are not asked about.
    op.execute(sa.text(f"UPDATE results SET asked_at = updated_at WHERE {TO_ASK}"))
    op.create_index(
        "ix_results_to_ask",
        "results",
        ["end"],
        postgresql_where=sa.text(TO_ASK),
        sqlite_where=sa.text(TO_ASK),
    )


def downgrade() -> None:
    op.drop_index("ix_results_to_ask", "results")
    with op.batch_alter_table("results") as batch:
        batch.drop_column("asked_at")
    with op.batch_alter_table("people") as batch:
        batch.drop_column("feedback_off")
    op.drop_table("questions")
