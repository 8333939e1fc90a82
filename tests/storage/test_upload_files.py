"""An open upload's manifest file: the starting request's own bytes, read back as the same
entries; directories written before that layout still read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs_bridge.datasets import upload_files
from jobs_bridge.storage.manifest import Entry, parse_manifest

RAW = [{"path": "b/c.txt", "size": 2, "hash": "sha256:" + "c" * 64, "mtime": 1.5},
       {"path": "a.txt", "size": 1, "hash": "sha256:" + "a" * 64}]


def test_the_request_is_kept_byte_for_byte_and_reads_back_sorted(tmp_path: Path) -> None:
    body = json.dumps({"message": "m", "manifest": RAW, "allow_duplicate": True}).encode()
    entries = parse_manifest(RAW, 10, 10)
    upload_files.write(tmp_path / "up", entries, True, body)
    assert body in (tmp_path / "up" / "manifest.json").read_bytes()
    assert upload_files.read(tmp_path / "up") == (entries, True)
    assert [e.path for e in entries] == ["a.txt", "b/c.txt"]
    assert upload_files.index(tmp_path / "up").size("c" * 64) == 2


def test_entries_without_a_request_and_the_old_layout(tmp_path: Path) -> None:
    entries = [Entry("a.txt", 1, "a" * 64), Entry("b/c.txt", 2, "c" * 64, 1.5), Entry("é \"q\"", 0, "e" * 64, 0.0)]
    upload_files.write(tmp_path / "new", entries, False, None)  # as columns: the file times bit for bit
    assert upload_files.read(tmp_path / "new") == (entries, False)
    assert [e.mtime for e in upload_files.read(tmp_path / "new")[0]] == [None, 1.5, 0.0]
    old = tmp_path / "old"
    old.mkdir()
    (old / "manifest.json").write_text(json.dumps({"entries": [e.record() for e in entries], "allow_duplicate": True}))
    assert upload_files.read(old) == (entries, True)
    assert upload_files.index(old).size("a" * 64) == 1  # no blobs.idx: built from the manifest


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "up" / "blobs.idx").mkdir(parents=True)  # the index cannot be written
    with pytest.raises(IsADirectoryError):
        upload_files.write(tmp_path / "up", parse_manifest(RAW, 10, 10), False, b'{"manifest": []}')
    assert not (tmp_path / "up").exists()
