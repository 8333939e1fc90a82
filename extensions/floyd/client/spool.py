"""Small files kept as pack members while they are hashed, so an upload reads each file once.

An upload hashes every new file, asks the server which blobs it lacks, then sends those. For a
tree of 100,000 small files, opening and reading each file a second time to send it cost the
client as long as hashing (2 s of 4 for the send). So while a file of at most ``MAX_FILE``
bytes is hashed, its bytes are appended to an anonymous temporary file as a tar member named
by its hash, the format of a pack (``transfer.member_header``); sending walks that file and
forwards the members the server asked for, in packs of the usual size. Bytes sent are the
bytes hashed, even if the file changes meanwhile. At most ``MAX_BYTES`` are kept; files past
that (and larger files) are read again when sent, as before.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from typing import IO

from floyd.client.progress import ProgressObserver

MAX_FILE = 64 << 10  # files up to this size are kept (their per-file cost outweighs their bytes)
MAX_BYTES = 512 << 20  # the most a spool holds (it lives in the temporary directory)
BLOCK = 512
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)
PADDING = bytes(BLOCK)

Header = Callable[[str, int], bytes]
SendPack = Callable[[Iterator[bytes]], object]


class PackSpool:
    """A temporary tar of the small files hashed so far (``add``), sent by ``send``."""

    def __init__(self, header: Header) -> None:
        self._header = header
        self._file: IO[bytes] | None = None
        self.bytes = 0
        self.members = 0

    def wants(self, size: int) -> bool:
        return size <= MAX_FILE and self.bytes + size <= MAX_BYTES

    def add(self, hexdigest: str, data: bytes) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="floyd-pack-")
        self._file.write(self._header(hexdigest, len(data)) + data + PADDING[: (-len(data)) % BLOCK])
        self.bytes += len(data)
        self.members += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def send(self, wanted: set[str], send_pack: SendPack, observer: ProgressObserver,
             pack_files: int, pack_bytes: int) -> set[str]:
        """Send the members whose ``sha256:<hex>`` name is in ``wanted``, each once, in packs of at
        most ``pack_files`` members or about ``pack_bytes`` bytes. Each name sent leaves
        ``wanted`` (no second set of 100,000 names); what is left, returned, was not spooled."""
        if self._file is None or not wanted:
            return wanted
        self._file.flush()
        self._file.seek(0)
        members = self._members(wanted)
        first = next(members, None)
        while first is not None:
            tail: list[bytes | None] = [None]
            send_pack(self._pack(first, members, tail, observer, pack_files, pack_bytes))
            first = tail[0]
        return wanted

    def _members(self, wanted: set[str]) -> Iterator[bytes]:
        """Each wanted member, as header + data + padding (skipping the others)."""
        assert self._file is not None
        f = self._file
        while True:
            header = f.read(BLOCK)
            if len(header) < BLOCK:
                return
            name = "sha256:" + header[:64].decode("ascii")
            size = int(header[124:135], 8)
            length = size + (-size) % BLOCK
            if name in wanted:
                wanted.discard(name)
                yield header + f.read(length)
            else:
                f.seek(length, 1)

    @staticmethod
    def _pack(first: bytes, members: Iterator[bytes], tail: list[bytes | None], observer: ProgressObserver,
              pack_files: int, pack_bytes: int) -> Iterator[bytes]:
        """One pack's body in ~1 MiB chunks; the member that did not fit is left in ``tail``."""
        buf = bytearray(first)
        count, size = 1, len(first)
        for member in members:
            if count >= pack_files or size >= pack_bytes:
                tail[0] = member
                break
            buf += member
            count += 1
            size += len(member)
            if len(buf) >= 1 << 20:
                yield bytes(buf)
                observer.advance("send", len(buf))
                buf.clear()
        buf += END_OF_ARCHIVE
        yield bytes(buf)
        observer.advance("send", len(buf))
