"""A corpus of bad input: every case gets a 4xx with a message, and nothing stored changes."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
import requests

from floyd.client import FloydClient
from floyd.client.transfer import upload
from tests.support.platform import Platform, User, built, write_tree


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every stored file under blobs/ and datasets/ with its size and inode."""
    out = {}
    for sub in ("blobs", "datasets"):
        for dirpath, _dirs, files in os.walk(root / sub):
            for f in files:
                p = Path(dirpath) / f
                st = p.stat()
                out[str(p.relative_to(root))] = (st.st_size, st.st_ino)
    return out


@pytest.fixture(scope="module")
def stocked(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> User:
    """alice/corpus:1 exists before any bad input is thrown at the bridge."""
    alice = platform.user("alice")
    alice.api("POST", "datasets", json={"name": "corpus"})
    tree = write_tree(tmp_path_factory.mktemp("corpus"), {"keep/me.txt": b"precious", "x.bin": os.urandom(2048)})
    upload(FloydClient(platform.url, alice.token), "alice", "corpus", tree)
    # The tree is built after the commit answers; the tests compare snapshots of the storage root.
    built(platform.root / "datasets" / "alice" / "corpus" / "1" / "x.bin")
    return alice


BAD_NAMES = ["", "UPPER", "-lead", ".hidden", "a/b", "..", "a..b", "x" * 65, "spa ce", "nul\x00", "é", 5, None]

BAD_ENTRIES = [
    ({"path": "../escape", "size": 1, "hash": sha(b"a")}, "'..'"),
    ({"path": "/etc/passwd", "size": 1, "hash": sha(b"a")}, "absolute"),
    ({"path": "a/../../b", "size": 1, "hash": sha(b"a")}, "'..'"),
    ({"path": "nul\x00byte", "size": 1, "hash": sha(b"a")}, "control"),
    ({"path": "new\nline", "size": 1, "hash": sha(b"a")}, "control"),
    ({"path": "back\\slash", "size": 1, "hash": sha(b"a")}, "separator"),
    ({"path": "a//b", "size": 1, "hash": sha(b"a")}, "empty"),
    ({"path": "./a", "size": 1, "hash": sha(b"a")}, "'.'"),
    ({"path": "x/" * 600, "size": 1, "hash": sha(b"a")}, "longer"),
    ({"path": "c" * 300, "size": 1, "hash": sha(b"a")}, "longer"),
    ({"path": "", "size": 1, "hash": sha(b"a")}, "non-empty"),
    ({"path": "ok", "size": -1, "hash": sha(b"a")}, "non-negative"),
    ({"path": "ok", "size": "1", "hash": sha(b"a")}, "non-negative"),
    ({"path": "ok", "size": 1, "hash": "md5:abc"}, "sha256:"),
    ({"path": "ok", "size": 1, "hash": "sha256:" + "G" * 64}, "sha256:"),
    ({"path": "ok", "size": 1}, "nothing else"),
    ({"path": "ok", "size": 1, "hash": sha(b"a"), "extra": 1}, "nothing else"),
    ({"path": "ok", "size": 1, "hash": sha(b"a"), "mtime": -1}, "'mtime'"),
    ("not an object", "nothing else"),
]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_bad_dataset_and_project_names(platform: Platform, stocked: User, name: object) -> None:
    before = snapshot(platform.root)
    for resource in ("datasets", "projects"):
        r = stocked.api("POST", resource, json={"name": name})
        assert r.status_code == 400, (resource, name, r.text)
        assert "name" in r.json()["message"].lower()
    assert snapshot(platform.root) == before


@pytest.mark.parametrize("entry,words", BAD_ENTRIES, ids=lambda v: repr(v)[:40])
def test_bad_manifest_entries(platform: Platform, stocked: User, entry: object, words: str) -> None:
    before = snapshot(platform.root)
    r = stocked.api("POST", "datasets/alice/corpus/uploads", json={"manifest": [entry]})
    assert r.status_code == 400, r.text
    assert words in r.json()["message"]
    assert snapshot(platform.root) == before


@pytest.mark.parametrize("body,words", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"manifest": "x"}', "list"),
    (b'{"manifest": [{"path": "a", "size": 1, "hash": "%s"}, {"path": "a", "size": 1, "hash": "%s"}]}'
     % (sha(b"a").encode(), sha(b"a").encode()), "twice"),
    (b'{"manifest": [{"path": "a", "size": 1, "hash": "%s"}, {"path": "a/b", "size": 1, "hash": "%s"}]}'
     % (sha(b"a").encode(), sha(b"a").encode()), "as a file and as a directory"),
    (b'{"manifest": [], "message": 7}', "message"),
])
def test_bad_upload_bodies(platform: Platform, stocked: User, body: bytes, words: str) -> None:
    r = stocked.api("POST", "datasets/alice/corpus/uploads", data=body)
    assert r.status_code == 400 and words in r.json()["message"], r.text


