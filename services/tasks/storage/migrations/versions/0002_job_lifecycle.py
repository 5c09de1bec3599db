"""job lifecycle: dispatch confirmation of keyed jobs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

``jobs.dispatched_at``: when the broker confirmed a job submitted with an
Idempotency-Key. Until then a repeat of that key is "still in flight" (409,
SPEC §5). Jobs from before this revision were all confirmed: backfilled with
their creation time. States gain ``withdrawn`` and ``cancelled`` (a string
column: no DDL needed for them).
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


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("dispatched_at")
