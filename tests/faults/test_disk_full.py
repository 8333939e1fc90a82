"""The storage disk fills up: during an upload, during a commit, and under a job writing its
output. FLOYD_ROOT (store, SQLite databases, job directories) is a 64 MiB ext4 filesystem the
test fills with a file of its own; deleting that file is "the administrator freed space".

Promised (docs/admin.md, "Failure modes"): a 507 with a message saying the storage is full,
never a 500; no half-visible version, partial blob or staging tree; a job that hit the full disk
ends `failed` with a reason saying so and its log as far as it could be kept; and once space
returns the same upload resumes and a new job succeeds.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest
import requests

from tests.support.disk import SmallDisk
from tests.support.jobs import submit, wait_state
from tests.support.platform import TEST_BRIDGE_CONFIG, Platform, User

MiB = 1 << 20
TIMEOUT = 60  # no request may hang longer than this, full disk or not


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmallDisk]:
    base = tmp_path_factory.mktemp("small-disk")
    d = SmallDisk(base / "root.img", base / "platform" / "var").open()
    try:
        yield d
    finally:
        d.close()


@pytest.fixture(scope="module")
def small(disk: SmallDisk) -> Iterator[Platform]:
    """A platform whose whole FLOYD_ROOT is the small disk."""
    p = Platform.create(disk.mountpoint.parent, bridge_config=TEST_BRIDGE_CONFIG)
    try:
        p.start()
        yield p
    finally:
        p.stop()
        remove_containers(p)


def remove_containers(p: Platform) -> None:
    try:
        client = docker.from_env(timeout=30)
    except docker.errors.DockerException:
        return
    for c in client.containers.list(all=True, filters={"label": f"org.floyd.instance={p.instance}"}):
        c.remove(force=True)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def pack(blobs: list[bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for b in blobs:
            info = tarfile.TarInfo(hashlib.sha256(b).hexdigest())
            info.size = len(b)
            tar.addfile(info, io.BytesIO(b))
    return buf.getvalue()


def assert_storage_full(r: requests.Response) -> None:
    assert r.status_code == 507, (r.status_code, r.text)
    body = r.json()
    assert body["status"] == 507 and "storage is full" in body["message"], body


def assert_nothing_half_done(root: Path, user: User, dataset: str, blobs: list[bytes]) -> None:
    """No version, no staging tree, no temporary blob; every stored blob is whole."""
    assert user.api("GET", f"datasets/{user.name}/{dataset}/versions", timeout=TIMEOUT).json()["items"] == []
    ds_dir = root / "datasets" / user.name / dataset
    assert not ds_dir.exists() or os.listdir(ds_dir) == []
    assert not list((root / "tmp").glob("blob-*"))
    by_hex = {hashlib.sha256(b).hexdigest(): b for b in blobs}
    for stored in (root / "blobs").rglob("*"):
        if stored.is_file() and stored.name in by_hex:
            assert stored.read_bytes() == by_hex[stored.name], f"partial blob {stored} is visible"


def test_upload_when_the_disk_fills(small: Platform, disk: SmallDisk) -> None:
    alice = small.user("alice")
    assert alice.api("POST", "datasets", json={"name": "big"}).status_code == 201
    large = os.urandom(16 * MiB)
    smalls = [os.urandom(MiB // 2) for _ in range(12)]
    manifest = [{"path": "large.bin", "size": len(large), "hash": sha(large)}]
    manifest += [{"path": f"small/{i}.bin", "size": len(b), "hash": sha(b)} for i, b in enumerate(smalls)]
    start = alice.api("POST", "datasets/alice/big/uploads", json={"manifest": manifest}, timeout=TIMEOUT)
    assert start.status_code == 201, start.text
    up = start.json()["id"]
    blob_url = f"uploads/{up}/blobs/{sha(large)}"

    filler = disk.fill(leave=4 * MiB)
    r = alice.api("PUT", blob_url, data=large, headers={"Upload-Offset": "0"}, timeout=TIMEOUT)
    assert_storage_full(r)
    assert_storage_full(alice.api("POST", f"uploads/{up}/pack", data=pack(smalls), timeout=TIMEOUT))
    assert_nothing_half_done(small.root, alice, "big", [large, *smalls])
    held = int(alice.api("HEAD", blob_url, timeout=TIMEOUT).headers["Upload-Offset"])
    assert held < len(large)
    part = small.root / "tmp" / "uploads" / up / f"{sha(large)[7:]}.part"
    assert part.stat().st_size == held and part.read_bytes() == large[:held]  # whole chunks only
    commit = alice.api("POST", f"uploads/{up}/commit", timeout=TIMEOUT)
    assert commit.status_code == 409, commit.text

    filler.unlink()  # space returns: the same upload resumes where it stopped
    again = alice.api("POST", "datasets/alice/big/uploads", json={"manifest": manifest}, timeout=TIMEOUT).json()
    assert again["id"] == up and again["resumed"] and again["partial"].get(sha(large)) == held
    r = alice.api("PUT", blob_url, data=large[held:], headers={"Upload-Offset": str(held)}, timeout=TIMEOUT)
    assert r.status_code == 200 and r.json()["complete"], r.text
    missing = set(again["missing"])
    r = alice.api("POST", f"uploads/{up}/pack", data=pack([b for b in smalls if sha(b) in missing]), timeout=TIMEOUT)
    assert r.status_code == 200, r.text

    # Full again just before the commit: no version appears, and no half-built tree stays.
    filler = disk.fill(leave=0)
    assert_storage_full(alice.api("POST", f"uploads/{up}/commit", timeout=TIMEOUT))
    assert_nothing_half_done(small.root, alice, "big", [large, *smalls])
    filler.unlink()
    commit = alice.api("POST", f"uploads/{up}/commit", timeout=TIMEOUT)
    assert commit.status_code == 201, commit.text
    documented = small.api("GET", "openapi.json").json()["paths"]
    for path, method in [("/api/v1/uploads/{upload_id}/blobs/{hash}", "put"), ("/api/v1/uploads/{upload_id}/pack", "post"),
                         ("/api/v1/uploads/{upload_id}/commit", "post")]:
        assert "507" in documented[path][method]["responses"], (path, method)
    got = alice.api("GET", "datasets/alice/big/versions/1/download", params={"path": "large.bin"}, timeout=TIMEOUT)
    assert got.status_code == 200 and got.content == large


WRITER = {"fill.py": b"""import os, sys, time
print("writing output", flush=True)
try:
    with open(os.path.join(os.environ["FLOYD_OUTPUT"], "big.bin"), "wb") as f:
        for i in range(1000):
            f.write(os.urandom(1 << 20))
            f.flush()
            print(f"wrote {i + 1} MiB", flush=True)
