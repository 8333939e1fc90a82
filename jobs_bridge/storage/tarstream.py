"""Streaming tar in both directions, without holding a member in memory.

Uploads pack many small blobs into one request (one HTTP round trip per file is what
makes other tools slow on many small files); downloads of a directory go out as a tar.
"""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Callable

from jobs_bridge.errors import BadRequest

BLOCK = 512


class TarReader:
    """Incremental ustar/PAX reader: ``feed`` chunks, get ``on_member(name, size)``,
    ``on_data(bytes)`` and ``on_end()`` callbacks for each regular file.

    ``on_whole(name, data)``, when given, takes instead each plain member that lies whole in a
    chunk, with its bytes in one view: a pack of 1 KiB files is 4,096 of them per MiB, and three
    callbacks and three turns of the loop per member were most of the bridge's time per pack."""

    def __init__(
        self,
        on_member: Callable[[str, int], None],
        on_data: Callable[[memoryview], None],
        on_end: Callable[[], None],
        on_whole: Callable[[str, memoryview], None] | None = None,
    ) -> None:
        self.on_member = on_member
        self.on_data = on_data
        self.on_end = on_end
        self.on_whole = on_whole
        self._buf = bytearray()
        self._remaining = 0  # data bytes left in the current member
        self._padding = 0
        self._in_member = False
        self._pax_name: str | None = None
        self._skip_pax = 0
        self._pax_buf = bytearray()
        self.finished = False

    def feed(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while len(view):
            if self.finished:
                return  # anything after the end-of-archive blocks is ignored, as tar does
            if self.on_whole is not None and self._at_header():
                taken = self._whole_members(view)
                view = view[taken:]
                if not len(view):
                    return
            if self._in_member:
                take = min(self._remaining, len(view))
                if take:
                    self.on_data(view[:take])
                    view = view[take:]
                    self._remaining -= take
                if self._remaining == 0:
                    self._in_member = False
                    self.on_end()
                continue
            if self._skip_pax:
                take = min(self._skip_pax, len(view))
                self._pax_buf += view[:take]
                view = view[take:]
                self._skip_pax -= take
                if self._skip_pax == 0:
                    self._parse_pax()
                continue
            if self._padding:
                take = min(self._padding, len(view))
                view = view[take:]
                self._padding -= take
                continue
            need = BLOCK - len(self._buf)
            self._buf += view[:need]
            view = view[need:]
            if len(self._buf) == BLOCK:
                header = bytes(self._buf)
                self._buf.clear()
                self._header(header)

    def _at_header(self) -> bool:
        return not (self._in_member or self._skip_pax or self._padding or self._buf or self._pax_name is not None)

    def _whole_members(self, view: memoryview) -> int:
        """Hand each plain member lying whole in ``view`` to ``on_whole``; the bytes used. Stops at
        anything else (a member cut by the chunk's end, PAX, the end of the archive), which the
        general path reads; padding past the chunk's end is left to skip."""
        assert self.on_whole is not None
        pos, end = 0, len(view)
        while end - pos >= BLOCK:
            plain = _plain_member(bytes(view[pos:pos + BLOCK]))
            if plain is None:
                break
            name, size = plain
            data_end = pos + BLOCK + size
            if data_end > end:
                break
            self.on_whole(name, view[pos + BLOCK:data_end])
            pos = data_end + (-size) % BLOCK
            if pos > end:
                self._padding = pos - end
                return end
        return pos

    def close(self) -> None:
        if self._in_member or self._skip_pax or self._buf.strip(b"\0"):
            raise BadRequest("The upload stream ended in the middle of a file; send it again.")

    def _header(self, block: bytes) -> None:
        if block == b"\0" * BLOCK:
            self.finished = True
            return
        plain = _plain_member(block)
        if plain is not None and self._pax_name is None:
            self._start(*plain)
            return
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.TarError as exc:
            raise BadRequest(f"The upload stream is not a valid tar archive: {exc}.") from exc
        size = info.size
        pad = (-size) % BLOCK
        if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE):
            self._skip_pax = size + pad
            self._pax_buf.clear()
            self._pax_size = size
            return
        if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
            raise BadRequest(f"Upload archives may hold regular files only; {info.name!r} is not one.")
        name = self._pax_name or info.name
        self._pax_name = None
        self._start(name, size)

    def _start(self, name: str, size: int) -> None:
        self.on_member(name, size)
        self._padding = (-size) % BLOCK
        if size == 0:
            self.on_end()
        else:
            self._in_member = True
            self._remaining = size

    def _parse_pax(self) -> None:
        data = bytes(self._pax_buf[: self._pax_size])
        pos = 0
        while pos < len(data):
            space = data.find(b" ", pos)
            try:
                length = int(data[pos:space]) if space > pos else 0
            except ValueError:
                length = 0
            if length <= space - pos or pos + length > len(data):
                raise BadRequest("The upload stream has a malformed PAX header; send it again.")
            record = data[space + 1 : pos + length - 1]
            key, _, value = record.partition(b"=")
            if key == b"path":
                self._pax_name = value.decode("utf-8", "surrogateescape")
            pos += length


def _plain_member(block: bytes) -> tuple[str, int] | None:
    """(name, size) of a plain ustar regular-file header with a valid checksum, or None for
    anything else (then tarfile parses it). TarInfo.frombuf was a tenth of a pack of 1 KiB files."""
    if block[257:262] != b"ustar" or block[156:157] not in (b"0", b"\0") or block[345] != 0:
        return None
    try:
        size = int(block[124:136].rstrip(b"\0 ") or b"0", 8)
        checksum = int(block[148:156].rstrip(b"\0 ") or b"-1", 8)
        name = block[:100].rstrip(b"\0").decode("ascii")
    except ValueError:
        return None
    if not _checksum_matches(block, checksum) or not name or "\0" in name:
        return None
    return name, size


def _checksum_matches(block: bytes, checksum: int) -> bool:
    """tar's checksum (the sum of the header's bytes, its own field as spaces) through adler32,
    whose low half is 1 + that sum modulo 65,521, in C: summing 512 bytes in Python was most of
    a header's cost. The sum is at most 130,560, so only a field off by exactly 65,521 could
    pass, and then the member's hash check still refuses its bytes."""
    total = (zlib.adler32(block) & 0xFFFF) - 1 - sum(block[148:156]) + 256
    return 0 <= checksum <= BLOCK * 255 and (checksum - total) % 65521 == 0


# A single file's download carries its modification time here (seconds, as repr(float)); a tar's
# members carry their own. The client sets it on the file it writes.
MTIME_HEADER = "X-Floyd-Mtime"


def member_header(name: str, size: int, mode: int = 0o644, mtime: float = 0, is_dir: bool = False) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = 0 if is_dir else size
    info.mode = 0o755 if is_dir else mode
    info.mtime = int(mtime)
    info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape")


def padding(size: int) -> bytes:
    return b"\0" * ((-size) % BLOCK)


END_OF_ARCHIVE = b"\0" * (BLOCK * 2)
