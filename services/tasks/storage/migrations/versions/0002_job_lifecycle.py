"""job lifecycle: dispatch confirmation of keyed jobs, charges of reopened runs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

``jobs.dispatched_at``: when the broker confirmed a job submitted with an
Idempotency-Key. Until then a repeat of that key is "still in flight" (409,
SPEC §5). Jobs from before this revision were all confirmed: backfilled with
their creation time. States gain ``withdrawn`` and ``cancelled`` (a string
column: no DDL needed for them).

``token_charges``: the charge of a run before its job was reopened by a
dead-letter replay, kept in the window it was made in.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE jobs SET dispatched_at = created_at")
    op.create_table(
        "token_charges",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("run", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("charged_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("job_id", "run"),
    )
    op.create_index("ix_token_charges_user_id", "token_charges", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_token_charges_user_id", table_name="token_charges")
    op.drop_table("token_charges")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("dispatched_at")
