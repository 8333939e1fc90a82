"""The two ways blob bytes arrive for an upload: a tar pack of small blobs, or one large blob
appended to a part file. Each verifies what it receives before anything is recorded."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Protocol

from jobs_bridge.datasets.blobindex import BlobIndex
from jobs_bridge.errors import BadRequest
from jobs_bridge.storage import journal
from jobs_bridge.storage.blobs import BlobStore, BlobWriter
from jobs_bridge.storage.manifest import Entry
from jobs_bridge.storage.tarstream import TarReader

OWNER_FLUSH_EVERY = 256  # blobs received before their ownership rows are written
IN_MEMORY = 1 << 20  # pack members up to this size are gathered in memory and stored in one write


class UploadSink(Protocol):
    """What a receiver needs of the upload it serves (``UploadManager`` provides it): the store,
    the ownership record and the saved state of a half-received large blob. A protocol, so this
    module never imports the manager that imports it."""

    @property
    def store(self) -> BlobStore: ...

    def record_received(self, owner: str, hashes: list[str]) -> None: ...

    def hasher_for(self, upload_id: str, hexd: str, offset: int) -> hashlib._Hash | None: ...

    def save_hasher(self, upload_id: str, hexd: str, offset: int, h: hashlib._Hash | None) -> None: ...


class PackReceiver:
    """Consumes a tar stream of blobs named by their hex hash, verifying each one."""

    def __init__(self, uploads: UploadSink, upload_id: str, owner: str, index: BlobIndex) -> None:
        self.uploads = uploads
        self.upload_id = upload_id
        self.owner = owner
        self.index = index
        self.reader = TarReader(self._member, self._data, self._end, self._whole)
        self.writer: BlobWriter | None = None
        self.small: bytearray | None = None  # the current member, when it is gathered in memory
        self.small_hex = ""
        self.journal = uploads.store.journal.writer()  # where members up to journal.MAX_BLOB go
        self.pending: list[str] = []
        self.stored = 0
        self.bytes = 0

    def write(self, chunk: bytes) -> None:
        self.reader.feed(chunk)

    def close(self) -> dict:
        try:
            self.reader.close()
        finally:
            self._close_journal()
        return {"stored": self.stored, "bytes": self.bytes}

    def abort(self) -> None:
        """The connection dropped (or a member was refused): what arrived whole stays received."""
        if self.writer is not None:
            self.writer.abort()
            self.writer = None
        self.small = None
        self._close_journal()

    def _close_journal(self) -> None:
        try:
            self.pending += self.journal.close()
        finally:
            self.flush()

    def flush(self) -> None:
        pending, self.pending = self.pending, []
        self.uploads.record_received(self.owner, pending)

    def _expected(self, name: str, size: int) -> str:
        """The member's hex hash, once its name and size are those of a blob of the manifest."""
        hexd = name.rsplit("/", 1)[-1]
        if hexd.startswith("sha256:"):
            hexd = hexd[7:]
        expected = self.index.size(hexd)
        if expected is None:
            raise BadRequest(f"Pack member {name!r} is not a blob of this upload's manifest.")
        if size != expected:
            raise BadRequest(f"Pack member sha256:{hexd} is {size} bytes; the manifest says {expected}.")
        return hexd

    def _whole(self, name: str, data: memoryview) -> None:
        """A member that arrived whole in one chunk (most small files): checked and stored at once."""
        hexd = self._expected(name, len(data))
        if len(data) > journal.MAX_BLOB:
            self._member(name, len(data))
            self._data(data)
            self._end()
            return
        BlobStore.verify(data, hexd)
        self.pending += self.journal.add(hexd, data)  # recorded once its journal file is whole
        self.stored += 1
        self.bytes += len(data)
        if len(self.pending) >= OWNER_FLUSH_EVERY:
            self.flush()

    def _member(self, name: str, size: int) -> None:
        hexd = self._expected(name, size)
        if size <= IN_MEMORY:
            self.small, self.small_hex = bytearray(), hexd
        else:
            self.writer = self.uploads.store.writer(hexd, size)

    def _data(self, data: memoryview) -> None:
        if self.small is not None:
            self.small += data  # the reader never hands over more than the header's size
            return
        assert self.writer is not None
        self.writer.write(data)

    def _end(self) -> None:
        if self.small is not None:
            data, self.small = self.small, None
            size = len(data)
            if size <= journal.MAX_BLOB:
                BlobStore.verify(data, self.small_hex)
                self.pending += self.journal.add(self.small_hex, data)  # recorded once its journal file is whole
            else:
                self.uploads.store.put_bytes(data, self.small_hex)
                self.pending.append(self.small_hex)
        else:
            assert self.writer is not None
            writer, self.writer = self.writer, None
            writer.finish()
            self.pending.append(writer.expected)
            size = writer.received
        self.stored += 1
        self.bytes += size
        if len(self.pending) >= OWNER_FLUSH_EVERY:
            self.flush()


class PartWriter:
    """Appends to a large blob's part file; publishes it into the store once complete."""

    def __init__(self, uploads: UploadSink, upload_id: str, owner: str, entry: Entry, part: Path, offset: int) -> None:
        self.uploads = uploads
        self.upload_id = upload_id
        self.owner = owner
        self.entry = entry
        self.part = part
        self.offset = offset
        self.hasher = uploads.hasher_for(upload_id, entry.hexdigest, offset)
        self.file = open(part, "ab", buffering=0)  # unbuffered: ``offset`` is what is on disk
        self.completed = False

    def write(self, data: bytes) -> None:
        if self.offset + len(data) > self.entry.size:
            raise BadRequest(
                f"sha256:{self.entry.hexdigest} is {self.entry.size} bytes by its manifest entry; more was sent."
            )
        try:
            view = memoryview(data)
            while view:
                view = view[self.file.write(view):]
        except OSError:
            # The disk filled up mid-chunk: cut the part back to the last whole chunk, so the
            # offset the client resumes from and the running hash still agree with the file.
            os.ftruncate(self.file.fileno(), self.offset)
            raise
        if self.hasher is not None:
            self.hasher.update(data)
        self.offset += len(data)

    def close(self) -> dict:
        """Finish this request: keep the part for later, or verify and publish the blob."""
        self.file.close()
        hexd = self.entry.hexdigest
        if self.offset < self.entry.size:
            self.uploads.save_hasher(self.upload_id, hexd, self.offset, self.hasher)
            return {"offset": self.offset, "size": self.entry.size, "complete": False}
        self.uploads.save_hasher(self.upload_id, hexd, 0, None)
        if self.hasher is not None:
            actual = self.hasher.hexdigest()
            if actual != hexd:
                self.part.unlink(missing_ok=True)
                raise BadRequest(f"Blob sent as sha256:{hexd} hashes to sha256:{actual}; it was not stored.")
            self.uploads.store.publish(self.part, hexd)
        else:
            self.uploads.store.put_file(self.part, hexd)
        self.uploads.record_received(self.owner, [hexd])
        self.completed = True
        return {"offset": self.offset, "size": self.entry.size, "complete": True}

    def abort(self) -> None:
        """The connection dropped: keep what arrived, so the client can resume from it."""
        if not self.file.closed:
            self.file.close()
        self.uploads.save_hasher(self.upload_id, self.entry.hexdigest, self.offset, self.hasher)
