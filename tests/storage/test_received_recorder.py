"""Received blobs are recorded by a thread of their own (datasets/owners.py); an upload request
waits for what was queued before it, before it opens a session of its own. Found by CI's load
run: a start that had written its upload row (SQLite's one write lock, held to its commit)
waited for the recorder inside its transaction, the recorder waited for the lock, and after the
busy timeout another upload's blobs went unrecorded (its commit: "1 file(s) … not sent yet")."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

from sqlalchemy import event

from jobs_bridge.auth.identity import Caller
from jobs_bridge.datasets import owners
from jobs_bridge.datasets.uploads import UploadManager
from tests.support.storage import datasets_on_disk


def _uploads(tmp_path: Path) -> UploadManager:
    return UploadManager(datasets=datasets_on_disk(tmp_path)[2])


def test_a_start_waits_for_queued_recording_before_it_writes(tmp_path: Path) -> None:
    uploads = _uploads(tmp_path)
    bob = Caller(name="bob", admin=False)
    uploads.datasets.create(bob, "d")
    gate = threading.Event()
    uploads.received._writer.submit(gate.wait)  # the recorder busy with an earlier pack
    alices = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(3)]
    uploads.record_received("alice", alices)  # queued behind it: another user's pack
    answered: list[tuple[int, dict]] = []
    manifest = [{"path": "a.txt", "size": 1, "hash": "sha256:" + hashlib.sha256(b"a").hexdigest()}]
    started = threading.Thread(target=lambda: answered.append(uploads.start(bob, "bob", "d", manifest)))
    started.start()
    time.sleep(0.3)
    assert not answered  # it waits for what was queued before it…
    gate.set()
    started.join(20)
    assert answered and answered[0][0] == 201  # …and then answers, well within the busy timeout
    with uploads.datasets.sessions() as s:
        assert owners.owned(s, "alice", alices) == set(alices)  # nothing was given up


def test_what_is_recorded_while_a_write_runs_goes_into_one_transaction(tmp_path: Path) -> None:
    """A transaction per pack cost as much in its commit as in its rows and let the recorder fall
    behind a 100,000-file upload; packs recorded meanwhile are written together."""
    uploads = _uploads(tmp_path)
    engine = uploads.datasets.sessions.kw["bind"]
    commits: list[int] = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    gate = threading.Event()
    uploads.received._writer.submit(gate.wait)  # busy with an earlier pack
    packs = {owner: [hashlib.sha256(f"{owner}{i}".encode()).hexdigest() for i in range(50)] for owner in ("ann", "ben")}
    for i in range(0, 50, 10):
        for owner, hashes in packs.items():
            uploads.record_received(owner, hashes[i:i + 10])
    gate.set()
    uploads.received.wait()
    assert len(commits) == 1
    with uploads.datasets.sessions() as s:
        for owner, hashes in packs.items():
            assert owners.owned(s, owner, hashes) == set(hashes)
        assert owners.owned(s, "ann", packs["ben"]) == set()  # each owner's rows, no other's
