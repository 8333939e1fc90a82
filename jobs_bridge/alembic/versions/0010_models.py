"""Model registry: model versions (kind 'model' datasets), aliases and their history, endpoints following an alias.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("version_pk", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("source_job", sa.String(length=255), nullable=False),
        sa.Column("output_path", sa.Text(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("metrics", sa.Text(), nullable=False),
        sa.Column("image_id", sa.String(length=128), nullable=False),
        sa.Column("snapshot", sa.String(length=71), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_model_versions_job_id_jobs"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["version_pk"], ["dataset_versions.id"],
                                name=op.f("fk_model_versions_version_pk_dataset_versions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("version_pk", name=op.f("pk_model_versions")),
    )
    with op.batch_alter_table("model_versions") as batch:
        batch.create_index(batch.f("ix_model_versions_job_id"), ["job_id"], unique=False)
    op.create_table(
        "model_aliases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("moved_by", sa.String(length=128), nullable=False),
        sa.Column("moved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["datasets.id"], name=op.f("fk_model_aliases_model_id_datasets"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_aliases")),
        sa.UniqueConstraint("model_id", "name", name=op.f("uq_model_aliases_model_id")),
    )
    with op.batch_alter_table("model_aliases") as batch:
        batch.create_index(batch.f("ix_model_aliases_model_id"), ["model_id"], unique=False)
    op.create_table(
        "model_alias_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("from_number", sa.Integer(), nullable=True),
        sa.Column("to_number", sa.Integer(), nullable=True),
        sa.Column("moved_by", sa.String(length=128), nullable=False),
        sa.Column("moved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["datasets.id"], name=op.f("fk_model_alias_events_model_id_datasets"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_alias_events")),
    )
    with op.batch_alter_table("model_alias_events") as batch:
        batch.create_index(batch.f("ix_model_alias_events_model_id"), ["model_id"], unique=False)
    with op.batch_alter_table("endpoints") as batch:
        batch.add_column(sa.Column("follow_model_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("follow_alias", sa.String(length=64), nullable=False, server_default=""))
        batch.create_index(batch.f("ix_endpoints_follow_model_id"), ["follow_model_id"], unique=False)
        batch.create_foreign_key(batch.f("fk_endpoints_follow_model_id_datasets"), "datasets",
                                 ["follow_model_id"], ["id"], ondelete="SET NULL")
    with op.batch_alter_table("endpoint_versions") as batch:
        batch.add_column(sa.Column("model_version_pk", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("model_ref", sa.String(length=255), nullable=False, server_default=""))
        batch.add_column(sa.Column("model_path", sa.Text(), nullable=False, server_default=""))
        batch.create_index(batch.f("ix_endpoint_versions_model_version_pk"), ["model_version_pk"], unique=False)
        batch.create_foreign_key(batch.f("fk_endpoint_versions_model_version_pk_dataset_versions"),
                                 "dataset_versions", ["model_version_pk"], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    with op.batch_alter_table("endpoint_versions") as batch:
        batch.drop_constraint(batch.f("fk_endpoint_versions_model_version_pk_dataset_versions"), type_="foreignkey")
        batch.drop_index(batch.f("ix_endpoint_versions_model_version_pk"))
        batch.drop_column("model_path")
        batch.drop_column("model_ref")
        batch.drop_column("model_version_pk")
    with op.batch_alter_table("endpoints") as batch:
        batch.drop_constraint(batch.f("fk_endpoints_follow_model_id_datasets"), type_="foreignkey")
        batch.drop_index(batch.f("ix_endpoints_follow_model_id"))
        batch.drop_column("follow_alias")
        batch.drop_column("follow_model_id")
    op.drop_table("model_alias_events")
    op.drop_table("model_aliases")
    op.drop_table("model_versions")
