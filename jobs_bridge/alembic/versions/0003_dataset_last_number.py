"""Remember the highest version number a dataset ever had, so numbers are never reused.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("last_number", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE datasets SET last_number = COALESCE("
        "(SELECT MAX(number) FROM dataset_versions WHERE dataset_versions.dataset_id = datasets.id), 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("last_number")
