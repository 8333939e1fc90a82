"""Migrations on a real PostgreSQL server, and the start-up revision check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from jobs_bridge import db
from tests.support.platform import Platform
from tests.support.postgres import PostgresServer


def test_bridge_on_postgres_runs_migrations(pg_platform: Platform, postgres: PostgresServer) -> None:
    engine = sa.create_engine(postgres.url)
    with engine.connect() as conn:
        rev = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        tables = set(sa.inspect(conn).get_table_names())
    assert rev == db.head_revision(postgres.url)
    assert {"projects", "datasets", "dataset_versions", "version_files", "uploads", "blob_owners"} <= tables
    assert pg_platform.admin.api("GET", "user").json()["name"] == "admin"


def test_out_of_date_schema_refuses_to_start(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(sa.text("INSERT INTO alembic_version VALUES ('0000')"))
        conn.execute(sa.text("CREATE TABLE projects (id INTEGER)"))
    proc = subprocess.run([sys.executable, "-m", "jobs_bridge", f"--BridgeApp.db_url={url}",
                           f"--BridgeApp.floyd_root={tmp_path}"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "floyd-bridge --upgrade-db" in proc.stderr


def test_generate_config_documents_every_option(tmp_path: Path) -> None:
    target = tmp_path / "floyd_bridge_config.py"
    subprocess.run([sys.executable, "-m", "jobs_bridge", "--generate-config", f"--BridgeApp.config_file={target}"],
                   check=True, capture_output=True, timeout=60)
    text = target.read_text()
    for option in ("BridgeApp.floyd_root", "BridgeApp.db_url", "BridgeApp.upgrade_db", "DatasetManager.user_quota_bytes",
                   "DatasetManager.user_quotas", "UploadManager.max_file_size", "JobQueue.max_running",
                   "JobRunner.stats_interval", "SpecResolver.max_sweep_jobs", "DockerExecutor.network",
                   "LocalExecutor.inherited_env", "DeploymentManager.ready_timeout", "VersionResolver.max_replicas"):
        assert f"c.{option}" in text
