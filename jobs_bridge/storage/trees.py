"""Version trees built after the commit has answered, and waited for by whoever mounts one.

A version's tree (hardlinks into the blob store, what jobs and workspaces bind-mount read-only)
costs a link per file: 1.65 s for 100,000 files, far more than what a one-file change writes.
So a commit answers once its rows are in the database and hands the tree to one worker thread
here; anything about to mount a path calls ``ready`` first, which waits for a pending tree or
builds a failed one again. A crash before the tree is built leaves a committed version without
its directory, which start-up recovery rebuilds (``DatasetManager.recover``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from jobs_bridge.memtrim import release_memory
from jobs_bridge.storage.blobs import BlobStore
from jobs_bridge.storage.manifest import Entry
from jobs_bridge.storage.materialize import materialize, remove_tree

log = logging.getLogger("jobs_bridge.trees")


def build(store: BlobStore, entries: Iterable[Entry], target: Path) -> None:
    """Materialize into a staging directory beside ``target`` and rename it into place, so a
    tree is either whole or absent (recovery removes ``.staging-*`` leftovers)."""
    store.settle()  # the blobs a commit just received may still be in journals (storage/journal.py)
    staging = target.parent / f".staging-tree-{target.name}"
    remove_tree(staging)
    try:
        materialize(store, entries, staging)
    except BaseException:  # a full disk: nothing half-built stays
        remove_tree(staging)
        raise
    staging.rename(target)


class TreeBuilder:
    """Pending version trees by path, built one at a time in the background."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="floyd-trees")
        self._pending: dict[str, tuple[Future[None], BlobStore, list[Entry]]] = {}
        self._lock = threading.Lock()

    def schedule(self, store: BlobStore, entries: list[Entry], target: Path) -> None:
        key = str(target)
        with self._lock:  # held until the entry is in place: the build reads its entries from it
            future = self._pool.submit(self._build, store, target)
            self._pending[key] = (future, store, entries)

    def _build(self, store: BlobStore, target: Path) -> None:
        with self._lock:
            entries = self._pending[str(target)][2]
        try:
            build(store, entries, target)
        except Exception:
            log.exception("Could not build %s; the next mount builds it again", target)
            raise
        with self._lock:
            self._pending.pop(str(target), None)
        count = len(entries)
        del entries  # the last reference: the manifest was held for this build
        release_memory(count)  # trimmed here, off the commit's path

    def ready(self, path: str | Path) -> None:
        """Return once the tree holding ``path`` (a version directory or a path inside one) is
        built: at once when none is pending, else after the build, run again here if it failed."""
        keys = [str(path), *(str(p) for p in Path(path).parents)]
        with self._lock:
            found = next(((k, self._pending[k]) for k in keys if k in self._pending), None)
        if found is None:
            return
        key, (future, store, entries) = found
        try:
            future.result()
        except Exception:
            with self._lock:
                self._pending.pop(key, None)
            if not Path(key).exists():
                build(store, entries, Path(key))

    def ready_all(self, paths: Iterable[str | Path]) -> None:
        for p in paths:
            self.ready(p)

    def forget(self, path: str | Path) -> None:
        """Wait for a pending build of ``path`` (about to be removed), so nothing recreates it."""
        self.ready(path)


TREES = TreeBuilder()  # one per bridge process; paths are unique per storage root
