"""An upload sent as the directories that changed since a version (``{"base", "directories"}``):
the version made is the one the whole manifest makes, id included; what the base's versions
hold is not asked for; bad requests are 4xx and change nothing; the client sends only the
directories whose digest changed and falls back to the whole manifest when it must."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest

from floyd.client import FloydClient
from floyd.client.statcache import StatCache
from floyd.client.transfer import upload
from tests.bridge.test_upload_known_files import entry, pack
from tests.support.platform import User, write_tree


@pytest.fixture
def ds(alice: User) -> str:
    name = f"dirs-{uuid.uuid4().hex[:8]}"
    assert alice.api("POST", "datasets", json={"name": name}).status_code == 201
    return name


def h(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def start(user: User, owner: str, ds: str, body: dict) -> dict:
    r = user.api("POST", f"datasets/{owner}/{ds}/uploads", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def finish(user: User, status: dict, files: dict[str, bytes]) -> dict:
    """Send what the bridge asked for (out of ``files``) and commit."""
    by_hash = {h(d): d for d in files.values()}
    missing = {m: by_hash[m] for m in status["missing"]}
    if missing:
        sent = user.api("POST", f"uploads/{status['id']}/pack", data=pack(missing),
                        headers={"Content-Type": "application/x-tar"})
        assert sent.status_code in (200, 201), sent.text
    commit = user.api("POST", f"uploads/{status['id']}/commit")
    assert commit.status_code == 201, commit.text
    return commit.json()


def listing(user: User, owner: str, ds: str, number: int) -> dict[str, str]:
    r = user.api("GET", f"datasets/{owner}/{ds}/versions/{number}/files", params={"recursive": "true"})
    assert r.status_code == 200, r.text
    return {f["path"]: f["hash"] for f in r.json()["files"] if f.get("type", "file") == "file"}


def first_version(user: User, ds: str, files: dict[str, bytes]) -> dict:
    status = start(user, "alice", ds, {"manifest": [entry(p, d) for p, d in sorted(files.items())], "message": "v1"})
    return finish(user, status, files)


def test_changed_directories_make_the_version_the_whole_manifest_makes(alice: User, ds: str) -> None:
    files = {"top.txt": b"top", **{f"d{i % 3}/f{i}.txt": f"{ds} {i}".encode() for i in range(12)},
             "d0/sub/deep.txt": f"{ds} deep".encode()}
    v1 = first_version(alice, ds, files)
    after = {p: d for p, d in files.items() if not p.startswith("d2/") and p != "d0/f3.txt"}
    after["d0/f0.txt"] = f"{ds} changed".encode()
    after["new/n.txt"] = f"{ds} new".encode()
    changed = {"d0/": [entry(p, d) for p, d in sorted(after.items()) if p.startswith("d0/") and p.count("/") == 1],
               "d2/": [], "new/": [entry("new/n.txt", after["new/n.txt"])]}
    status = start(alice, "alice", ds, {"base": {"number": 1, "version_id": v1["id"]}, "directories": changed,
                                        "message": "v2"})
    assert sorted(status["missing"]) == sorted([h(after["d0/f0.txt"]), h(after["new/n.txt"])])
    assert status["file_count"] == len(after)
    v2 = finish(alice, status, after)
    assert v2["number"] == 2 and v2["file_count"] == len(after)
    # the whole manifest of the same tree names the same version
    whole = alice.api("POST", f"datasets/alice/{ds}/uploads",
                      json={"manifest": [entry(p, d) for p, d in sorted(after.items())]})
    assert whole.status_code == 200 and whole.json()["duplicate_of"]["number"] == 2
    assert whole.json()["version_id"] == v2["id"]
    assert listing(alice, "alice", ds, 2) == {p: h(d) for p, d in after.items()}
    assert listing(alice, "alice", ds, 1) == {p: h(d) for p, d in files.items()}  # the base is untouched


def changes_of(base: dict, files: dict[str, bytes], *dirs: str) -> dict:
    """The request body for ``files`` as the directories ``dirs`` changed since ``base``."""
    return {"base": {"number": base["number"], "version_id": base["id"]},
            "directories": {d: [entry(p, data) for p, data in sorted(files.items()) if p.rpartition("/")[0] + "/" == d]
                            for d in dirs}}


def test_blobs_of_the_named_version_are_held(alice: User, admin: User, ds: str) -> None:
    """Alice's version 2 (a delta over 1) holds a blob the admin never sent: his changes against it
    are asked only for his own blob, and the commit takes hers from the dataset."""
    files = {f"d{i % 2}/f{i}.txt": f"{ds} {i}".encode() for i in range(8)}
    v1 = first_version(alice, ds, files)
    by_alice = {**files, "d1/f1.txt": f"{ds} by alice".encode()}
    v2 = finish(alice, start(alice, "alice", ds, changes_of(v1, by_alice, "d1/")), by_alice)
    by_admin = {**by_alice, "d0/f0.txt": f"{ds} by the admin".encode()}
    status = start(admin, "alice", ds, changes_of(v2, by_admin, "d0/"))
    assert status["missing"] == [h(by_admin["d0/f0.txt"])]
    v3 = finish(admin, status, by_admin)
    assert v3["number"] == 3 and v3["file_count"] == 8
    assert listing(alice, "alice", ds, 3) == {p: h(d) for p, d in by_admin.items()}


@pytest.mark.parametrize("body, status, words", [
    ({"directories": {"a/": []}}, 400, "'base'"),
    ({"base": {"number": 1, "version_id": "sha256:" + "0" * 64}, "directories": {"d0/": []}, "manifest": []},
     400, "either"),
    ({"base": 1, "directories": {"d0/": []}}, 400, "'base'"),
    ({"base": {"number": "1", "version_id": "@V1"}, "directories": {"d0/": []}}, 400, "'base'"),
    ({"base": {"number": 1, "version_id": "sha256:" + "0" * 64}, "directories": {"d0/": []}}, 409,
     "send the whole manifest"),
    ({"base": {"number": 7, "version_id": "@V1"}, "directories": {"d0/": []}}, 409, "send the whole manifest"),
    ({"base": {"number": 1, "version_id": "@V1"}, "directories": {}}, 400, "'directories'"),
    ({"base": {"number": 1, "version_id": "@V1"}, "directories": ["d0/"]}, 400, "'directories'"),
    ({"base": {"number": 1, "version_id": "@V1"}, "directories": {"../": []}}, 400, "Invalid directory"),
    ({"base": {"number": 1, "version_id": "@V1"}, "directories": {"d0": []}}, 400, "ending in '/'"),
    ({"base": {"number": 1, "version_id": "@V1"}, "directories": {"d0/": {}}}, 400, "must be a list"),
    ({"base": {"number": 1, "version_id": "@V1"}, "directories": {"d0/": [entry("d1/x", b"x")]}}, 400,
     "not directly in"),
    ({"base": {"number": 1, "version_id": "@V1"}, "directories": {"d0/": [entry("d0/x", b"x"), entry("d0/x", b"x")]}},
     400, "twice"),
    ({"base": {"number": 1, "version_id": "@V1"}, "directories": {"": [entry("d1", b"x")]}}, 400,
     "as a file and as a directory"),
    ({"base": {"number": 1, "version_id": "@V1"}, "directories": {"d0/f0.txt/": [entry("d0/f0.txt/x", b"x")]}}, 400,
     "as a file and as a directory"),
    ({"base": {"number": 1, "version_id": "@V1"}, "directories": {"d0/": [{"path": "d0/x", "size": -1, "hash": "x"}]}},
     400, "size"),
])
def test_bad_changes_are_refused_and_change_nothing(alice: User, ds: str, body: dict, status: int,
                                                    words: str) -> None:
    files = {"d0/f0.txt": f"{ds} 0".encode(), "d1/f1.txt": f"{ds} 1".encode()}
    v1 = first_version(alice, ds, files)
    body = json.loads(json.dumps(body).replace('"@V1"', json.dumps(v1["id"])))
    r = alice.api("POST", f"datasets/alice/{ds}/uploads", json=body)
    assert r.status_code == status, r.text
    assert words in r.json()["message"]
    assert listing(alice, "alice", ds, 1) == {p: h(d) for p, d in files.items()}
    assert alice.api("GET", f"datasets/alice/{ds}/versions").json()["items"][0]["number"] == 1


# -- the client -------------------------------------------------------------------------
@pytest.fixture
def cache(tmp_path: Path) -> StatCache:
    c = StatCache(tmp_path / "cache.sqlite")
    yield c
    c.close()


class Sent:
    """Records what each upload start sent: the changed directories, or None for a whole manifest."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.starts: list[set[str] | None] = []
        real = FloydClient.send_manifest

        def spy(client: FloydClient, path: str, manifest: object, fields: dict, base: dict | None = None) -> dict:
            self.starts.append(None if base is None else set(base["directories"]))
            return real(client, path, manifest, fields, base)  # type: ignore[arg-type]

        monkeypatch.setattr(FloydClient, "send_manifest", spy)


