"""measurements.accuracy_metric: the task metric that decided the accuracy
verdict, short (``iou 0.748``), so tables can show it beside the verdict;
the full record is in measurements.accuracy["per_output"].

Revision ID: 0008_fix22_accuracy_metric
Revises: 0007_i22_accuracy_inputs
"""
import sqlalchemy as sa
from alembic import op

revision = "0008_fix22_accuracy_metric"
down_revision = "0007_i22_accuracy_inputs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("measurements") as batch:
        batch.add_column(sa.Column("accuracy_metric", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("measurements") as batch:
        batch.drop_column("accuracy_metric")
