"""jobs.workload (rank within model + profile shapes) and
measurements.accuracy_status (pass | fail | unchecked | reference)

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("workload", sa.String(length=160), nullable=True))
        batch.create_index("ix_jobs_workload", ["workload"])
    with op.batch_alter_table("measurements") as batch:
        batch.add_column(sa.Column("accuracy_status", sa.String(length=16), nullable=True))
    # Older rows: a verdict is pass/fail, no verdict was never checked. Their
    # workload is the profile name within the model (shapes were not kept).
    op.execute("UPDATE measurements SET accuracy_status = CASE WHEN accuracy_pass IS NULL THEN 'unchecked' "
               "WHEN accuracy_pass THEN 'pass' ELSE 'fail' END")
    op.execute("UPDATE jobs SET workload = profile WHERE workload IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("measurements") as batch:
        batch.drop_column("accuracy_status")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_workload")
        batch.drop_column("workload")
