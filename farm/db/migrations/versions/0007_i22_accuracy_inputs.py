"""measurements.accuracy_inputs: what the accuracy figures were computed on
(issue 22): ``data rows 24-47 (24)``, ``synthetic (4)``; the full record is
in measurements.accuracy["inputs"].

Revision ID: 0007_i22_accuracy_inputs
Revises: 0006_i28_model_source
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_i22_accuracy_inputs"
down_revision = "0006_i28_model_source"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("measurements") as batch:
        batch.add_column(sa.Column("accuracy_inputs", sa.String(length=96), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("measurements") as batch:
        batch.drop_column("accuracy_inputs")
