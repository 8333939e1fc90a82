"""A scanned tree's manifest, kept as the scan's files plus their digests and sent as a stream.

A 100,000-file upload held the manifest three times: a dict per entry, the JSON text and its
bytes (the CLI peaked at 184 MiB). Here an entry is formatted only while the request body is
written, a few thousand at a time, so the manifest costs one digest string per file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from floyd.client.dirscan import directory_of
from floyd.client.hashing import LocalFile

BODY_CHUNK = 2000  # entries per chunk of the streamed request body

_quote = json.encoder.encode_basestring_ascii  # json.dumps' own C quoting


@dataclass
class LocalManifest:
    """``files`` (sorted by path) and their hex sha256 ``digests``, in the same order."""

    files: list[LocalFile]
    digests: list[str]
    with_mtime: bool = True  # a bridge from before file times were kept refuses the key

    def __len__(self) -> int:
        return len(self.files)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def by_hash(self) -> dict[str, LocalFile]:
        """hex digest → a file with those bytes (the first one, by path)."""
        out: dict[str, LocalFile] = {}
        for f, digest in zip(self.files, self.digests, strict=True):
            out.setdefault(digest, f)
        return out

    def entries(self) -> Iterator[dict]:
        """The entries as the API spells them (for callers that want the dicts)."""
        for f, digest in zip(self.files, self.digests, strict=True):
            entry: dict = {"path": f.path, "size": f.size, "hash": f"sha256:{digest}"}
            if self.with_mtime:
                entry["mtime"] = f.key[2] / 1e9
            yield entry

    def json_entries(self) -> Iterator[str]:
        """Each entry as JSON text, the bytes ``json.dumps`` would give, without a dict per entry."""
        if not self.with_mtime:
            for f, digest in zip(self.files, self.digests, strict=True):
                yield f'{{"path": {_quote(f.path)}, "size": {f.size}, "hash": "sha256:{digest}"}}'
            return
        for f, digest in zip(self.files, self.digests, strict=True):
            yield (f'{{"path": {_quote(f.path)}, "size": {f.size}, "hash": "sha256:{digest}", '
                   f'"mtime": {float.__repr__(f.key[2] / 1e9)}}}')


def manifest_body(manifest: LocalManifest | Iterable[dict], fields: dict) -> Iterator[bytes]:
    """The JSON object ``{**fields, "manifest": [...]}`` as chunks of bytes, entries formatted as
    they are sent (``fields`` must not hold the key ``manifest``)."""
    head = json.dumps(fields)
    yield f'{head[:-1]}{", " if fields else ""}"manifest": ['.encode()
    texts = manifest.json_entries() if isinstance(manifest, LocalManifest) else (json.dumps(e) for e in manifest)
    batch: list[str] = []
    first = True
    for text in texts:
        batch.append(text)
        if len(batch) >= BODY_CHUNK:
            yield (("" if first else ", ") + ", ".join(batch)).encode()
            batch, first = [], False
    if batch:
        yield (("" if first else ", ") + ", ".join(batch)).encode()
    yield b"]}"


def directories_body(manifest: LocalManifest | Iterable[dict], base: Mapping[str, Any], fields: dict) -> bytes:
    """The JSON object ``{**fields, "base", "directories": {dir: [entries…]}}`` (``base``: a
    ``heads.Changes``): each directory changed since the version it names ("" or "a/b/"), with
    the files of ``manifest`` directly in it (none: it is gone)."""
    assert isinstance(manifest, LocalManifest), "changes are sent from a scanned tree"
    grouped: dict[str, list[str]] = {d: [] for d in base["directories"]}
    for f, text in zip(manifest.files, manifest.json_entries(), strict=True):
        grouped[directory_of(f.path)].append(text)
    head = json.dumps({"base": {"number": base["number"], "version_id": base["version_id"]}, **fields})
    dirs = ", ".join(f"{_quote(d)}: [{', '.join(texts)}]" for d, texts in grouped.items())
    return f'{head[:-1]}, "directories": {{{dirs}}}}}'.encode()
