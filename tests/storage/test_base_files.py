"""The bases kept between uploads (``datasets/basecache.py``): asked again, a base is not read
again; a pk given to another version (SQLite reuses a deleted row's id) is not served the old
files; bases over the budget are read each time and never kept."""

from __future__ import annotations

import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session

from jobs_bridge.datasets import deltas
from jobs_bridge.datasets.basecache import BaseFiles
from jobs_bridge.orm import Dataset, VersionFile
from jobs_bridge.storage.manifest import Entry
from tests.storage.test_planned_delta import dataset
from tests.storage.test_version_layers import commit


def files(prefix: str, n: int) -> dict[str, Entry]:
    return {f"{prefix}{i}": Entry(f"{prefix}{i}", i, f"{i:064x}", 1.0) for i in range(n)}


def test_a_base_is_read_once_and_a_reused_pk_is_read_again(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = dataset(session)
    v1 = commit(session, ds, 1, files("f", 10))
    reads: list[int | None] = []
    real = deltas.known_files
    monkeypatch.setattr(deltas, "known_files", lambda s, pk: reads.append(pk) or real(s, pk))
    bases = BaseFiles(max_files=100)
    first = bases.known(session, ds.id, v1.id)
    assert first is not None and sorted(first) == sorted(files("f", 10))
    assert bases.known(session, ds.id, v1.id) is first and reads == [v1.id]
    # version 1 deleted, its pk given to version 2 with other files: read, not the kept ones
    session.execute(delete(VersionFile).where(VersionFile.version_pk == v1.id))
    session.delete(v1)
    session.flush()
    v2 = commit(session, ds, 2, files("g", 10))
    assert v2.id == v1.id
    again = bases.known(session, ds.id, v2.id)
    assert again is not None and sorted(again) == sorted(files("g", 10)) and len(reads) == 2


def test_bases_over_the_budget_are_not_kept(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = dataset(session)
    small = commit(session, ds, 1, files("f", 5))
    other = Dataset(owner="alice", name="e")
    session.add(other)
    session.flush()
    big = commit(session, other, 1, files("g", 20))
    reads: list[int | None] = []
    real = deltas.known_files
    monkeypatch.setattr(deltas, "known_files", lambda s, pk: reads.append(pk) or real(s, pk))
    bases = BaseFiles(max_files=12)
    for _ in range(2):
        bases.known(session, ds.id, small.id)
        bases.known(session, other.id, big.id)
    assert reads == [small.id, big.id, big.id]
    assert bases.known(session, ds.id, None) is None
    assert BaseFiles(max_files=0).known(session, ds.id, small.id) is not None  # 0 keeps none, still answers
