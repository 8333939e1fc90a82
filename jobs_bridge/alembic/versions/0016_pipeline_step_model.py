"""A pipeline step's output can become a model version (``--save-model STEP=MODEL``): the step
records which one, next to the dataset version of ``--save-output``.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pipeline_steps") as batch:
        batch.add_column(sa.Column("model_saved_as", sa.String(length=255), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("pipeline_steps") as batch:
        batch.drop_column("model_saved_as")
