"""Pipelines: a run of named steps (a DAG of jobs) and each step's state, job and reuse key.

Revision ID: 0013
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipeline_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("project", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("snapshot", sa.String(length=71), nullable=False),
        sa.Column("no_reuse", sa.Boolean(), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_runs")),
        sa.UniqueConstraint("owner", "project", "number", name=op.f("uq_pipeline_runs_owner")),
    )
    op.create_index(op.f("ix_pipeline_runs_owner"), "pipeline_runs", ["owner"])
    op.create_index(op.f("ix_pipeline_runs_state"), "pipeline_runs", ["state"])
    op.create_table(
        "pipeline_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("needs", sa.Text(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("reused", sa.Boolean(), nullable=False),
        sa.Column("cache_key", sa.String(length=71), nullable=False),
        sa.Column("saved_as", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["pipeline_runs.id"], ondelete="CASCADE",
                                name=op.f("fk_pipeline_steps_run_id_pipeline_runs")),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="SET NULL",
                                name=op.f("fk_pipeline_steps_job_id_jobs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_steps")),
        sa.UniqueConstraint("run_id", "name", name=op.f("uq_pipeline_steps_run_id")),
    )
    op.create_index(op.f("ix_pipeline_steps_run_id"), "pipeline_steps", ["run_id"])
    op.create_index(op.f("ix_pipeline_steps_cache_key"), "pipeline_steps", ["cache_key"])


def downgrade() -> None:
    op.drop_table("pipeline_steps")
    op.drop_table("pipeline_runs")
