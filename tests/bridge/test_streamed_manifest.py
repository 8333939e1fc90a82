"""The client streams its manifest (chunked, formatted while sent) and the bridge checks packs
against the upload's flat hash index, falling back to the manifest for an upload started by a
bridge from before the index."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from floyd.client import FloydClient
from floyd.client.progress import ProgressObserver
from floyd.client.transfer import batches, build_manifest, pack_stream
from tests.support.platform import Platform, User, write_tree


def _tree(root: Path) -> Path:
    files = {f"d{i % 3}/f{i}.bin": os.urandom(100 + i) for i in range(40)}  # bytes no other test stores
    files["d0/same.bin"] = files["d1/f1.bin"]  # one blob under two paths
    return write_tree(root, files)


def _upload(platform: Platform, alice: User, name: str, tree: Path, drop_index: bool) -> dict:
    assert alice.api("POST", "datasets", json={"name": name}).status_code == 201
    client = FloydClient(platform.url, alice.token)
    manifest, by_hash = build_manifest(tree, ProgressObserver(), None)
    status = client.start_upload("alice", name, manifest, "streamed")
    assert status["id"] and len(status["missing"]) == 40
    index = platform.root / "tmp" / "uploads" / status["id"] / "blobs.idx"
    assert index.is_file()
    if drop_index:
        index.unlink()
    for batch in batches([(h, by_hash[h]) for h in status["missing"]]):
        assert client.send_pack(status["id"], pack_stream(batch, ProgressObserver()))["stored"] == len(batch)
    return client.commit_upload(status["id"])


def test_streamed_manifest_makes_the_version(platform: Platform, alice: User, tmp_path: Path) -> None:
    tree = _tree(tmp_path / "t")
    version = _upload(platform, alice, "streamed-" + hashlib.md5(os.urandom(8)).hexdigest()[:8], tree, False)
    assert version["file_count"] == 41


def test_upload_without_index_still_checks_packs(platform: Platform, alice: User, tmp_path: Path) -> None:
    tree = _tree(tmp_path / "t")
    name = "noindex-" + hashlib.md5(os.urandom(8)).hexdigest()[:8]
    version = _upload(platform, alice, name, tree, True)
    client = FloydClient(platform.url, alice.token)
    assert client.download("alice", name, version["number"], "d0/same.bin").content == (tree / "d1/f1.bin").read_bytes()
