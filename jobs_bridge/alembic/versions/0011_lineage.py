"""Record which job a dataset version was made from, and index the links lineage follows.

A version committed from a job's output (``POST …/from-job``) names that job, so the lineage
graph can go from a dataset version up to the run that produced it. Jobs' parents are indexed
because lineage asks for a job's children (restarts, clones).

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dataset_versions") as batch:
        batch.add_column(sa.Column("source_job_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_dataset_versions_source_job_id_jobs", "jobs", ["source_job_id"], ["id"],
                                 ondelete="SET NULL")
        batch.create_index("ix_dataset_versions_source_job_id", ["source_job_id"])
    with op.batch_alter_table("jobs") as batch:
        batch.create_index("ix_jobs_parent_id", ["parent_id"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_parent_id")
    with op.batch_alter_table("dataset_versions") as batch:
        batch.drop_index("ix_dataset_versions_source_job_id")
        batch.drop_constraint("fk_dataset_versions_source_job_id_jobs", type_="foreignkey")
        batch.drop_column("source_job_id")
