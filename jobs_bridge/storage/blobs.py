"""Content-addressed, immutable, deduplicated file store: ``blobs/sha256/ab/abcdef…``.

A blob only enters the store once its bytes have been hashed and match the name it was
sent under, and it enters by an atomic rename, so a reader never sees half a blob.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import itertools
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from jobs_bridge.errors import BadRequest
from jobs_bridge.storage.journal import BlobJournal

HASH_RE = re.compile(r"^sha256:([0-9a-f]{64})$")
HEX_RE = re.compile(r"^[0-9a-f]{64}$")
_SYNCER = ThreadPoolExecutor(1, thread_name_prefix="floyd-syncfs")  # one flush at a time; each covers what preceded it


def parse_hash(value: object) -> str:
    """``sha256:<hex>`` → ``<hex>``; anything else is a 400."""
    if isinstance(value, str):
        match = HASH_RE.match(value)
        if match:
            return match.group(1)
    raise BadRequest(f"Invalid hash {value!r}: expected 'sha256:' followed by 64 lowercase hex digits.")


class BlobWriter:
    """Receives one blob's bytes, hashing as they arrive; ``finish`` checks and publishes it."""

    def __init__(self, store: BlobStore, hexdigest: str, size: int) -> None:
        self.store = store
        self.expected = hexdigest
        self.expected_size = size
        self.received = 0
        self._hash = hashlib.sha256()
        fd, name = tempfile.mkstemp(dir=store.tmp_dir, prefix="blob-")
        self._file = os.fdopen(fd, "wb")
        self._tmp = Path(name)

    def write(self, data: bytes | memoryview) -> None:
        if self.received + len(data) > self.expected_size:
            raise BadRequest(
                f"Blob sha256:{self.expected} is larger than the {self.expected_size} bytes its manifest entry says."
            )
        self._hash.update(data)
        self._file.write(data)
        self.received += len(data)

    def finish(self) -> None:
        try:
            self._file.close()  # the last buffered bytes: the disk may fill up here too
        except OSError:
            self.abort()
            raise
        if self.received != self.expected_size:
            self.abort()
            raise BadRequest(
                f"Blob sha256:{self.expected} is truncated: got {self.received} of {self.expected_size} bytes."
            )
        actual = self._hash.hexdigest()
        if actual != self.expected:
            self.abort()
            raise BadRequest(f"Blob sent as sha256:{self.expected} hashes to sha256:{actual}; it was not stored.")
        self.store.publish(self._tmp, self.expected)

    def abort(self) -> None:
        """Drop what was received (closing may fail again on a full disk: the bytes go anyway)."""
        with contextlib.suppress(OSError):
            self._file.close()
        self._tmp.unlink(missing_ok=True)


