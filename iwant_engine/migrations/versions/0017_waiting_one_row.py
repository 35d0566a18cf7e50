"""A waiting request is one row: it points to no result (``result_id`` NULL) until a group
forms (issue 29). The results of the requests waiting now, each its own, are deleted; the
sweep finds waiting requests by deadline in a partial index of their own.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_OWN = "SELECT result_id FROM requests WHERE status = 'PENDING' AND result_id IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.alter_column("result_id", existing_type=sa.Integer(), nullable=True)
    # Delete first what the requests point to, then let go of it: the ids are read before.
    op.execute("CREATE TEMPORARY TABLE waiting_own AS " + _OWN)
    op.execute(
        "UPDATE requests SET result_id = NULL WHERE status = 'PENDING' AND result_id IS NOT NULL"
    )
    op.execute(
        "DELETE FROM results WHERE id IN (SELECT result_id FROM waiting_own) "
        "AND NOT EXISTS (SELECT 1 FROM requests WHERE requests.result_id = results.id)"
    )
    op.execute("DROP TABLE waiting_own")
    op.create_index(
        "ix_requests_waiting",
        "requests",
        ["deadline"],
        postgresql_where=sa.text("status = 'PENDING'"),
        sqlite_where=sa.text("status = 'PENDING'"),
    )


def downgrade() -> None:
    op.drop_index("ix_requests_waiting", table_name="requests")
    conn = op.get_bind()
    alone = conn.execute(
        sa.text(
            "SELECT id, pool, activity, status, max_size, deadline, created_at FROM requests "
            "WHERE result_id IS NULL ORDER BY id"
        )
    ).all()
    for row in alone:  # each its own result again, as the engine stored them before
        due = row.deadline if row.status == "PENDING" else None
        result_id = conn.execute(
            sa.text(
                'INSERT INTO results (pool, activity, status, start, "end", max_size, size, '
                "due_at, updated_at) VALUES (:pool, :activity, :status, NULL, NULL, "
                ":max_size, 1, :due, :at) RETURNING id"
            ),
            {
                "pool": row.pool,
                "activity": row.activity,
                "status": row.status,
                "max_size": row.max_size,
                "due": due,
                "at": row.created_at,
            },
        ).scalar_one()
        conn.execute(
            sa.text("UPDATE requests SET result_id = :result WHERE id = :id"),
            {"result": result_id, "id": row.id},
        )
    with op.batch_alter_table("requests") as batch:
        batch.alter_column("result_id", existing_type=sa.Integer(), nullable=False)