def test_the_client_sends_only_the_changed_directories(alice: User, ds: str, tree: Path, cache: StatCache,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    client = FloydClient(alice.platform.url, alice.token)
    write_tree(tree, {"top.txt": b"top", **{f"d{i % 8}/f{i}.txt": f"{ds} {i}".encode() for i in range(40)}})
    sent = Sent(monkeypatch)
    first = upload(client, "alice", ds, tree, "first", cache=cache)
    (tree / "d1" / "f1.txt").write_bytes(f"{ds} changed".encode())
    (tree / "d2" / "f2.txt").unlink()
    for f in (tree / "d3").iterdir():
        f.unlink()
    write_tree(tree, {"new/n.txt": f"{ds} new".encode()})
    second = upload(client, "alice", ds, tree, "second", cache=cache)
    assert sent.starts == [None, {"d1/", "d2/", "d3/", "new/"}]
    assert second.version["number"] == 2 and second.sent_files == 2
    assert second.files == 41 - 1 - 5 + 1 and first.files == 41
    expected = {p.relative_to(tree).as_posix(): "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest()
                for p in tree.rglob("*") if p.is_file()}
    assert listing(alice, "alice", ds, 2) == expected

    # the base deleted: the changed directories are refused (409) and the whole manifest goes
    client.delete_version("alice", ds, 2)
    (tree / "top.txt").write_bytes(f"{ds} top again".encode())
    third = upload(client, "alice", ds, tree, "third", cache=cache)
    assert sent.starts[2:] == [{""}, None]
    assert third.version["number"] == 3 and not third.duplicate
    expected["top.txt"] = "sha256:" + hashlib.sha256(f"{ds} top again".encode()).hexdigest()
    assert listing(alice, "alice", ds, 3) == expected


def test_after_a_duplicate_the_client_sends_the_whole_manifest(alice: User, ds: str, tree: Path,
                                                              cache: StatCache,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A version found again (not made from this tree's files) may hold other file times, so it is
    never a base for changed directories; most of a tree changed goes whole too."""
    client = FloydClient(alice.platform.url, alice.token)
    write_tree(tree, {f"d{i % 4}/f{i}.txt": f"{ds} {i}".encode() for i in range(12)})
    sent = Sent(monkeypatch)
    upload(client, "alice", ds, tree, "v1", cache=cache)
    (tree / "d0" / "f0.txt").write_bytes(f"{ds} changed".encode())
    upload(client, "alice", ds, tree, "v2", cache=cache)
    (tree / "d0" / "f0.txt").write_bytes(f"{ds} 0".encode())  # back to version 1's bytes
    back = upload(client, "alice", ds, tree, "back", cache=cache)
    assert back.duplicate and back.version["number"] == 1
    (tree / "d1" / "f1.txt").write_bytes(f"{ds} changed again".encode())
    upload(client, "alice", ds, tree, "v3", cache=cache)
    for i in range(12):
        (tree / f"d{i % 4}" / f"f{i}.txt").write_bytes(f"{ds} all new {i}".encode())
    most = upload(client, "alice", ds, tree, "most", cache=cache)
    assert sent.starts == [None, {"d0/"}, {"d0/"}, None, None]
    assert most.version["number"] == 4 and most.sent_files == 12