class BlobStore:
    def __init__(self, root: Path, tmp_dir: Path) -> None:
        self.root = root
        self.tmp_dir = tmp_dir
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self._fanout: set[str] = set()  # blobs/sha256/<xx>/ directories known to exist
        self._names = itertools.count()  # temporary names: next() is atomic under the GIL
        self._proc: int | None = _open_proc()  # /proc, to link unnamed files by descriptor
        self.journal = BlobJournal(root.parent / "journal", self._write_new, self._write_checked, self.sync)

    def path(self, hexdigest: str) -> Path:
        if not HEX_RE.match(hexdigest):
            raise BadRequest(f"Invalid blob name {hexdigest!r}.")
        return self.root / hexdigest[:2] / hexdigest

    def file(self, hexdigest: str) -> Path:
        """The path of a blob's file for a reader: a blob that is still only in a journal (just
        uploaded, ``storage/journal.py``) is written out first."""
        path = self.path(hexdigest)
        if self.journal.pending and not path.is_file():
            self.journal.drain()
        return path

    def settle(self) -> None:
        """Write out every journaled blob (before a tree of hardlinks to them is built)."""
        if self.journal.pending:
            self.journal.drain()

    def exists(self, hexdigest: str) -> bool:
        return self.path(hexdigest).is_file()

    def size(self, hexdigest: str) -> int:
        return self.path(hexdigest).stat().st_size

    def writer(self, hexdigest: str, size: int) -> BlobWriter:
        return BlobWriter(self, hexdigest, size)

    def publish(self, tmp: Path, hexdigest: str) -> None:
        """Move a verified temporary file into place; an existing blob wins (same bytes)."""
        final = self.path(hexdigest)
        final.parent.mkdir(exist_ok=True)
        os.chmod(tmp, 0o444)
        if final.exists():
            tmp.unlink(missing_ok=True)
            return
        os.replace(tmp, final)

    def put_bytes(self, data: bytes | bytearray, hexdigest: str) -> None:
        """Store a small blob received whole (a pack member): verified in memory, written to an
        unnamed file in its fan-out directory (``O_TMPFILE``) and linked into place, so a blob
        appears whole or not at all and no temporary name is created and removed per blob.
        Where the file system has no ``O_TMPFILE``: a named temporary file, linked, unlinked."""
        self.verify(data, hexdigest)
        self._put_verified(data, hexdigest)

    @staticmethod
    def verify(data: bytes | bytearray | memoryview, hexdigest: str) -> None:
        """A blob received whole must hash to the name it was sent under (400 otherwise)."""
        actual = hashlib.sha256(data).hexdigest()
        if actual != hexdigest:
            raise BadRequest(f"Blob sent as sha256:{hexdigest} hashes to sha256:{actual}; it was not stored.")
        if not HEX_RE.match(hexdigest):
            raise BadRequest(f"Invalid blob name {hexdigest!r}.")

    def _fan(self, hexdigest: str) -> str:
        """The blob's final path as a string, its fan-out directory made if need be."""
        fan = hexdigest[:2]
        if fan not in self._fanout:
            (self.root / fan).mkdir(exist_ok=True)
            self._fanout.add(fan)
        return f"{self.root}/{fan}/{hexdigest}"

    def _write_new(self, data: memoryview, hexdigest: str) -> None:
        """A journaled blob's file, written in place unless it exists (see ``storage/journal.py``:
        nobody reads it before the drain that writes it has ended)."""
        final = self._fan(hexdigest)
        try:
            fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        except FileExistsError:
            return
        try:
            _write_all(fd, data)
        except BaseException:  # a full disk: no short blob stays behind
            os.close(fd)
            os.unlink(final)
            raise
        os.close(fd)

    def _write_checked(self, data: memoryview, hexdigest: str) -> None:
        """After a crash: an existing file counts only if it holds the blob's bytes."""
        final = self._fan(hexdigest)
        try:
            if hash_file(Path(final)) == hexdigest:
                return
            os.unlink(final)
        except FileNotFoundError:
            pass
        self._write_new(data, hexdigest)

    def _put_verified(self, data: bytes | bytearray | memoryview, hexdigest: str) -> None:
        final = self._fan(hexdigest)
        fan = hexdigest[:2]
        fd = self._unnamed(f"{self.root}/{fan}")
        if fd is not None:
            try:
                _write_all(fd, data)
                os.link(f"self/fd/{fd}", final, src_dir_fd=self._proc, follow_symlinks=True)
            except FileExistsError:
                pass  # an existing blob wins: same bytes, and versions may hold links to it
            finally:
                os.close(fd)  # an unnamed file not linked (a full disk) is gone with its descriptor
            return
        tmp = f"{self.tmp_dir}/blob-{os.getpid()}-{next(self._names)}"  # removed at start-up if left
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            _write_all(fd, data)
        except BaseException:  # a full disk: nothing half written stays behind
            os.unlink(tmp)
            raise
        finally:
            os.close(fd)
        try:
            os.link(tmp, final)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)

    def _unnamed(self, directory: str) -> int | None:
        """A descriptor of a new unnamed file in ``directory``, or None where that cannot work."""
        if self._proc is None:
            return None
        try:
            return os.open(directory, os.O_WRONLY | os.O_TMPFILE, 0o444)
        except OSError:  # EOPNOTSUPP/EISDIR: a file system or kernel without O_TMPFILE
            self._proc = None  # left open: another thread may be linking through it
            return None

    def sync_soon(self) -> Future[None]:
        """``sync`` in a thread of its own, for a caller with other work to do until the blobs must
        be on disk: a commit writes its rows meanwhile (for 100,000 small files, 0.9 s of
        ``syncfs`` and 0.6 s of rows, one after the other before)."""
        return _SYNCER.submit(self.sync)

    def sync(self) -> None:
        """Flush the store's file system (``syncfs``): blobs are written without a flush each, and
        must be on disk before a version that holds them is recorded as committed."""
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if _SYNCFS is None or _SYNCFS(fd) != 0:
                os.sync()
        finally:
            os.close(fd)

    def put_file(self, source: Path, hexdigest: str) -> None:
        """Verify ``source`` (e.g. a finished resumable part) and move it into the store."""
        digest = hash_file(source)
        if digest != hexdigest:
            source.unlink(missing_ok=True)
            raise BadRequest(f"Blob sent as sha256:{hexdigest} hashes to sha256:{digest}; it was not stored.")
        self.publish(source, hexdigest)

    def link_in(self, source: Path, hexdigest: str) -> None:
        """Add a (verified, read-only) file to the store by hardlink: no bytes are copied."""
        final = self.path(hexdigest)
        if final.exists():
            return
        final.parent.mkdir(exist_ok=True)
        try:
            os.link(source, final)
        except FileExistsError:
            return
        except OSError:  # another filesystem or the link limit: copy, then publish
            fd, name = tempfile.mkstemp(dir=self.tmp_dir, prefix="blob-")
            os.close(fd)
            shutil.copyfile(source, name)
            self.publish(Path(name), hexdigest)
            return
        os.chmod(final, 0o444)

    def delete(self, hexdigest: str) -> None:
        self.path(hexdigest).unlink(missing_ok=True)


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _open_proc() -> int | None:
    if not hasattr(os, "O_TMPFILE"):
        return None
    try:
        return os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None


def _load_syncfs() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name, use_errno=True), "syncfs", None) if name else None
    except OSError:
        return None


_SYNCFS = _load_syncfs()


def hash_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()
