"""per-call LLM usage recorded with each charge

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

``llm_call_usage``: one row per LLM call a job made, written with the charge
that includes it (CompleteJob, or a late completion of a timed-out or
cancelled job), so ``taskmesh ledger check`` can verify per job that what was
charged equals the sum of the calls (issue 10, SPEC §8). Charges made before
this revision have no itemised calls: each is backfilled as one row with
operation ``unitemized`` and its whole amount, so the check holds for them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "llm_call_usage",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("operation", sa.String(length=40), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("estimated", sa.Boolean(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_llm_call_usage_job_id", "llm_call_usage", ["job_id"])
    op.execute(
        "INSERT INTO llm_call_usage"
        " (job_id, operation, input_tokens, output_tokens, estimated, recorded_at)"
        " SELECT job_id, 'unitemized', actual_tokens, 0, TRUE, settled_at"
        " FROM token_reservations WHERE actual_tokens > 0 AND settled_at IS NOT NULL"
    )
    op.execute(
        "INSERT INTO llm_call_usage"
        " (job_id, operation, input_tokens, output_tokens, estimated, recorded_at)"
        " SELECT job_id, 'unitemized', tokens, 0, TRUE, charged_at"
        " FROM token_charges WHERE tokens > 0"
    )


def downgrade() -> None:
    op.drop_index("ix_llm_call_usage_job_id", table_name="llm_call_usage")
    op.drop_table("llm_call_usage")
