"""Small files kept as pack members while they are hashed, so an upload reads each file once.

An upload hashes every new file, asks the server which blobs it lacks, then sends those. For a
tree of 100,000 small files, opening and reading each file a second time to send it cost the
client as long as hashing (2 s of 4 for the send). So while a file of at most ``MAX_FILE``
bytes is hashed, its bytes are appended to an anonymous temporary file as a tar member named
by its hash, the format of a pack (``hashwork.member``); sending walks that file and
forwards the members the server asked for, in packs of the usual size. Bytes sent are the
bytes hashed, even if the file changes meanwhile. At most ``MAX_BYTES`` are kept; files past
that (and larger files) are read again when sent, as before. A worker process hashing a share
of the files (``hashsplit.py``) appends to a segment of its own, which the spool then adopts.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from typing import IO

from floyd.client.hashwork import BLOCK, member
from floyd.client.progress import ProgressObserver

MAX_FILE = 64 << 10  # files up to this size are kept (their per-file cost outweighs their bytes)
MAX_BYTES = 512 << 20  # the most a spool holds (it lives in the temporary directory)
READ_BYTES = 1 << 20  # what ``send`` reads of a spool at a time
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)

SendPack = Callable[[Iterator[bytes]], object]


class PackSpool:
    """A temporary tar of the small files hashed so far (``add``, and workers' ``segment``s), sent
    by ``send``."""

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None
        self._segments: list[IO[bytes]] = []  # workers' files, adopted whole
        self._reserved = 0  # bytes promised to workers' segments not adopted yet
        self.bytes = 0
        self.members = 0
        self.sent_bytes = 0  # file bytes ``send`` has handed on

    def wants(self, size: int) -> bool:
        return size <= MAX_FILE and self.bytes + self._reserved + size <= MAX_BYTES

    def add(self, hexdigest: str, data: bytes) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="floyd-pack-")
            self._segments.insert(0, self._file)
        self._file.write(member(hexdigest, data))
        self.bytes += len(data)
        self.members += 1

    def room(self) -> int:
        """File bytes this spool could still take."""
        return MAX_BYTES - self.bytes - self._reserved

    def segment(self, budget: int) -> IO[bytes]:
        """A file for a worker to append members to, with up to ``budget`` bytes of files, held
        for it until ``adopt`` or ``drop``."""
        self._reserved += budget
        return tempfile.TemporaryFile(prefix="floyd-pack-")

    def adopt(self, segment: IO[bytes], budget: int, data_bytes: int, members: int) -> None:
        """A worker's finished segment: its members are sent with this spool's own."""
        self._reserved -= budget
        self._segments.append(segment)
        self.bytes += data_bytes
        self.members += members

    def drop(self, segment: IO[bytes], budget: int) -> None:
        """A worker's segment that is not to be trusted (the worker failed): gone, its room back."""
        self._reserved -= budget
        segment.close()

    def close(self) -> None:
        for f in self._segments:
            f.close()
        self._file, self._segments = None, []

    def send(self, wanted: set[str], send_pack: SendPack, observer: ProgressObserver,
             pack_files: int, pack_bytes: int) -> set[str]:
        """Send the members whose ``sha256:<hex>`` name is in ``wanted``, each once, in packs of at
        most ``pack_files`` members or about ``pack_bytes`` bytes. Each name sent leaves
        ``wanted`` (no second set of 100,000 names); what is left, returned, was not spooled."""
        if not self._segments or not wanted:
            return wanted
        members = (m for f in self._segments for m in self._members(f, wanted))
        first = next(members, None)
        while first is not None:
            tail: list[bytes | None] = [None]
            send_pack(self._pack(first, members, tail, observer, pack_files, pack_bytes))
            first = tail[0]
        return wanted

    def _members(self, f: IO[bytes], wanted: set[str]) -> Iterator[bytes]:
        """Each wanted member of ``f``, as header + data + padding (skipping the others), read a MiB
        at a time (two reads a member cost 0.2 s of 100,000)."""
        f.flush()
        f.seek(0)
        buf, pos = b"", 0
        while True:
            if len(buf) - pos >= BLOCK:
                size = int(buf[pos + 124:pos + 135], 8)
                end = pos + BLOCK + size + (-size) % BLOCK
                if end <= len(buf):
                    name = "sha256:" + buf[pos:pos + 64].decode("ascii")
                    if name in wanted:
                        wanted.discard(name)
                        self.sent_bytes += size
                        yield buf[pos:end]
                    pos = end
                    continue
            more = f.read(max(READ_BYTES, end - pos if len(buf) - pos >= BLOCK else 0))
            if not more:
                return
            buf, pos = buf[pos:] + more, 0

    @staticmethod
    def _pack(first: bytes, members: Iterator[bytes], tail: list[bytes | None], observer: ProgressObserver,
              pack_files: int, pack_bytes: int) -> Iterator[bytes]:
        """One pack's body in ~1 MiB chunks; the member that did not fit is left in ``tail``."""
        buf = bytearray(first)
        count, size = 1, len(first)
        for item in members:
            if count >= pack_files or size >= pack_bytes:
                tail[0] = item
                break
            buf += item
            count += 1
            size += len(item)
            if len(buf) >= 1 << 20:
                yield bytes(buf)
                observer.advance("send", len(buf))
                buf.clear()
        buf += END_OF_ARCHIVE
        yield bytes(buf)
        observer.advance("send", len(buf))
