"""Versioned datasets through the real hub, proxy and bridge."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from floyd.client import FloydClient
from floyd.client.progress import ProgressObserver
from floyd.client.statcache import StatCache
from floyd.client.transfer import upload
from tests.support.platform import Platform, User, built, write_tree


@pytest.fixture(params=["sqlite", "postgres"])
def platform(request: pytest.FixtureRequest) -> Platform:
    """Every dataset test runs on the embedded SQLite default and on PostgreSQL."""
    return request.getfixturevalue(f"{'sqlite' if request.param == 'sqlite' else 'pg'}_platform")


def client_for(user: User) -> FloydClient:
    return FloydClient(user.platform.url, user.token)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def ds(alice: User, request: pytest.FixtureRequest) -> str:
    name = "ds-" + hashlib.md5(request.node.nodeid.encode()).hexdigest()[:10]
    r = alice.api("POST", "datasets", json={"name": name, "description": "test data"})
    assert r.status_code == 201, r.text
    return name


def test_create_list_show(alice: User, bob: User, ds: str) -> None:
    mine = alice.api("GET", "datasets").json()["items"]
    assert ds in [d["name"] for d in mine]
    assert all(d["owner"] == "alice" for d in mine)
    assert ds not in [d["name"] for d in bob.api("GET", "datasets").json()["items"]]
    again = alice.api("POST", "datasets", json={"name": ds})
    assert again.status_code == 409
    assert "already have a dataset" in again.json()["message"]


def test_upload_versions_and_dedup(platform: Platform, tree: Path, tmp_path: Path) -> None:
    # A user of its own: the counts of files sent assume no other test stored these bytes (an
    # empty file, say) as this user; alice's uploads elsewhere made this test fail after them.
    owner = platform.user("dedup")
    ds = "versions"
    assert owner.api("POST", "datasets", json={"name": ds}).status_code == 201
    client = client_for(owner)
    cache = StatCache(tmp_path / "cache.sqlite")
    write_tree(tree, {f"train/{i}.txt": f"sample {i}".encode() for i in range(40)})
    write_tree(tree, {"big.bin": os.urandom(9 << 20), "empty.txt": b""})
    first = upload(client, owner.name, ds, tree, "first", cache=cache)
    assert not first.duplicate
    assert first.version["number"] == 1 and first.version["ref"] == f"dedup/{ds}:1"
    assert first.version["file_count"] == 42
    assert first.sent_files == 42 and first.sent_bytes == first.total_bytes

    # The same tree again: same id, no new version, nothing sent.
    again = upload(client, owner.name, ds, tree, "again", cache=cache)
    assert again.duplicate and again.sent_bytes == 0
    assert again.version["id"] == first.version["id"]
    assert len(client.versions(owner.name, ds)) == 1

    # Unless asked: a second version with the same id.
    forced = upload(client, owner.name, ds, tree, "forced", allow_duplicate=True, cache=cache)
    assert forced.version["number"] == 2 and forced.version["id"] == first.version["id"]
    assert forced.sent_bytes == 0

    # One file changed: only that file is sent.
    (tree / "train" / "3.txt").write_text("changed")
    third = upload(client, owner.name, ds, tree, "third", cache=cache)
    assert third.version["number"] == 3
    assert third.sent_files == 1 and third.sent_bytes == len("changed")
    d = client.diff(owner.name, ds, 1, 3)
    assert d["changed"] == ["train/3.txt"] and d["added"] == [] and d["removed"] == []

    (tree / "new.txt").write_text("new")
    (tree / "empty.txt").unlink()
    fourth = upload(client, owner.name, ds, tree, "fourth", cache=cache)
    d = client.diff(owner.name, ds, 3, fourth.version["number"])
    assert d == {**d, "added": ["new.txt"], "removed": ["empty.txt"], "changed": []}


def test_version_id_is_content_address(alice: User, bob: User, ds: str, tree: Path) -> None:
    write_tree(tree, {"a.txt": b"A", "dir/b.txt": b"B"})
    v = upload(client_for(alice), "alice", ds, tree).version
    bob.api("POST", "datasets", json={"name": "same-content"})
    v2 = upload(client_for(bob), "bob", "same-content", tree).version
    assert v["id"] == v2["id"]  # same bytes and paths anywhere give the same id
    import json
    canonical = json.dumps(
        sorted([{"path": "a.txt", "size": 1, "hash": sha(b"A")}, {"path": "dir/b.txt", "size": 1, "hash": sha(b"B")}],
               key=lambda e: e["path"]), sort_keys=True, separators=(",", ":")).encode()
    assert v["id"] == "sha256:" + hashlib.sha256(canonical).hexdigest()


def test_materialized_read_only_hardlinks(platform: Platform, alice: User, ds: str, tree: Path) -> None:
    write_tree(tree, {"x/y.txt": b"hello", "z.txt": b"zz"})
    upload(client_for(alice), "alice", ds, tree)
    vdir = platform.root / "datasets" / "alice" / ds / "1"
    f = built(vdir / "x" / "y.txt")
    assert f.read_bytes() == b"hello"
    st = f.stat()
    assert st.st_nlink >= 2  # a hardlink into blobs/
    blob = platform.root / "blobs" / "sha256" / hashlib.sha256(b"hello").hexdigest()[:2] / hashlib.sha256(b"hello").hexdigest()
    assert blob.stat().st_ino == st.st_ino
    assert not (stat.S_IMODE(st.st_mode) & 0o222)
    assert not (stat.S_IMODE((vdir / "x").stat().st_mode) & 0o222)


def test_files_listing_and_download(alice: User, ds: str, tree: Path) -> None:
    files = {"train/a.txt": b"aaa", "train/sub/b.txt": b"bb", "test/c.txt": b"c", "README": b"readme"}
    write_tree(tree, files)
    client = client_for(alice)
    upload(client, "alice", ds, tree)
    top = client.files("alice", ds, 1)
    assert [(f["path"], f["type"]) for f in top["files"]] == [
        ("README", "file"), ("test", "directory"), ("train", "directory")]
    train = client.files("alice", ds, 1, "train")
    assert {f["path"] for f in train["files"]} == {"train/a.txt", "train/sub"}
    rec = client.files("alice", ds, "latest", "train", recursive=True)
    assert {f["path"] for f in rec["files"]} == {"train/a.txt", "train/sub/b.txt"}
    r = client.download("alice", ds, 1, "train/sub/b.txt")
    assert r.content == b"bb" and r.headers["X-Floyd-Hash"] == sha(b"bb")
    r = client.download("alice", ds, 1, "train")
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        got = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    assert got == {"train/a.txt": b"aaa", "train/sub/b.txt": b"bb"}
    r = client.download("alice", ds, 1)
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        assert len([m for m in tar if m.isfile()]) == 4
    missing = alice.api("GET", f"datasets/alice/{ds}/versions/1/download", params={"path": "nope"})
    assert missing.status_code == 404 and "nope" in missing.json()["message"]


def test_resume_sends_nothing_twice(platform: Platform, alice: User, ds: str, tree: Path, tmp_path: Path) -> None:
    big = os.urandom(12 << 20)
    write_tree(tree, {"big.bin": big, **{f"s/{i}": os.urandom(100) for i in range(30)}})
    client = client_for(alice)

    class CutAfterPacks(ProgressObserver):
        """Simulate a connection cut: the large blob's transfer dies half way."""

    from floyd.client import transfer
    status = client.start_upload("alice", ds, transfer.build_manifest(tree, ProgressObserver(), None)[0])
    assert status["id"] and not status["resumed"]
    # Send the small files, then half the big one, then "lose the connection".
    manifest, by_hash = transfer.build_manifest(tree, ProgressObserver(), None)
    small = [(h, by_hash[h]) for h in status["missing"] if by_hash[h].size < transfer.LARGE_FILE]
    client.send_pack(status["id"], transfer.pack_stream(small, ProgressObserver()))
    big_hash = sha(big)
    half = len(big) // 2
    client.put_blob(status["id"], big_hash, 0, half, iter([big[:half]]))
    assert client.blob_offset(status["id"], big_hash) == half

    # Running the upload again resumes: only the second half of the big file travels.
    sent: list[int] = []

    class Count(ProgressObserver):
        def advance(self, name: str, amount: int) -> None:
            if name == "send":
                sent.append(amount)

    result = upload(client, "alice", ds, tree, observer=Count())
    assert result.resumed
    assert result.sent_bytes == len(big) - half
    assert sum(sent) == len(big) - half
    assert result.version["number"] == 1
    assert client.download("alice", ds, 1, "big.bin").content == big


