"""Endpoints: versions, replicas, API keys (hashed) and request metrics.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('endpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner', sa.String(length=128), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('public', sa.Boolean(), nullable=False),
    sa.Column('last_number', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_endpoints')),
    sa.UniqueConstraint('owner', 'name', name=op.f('uq_endpoints_owner'))
    )
    with op.batch_alter_table('endpoints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_endpoints_owner'), ['owner'], unique=False)

    op.create_table('endpoint_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoints.id'], name=op.f('fk_endpoint_keys_endpoint_id_endpoints'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_endpoint_keys')),
    sa.UniqueConstraint('secret_hash', name=op.f('uq_endpoint_keys_secret_hash'))
    )
    with op.batch_alter_table('endpoint_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_endpoint_keys_endpoint_id'), ['endpoint_id'], unique=False)

    op.create_table('endpoint_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('project', sa.String(length=64), nullable=False),
    sa.Column('snapshot', sa.String(length=71), nullable=False),
    sa.Column('requirements_hash', sa.String(length=64), nullable=False),
    sa.Column('entry', sa.Text(), nullable=False),
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('image', sa.String(length=255), nullable=False),
    sa.Column('image_id', sa.String(length=128), nullable=False),
    sa.Column('cpus', sa.Float(), nullable=False),
    sa.Column('memory', sa.BigInteger(), nullable=False),
    sa.Column('gpus', sa.Integer(), nullable=False),
    sa.Column('replicas', sa.Integer(), nullable=False),
    sa.Column('inputs', sa.Text(), nullable=False),
    sa.Column('health_path', sa.Text(), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('stats', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ready_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoints.id'], name=op.f('fk_endpoint_versions_endpoint_id_endpoints'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_endpoint_versions')),
    sa.UniqueConstraint('endpoint_id', 'number', name=op.f('uq_endpoint_versions_endpoint_id'))
    )
    with op.batch_alter_table('endpoint_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_endpoint_versions_endpoint_id'), ['endpoint_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_endpoint_versions_state'), ['state'], unique=False)

    op.create_table('endpoint_metrics',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('ts', sa.Float(), nullable=False),
    sa.Column('requests', sa.Integer(), nullable=False),
    sa.Column('errors_4xx', sa.Integer(), nullable=False),
    sa.Column('errors_5xx', sa.Integer(), nullable=False),
    sa.Column('p50_ms', sa.Float(), nullable=False),
    sa.Column('p95_ms', sa.Float(), nullable=False),
    sa.Column('p99_ms', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['endpoint_versions.id'], name=op.f('fk_endpoint_metrics_version_id_endpoint_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_endpoint_metrics'))
    )
    with op.batch_alter_table('endpoint_metrics', schema=None) as batch_op:
        batch_op.create_index('ix_endpoint_metrics_version_ts', ['version_id', 'ts'], unique=False)

    op.create_table('endpoint_replicas',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('handle', sa.String(length=128), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('gpu_devices', sa.Text(), nullable=False),
    sa.Column('restarts', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['endpoint_versions.id'], name=op.f('fk_endpoint_replicas_version_id_endpoint_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_endpoint_replicas')),
    sa.UniqueConstraint('version_id', 'index', name=op.f('uq_endpoint_replicas_version_id'))
    )
    with op.batch_alter_table('endpoint_replicas', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_endpoint_replicas_version_id'), ['version_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('endpoint_replicas', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_endpoint_replicas_version_id'))

    op.drop_table('endpoint_replicas')
    with op.batch_alter_table('endpoint_metrics', schema=None) as batch_op:
        batch_op.drop_index('ix_endpoint_metrics_version_ts')

    op.drop_table('endpoint_metrics')
    with op.batch_alter_table('endpoint_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_endpoint_versions_state'))
        batch_op.drop_index(batch_op.f('ix_endpoint_versions_endpoint_id'))

    op.drop_table('endpoint_versions')
    with op.batch_alter_table('endpoint_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_endpoint_keys_endpoint_id'))

    op.drop_table('endpoint_keys')
    with op.batch_alter_table('endpoints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_endpoints_owner'))

    op.drop_table('endpoints')
