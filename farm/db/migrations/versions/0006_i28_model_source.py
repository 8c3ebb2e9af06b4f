"""models.source_sha256 and models.source: a model converted to ONNX from
another format (torch.export, Keras, TensorFlow) and how it was converted

Revision ID: 0006_i28_model_source
Revises: 0005_i26_serving_energy
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_i28_model_source"
down_revision = "0005_i26_serving_energy"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("source_sha256", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("source", sa.JSON(), nullable=True))
        batch.create_index("ix_models_source_sha256", ["source_sha256"])


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_index("ix_models_source_sha256")
        batch.drop_column("source")
        batch.drop_column("source_sha256")
