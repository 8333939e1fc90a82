"""Scan a tree: every regular file with its (device, inode, mtime_ns, size), and a fingerprint.

The scan is what an unchanged tree costs (``heads.py``), so it is most of a re-upload: a stat
is ~2 µs in the kernel and Python adds ~3 µs around it, which threads cannot share out (one
GIL; git's ``core.preloadIndex`` does its lstat calls in threads, in C). A big tree is therefore
split by subtrees between this process and worker processes (``python -S``, standard library
only: ~30 ms to start). Each directory is scanned by exactly one process, which also hashes
its files' names and keys, so the fingerprint is the same however the tree was split. What a
worker found is turned into ``LocalFile`` objects only when a caller asks for the files: an
unchanged tree never needs them.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import stat
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from floyd.client.errors import FloydClientError

if TYPE_CHECKING:
    from floyd.client.progress import ProgressObserver

SKIP_NAMES = {".floyddata", ".floydexpt"}
FANOUT_AFTER = 4000  # entries this process scans before the rest of a tree goes to workers too
MAX_PROCESSES = 8  # this one included
HEADER = struct.Struct("<Q")  # a worker's answer: the header's length, header, then the files

Key = tuple[int, int, int, int]


class LocalFile(NamedTuple):
    """One scanned file. A named tuple, not a frozen dataclass: a scan makes one per file, and
    a dataclass's ``__init__`` cost 2 µs each (0.12 s of a 100,000-file scan); sorted by path
    as a tuple, with no key function."""

    path: str  # relative POSIX path inside the tree
    abspath: str
    size: int
    key: Key  # dev, inode, mtime_ns, size


@dataclass
class Found:
    """What one process found in the directories it scanned."""

    files: list[LocalFile] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    digests: dict[str, str] = field(default_factory=dict)  # directory → sha256 of its files and keys
    entries: int = 0


class TreeScan:
    """A scanned tree. ``files`` (sorted by path) is built on first use from what workers sent."""

    def __init__(self, found: Found, answers: list[bytes], workers: int) -> None:
        self._files: list[LocalFile] | None = None
        self._own = found.files
        self._blobs: list[bytes] = []
        self.workers = workers  # processes besides this one that scanned part of the tree
        self.skipped = found.skipped
        digests = dict(found.digests)
        self.count = len(found.files)
        self.total_bytes = sum(f.size for f in found.files)
        for answer in answers:
            (size,) = HEADER.unpack_from(answer)
            count, total, skipped, more = marshal.loads(answer[HEADER.size : HEADER.size + size])
            self.count += count
            self.total_bytes += total
            self.skipped += skipped
            digests.update(more)
            self._blobs.append(answer[HEADER.size + size :])
        self.fingerprint = hashlib.sha256("\n".join(f"{d}\0{h}" for d, h in sorted(digests.items())).encode(
            "utf-8", "surrogateescape")).hexdigest()

    @property
    def files(self) -> list[LocalFile]:
        if self._files is None:
            files = self._own
            for blob in self._blobs:
                files.extend(map(LocalFile._make, marshal.loads(blob)))
            files.sort()  # by path: paths are unique, so the other fields are never compared
            self._files, self._blobs = files, []
        return self._files


def scan(root: Path, observer: ProgressObserver | None = None) -> list[LocalFile]:
    """Regular files under ``root`` (file symlinks followed, directory symlinks skipped)."""
    return scan_tree(root, observer).files


def scan_tree(root: Path, observer: ProgressObserver | None = None, fanout_after: int = FANOUT_AFTER,
              processes: int | None = None) -> TreeScan:
    """``root`` scanned: in this process alone while it is small, with workers once it is not."""
    root = Path(root)
    if root.is_file():
        st = root.stat()
        found = Found([LocalFile(root.name, str(root.resolve()), st.st_size, _key(st))])
        found.digests[""] = _digest(found.files)
        return TreeScan(found, [], 0)
    if not root.is_dir():
        raise FloydClientError(f"{root} is neither a file nor a directory.")
    found = Found()
    pending = [(str(root), "")]
    workers: list[_Worker] = []
    started = False
    while pending:
        if found.entries >= fanout_after and len(pending) > 1 and not started:
            started = True
            pending, workers = _start_workers(pending, processes or _processes())
        top, rel = pending.pop()
        _scan_dir(top, rel, found, pending)
    answers = [answer for w in workers if (answer := w.result(found)) is not None]
    tree = TreeScan(found, answers, len(answers))
    if tree.skipped and observer:
        observer.note(f"Skipped {len(tree.skipped)} directory symlink(s) or unreadable file(s), e.g. "
                      f"{tree.skipped[0]}")
    return tree


def _key(st: os.stat_result) -> Key:
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def _digest(files: list[LocalFile]) -> str:
    """sha256 over one directory's files: a change of any name, size, inode or time changes it."""
    files.sort()
    return hashlib.sha256("\n".join(f"{f.path}\0{f.key[0]}\0{f.key[1]}\0{f.key[2]}\0{f.key[3]}" for f in files)
                          .encode("utf-8", "surrogateescape")).hexdigest()


