"""Hash a scanned tree's files (``treescan.py``), with a stat cache so unchanged files are not re-read.

DVC hashes small files one after another and runs ~10x slower than md5sum on many small
files; here a small file costs an open, one read and a close (faster than ``sha256sum``
on 100,000 files of 1 KiB), large files are hashed by a thread pool meanwhile (hashlib
releases the GIL), and a file whose (device, inode, mtime_ns, size) is unchanged since the
last run is not read at all.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from floyd.client.hashsplit import HashWorker, split
from floyd.client.hashwork import read_and_hash
from floyd.client.progress import ProgressObserver
from floyd.client.spool import MAX_FILE as SPOOL_MAX_FILE
from floyd.client.spool import PackSpool
from floyd.client.statcache import StatCache
from floyd.client.treescan import LocalFile

HASH_BATCH = 256  # small files hashed between two progress updates
SERIAL_MAX = 64 << 10  # files up to this size are hashed in the calling thread
LARGE_BATCH = 8  # larger files per thread-pool task


def sha256_file(path: str, size: int = -1) -> str:
    return read_and_hash(path, size, 0)[0]


def _hash_batch(batch: list[LocalFile]) -> list[str]:
    return [read_and_hash(f.abspath, f.size, -1)[0] for f in batch]


def hash_files(files: list[LocalFile], cache: StatCache | None, observer: ProgressObserver | None = None,
               workers: int | None = None, spool: PackSpool | None = None) -> dict[str, str]:
    """Return {relative path: hex sha256}; only files the cache does not know are read. Small
    files are hashed one after another in this thread (threads only fought over the GIL: 100,000
    files of 1 KiB took 0.6 s in one thread, 1.2 s in four), and in worker processes when there
    are many (``hashsplit.py``); larger ones, whose hashing releases the GIL, by a thread pool
    meanwhile. The small files read go into ``spool`` too (``spool.py``), so sending them reads
    nothing again."""
    observer = observer or ProgressObserver()
    observer.stage("hash", len(files), "files")
    known = cache.lookup(files) if cache else {}
    result: dict[str, str] = {}
    small: list[LocalFile] = []
    large: list[LocalFile] = []
    for f in files:
        digest = known.get(f.key)
        if digest is not None:
            result[f.path] = digest
        else:
            (small if f.size <= SERIAL_MAX else large).append(f)
    observer.advance("hash", len(files) - len(small) - len(large))
    keep = SPOOL_MAX_FILE if spool is not None else -1
    batches = [large[i : i + LARGE_BATCH] for i in range(0, len(large), LARGE_BATCH)]
    with ThreadPoolExecutor(workers or min(16, (os.cpu_count() or 2) * 2)) as pool:
        futures = [pool.submit(_hash_batch, batch) for batch in batches]
        own, helpers = split(small, spool, keep)
        try:
            _hash_small(own, helpers, result, spool, keep, _Progress(observer, helpers))
        finally:
            for helper in helpers:
                helper.stop()
        for batch, future in zip(batches, futures, strict=True):
            for f, digest in zip(batch, future.result(), strict=True):
                result[f.path] = digest
            observer.advance("hash", len(batch))
    if cache and (small or large):
        cache.store_soon([*small, *large], result)
    return result


def _hash_small(own: list[LocalFile], helpers: list[HashWorker], result: dict[str, str], spool: PackSpool | None,
                keep: int, progress: _Progress) -> None:
    """``own`` hashed here (and spooled), then each helper's answers taken (a file it could not
    hash is hashed here: its error is this process's to report)."""
    for i, f in enumerate(own, 1):
        digest, data = read_and_hash(f.abspath, f.size, keep)
        result[f.path] = digest
        if data is not None and spool is not None and len(data) == f.size and spool.wants(f.size):
            spool.add(digest, data)
        if i % HASH_BATCH == 0:
            progress.advance(HASH_BATCH)
    progress.advance(len(own) % HASH_BATCH)
    for helper in helpers:
        progress.wait_for(helper)
        for f, answer in zip(helper.files, helper.results(), strict=True):
            result[f.path] = answer if answer is not None else read_and_hash(f.abspath, f.size, -1)[0]


class _Progress:
    """The hash stage's progress: this process's files, and what its helpers have answered."""

    def __init__(self, observer: ProgressObserver, helpers: list[HashWorker]) -> None:
        self.observer = observer
        self.helpers = helpers
        self.seen = 0  # helpers' files counted so far

    def advance(self, own: int) -> None:
        done = sum(h.done for h in self.helpers)
        self.observer.advance("hash", own + done - self.seen)
        self.seen = done

    def wait_for(self, helper: HashWorker) -> None:
        while helper.thread.is_alive():
            helper.thread.join(0.1)
            self.advance(0)
        self.advance(0)
