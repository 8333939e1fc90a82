"""Hash a long list of small files on several cores: shares of it go to ``hashwork.py`` workers.

Hashing 100,000 files of 1 KiB is an open, a read and a close each, and Python around them: 0.7–
0.9 s in one process, which threads cannot share (one GIL). Past ``SPLIT_AFTER`` files, the
tail of the list is dealt out in contiguous shares (a directory's files stay together) to
``cores − 1`` worker processes; the CLI hashes the head meanwhile. A worker appends the files it
keeps to a spool segment of its own, which the spool adopts when the worker has answered for
every file. A worker that cannot start, dies, or cannot read a file leaves those files to the
CLI, which hashes them itself (and reports an unreadable file as it always has).
"""

from __future__ import annotations

import marshal
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING

from floyd.client.treescan import usable_cpus
from floyd.client.workerproc import WorkerProcess, read_frame

if TYPE_CHECKING:
    from floyd.client.spool import PackSpool
    from floyd.client.treescan import LocalFile

SPLIT_AFTER = 4000  # fewer small files than this are hashed in the CLI alone (a worker costs ~20 ms)
WORKER_SCRIPT = str(Path(__file__).with_name("hashwork.py"))


class HashWorker(WorkerProcess):
    """One ``python -I -S hashwork.py`` hashing ``files``; a thread reads its answer as it comes."""

    def __init__(self, files: list[LocalFile], spool: PackSpool | None, keep: int, budget: int) -> None:
        self.files = files
        self.digests: list[str | None] = []
        self.kept = bytearray()
        self._spool, self._budget = spool, budget
        self._segment: IO[bytes] | None = spool.segment(budget) if spool is not None else None
        fds = (self._segment.fileno(),) if self._segment is not None else ()
        share = marshal.dumps(([(f.abspath, f.size) for f in files], fds[0] if fds else -1, budget, keep))
        try:
            super().__init__(WORKER_SCRIPT, share, fds)
        except OSError:
            self._give_back()
            raise

    def read(self, stdout: IO[bytes]) -> None:
        while len(self.digests) < len(self.files) and (frame := read_frame(stdout)) is not None:
            digests, kept = frame
            self.kept += kept
            self.digests += digests  # last: the count is what ``done`` reads

    @property
    def done(self) -> int:
        return len(self.digests)

    def results(self) -> list[str | None]:
        """A digest per file (None: hash it here). The segment joins the spool only when the worker
        answered for every file and exited cleanly; otherwise none of its members are trusted."""
        self.thread.join()
        whole = len(self.digests) == len(self.files) and self.returncode == 0
        if not whole:
            self.digests = [None] * len(self.files)
            self.kept = bytearray(len(self.files))
            self._give_back()
        elif self._spool is not None and self._segment is not None:
            sizes = [f.size for f, k in zip(self.files, self.kept, strict=True) if k]
            self._spool.adopt(self._segment, self._budget, sum(sizes), len(sizes))
            self._segment = None
        return self.digests

    def stop(self) -> None:
        """End the worker if it still runs (the upload failed) and give its segment's room back."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.thread.join()
        self._give_back()

    def _give_back(self) -> None:
        if self._spool is not None and self._segment is not None:
            self._spool.drop(self._segment, self._budget)
            self._segment = None


def split(small: list[LocalFile], spool: PackSpool | None, keep: int) -> tuple[list[LocalFile], list[HashWorker]]:
    """The head of ``small`` for this process, and workers started on the rest (none when the list
    is short, there is one core, or no worker can start)."""
    count = min(usable_cpus(), len(small) // (SPLIT_AFTER // 2))
    if len(small) < SPLIT_AFTER or count < 2 or not sys.executable:
        return small, []
    share = -(-len(small) // count)
    room = spool.room() // count if spool is not None else 0
    own, workers = small[:share], []
    for start in range(share, len(small), share):
        part = small[start:start + share]
        try:
            workers.append(HashWorker(part, spool, keep, room))
        except OSError:
            own += part
    return own, workers
