"""The unchanged-tree shortcut: an upload of a tree whose scan matches the last upload's asks
the bridge one question (``POST …/uploads`` with ``{"version_id"}``) and hashes nothing."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from floyd.client import FloydClient, transfer
from floyd.client.statcache import StatCache
from floyd.client.transfer import upload
from tests.support.platform import User, write_tree


@pytest.fixture
def ds(alice: User, request: pytest.FixtureRequest) -> str:
    name = "fast-" + hashlib.md5(request.node.nodeid.encode()).hexdigest()[:10]
    assert alice.api("POST", "datasets", json={"name": name}).status_code == 201
    return name


@pytest.fixture
def cache(tmp_path: Path) -> StatCache:
    c = StatCache(tmp_path / "cache.sqlite")
    yield c
    c.close()


def forbid_manifest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the upload hashes or posts a manifest."""
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the unchanged tree was hashed or its manifest posted")

    monkeypatch.setattr(transfer, "hash_files", refuse)
    monkeypatch.setattr(FloydClient, "start_upload", refuse)


def test_unchanged_tree_needs_no_manifest(alice: User, ds: str, tree: Path, cache: StatCache,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    client = FloydClient(alice.platform.url, alice.token)
    write_tree(tree, {f"d{i % 3}/f{i}.txt": f"file {i}".encode() for i in range(30)})
    first = upload(client, "alice", ds, tree, "first", cache=cache)
    with monkeypatch.context() as m:
        forbid_manifest(m)
        again = upload(client, "alice", ds, tree, "again", cache=cache)
    assert again.duplicate and again.sent_bytes == 0
    assert again.version["id"] == first.version["id"] and again.version["number"] == 1
    assert again.files == 30 and again.total_bytes == first.total_bytes

    # Any change (even a touch: a new mtime) goes the long way; content changes make a version.
    os.utime(tree / "d0" / "f0.txt", (1, 1))
    touched = upload(client, "alice", ds, tree, "touched", cache=cache)
    assert touched.duplicate and touched.version["number"] == 1
    (tree / "d1" / "new.txt").write_bytes(f"new in {ds}".encode())  # bytes no other test stored
    added = upload(client, "alice", ds, tree, "added", cache=cache)
    assert not added.duplicate and added.version["number"] == 2 and added.sent_files == 1
    with monkeypatch.context() as m:
        forbid_manifest(m)
        assert upload(client, "alice", ds, tree, "again", cache=cache).version["number"] == 2


def test_deleted_head_falls_back_to_the_manifest(alice: User, ds: str, tree: Path, cache: StatCache) -> None:
    client = FloydClient(alice.platform.url, alice.token)
    write_tree(tree, {"a.txt": f"a of {ds}".encode(), "b/c.txt": f"c of {ds}".encode()})  # not deduplicated
    first = upload(client, "alice", ds, tree, "first", cache=cache)
    client.delete_version("alice", ds, 1)
    again = upload(client, "alice", ds, tree, "again", cache=cache)
    assert not again.duplicate and again.version["number"] == 2
    assert again.version["id"] == first.version["id"] and again.sent_files == 2


def test_allow_duplicate_skips_the_shortcut(alice: User, ds: str, tree: Path, cache: StatCache) -> None:
    client = FloydClient(alice.platform.url, alice.token)
    write_tree(tree, {"a.txt": b"a"})
    upload(client, "alice", ds, tree, "first", cache=cache)
    forced = upload(client, "alice", ds, tree, "forced", allow_duplicate=True, cache=cache)
    assert not forced.duplicate and forced.version["number"] == 2


def test_head_question_api(alice: User, bob: User, ds: str, tree: Path, cache: StatCache) -> None:
    client = FloydClient(alice.platform.url, alice.token)
    write_tree(tree, {"a.txt": b"a"})
    vid = upload(client, "alice", ds, tree, "first", cache=cache).version["id"]
    ok = alice.api("POST", f"datasets/alice/{ds}/uploads", json={"version_id": vid})
    assert ok.status_code == 200 and ok.json()["duplicate_of"]["number"] == 1
    assert ok.json()["id"] is None
    unknown = alice.api("POST", f"datasets/alice/{ds}/uploads", json={"version_id": "sha256:" + "0" * 64})
    assert unknown.status_code == 404 and "send the manifest" in unknown.json()["message"]
    bad = alice.api("POST", f"datasets/alice/{ds}/uploads", json={"version_id": "nope"})
    assert bad.status_code == 400
    # Someone else's private dataset stays "not found", even for an id that exists.
    assert bob.api("POST", f"datasets/alice/{ds}/uploads", json={"version_id": vid}).status_code == 404
