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


def test_lookups_in_hash_order_and_out_of_it(tmp_path: Path) -> None:
    """Packs arrive in hash order (the bridge lists missing blobs sorted): each lookup first tries
    the successor of the last one; any other order still answers by bisection."""
    pairs = {hashlib.sha256(str(i).encode()).hexdigest(): i for i in range(500)}
    index = BlobIndex.build(pairs.items())
    ordered = sorted(pairs)
    assert [index.size(h) for h in ordered] == [pairs[h] for h in ordered]
    assert index.size(ordered[0]) == pairs[ordered[0]]  # back to the start
    shuffled = ordered[1::2] + ordered[::-2]
    assert [index.size(h) for h in shuffled] == [pairs[h] for h in shuffled]
    assert index.size(hashlib.sha256(b"not there").hexdigest()) is None
    assert index.size(ordered[-1]) == pairs[ordered[-1]] and index.size(ordered[-1]) == pairs[ordered[-1]]
