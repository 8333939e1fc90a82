"""Manifests: the path-sorted ``{path, size, hash}`` list whose sha256 names a version.

The id depends only on content and paths, never on where bytes are stored, so the same
tree gives the same id on any machine (Quilt's "top hash").
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from jobs_bridge.errors import BadRequest, TooLarge
from jobs_bridge.storage.blobs import parse_hash
from jobs_bridge.storage.paths import clean_relpath


@dataclass(frozen=True)
class Entry:
    path: str
    size: int
    hexdigest: str

    @property
    def hash(self) -> str:
        return f"sha256:{self.hexdigest}"

    def as_dict(self) -> dict[str, object]:
        return {"path": self.path, "size": self.size, "hash": self.hash}


def parse_manifest(raw: object, max_files: int, max_file_size: int) -> list[Entry]:
    """Validate a manifest from a client and return it sorted by path."""
    if not isinstance(raw, list):
        raise BadRequest("'manifest' must be a list of {path, size, hash} objects.")
    if len(raw) > max_files:
        raise TooLarge(f"A version may hold at most {max_files} files; this manifest lists {len(raw)}.")
    entries: dict[str, Entry] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or set(item) != {"path", "size", "hash"}:
            raise BadRequest(f"Manifest entry {i} must be an object with exactly 'path', 'size' and 'hash'.")
        path = clean_relpath(item.get("path"), f"path in manifest entry {i}")
        size = item.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BadRequest(f"Manifest entry {path!r}: 'size' must be a non-negative integer.")
        if size > max_file_size:
            raise TooLarge(f"File {path!r} is {size} bytes; the largest file allowed is {max_file_size} bytes.")
        hexdigest = parse_hash(item.get("hash"))
        if path in entries:
            raise BadRequest(f"Manifest lists {path!r} twice.")
        entries[path] = Entry(path, size, hexdigest)
    for path in entries:
        parent = path.rpartition("/")[0]
        while parent:
            if parent in entries:
                raise BadRequest(f"Manifest lists {parent!r} as a file and as a directory of {path!r}.")
            parent = parent.rpartition("/")[0]
    return [entries[p] for p in sorted(entries)]


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
