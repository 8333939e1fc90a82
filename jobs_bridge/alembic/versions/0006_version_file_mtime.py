"""Keep each file's modification time as the uploader had it, so downloads restore it.

NULL for files stored before; never part of a version's id.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("version_files") as batch:
        batch.add_column(sa.Column("mtime", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("version_files") as batch:
        batch.drop_column("mtime")
