"""The database diff of two versions equals the Python diff of their {path: hash} maps."""

from __future__ import annotations

import random

from sqlalchemy import create_engine, insert
from sqlalchemy.orm import Session

from jobs_bridge.datasets.layers import Layers
from jobs_bridge.datasets.versiondiff import VERSION_FILES, version_diff
from jobs_bridge.orm import Base, Dataset, DatasetVersion
from jobs_bridge.storage.manifest import diff


def test_version_diff_matches_python_diff() -> None:
    rng = random.Random(16)
    old = {f"d{i % 7}/f{i}": f"{rng.getrandbits(256):064x}" for i in range(400)}
    new = dict(old)
    for p in rng.sample(sorted(old), 30):
        del new[p]
    for p in rng.sample(sorted(new), 25):
        new[p] = f"{rng.getrandbits(256):064x}"
    new.update({f"added/é{i}": f"{i:064x}" for i in range(12)})
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        ds = Dataset(owner="alice", name="d")
        s.add(ds)
        s.flush()
        pks = []
        for number, files in ((1, old), (2, new)):
            v = DatasetVersion(dataset_id=ds.id, number=number, version_id=f"v{number}", created_by="alice")
            s.add(v)
            s.flush()
            s.execute(insert(VERSION_FILES), [{"version_pk": v.id, "path": p, "size": 1, "hash": h}
                                              for p, h in files.items()])
            pks.append(v.id)
        sized = version_diff(s, Layers(pks[0]), Layers(pks[1]))
        got, back = sized.diff, version_diff(s, Layers(pks[1]), Layers(pks[0])).diff
    want = diff(old, new)
    files = sized.files()
    assert [f["path"] for f in files] == sorted(want.added + want.removed + want.changed, key=str.encode)
    assert {(f["change"], f["size_from"], f["size_to"]) for f in files} == {("added", None, 1), ("removed", 1, None),
                                                                              ("changed", 1, 1)}
    assert sized.summary() == {"added": 12, "removed": 30, "changed": 25, "bytes_from": 55, "bytes_to": 37}
    assert (got.added, got.removed, got.changed) == (want.added, want.removed, want.changed)
    assert len(got.added) == 12 and len(got.removed) == 30 and len(got.changed) == 25
    assert (back.added, back.removed, back.changed) == (want.removed, want.added, want.changed)
