"""The delta an upload works out at its start (``deltas.plan_from_known``) is the delta the commit
would find by reading the base again, and is used only while that base is still the base."""

from __future__ import annotations

import random

from sqlalchemy import delete
from sqlalchemy.orm import Session

from jobs_bridge.datasets import deltas
from jobs_bridge.orm import Dataset, DatasetVersion, VersionFile
from jobs_bridge.storage.manifest import Entry
from tests.storage.test_version_layers import chain, commit


def dataset(s: Session) -> Dataset:
    ds = Dataset(owner="alice", name="d")
    s.add(ds)
    s.flush()
    return ds


def planned_for(s: Session, ds: Dataset, entries: list[Entry], fraction: float = 0.2) -> deltas.Planned | None:
    base_pk = deltas.newest_base(s, ds.id)
    return deltas.plan_from_known(s, base_pk, deltas.known_files(s, base_pk), entries, fraction)


def test_the_planned_delta_is_the_one_read_from_the_base(session: Session) -> None:
    ds = dataset(session)
    manifests = chain(random.Random(7))  # changes, additions, removals, touches
    commit(session, ds, 1, manifests[0])
    for n, files in enumerate(manifests[1:], start=2):
        entries = [files[p] for p in sorted(files)]
        planned = planned_for(session, ds, entries)
        assert planned is not None
        read = deltas.plan(session, ds.id, entries, 0.2)
        taken = deltas.plan(session, ds.id, entries, 0.2, planned)
        assert (taken.base_pk, taken.rows, taken.new_hashes) == (read.base_pk, read.rows, read.new_hashes)
        commit(session, ds, n, files)


def test_too_many_changes_store_the_version_whole(session: Session) -> None:
    ds = dataset(session)
    files = {f"f{i}": Entry(f"f{i}", i, f"{i:064x}", 1.0) for i in range(10)}
    commit(session, ds, 1, files)
    changed = [Entry(p, e.size + 1, f"{e.size + 100:064x}", 1.0) for p, e in sorted(files.items())]
    planned = planned_for(session, ds, changed)
    assert planned is not None and planned.rows is None
    assert deltas.plan(session, ds.id, changed, 0.2, planned).base_pk is None


def test_a_base_gone_since_the_start_is_not_trusted(session: Session) -> None:
    """SQLite gives a deleted row's id to the next row: the base's number tells them apart."""
    ds = dataset(session)
    files = {f"f{i}": Entry(f"f{i}", i, f"{i:064x}", 1.0) for i in range(10)}
    v1 = commit(session, ds, 1, files)
    entries = [files[p] for p in sorted(files)][:-1]  # f9 removed
    planned = planned_for(session, ds, entries)
    assert planned is not None and planned.rows is not None and planned.base == (v1.id, 1)
    # The base is replaced by another full version under the same id, with other files.
    session.execute(delete(VersionFile).where(VersionFile.version_pk == v1.id))
    session.delete(v1)
    session.flush()
    other = {f"g{i}": Entry(f"g{i}", i, f"{i + 50:064x}", 1.0) for i in range(10)}
    v2 = commit(session, ds, 2, other)
    assert v2.id == planned.base[0]  # the id came back
    plan = deltas.plan(session, ds.id, entries, 0.2, planned)
    assert plan.base_pk is None and len(plan.rows) == 9  # read again: nothing in common, stored whole
    assert session.get(DatasetVersion, v2.id) is not None