def test_delete_version_collects_unreferenced_blobs(platform: Platform, alice: User, ds: str, tree: Path) -> None:
    client = client_for(alice)
    write_tree(tree, {"shared.txt": b"shared-content-x", "only1.txt": b"only-in-v1-x"})
    upload(client, "alice", ds, tree)
    (tree / "only1.txt").unlink()
    write_tree(tree, {"only2.txt": b"only-in-v2-x"})
    upload(client, "alice", ds, tree)

    def blob(data: bytes) -> Path:
        h = hashlib.sha256(data).hexdigest()
        return platform.root / "blobs" / "sha256" / h[:2] / h

    info = client.delete_version("alice", ds, 1)
    assert info["blobs_removed"] == 1
    assert not blob(b"only-in-v1-x").exists()
    assert blob(b"shared-content-x").exists() and blob(b"only-in-v2-x").exists()
    assert not (platform.root / "datasets" / "alice" / ds / "1").exists()
    assert [v["number"] for v in client.versions("alice", ds)] == [2]
    assert client.download("alice", ds, 2, "shared.txt").content == b"shared-content-x"
    # Numbers are never reused, not even the newest one's after it is deleted.
    (tree / "n.txt").write_text("n")
    assert upload(client, "alice", ds, tree).version["number"] == 3
    client.delete_version("alice", ds, 3)
    (tree / "m.txt").write_text("m")
    assert upload(client, "alice", ds, tree).version["number"] == 4