def _start(user: User, files: dict[str, bytes]) -> dict:
    manifest = [{"path": p, "size": len(d), "hash": sha(d)} for p, d in files.items()]
    r = user.api("POST", "datasets/alice/corpus/uploads", json={"manifest": manifest, "message": "bad"})
    assert r.status_code == 201, r.text
    return r.json()


def _tar(members: list[tuple[str, bytes]], keep: int = 0) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return raw[:keep] if keep else raw


def test_lying_blob_in_pack_is_refused(platform: Platform, stocked: User) -> None:
    real = b"the real bytes " + os.urandom(8)
    up = _start(stocked, {"lie.txt": real})
    before = snapshot(platform.root)
    name = sha(real).split(":")[1]
    fake = b"other bytes, same length!"[: len(real)].ljust(len(real), b"!")
    r = stocked.api("POST", f"uploads/{up['id']}/pack", data=_tar([(name, fake)]))
    assert r.status_code == 400 and "hashes to" in r.json()["message"]
    assert snapshot(platform.root) == before
    r = stocked.api("POST", f"uploads/{up['id']}/commit")
    assert r.status_code == 409 and "not been sent" in r.json()["message"]
    assert [v["number"] for v in stocked.api("GET", "datasets/alice/corpus/versions").json()["items"]] == [1]


def test_pack_member_not_in_manifest_or_wrong_size(platform: Platform, stocked: User) -> None:
    data = os.urandom(64)
    up = _start(stocked, {"m.bin": data})
    other = os.urandom(64)
    r = stocked.api("POST", f"uploads/{up['id']}/pack", data=_tar([(hashlib.sha256(other).hexdigest(), other)]))
    assert r.status_code == 400 and "not a blob of this upload" in r.json()["message"]
    r = stocked.api("POST", f"uploads/{up['id']}/pack", data=_tar([(hashlib.sha256(data).hexdigest(), data + b"x")]))
    assert r.status_code == 400 and "manifest says" in r.json()["message"]
    r = stocked.api("POST", f"uploads/{up['id']}/pack", data=b"this is not a tar archive at all" * 20)
    assert r.status_code == 400


def test_truncated_pack(platform: Platform, stocked: User) -> None:
    data = os.urandom(5000)
    up = _start(stocked, {"t.bin": data})
    before = snapshot(platform.root)
    r = stocked.api("POST", f"uploads/{up['id']}/pack", data=_tar([(hashlib.sha256(data).hexdigest(), data)], 512 + 2000))
    assert r.status_code == 400 and "ended in the middle" in r.json()["message"]
    assert snapshot(platform.root) == before


