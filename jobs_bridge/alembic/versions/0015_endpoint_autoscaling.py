"""Endpoints scale with their traffic: autoscaling bounds and windows, a traffic split between
versions with a canary's error threshold, limits at the edge, and replicas per metrics bucket.

Revision ID: 0015
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

ENDPOINT_COLUMNS = (
    ("min_replicas", sa.Integer()), ("max_replicas", sa.Integer()), ("target_in_flight", sa.Float()),
    ("scale_up_window", sa.Float()), ("scale_down_window", sa.Float()), ("idle_timeout", sa.Float()),
    ("rollback_error_rate", sa.Float()), ("max_body_bytes", sa.BigInteger()), ("request_timeout", sa.Float()),
    ("rate_limit", sa.Float()),
)


def upgrade() -> None:
    with op.batch_alter_table("endpoints") as batch:
        for name, type_ in ENDPOINT_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
        batch.add_column(sa.Column("traffic", sa.Text(), nullable=False, server_default="{}"))
    with op.batch_alter_table("endpoint_metrics") as batch:
        batch.add_column(sa.Column("replicas", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("endpoint_metrics") as batch:
        batch.drop_column("replicas")
    with op.batch_alter_table("endpoints") as batch:
        batch.drop_column("traffic")
        for name, _ in reversed(ENDPOINT_COLUMNS):
            batch.drop_column(name)
