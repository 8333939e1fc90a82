"""List a version's files in byte order on PostgreSQL too, by keyset on the primary key.

The file listing pages by ``(version_pk, path)``, the primary key of ``version_files``, and
relies on byte order: every path under ``d/`` lies in ``[d/, d0)``. SQLite compares text
bytewise (BINARY) already. PostgreSQL compares with the database's collation, in which a locale
like en_US ignores punctuation, so the directory ranges would not hold; ``COLLATE "C"`` on the
column (the primary key index is rebuilt with it) gives byte order, and each page stays one index
range read. No new index is needed: the primary key is ``(version_pk, path)``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute('ALTER TABLE version_files ALTER COLUMN path TYPE VARCHAR(1024) COLLATE "C"')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute('ALTER TABLE version_files ALTER COLUMN path TYPE VARCHAR(1024) COLLATE "default"')
