"""The migrations make every column the ORM maps: a mapped column no migration creates breaks
every INSERT into its table at run time (found by tests/load: ``EndpointReplica.code_mount``,
mapped by mistake beside the jobs' column, made every endpoint deploy a 500)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from jobs_bridge import db
from jobs_bridge.orm import Base


def test_migrated_schema_has_every_mapped_column(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = db.make_engine(url)
    db.init_schema(engine, url)
    inspector = sa.inspect(engine)
    missing = {}
    for table in Base.metadata.sorted_tables:
        have = {c["name"] for c in inspector.get_columns(table.name)}
        lacking = sorted(c.name for c in table.columns if c.name not in have)
        if lacking:
            missing[table.name] = lacking
    engine.dispose()
    assert missing == {}
