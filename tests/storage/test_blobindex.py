"""An upload's hash → size index (datasets/blobindex.py) answers as the dict it replaced."""

from __future__ import annotations

import hashlib
from pathlib import Path

from jobs_bridge.datasets.blobindex import BlobIndex


def test_index_matches_a_dict(tmp_path: Path) -> None:
    pairs = [(hashlib.sha256(str(i).encode()).hexdigest(), i * 7) for i in range(1000)]
    pairs += pairs[:10]  # the same bytes under two paths
    BlobIndex.build(pairs).save(tmp_path / "blobs.idx")
    index = BlobIndex.load(tmp_path / "blobs.idx")
    assert len(index) == 1000
    assert all(index.size(h) == size for h, size in pairs)
    assert index.size(hashlib.sha256(b"other").hexdigest()) is None
    assert index.size("zz" * 32) is None and index.size("ab") is None


def test_empty_index(tmp_path: Path) -> None:
    BlobIndex.build([]).save(tmp_path / "blobs.idx")
    assert BlobIndex.load(tmp_path / "blobs.idx").size("00" * 32) is None
