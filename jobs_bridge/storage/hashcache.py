"""Hashes of job outputs, taken once when a job ends, so that registering a model (or making a
dataset) from the output later costs a ``stat`` per file instead of a read of every byte.

The cache lives in the bridge's memory, keyed by (device, inode, size, mtime_ns), so nothing a job
or a workspace can write (unlike an extended attribute on the file) can plant a hash. The ctime
is left out on purpose: hardlinking the file into the blob store (and materializing a version)
changes it, and the content cannot change behind the key: once a job has ended the bridge makes
its output read-only, and no container mounts it writable again (workspaces see /floyd/jobs
read-only). After a bridge restart the first registration hashes again: slower, never wrong.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import OrderedDict
from pathlib import Path

from jobs_bridge.storage.blobs import hash_file

Key = tuple[int, int, int, int]


def stat_key(st: os.stat_result) -> Key:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class OutputHashes:
    """A bounded map of file identity → sha256, and one background thread that fills it for a
    finished job's output (``submit``); ``wait`` lets a registration wait for that work instead
    of repeating it. The thread is a daemon: hashing a large output never holds up a shutdown."""

    def __init__(self, max_entries: int = 500_000) -> None:
        self.max_entries = max_entries
        self._known: OrderedDict[Key, str] = OrderedDict()
        self._lock = threading.Lock()
        self._queue: queue.Queue[Path] = queue.Queue()
        self._pending: dict[str, threading.Event] = {}
        self._worker: threading.Thread | None = None

    def lookup(self, st: os.stat_result) -> str | None:
        with self._lock:
            return self._known.get(stat_key(st))

    def remember(self, st: os.stat_result, digest: str) -> None:
        with self._lock:
            self._known[stat_key(st)] = digest
            self._known.move_to_end(stat_key(st))
            while len(self._known) > self.max_entries:
                self._known.popitem(last=False)

    def digest(self, path: Path) -> str:
        """The file's sha256 (hex), from the cache when the file is unchanged since it was hashed."""
        st = os.stat(path)
        hit = self.lookup(st)
        if hit is not None:
            return hit
        value = hash_file(path)
        if stat_key(os.stat(path)) == stat_key(st):  # unchanged while it was read
            self.remember(st, value)
        return value

    def submit(self, top: Path) -> None:
        """Hash every regular file under ``top`` in the background (a job's output, once it ended)."""
        key = str(top)
        with self._lock:
            if key in self._pending:
                return
            self._pending[key] = threading.Event()
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="output-hash", daemon=True)
                self._worker.start()
        self._queue.put(top)

    def wait(self, top: Path, timeout: float = 3600) -> None:
        """Let a background hashing of ``top`` (or of a tree around it) finish first."""
        with self._lock:
            pending = [e for k, e in self._pending.items() if str(top).startswith(k) or k.startswith(str(top))]
        for done in pending:
            done.wait(timeout)  # a failure there only means the caller hashes itself

    def _run(self) -> None:
        while True:
            self._walk(self._queue.get())

    def _walk(self, top: Path) -> None:
        try:
            for dirpath, _dirs, files in os.walk(top):
                for name in files:
                    path = Path(dirpath) / name
                    if not path.is_symlink() and path.is_file():
                        self.digest(path)
        except OSError:
            pass  # a vanished output: whoever registers it will say so
        finally:
            with self._lock:
                done = self._pending.pop(str(top), None)
            if done is not None:
                done.set()
