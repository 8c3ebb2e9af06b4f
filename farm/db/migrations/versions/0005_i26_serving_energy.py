"""measurements.energy (the fixed-batch window's energy reading),
measurements.inferences_per_joule, measurements.serving (LoadGen scenarios)

Revision ID: 0005_i26_serving_energy
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_i26_serving_energy"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("measurements") as batch:
        batch.add_column(sa.Column("energy", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("inferences_per_joule", sa.Float(), nullable=True))
        batch.add_column(sa.Column("serving", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("measurements") as batch:
        batch.drop_column("serving")
        batch.drop_column("inferences_per_joule")
        batch.drop_column("energy")
