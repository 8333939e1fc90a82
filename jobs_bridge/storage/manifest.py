"""Manifests: the path-sorted ``{path, size, hash}`` list whose sha256 names a version.

The id depends only on content and paths, never on where bytes are stored, so the same
tree gives the same id on any machine (Quilt's "top hash"). An entry may also carry ``mtime``
(seconds since the epoch, as the uploader's file had it): kept so downloads restore it, but not
part of the id, so touching a file does not make a new version.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

from jobs_bridge.errors import BadRequest, TooLarge
from jobs_bridge.storage.blobs import parse_hash
from jobs_bridge.storage.paths import clean_relpath

ENTRY_KEYS = {"path", "size", "hash", "mtime"}


@dataclass(frozen=True)
class Entry:
    path: str
    size: int
    hexdigest: str
    mtime: float | None = None  # never part of the version id

    @property
    def hash(self) -> str:
        return f"sha256:{self.hexdigest}"

    def as_dict(self) -> dict[str, object]:
        return {"path": self.path, "size": self.size, "hash": self.hash}

    def record(self) -> dict[str, object]:
        """What is kept of the entry (``as_dict`` and the mtime, when one was sent)."""
        return self.as_dict() if self.mtime is None else {**self.as_dict(), "mtime": self.mtime}

    @classmethod
    def from_record(cls, d: dict) -> Entry:
        return cls(d["path"], d["size"], parse_hash(d["hash"]), d.get("mtime"))


def parse_manifest(raw: object, max_files: int, max_file_size: int) -> list[Entry]:
    """Validate a manifest from a client and return it sorted by path."""
    if not isinstance(raw, list):
        raise BadRequest("'manifest' must be a list of {path, size, hash[, mtime]} objects.")
    if len(raw) > max_files:
        raise TooLarge(f"A version may hold at most {max_files} files; this manifest lists {len(raw)}.")
    entries: dict[str, Entry] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not {"path", "size", "hash"} <= set(item) <= ENTRY_KEYS:
            raise BadRequest(f"Manifest entry {i} must be an object with 'path', 'size', 'hash' and "
                             "optionally 'mtime', nothing else.")
        path = clean_relpath(item.get("path"), f"path in manifest entry {i}")
        size = item.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BadRequest(f"Manifest entry {path!r}: 'size' must be a non-negative integer.")
        if size > max_file_size:
            raise TooLarge(f"File {path!r} is {size} bytes; the largest file allowed is {max_file_size} bytes.")
        hexdigest = parse_hash(item.get("hash"))
        if path in entries:
            raise BadRequest(f"Manifest lists {path!r} twice.")
        entries[path] = Entry(path, size, hexdigest, check_mtime(item.get("mtime"), path))
    for path in entries:
        parent = path.rpartition("/")[0]
        while parent:
            if parent in entries:
                raise BadRequest(f"Manifest lists {parent!r} as a file and as a directory of {path!r}.")
            parent = parent.rpartition("/")[0]
    return [entries[p] for p in sorted(entries)]


def check_mtime(value: object, path: str) -> float | None:
    """An entry's optional modification time: a finite number of seconds since the epoch."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise BadRequest(f"Manifest entry {path!r}: 'mtime' must be seconds since the epoch (a number ≥ 0).")
    return float(value)


def canonical_bytes(entries: list[Entry]) -> bytes:
    ordered = sorted(entries, key=lambda e: e.path)
    return json.dumps([e.as_dict() for e in ordered], sort_keys=True, separators=(",", ":")).encode()


def version_id(entries: list[Entry]) -> str:
    return "sha256:" + hashlib.sha256(canonical_bytes(entries)).hexdigest()


@dataclass(frozen=True)
class Diff:
    added: list[str]
    removed: list[str]
    changed: list[str]


def diff(old: dict[str, str], new: dict[str, str]) -> Diff:
    """Compare two ``{path: hash}`` maps."""
    return Diff(
        added=sorted(set(new) - set(old)),
        removed=sorted(set(old) - set(new)),
        changed=sorted(p for p in set(old) & set(new) if old[p] != new[p]),
    )
