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
