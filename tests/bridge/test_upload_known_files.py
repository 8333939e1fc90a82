"""An upload is compared with the dataset's stored version: blobs that version holds are not asked
for again, also when the uploader is a writer who did not send them (an admin on a user's dataset),
and the commit accepts them."""

from __future__ import annotations

import hashlib
import uuid

from tests.support.platform import User


def entry(path: str, data: bytes) -> dict:
    return {"path": path, "size": len(data), "hash": "sha256:" + hashlib.sha256(data).hexdigest(), "mtime": 1.0}


def pack(files: dict[str, bytes]) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for data in files.values():
            info = tarfile.TarInfo(hashlib.sha256(data).hexdigest())
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def upload(user: User, owner: str, ds: str, files: dict[str, bytes], message: str) -> tuple[list[str], dict]:
    """Start, send what is missing, commit: the hashes asked for and the committed version."""
    start = user.api("POST", f"datasets/{owner}/{ds}/uploads",
                     json={"manifest": [entry(p, d) for p, d in sorted(files.items())], "message": message})
    assert start.status_code == 201, start.text
    status = start.json()
    wanted = {f"sha256:{hashlib.sha256(d).hexdigest()}": d for d in files.values()}
    missing = {h: wanted[h] for h in status["missing"]}
    if missing:
        sent = user.api("POST", f"uploads/{status['id']}/pack", data=pack(missing),
                        headers={"Content-Type": "application/x-tar"})
        assert sent.status_code in (200, 201, 204), sent.text
    commit = user.api("POST", f"uploads/{status['id']}/commit")
    assert commit.status_code == 201, commit.text
    return status["missing"], commit.json()


def test_a_writer_is_asked_only_for_what_the_stored_version_lacks(alice: User, admin: User) -> None:
    ds = f"known-{uuid.uuid4().hex[:8]}"
    assert alice.api("POST", "datasets", json={"name": ds}).status_code == 201
    files = {f"d{i % 4}/f{i}.txt": f"{ds} file {i}".encode() for i in range(40)}
    first_missing, v1 = upload(alice, "alice", ds, files, "v1")
    assert len(first_missing) == 40 and v1["number"] == 1

    # The admin changes one file: only that blob is asked for, the 39 others come from version 1.
    changed = {**files, "d0/f0.txt": f"{ds} changed by the admin".encode()}
    missing, v2 = upload(admin, "alice", ds, changed, "v2")
    assert missing == [f"sha256:{hashlib.sha256(changed['d0/f0.txt']).hexdigest()}"]
    assert v2["number"] == 2 and v2["file_count"] == 40

    # Most files new (the version is stored whole, not as a delta): the unchanged ones are still
    # the stored version's, and the commit takes them.
    mostly_new = {p: (d if i < 2 else f"{ds} new {i}".encode()) for i, (p, d) in enumerate(sorted(files.items()))}
    missing, v3 = upload(admin, "alice", ds, mostly_new, "v3")
    assert len(missing) == 38 and v3["number"] == 3
    listing = alice.api("GET", f"datasets/alice/{ds}/versions/3/files", params={"recursive": "true"})
    assert listing.status_code == 200, listing.text