def test_public_sharing(alice: User, bob: User, ds: str, tree: Path) -> None:
    write_tree(tree, {"a": b"1"})
    upload(client_for(alice), "alice", ds, tree)
    assert bob.api("GET", f"datasets/alice/{ds}").status_code == 404
    r = alice.api("PATCH", f"datasets/alice/{ds}", json={"public": True})
    assert r.status_code == 200 and r.json()["public"] is True
    assert bob.api("GET", f"datasets/alice/{ds}/versions/1/download", params={"path": "a"}).content == b"1"
    assert ds in [d["name"] for d in bob.api("GET", "datasets", params={"public": "1"}).json()["items"]]
    # Public is readable, not writable.
    r = bob.api("DELETE", f"datasets/alice/{ds}/versions/1")
    assert r.status_code == 403 and "belongs to alice" in r.json()["message"]
    r = bob.api("POST", f"datasets/alice/{ds}/uploads", json={"manifest": []})
    assert r.status_code == 403
    alice.api("PATCH", f"datasets/alice/{ds}", json={"public": False})
    assert bob.api("GET", f"datasets/alice/{ds}").status_code == 404


def test_quota_exceeded_is_413(tmp_path: Path) -> None:
    p = Platform.create(tmp_path / "quota", {"FLOYD_QUOTA_TEST": "1"})
    p.root.mkdir(parents=True, exist_ok=True)
    (p.root / "floyd_bridge_config.py").write_text("c.DatasetManager.user_quota_bytes = 1000\n")
    p.start()
    try:
        carol = p.user("carol")
        carol.api("POST", "datasets", json={"name": "q"})
        ok = [{"path": "a", "size": 600, "hash": sha(b"x" * 600)}]
        r = carol.api("POST", "datasets/carol/q/uploads", json={"manifest": ok})
        assert r.status_code == 201
        client = FloydClient(p.url, carol.token)
        client.send_pack(r.json()["id"], _pack({"a": b"x" * 600}))
        assert client.commit_upload(r.json()["id"])["number"] == 1
        too_much = [{"path": "b", "size": 500, "hash": sha(b"y" * 500)}]
        r = carol.api("POST", "datasets/carol/q/uploads", json={"manifest": too_much})
        assert r.status_code == 413
        assert "quota" in r.json()["message"].lower()
        assert len(client.versions("carol", "q")) == 1
    finally:
        p.stop()


def _pack(files: dict[str, bytes]) -> list[bytes]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for data in files.values():
            info = tarfile.TarInfo(hashlib.sha256(data).hexdigest())
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return [buf.getvalue()]