def test_blob_upload_too_long_wrong_offset_and_lying(platform: Platform, stocked: User) -> None:
    data = os.urandom(1000)
    up = _start(stocked, {"b.bin": data})
    h = sha(data)
    r = stocked.api("PUT", f"uploads/{up['id']}/blobs/{h}", data=data + b"extra", headers={"Upload-Offset": "0"})
    assert r.status_code == 400 and "more was sent" in r.json()["message"]
    r = stocked.api("PUT", f"uploads/{up['id']}/blobs/{h}", data=data, headers={"Upload-Offset": "500"})
    assert r.status_code == 409 and "resume from" in r.json()["message"]
    r = stocked.api("PUT", f"uploads/{up['id']}/blobs/{h}", data=data, headers={"Upload-Offset": "many"})
    assert r.status_code == 400
    r = stocked.api("PUT", f"uploads/{up['id']}/blobs/{h}", data=os.urandom(1000), headers={"Upload-Offset": "0"})
    assert r.status_code == 400 and "hashes to" in r.json()["message"]
    r = stocked.api("PUT", f"uploads/{up['id']}/blobs/sha256:{'0' * 64}", data=b"x")
    # a well-formed hash the manifest does not list names no blob of this upload: 404, as any unknown resource
    assert r.status_code == 404 and "not in this upload" in r.json()["message"]
    r = stocked.api("PUT", f"uploads/{up['id']}/blobs/nonsense", data=b"x")
    assert r.status_code == 400


def test_bad_references(platform: Platform, stocked: User) -> None:
    cases = [
        ("GET", "datasets/alice/corpus/versions/abc", 400),
        ("GET", "datasets/alice/corpus/versions/99", 404),
        ("GET", "datasets/alice/corpus/versions/1/files?path=../../etc", 400),
        ("GET", "datasets/alice/corpus/versions/1/download?path=/etc/passwd", 400),
        ("GET", "datasets/alice/corpus/versions/1/download?path=keep/%00", 400),
        ("GET", "datasets/alice/corpus/diff?from=1", 400),
        ("GET", "datasets/alice/NOPE", 400),
        ("GET", "uploads/../../etc", 404),
        ("GET", "uploads/zzzz", 404),
        ("PATCH", "datasets/alice/corpus", 400),
        ("DELETE", "datasets/alice/corpus", 409),
    ]
    before = snapshot(platform.root)
    for method, path, status in cases:
        kwargs = {"json": {"owner": "bob"}} if method == "PATCH" else {}
        r = stocked.api(method, path, **kwargs)
        assert r.status_code == status, (method, path, r.status_code, r.text)
        assert r.json()["message"]
    assert snapshot(platform.root) == before
    assert stocked.api("GET", "datasets/alice/corpus/versions/1/download", params={"path": "keep/me.txt"}).content == b"precious"


def test_oversized_json_and_unknown_routes(platform: Platform, stocked: User) -> None:
    r = stocked.api("GET", "no/such/route")
    assert r.status_code == 404 and r.json()["status"] == 404
    r = requests.post(platform.api_url + "datasets", data=b"{}", headers={"Authorization": "token nonsense"})
    assert r.status_code == 401 and "floyd login" in r.json()["message"]


def test_symlink_escaping_the_tree_is_refused(platform: Platform, stocked: User) -> None:
    """A symlink planted in a dataset directory cannot make the bridge read outside the tree."""
    from jobs_bridge.errors import BadRequest
    from jobs_bridge.storage.paths import clean_relpath, contained

    root = platform.root / "datasets" / "alice" / "corpus"
    link_dir = platform.workdir / "linktest"
    link_dir.mkdir(exist_ok=True)
    (link_dir / "out").unlink(missing_ok=True)
    (link_dir / "out").symlink_to("/etc")
    with pytest.raises(BadRequest):
        contained(link_dir, clean_relpath("out/passwd"))
    built(root / "1" / "keep" / "me.txt")
    assert contained(root, "1/keep/me.txt").read_bytes() == b"precious"


def test_refused_large_put_still_answers_json(platform: Platform, stocked: User) -> None:
    """Refusing a blob before reading its body must still reach the client as JSON through the proxy."""
    data = os.urandom(1000)
    up = _start(stocked, {"early.bin": data})
    big = b"\0" * (24 << 20)
    r = stocked.api("PUT", f"uploads/{up['id']}/blobs/{sha(data)}", data=big, headers={"Upload-Offset": "7"})
    assert r.status_code == 409 and "resume from 0" in r.json()["message"]
    r = requests.put(platform.api_url + f"uploads/{up['id']}/blobs/{sha(data)}", data=big, timeout=60)
    assert r.status_code == 401 and r.json()["status"] == 401
