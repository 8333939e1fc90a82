"""A version may store only what changed relative to a full version (its base): commits cost
what changed, not what the version holds. Nothing is converted: every existing version stays a
full snapshot (``base_pk`` NULL, no row ``removed``).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dataset_versions") as batch:
        batch.add_column(sa.Column("base_pk", sa.Integer(), nullable=True))
        batch.create_index("ix_dataset_versions_base_pk", ["base_pk"])
    with op.batch_alter_table("version_files") as batch:
        batch.add_column(sa.Column("removed", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("version_files") as batch:
        batch.drop_column("removed")
    with op.batch_alter_table("dataset_versions") as batch:
        batch.drop_index("ix_dataset_versions_base_pk")
        batch.drop_column("base_pk")
