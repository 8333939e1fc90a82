"""GPU leases: which workspace, job or endpoint holds which device.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gpu_leases",
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("device", name=op.f("pk_gpu_leases")),
    )
    op.create_index(op.f("ix_gpu_leases_holder"), "gpu_leases", ["holder"])


def downgrade() -> None:
    op.drop_table("gpu_leases")
