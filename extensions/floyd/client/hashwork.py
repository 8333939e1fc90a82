"""Read and hash small files, keeping their bytes as pack members: in the CLI and in workers.

A module of the client and a script of its own, like ``dirscan.py``: ``hashsplit.py`` runs it as
``python -I -S hashwork.py`` to hash a share of a tree's small files on another core (one
process hashed 100,000 files of 1 KiB in 0.7–0.9 s, two in 0.4 s; threads only fight over the
GIL). So it imports the standard library only, and formats a pack member (a ustar header named
by the blob's hex hash, its bytes, padding) itself: what the server reads (``spool.py``).
"""

from __future__ import annotations

import gc
import hashlib
import marshal
import os
import struct
import sys

BLOCK = 512
PADDING = bytes(BLOCK)
CHUNK = 1 << 20  # a read of a file: files under this size are read with one call
FRAME = struct.Struct("<Q")  # a worker's answer: frames, each its length then a marshalled chunk
CHUNK_FILES = 1024  # files per frame of a worker's answer (what its progress moves by)


def _header_template() -> tuple[bytes, int]:
    """A pack member's ustar header without its name and size, and the sum of its bytes with
    the checksum field as spaces (how tar sums a header)."""
    block = bytearray(BLOCK)
    block[100:108] = b"0000644\0"
    block[108:116] = block[116:124] = b"0000000\0"
    block[136:148] = b"00000000000\0"
    block[148:156] = b" " * 8
    block[156:157] = b"0"
    block[257:265] = b"ustar\x0000"
    return bytes(block), sum(block)


HEADER_TEMPLATE, HEADER_SUM = _header_template()


def member_header(name: str, size: int) -> bytes:
    """The ustar header of a pack member (a hex hash, mode 0644, no times): the template with the
    name and size put in, its checksum summed over those two only (tarfile's tobuf cost more
    than reading a 1 KiB file; summing all 512 bytes, most of the header's own cost)."""
    if size >= 8**11:  # past what 11 octal digits hold: tarfile's own header
        import tarfile

        info = tarfile.TarInfo(name)
        info.size = size
        return info.tobuf(format=tarfile.GNU_FORMAT)
    raw = name.encode("ascii")
    digits = b"%011o\0" % size
    block = bytearray(HEADER_TEMPLATE)
    block[: len(raw)] = raw
    block[124:136] = digits
    block[148:156] = b"%06o\0 " % (HEADER_SUM + sum(raw) + sum(digits))
    return bytes(block)


def member(hexdigest: str, data: bytes) -> bytes:
    """A whole pack member: header, bytes, padding to the next block."""
    return member_header(hexdigest, len(data)) + data + PADDING[: (-len(data)) % BLOCK]


def read_and_hash(path: str, size: int, keep: int) -> tuple[str, bytes | None]:
    """A file's hex sha256, and its bytes when it is at most ``keep`` bytes (for a spool).
    Plain descriptors and one read of the size the scan saw (plus one byte, so growth shows):
    a file object and a 1 MiB buffer per file cost as much as hashing a 1 KiB file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if 0 <= size < CHUNK:  # one read for a small file: most of a tree's files
            data = os.read(fd, size + 1)
            return hashlib.sha256(data).hexdigest(), (data if len(data) <= keep else None)
        h = hashlib.sha256()
        while block := os.read(fd, CHUNK):
            h.update(block)
        return h.hexdigest(), None
    finally:
        os.close(fd)


def hash_share(files: list[tuple[str, int]], spool_fd: int, budget: int, keep: int) -> None:
    """A worker's work: each (path, size) hashed, in order; a file read whole with at most ``keep``
    bytes is appended to ``spool_fd`` as a member while its bytes total stays within ``budget``.
    Frames of (digests, kept) go to stdout as they are done: a digest is None where the file
    could not be read (the CLI reads it again and reports the error itself); ``kept`` has a 1 for
    each file in the spool."""
    out = sys.stdout.buffer
    spool = open(spool_fd, "wb", buffering=1 << 20, closefd=False) if spool_fd >= 0 else None
    for start in range(0, len(files), CHUNK_FILES):
        digests: list[str | None] = []
        kept = bytearray()
        for path, size in files[start:start + CHUNK_FILES]:
            try:
                digest, data = read_and_hash(path, size, keep)
            except OSError:
                digests.append(None)
                kept.append(0)
                continue
            digests.append(digest)
            if spool is not None and data is not None and len(data) == size and size <= budget:
                spool.write(member(digest, data))
                budget -= size
                kept.append(1)
            else:
                kept.append(0)
        if spool is not None:
            spool.flush()  # a frame's members are in the file before the frame says so
        frame = marshal.dumps((digests, bytes(kept)))
        out.write(FRAME.pack(len(frame)) + frame)
        out.flush()


def work() -> None:
    """A worker's main: (files, spool descriptor, budget, keep) marshalled on stdin. No cyclic
    garbage collection: nothing made here is a cycle."""
    gc.disable()
    files, spool_fd, budget, keep = marshal.loads(sys.stdin.buffer.read())
    hash_share(files, spool_fd, budget, keep)


if __name__ == "__main__":
    work()
