"""Versions that store only what changed read back whole through the real hub, proxy and bridge:
a chain of 30 one-file uploads (listings with directory sums, downloads, diffs), deletes of a
base and of a middle version, and a job mounting a version its commit has just answered."""

from __future__ import annotations

import hashlib
import io
import tarfile
import uuid
from pathlib import Path

from floyd.client import FloydClient
from floyd.client.statcache import StatCache
from floyd.client.transfer import upload
from tests.support.jobs import submit, wait_state
from tests.support.platform import Platform, User, write_tree


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def expected_top(files: dict[str, bytes]) -> list[tuple[str, str, int, int]]:
    out: dict[str, tuple[str, str, int, int]] = {}
    for p in sorted(files):
        head, sep, _ = p.partition("/")
        if not sep:
            out[p] = (p, "file", len(files[p]), 1)
        else:
            _, _, size, count = out.get(head + "/", (head, "directory", 0, 0))
            out[head + "/"] = (head, "directory", size + len(files[p]), count + 1)
    return [out[k] for k in sorted(out)]


def check(client: FloydClient, ds: str, number: int, files: dict[str, bytes]) -> None:
    listed = [f for page in client.file_pages("alice", ds, number, recursive=True, limit=7) for f in page["files"]]
    assert [(f["path"], f["hash"], f["size"]) for f in listed] == [(p, sha(files[p]), len(files[p])) for p in sorted(files)]
    top = client.files("alice", ds, number)["files"]
    assert [(f["path"], f["type"], f["size"], f.get("file_count", 1)) for f in top] == expected_top(files)
    with tarfile.open(fileobj=io.BytesIO(client.download("alice", ds, number).content)) as tar:
        got = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]  # files only
    assert got == {f"{ds}-{number}/{p}": b for p, b in files.items()}


def test_chain_of_30_one_file_changes(alice: User, tree: Path, tmp_path: Path) -> None:
    ds = "chain-" + uuid.uuid4().hex[:8]
    assert alice.api("POST", "datasets", json={"name": ds}).status_code == 201
    client = FloydClient(alice.platform.url, alice.token)
    cache = StatCache(tmp_path / "cache.sqlite")
    salt = uuid.uuid4().hex.encode()  # bytes no other test stores (per-user dedup)
    files = {f"d{i % 4}/{'sub/' if i % 3 == 0 else ''}f{i}.txt": salt + b"%d" % i for i in range(40)}
    write_tree(tree, files)
    history = []
    for step in range(30):
        if step:
            if step % 3 == 0:
                gone = sorted(files)[step % len(files)]
                (tree / gone).unlink()
                del files[gone]
            else:
                path = f"d{step % 5}/{'new' if step % 3 == 1 else 'f'}{step}.txt"
                files[path] = salt + b"step %d" % step
                write_tree(tree, {path: files[path]})
        result = upload(client, "alice", ds, tree, f"step {step}", cache=cache)
        assert result.version["number"] == step + 1 and result.sent_files <= (40 if step == 0 else 1)
        history.append(dict(files))
    for number, want in enumerate(history, start=1):
        check(client, ds, number, want)
        if number > 1:
            d = client.diff("alice", ds, number - 1, number)
            before = history[number - 2]
            assert d["added"] == sorted(want.keys() - before.keys())
            assert d["removed"] == sorted(before.keys() - want.keys())
            assert d["changed"] == sorted(p for p in want.keys() & before.keys() if want[p] != before[p])
    d = client.diff("alice", ds, 1, 30)
    assert d["summary"]["added"] == len(history[29].keys() - history[0].keys())

    # Deleting the first version (the others' base) and a middle one leaves the rest whole.
    for gone in (1, 15):
        client.delete_version("alice", ds, gone)
    for number, want in enumerate(history, start=1):
        if number in (5, 16, 29, 30):
            check(client, ds, number, want)
    assert [v["number"] for v in client.versions("alice", ds)] == [n for n in range(1, 31) if n not in (1, 15)]


COUNT = b"""
import os
files = [os.path.join(d, f) for d, _, fs in os.walk("/floyd/input/data") for f in fs]
print("files:", len(files), sum(os.path.getsize(f) for f in files), flush=True)
"""


def test_job_mounting_a_just_committed_version_sees_every_file(platform: Platform, workspace_image: str,
                                                                tmp_path: Path) -> None:
    user = platform.user("fresh")
    user.api("POST", "datasets", json={"name": "fresh"})
    salt = uuid.uuid4().hex.encode()
    files = {f"p{i % 20}/f{i}.txt": salt + b"%d" % i for i in range(3000)}
    client = FloydClient(platform.url, user.token)
    upload(client, "fresh", "fresh", write_tree(tmp_path / "fresh", files))
    files["p0/late.txt"] = salt + b"late"
    second = upload(client, "fresh", "fresh", write_tree(tmp_path / "fresh", {"p0/late.txt": files["p0/late.txt"]}))
    # Submitted at once: the version's tree may still be building when the job is prepared.
    job = submit(user, "reader", {"count.py": COUNT}, tmp_path, command="python count.py",
                 inputs=[{"source": f"fresh:{second.version['number']}", "mount": "data"}])["job"]
    wait_state(user, job["id"], {"succeeded"})
    log = user.api("GET", f"jobs/{job['id']}/logs").text
    assert f"files: {len(files)} {sum(len(b) for b in files.values())}" in log, log
