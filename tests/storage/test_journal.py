"""Small blobs received in packs are journaled, then written out as files of the store: by a
drain, for a reader, at start-up after a crash (torn and damaged records skipped), and never
lost to a full disk in the middle of a drain."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from jobs_bridge.storage import journal
from jobs_bridge.storage.blobs import BlobStore
from jobs_bridge.storage.manifest import Entry
from jobs_bridge.storage.trees import build


def _blobs(n: int, size: int = 100) -> list[tuple[str, bytes]]:
    datas = [os.urandom(size) for _ in range(n)]
    return [(hashlib.sha256(d).hexdigest(), d) for d in datas]


def _store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs" / "sha256", tmp_path / "tmp")


def _journaled(store: BlobStore, n: int) -> list[tuple[str, bytes]]:
    """``n`` new blobs in one closed journal file of ``store``."""
    blobs = _blobs(n)
    writer = store.journal.writer()
    for h, d in blobs:
        writer.add(h, d)
    writer.close()
    return blobs


def test_journaled_blobs_become_files_once_drained(tmp_path: Path) -> None:
    store = _store(tmp_path)
    blobs = _blobs(5)
    writer = store.journal.writer()
    assert all(writer.add(h, d) == [] for h, d in blobs)  # nothing recorded before the file is whole
    assert not store.journal.pending
    assert writer.close() == [h for h, _ in blobs]
    assert store.journal.pending and not store.path(blobs[0][0]).exists()
    assert store.journal.drain() == 5
    assert not store.journal.pending
    assert all(store.path(h).read_bytes() == d for h, d in blobs)
    assert list((tmp_path / "blobs" / "journal").iterdir()) == []


def test_a_journal_file_rotates_and_hands_over_its_hashes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal, "ROTATE_RECORDS", 3)
    store = _store(tmp_path)
    blobs = _blobs(7)
    writer = store.journal.writer()
    handed = [writer.add(h, d) for h, d in blobs]
    assert [len(x) for x in handed] == [0, 0, 3, 0, 0, 3, 0]
    assert writer.close() == [blobs[6][0]]
    assert len(list((tmp_path / "blobs" / "journal").glob("*.journal"))) == 3


def test_a_reader_and_a_tree_get_the_files(tmp_path: Path) -> None:
    store = _store(tmp_path)
    (h, d), _ = _journaled(store, 2)
    assert store.file(h).read_bytes() == d  # written out for the reader
    (h3, d3), = _journaled(store, 1)
    build(store, [Entry("a/x", len(d3), h3), Entry("b", len(d), h)], tmp_path / "tree")
    assert (tmp_path / "tree" / "a" / "x").read_bytes() == d3


def test_recovery_keeps_whole_records_and_drops_unfinished_journals(tmp_path: Path) -> None:
    store = _store(tmp_path)
    blobs = _journaled(store, 4)
    [path] = (tmp_path / "blobs" / "journal").glob("*.journal")
    raw = bytearray(path.read_bytes())
    second = len(journal.MAGIC) + journal.RECORD_HEADER + 100 + journal.RECORD_HEADER
    raw[second] ^= 0xFF  # the second blob's bytes damaged
    path.write_bytes(bytes(raw[:-50]))  # the last record torn
    unfinished = tmp_path / "blobs" / "journal" / "x-1.journal.part"
    unfinished.write_bytes(journal.MAGIC)

    restarted = _store(tmp_path)  # a new bridge: nothing queued in memory
    actions = restarted.journal.recover()
    assert any("unfinished journal" in a for a in actions) and any("wrote" in a for a in actions)
    assert restarted.path(blobs[0][0]).read_bytes() == blobs[0][1]
    assert restarted.path(blobs[2][0]).read_bytes() == blobs[2][1]
    assert not restarted.path(blobs[1][0]).exists() and not restarted.path(blobs[3][0]).exists()
    assert list((tmp_path / "blobs" / "journal").iterdir()) == []


def test_a_failed_drain_keeps_its_journals_for_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(tmp_path)
    blobs = _journaled(store, 3)

    def full(data: memoryview, hexdigest: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.journal, "_put", full)
    with pytest.raises(OSError):
        store.journal.drain()
    assert store.journal.pending and list((tmp_path / "blobs" / "journal").glob("*.journal"))
    monkeypatch.undo()
    assert store.journal.drain() == 3
    assert all(store.path(h).exists() for h, _ in blobs) and not store.journal.pending


def test_a_full_disk_while_journaling_records_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    (h, d), = _blobs(1)
    writer = store.journal.writer()
    writer.add(h, d)

    class Full:
        def write(self, data: bytes) -> int:
            raise OSError(28, "No space left on device")

        def close(self) -> None:
            raise OSError(28, "No space left on device")

    writer._fh = Full()  # type: ignore[assignment]  # the disk fills up under the open journal
    with pytest.raises(OSError):
        writer.add(*_blobs(1)[0])
    assert writer.close() == [] and not store.journal.pending
    assert list((tmp_path / "blobs" / "journal").iterdir()) == []


def test_recovery_repairs_a_blob_file_a_crash_left_half_written(tmp_path: Path) -> None:
    """A drain writes files in place; after a crash mid-drain the journal is still there and
    start-up rewrites any file whose bytes are not the blob's (short, or zero-filled by ext4)."""
    store = _store(tmp_path)
    (h, d), (h2, d2) = _journaled(store, 2)
    store.path(h).parent.mkdir(parents=True, exist_ok=True)
    store.path(h).write_bytes(bytes(len(d)))  # the crash: size right, bytes never written
    store.path(h2).parent.mkdir(parents=True, exist_ok=True)
    store.path(h2).write_bytes(d2[:10])  # …or short
    _store(tmp_path).journal.recover()
    assert store.path(h).read_bytes() == d and store.path(h2).read_bytes() == d2