except OSError as exc:
    print(f"write failed: {exc}", flush=True)
    time.sleep(8)  # the test takes the last free bytes meanwhile
    sys.exit(1)
"""}


def test_job_output_fills_the_disk(small: Platform, disk: SmallDisk, workspace_image: str, tmp_path: Path,
                                   docker_client: docker.DockerClient) -> None:
    bob = small.user("bob")
    job = submit(bob, "writer", WRITER, tmp_path, command="python fill.py")["job"]
    wait_state(bob, job["id"], {"running"}, timeout=TIMEOUT)
    filler = disk.fill(leave=8 * MiB)
    rest = None
    try:
        wait_for(lambda: disk.free < MiB, "the job to fill the disk")
        rest = disk.fill(leave=0, name="rest")  # nothing left, not even for SQLite's journal
        wait_exited(docker_client, job["id"])
        # The job ended on a full disk: the bridge answers (its end is written once it can be).
        r = bob.api("GET", f"jobs/{job['id']}", timeout=TIMEOUT)
        assert r.status_code == 200 and r.json()["state"] in ("running", "failed"), r.text
        r = bob.api("GET", "jobs", timeout=TIMEOUT)
        assert r.status_code == 200, r.text
    finally:
        filler.unlink()
        if rest is not None:
            rest.unlink()
    done = wait_state(bob, job["id"], {"failed", "succeeded", "lost"}, timeout=TIMEOUT)
    assert done["state"] == "failed" and "disk was full" in done["reason"], done
    log = bob.api("GET", f"jobs/{job['id']}/logs", timeout=TIMEOUT).text
    assert "writing output" in log and "wrote 1 MiB" in log, log
    assert "write failed: [Errno 28] No space left on device" in log, log  # held until there was room
    assert f"[floyd] job failed: {done['reason']}" in log
    # Space is back: the platform goes on.
    again = submit(bob, "writer", {"ok.py": b"print('fine')\n"}, tmp_path, command="python ok.py")["job"]
    assert wait_state(bob, again["id"], {"succeeded", "failed"}, timeout=TIMEOUT * 2)["state"] == "succeeded"
    assert "fine" in bob.api("GET", f"jobs/{again['id']}/logs", timeout=TIMEOUT).text


def wait_for(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(0.2)


def wait_exited(client: docker.DockerClient, job: str, timeout: float = TIMEOUT) -> None:
    """Until the job's own process has ended: its container exited (or the bridge removed it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = client.containers.list(all=True, filters={"label": f"org.floyd.job={job}"})
        if not found or found[0].status == "exited":
            return
        time.sleep(0.3)
    raise AssertionError(f"the container of job {job} did not exit in {timeout} s")
