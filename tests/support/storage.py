"""The bridge's storage without a platform: its schema in a SQLite file and a storage root, for
tests of one manager that need real files and a real database but no processes."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from jobs_bridge import db
from jobs_bridge.datasets.manager import DatasetManager
from jobs_bridge.storage.blobs import BlobStore
from jobs_bridge.storage.paths import StorageLayout


def datasets_on_disk(tmp_path: Path) -> tuple[sessionmaker[Session], StorageLayout, DatasetManager]:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = db.make_engine(url)
    db.init_schema(engine, url)
    sessions = db.session_factory(engine)
    layout = StorageLayout(tmp_path / "root")
    layout.ensure()
    return sessions, layout, DatasetManager(sessions=sessions, layout=layout, store=BlobStore(layout.blobs, layout.tmp))