def _scan_dir(top: str, rel: str, found: Found, pending: list[tuple[str, str]]) -> None:
    """One directory, not its subdirectories (those go onto ``pending``): os.scandir, one stat per
    file (os.walk + stat + isfile took three)."""
    mine: list[LocalFile] = []
    append, is_reg = mine.append, stat.S_ISREG  # bound once: this loop runs once per file
    try:
        it = os.scandir(top)
    except OSError as exc:  # an unreadable directory: os.walk skipped those silently too
        if not rel:
            raise FloydClientError(f"Cannot read {top}: {exc.strerror}.") from exc
        found.skipped.append(rel.rstrip("/"))
        return
    with it:
        for entry in it:
            sub = rel + entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append((entry.path, sub + "/"))
                    continue
                if not rel and entry.name in SKIP_NAMES:
                    continue
                st = entry.stat()  # follows a file symlink; cached for plain files
            except OSError:
                found.skipped.append(sub)
                continue
            if is_reg(st.st_mode):
                size = st.st_size
                append(LocalFile(sub, entry.path, size, (st.st_dev, st.st_ino, st.st_mtime_ns, size)))
            elif stat.S_ISDIR(st.st_mode):
                found.skipped.append(sub)  # a symlinked directory
    found.entries += len(mine) + 1
    if mine:
        found.digests[rel] = _digest(mine)
        found.files += mine


def _processes() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        cpus = os.cpu_count() or 1
    return min(cpus, MAX_PROCESSES)


class _Worker:
    """A ``python -S`` process scanning some subtrees; its answer is read by a thread meanwhile."""

    def __init__(self, share: list[tuple[str, str]]) -> None:
        self.share = share
        package_root = str(Path(__file__).resolve().parents[2])
        code = f"import sys; sys.path.insert(0, {package_root!r}); from floyd.client.treescan import work; work()"
        self.proc = subprocess.Popen([sys.executable, "-S", "-c", code], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.answer: bytes | None = None
        self.thread = threading.Thread(target=self._talk, daemon=True)
        self.thread.start()

    def _talk(self) -> None:
        out, _ = self.proc.communicate(marshal.dumps(self.share))
        if self.proc.returncode == 0 and len(out) >= HEADER.size:
            self.answer = out

    def result(self, found: Found) -> bytes | None:
        """The worker's answer; without one (it could not start or failed) its share is scanned here."""
        self.thread.join()
        if self.answer is None:
            pending = list(self.share)
            while pending:
                top, rel = pending.pop()
                _scan_dir(top, rel, found, pending)
        return self.answer


def _start_workers(pending: list[tuple[str, str]], processes: int) -> tuple[list[tuple[str, str]], list[_Worker]]:
    """Deal ``pending`` out among this process and workers: this process's share, and the workers.
    A worker that cannot start leaves its share to this process."""
    count = min(processes, len(pending))
    if count < 2 or not sys.executable:
        return pending, []
    shares = [pending[i::count] for i in range(count)]
    own, workers = shares[0], []
    for share in shares[1:]:
        try:
            workers.append(_Worker(share))
        except OSError:
            own += share
    return own, workers


def work() -> None:
    """A worker's main: subtrees (marshal) on stdin; the header and the files on stdout."""
    found = Found()
    pending: list[tuple[str, str]] = marshal.loads(sys.stdin.buffer.read())
    while pending:
        top, rel = pending.pop()
        _scan_dir(top, rel, found, pending)
    header = marshal.dumps((len(found.files), sum(f.size for f in found.files), found.skipped, found.digests))
    out = sys.stdout.buffer
    out.write(HEADER.pack(len(header)))
    out.write(header)
    out.write(marshal.dumps([tuple(f) for f in found.files]))
    out.flush()
