"""Scan a tree: every regular file with its keys (``dirscan.py``), and the tree's fingerprint.

The scan is what an unchanged tree costs (``heads.py``), so it is most of a re-upload: a stat
is ~1.7 µs in the kernel here and Python adds ~1 µs around it, which threads cannot share out (one
GIL; git's ``core.preloadIndex`` does its lstat calls in threads, in C). Once a tree has shown
itself big, the directories still to scan are taken, a batch at a time, by this process and
worker processes running ``dirscan.py``, whichever is free (``Shares``). Each directory is scanned
by exactly one process, which also makes its digest, so the fingerprint is the same however the
tree was split. What a worker found is sent, and becomes ``LocalFile`` objects, only when a caller
asks for the files: an unchanged tree never does.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import weakref
from pathlib import Path
from typing import IO, TYPE_CHECKING, NamedTuple

from floyd.client.dirscan import (
    HEADED,
    MORE,
    WANT_BODY,
    Dir,
    Found,
    Key,
    Pending,
    add_dir,
    directory_of,
    dirs_of,
    scan_all,
    scan_dir,
)
from floyd.client.errors import FloydClientError
from floyd.client.workerproc import WorkerProcess, frame, read_frame

if TYPE_CHECKING:
    from floyd.client.progress import ProgressObserver

FANOUT_AFTER = 4000  # entries this process scans before the rest of a tree goes to workers too
MAX_PROCESSES = 8  # this one included
WORKER_SCRIPT = str(Path(__file__).with_name("dirscan.py"))


class LocalFile(NamedTuple):
    """One scanned file (a named tuple: sorted by path as a tuple, with no key function; a frozen
    dataclass's ``__init__`` cost 2 µs a file)."""

    path: str  # relative POSIX path inside the tree
    abspath: str
    size: int
    key: Key  # dev, inode, mtime_ns, size


def local_files(dirs: list[Dir]) -> list[LocalFile]:
    out: list[LocalFile] = []
    for top, rel, names, keys in dirs:
        prefix = os.path.join(top, "")  # what os.scandir joins a name to
        out += [LocalFile(rel + name, prefix + name, key[3], key) for name, key in zip(names, keys, strict=True)]
    return out


class TreeScan:
    """A scanned tree. ``files`` (sorted by path) is built on first use, with what workers sent."""

    def __init__(self, found: Found, workers: list[_Worker]) -> None:
        self._files: list[LocalFile] | None = None
        self._found = found
        self._workers = workers
        # workers whose files nobody asked for end when this scan is dropped (or the process ends)
        weakref.finalize(self, _release, workers)
        self.workers = len(workers)  # processes besides this one that scanned part of the tree
        self.skipped = found.skipped
        self.count = found.count
        self.total_bytes = found.total_bytes
        digests = self.digests = dict(found.digests)  # directory ("" or "a/b/") → digest of its files
        for w in workers:
            assert w.header is not None  # answered() said so
            count, total, skipped, more = w.header
            self.count += count
            self.total_bytes += total
            self.skipped += skipped
            digests.update(more)
        self.fingerprint = hashlib.sha256("\n".join(f"{d}\0{h}" for d, h in sorted(digests.items())).encode(
            "utf-8", "surrogateescape")).hexdigest()

    @property
    def files(self) -> list[LocalFile]:
        if self._files is None:
            files = local_files(self._dirs())
            files.sort()  # by path: paths are unique, so the other fields are never compared
            self._files, self._found.dirs = files, []
        return self._files

    def files_in(self, directories: set[str]) -> list[LocalFile]:
        """The files directly in ``directories`` (as ``digests`` names them), sorted by path: what an
        upload of the directories that changed sends, without a ``LocalFile`` for the others."""
        if self._files is not None:
            return [f for f in self._files if directory_of(f.path) in directories]
        files = local_files([d for d in self._dirs() if d[1] in directories])
        files.sort()
        return files

    def _dirs(self) -> list[Dir]:
        """Every directory's files, the workers' shares gathered (once)."""
        for w in self._workers:  # all at once: they make their bodies side by side
            w.want_body()
        for w in self._workers:
            self._found.dirs += w.dirs()
        self._workers.clear()  # told already (the list is the finalizer's too)
        return self._found.dirs


def _release(workers: list[_Worker]) -> None:
    for w in workers:
        w.release()


def scan(root: Path, observer: ProgressObserver | None = None) -> list[LocalFile]:
    """Regular files under ``root`` (file symlinks followed, directory symlinks skipped)."""
    return scan_tree(root, observer).files


def scan_tree(root: Path, observer: ProgressObserver | None = None, fanout_after: int = FANOUT_AFTER,
              processes: int | None = None) -> TreeScan:
    """``root`` scanned: in this process alone while it is small, with workers once it is not."""
    return start_scan(root, fanout_after, processes).finish(observer)


def start_scan(root: Path, fanout_after: int = FANOUT_AFTER, processes: int | None = None) -> ScanUnderWay:
    """A scan's first part: ``root`` scanned here until the tree has shown itself big, then the
    rest dealt out to workers, which scan their shares while the caller does other work (the CLI
    asks the platform who it is meanwhile: that request and its imports cost no time then);
    ``finish`` scans this process's share and gathers the workers' answers."""
    root = Path(root)
    found = Found()
    if root.is_file():
        st = root.stat()
        # the file as named (a symlink is followed when it is read), not its target's name
        add_dir(found, str(root.absolute().parent), "", [root.name], [(st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)])
        return ScanUnderWay(found, None, [])
    if not root.is_dir():
        raise FloydClientError(f"{root} is neither a file nor a directory.")
    pending: Pending = []
    try:
        scan_dir(str(root), "", found, pending)
    except OSError as exc:
        raise FloydClientError(f"Cannot read {root}: {exc.strerror}.") from exc
    while pending:
        if found.entries >= fanout_after and len(pending) > 1:
            shares, workers = _start_workers(pending, processes or usable_cpus())
            return ScanUnderWay(found, shares, workers)
        top, rel = pending.pop()
        scan_dir(top, rel, found, pending)
    return ScanUnderWay(found, None, [])


class ScanUnderWay:
    """A scan whose workers may still be scanning (``start_scan``). Dropped unfinished, it lets
    its workers go."""

    def __init__(self, found: Found, shares: Shares | None, workers: list[_Worker]) -> None:
        self._found, self._shares, self._workers = found, shares, workers
        weakref.finalize(self, _release, workers)

    def finish(self, observer: ProgressObserver | None = None) -> TreeScan:
        """This process's share scanned, the workers' headers gathered (a worker that gave none has
        its share scanned here): the tree, whose files come when asked."""
        found, shares, workers = self._found, self._shares, list(self._workers)
        self._found, self._shares = Found(), None
        self._workers.clear()  # the tree holds them from now on (the list is the finalizer's too)
        while shares is not None and (batch := shares.take()):
            scan_all(batch, found)
        tree = TreeScan(found, [w for w in workers if w.answered(found)])
        if tree.skipped and observer:
            observer.note(f"Skipped {len(tree.skipped)} directory symlink(s) or unreadable file(s), e.g. "
                          f"{tree.skipped[0]}")
        return tree


def usable_cpus() -> int:
    """The cores this process may run on, at most ``MAX_PROCESSES`` (its own included)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        cpus = os.cpu_count() or 1
    return min(cpus, MAX_PROCESSES)


class _Worker(WorkerProcess):
    """``python -I -S dirscan.py`` scanning batches of subtrees taken from ``shares`` as it is
    free. Its thread hands it batches, then reads the header, then the body, which the worker makes
    only when asked (``want_body``): a caller that needs only the header (an unchanged tree) lets
    it go (``release``)."""

    keep_stdin = True

    def __init__(self, shares: Shares, first: Pending) -> None:
        self.shares = shares
        self.share = first  # everything it was given: scanned here if it fails
        self.header: tuple | None = None
        self.body: bytes | None = None
        self.headed = threading.Event()
        super().__init__(WORKER_SCRIPT, frame(self.share))

    def want_body(self) -> None:
        self.tell(WANT_BODY)

    def release(self) -> None:
        self.tell()

    def read(self, stdout: IO[bytes]) -> None:
        while (said := stdout.read(1)) == MORE:
            batch = self.shares.take()
            self.share += batch
            if not self.send(frame(batch)):
                return
        if said != HEADED:
            return
        self.header = read_frame(stdout)
        if self.header is not None:
            self.headed.set()
            self.body = stdout.read()

    def ended(self) -> None:
        self.headed.set()
        if self.returncode != 0:
            self.body = None

    def answered(self, found: Found) -> bool:
        """Whether the worker sent its header; if not, its share is scanned here, into ``found``."""
        self.headed.wait()
        if self.header is None:
            self.thread.join()
            scan_all(list(self.share), found)
            return False
        return True

    def dirs(self) -> list[Dir]:
        """The worker's directories (``want_body`` first), or its share scanned here if the body did
        not come whole."""
        self.thread.join()
        if self.body is not None:
            try:
                return dirs_of(self.body)
            except (ValueError, EOFError, TypeError):
                pass
        found = Found()
        scan_all(list(self.share), found)
        return found.dirs


class Shares:
    """The subtrees still to scan once a tree has shown itself big, taken a batch at a time by this
    process and its workers, whichever is free: a process busy with other work (the CLI asking who
    the user is) scans less, and no process waits for another with work left. Batches shrink as
    the list does (a share of what is left per party), so the last ones are single subtrees."""

    def __init__(self, pending: Pending, parties: int) -> None:
        self._items = pending  # taken from the end, as the scan's own stack is
        self._parties = parties
        self._lock = threading.Lock()

    def put_back(self, batch: Pending) -> None:
        with self._lock:
            self._items += batch

    def take(self) -> Pending:
        with self._lock:
            n = max(1, len(self._items) // (2 * self._parties))
            batch = self._items[-n:]
            del self._items[-n:]
            return batch


def _start_workers(pending: Pending, processes: int) -> tuple[Shares, list[_Worker]]:
    """The subtrees in ``pending`` to be shared by this process and up to ``processes - 1`` workers
    (each starts with a batch); a worker that cannot start leaves its batch to the others."""
    count = min(processes, len(pending))
    shares = Shares(pending, count)
    workers: list[_Worker] = []
    if count < 2 or not sys.executable:
        return shares, workers
    for _ in range(count - 1):
        first = shares.take()
        try:
            workers.append(_Worker(shares, first))
        except OSError:
            shares.put_back(first)
    return shares, workers
