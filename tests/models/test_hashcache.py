"""The output hash cache: a file hashed once (when its job ended) is not read again, not even
after it was hardlinked into the store; a change of its size or mtime makes it hashed afresh."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from jobs_bridge.storage import hashcache
from jobs_bridge.storage.hashcache import OutputHashes


def test_hashed_once_in_the_background_then_from_the_cache(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "out" / "sub").mkdir(parents=True)
    files = {tmp_path / "out" / "a.bin": os.urandom(1000), tmp_path / "out" / "sub" / "b.bin": os.urandom(10)}
    for path, data in files.items():
        path.write_bytes(data)
    hashes = OutputHashes()
    hashes.submit(tmp_path / "out")
    hashes.wait(tmp_path / "out" / "sub")
    reads: list[Path] = []
    real = hashcache.hash_file
    monkeypatch.setattr(hashcache, "hash_file", lambda p: reads.append(p) or real(p))
    for path, data in files.items():
        assert hashes.digest(path) == hashlib.sha256(data).hexdigest()
    assert reads == []


def test_a_changed_file_is_hashed_again(tmp_path: Path) -> None:
    path = tmp_path / "w.bin"
    path.write_bytes(b"first")
    hashes = OutputHashes()
    assert hashes.digest(path) == hashlib.sha256(b"first").hexdigest()
    st = os.stat(path)
    os.link(path, tmp_path / "linked")  # what the blob store does: the ctime moves, the hash holds
    assert hashes.lookup(os.stat(path)) == hashlib.sha256(b"first").hexdigest()
    path.write_bytes(b"other")  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert hashes.digest(path) == hashlib.sha256(b"other").hexdigest()


def test_bounded(tmp_path: Path) -> None:
    hashes = OutputHashes(max_entries=2)
    for i in range(5):
        (tmp_path / f"{i}").write_bytes(str(i).encode())
        hashes.digest(tmp_path / f"{i}")
    assert len(hashes._known) == 2
