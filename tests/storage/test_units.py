"""Pure pieces of the store: path checks, manifests, the streaming tar reader, materialization."""

from __future__ import annotations

import hashlib
import io
import os
import random
import tarfile
from pathlib import Path

import pytest

from jobs_bridge.errors import BadRequest
from jobs_bridge.storage.blobs import BlobStore
from jobs_bridge.storage.manifest import Entry, diff, parse_manifest, version_id
from jobs_bridge.storage.materialize import materialize, remove_tree
from jobs_bridge.storage.paths import clean_relpath, contained
from jobs_bridge.storage.tarstream import TarReader


@pytest.mark.parametrize("ok,expected", [("a", "a"), ("a/b/c.txt", "a/b/c.txt"), ("dir/", "dir"), ("é/ü", "é/ü")])
def test_clean_relpath_accepts(ok: str, expected: str) -> None:
    assert clean_relpath(ok) == expected


@pytest.mark.parametrize("bad", ["", "/abs", "../x", "a/../b", "a//b", ".", "./a", "a\\b", "a\x00", "x" * 2000, None])
def test_clean_relpath_refuses(bad: object) -> None:
    with pytest.raises(BadRequest):
        clean_relpath(bad)


def test_contained_refuses_symlink_escape(tmp_path: Path) -> None:
    (tmp_path / "inside").mkdir()
    (tmp_path / "inside" / "link").symlink_to(tmp_path)
    with pytest.raises(BadRequest):
        contained(tmp_path / "inside", "link/x")
    assert contained(tmp_path, "inside") == (tmp_path / "inside").resolve()


def test_version_id_ignores_order_and_depends_on_paths() -> None:
    h = "sha256:" + "a" * 64
    a = parse_manifest([{"path": "b", "size": 1, "hash": h}, {"path": "a", "size": 1, "hash": h}], 10, 10)
    b = parse_manifest([{"path": "a", "size": 1, "hash": h}, {"path": "b", "size": 1, "hash": h}], 10, 10)
    c = parse_manifest([{"path": "a", "size": 1, "hash": h}, {"path": "c", "size": 1, "hash": h}], 10, 10)
    assert version_id(a) == version_id(b) != version_id(c)
    assert [e.path for e in a] == ["a", "b"]


def test_diff() -> None:
    d = diff({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "9", "d": "4"})
    assert (d.added, d.removed, d.changed) == (["d"], ["c"], ["b"])


class Collector:
    def __init__(self) -> None:
        self.files: dict[str, bytearray] = {}
        self.current = ""

    def member(self, name: str, size: int) -> None:
        self.current = name
        self.files[name] = bytearray()

    def data(self, chunk: memoryview) -> None:
        self.files[self.current].extend(chunk)

    def whole(self, name: str, data: memoryview) -> None:
        assert name not in self.files
        self.files[name] = bytearray(data)
        self.wholes += 1

    wholes = 0


@pytest.mark.parametrize("whole", [False, True], ids=["callbacks", "whole-members"])
@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_tar_reader_any_chunking(fmt: int, whole: bool) -> None:
    rng = random.Random(7)
    long_name = 120 if fmt == tarfile.PAX_FORMAT else 5  # only PAX carries names over 100 bytes here
    members = {f"{'n' * (long_name if i == 3 else 5)}{i}": os.urandom(rng.choice([0, 1, 511, 512, 513, 5000]))
               for i in range(12)}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    wholes = 0
    for _ in range(8):
        sink = Collector()
        reader = TarReader(sink.member, sink.data, lambda: None, sink.whole if whole else None)
        pos = 0
        while pos < len(raw):
            step = rng.randint(1, rng.choice([700, 3000, 20_000]))  # cut anywhere, or whole members in one chunk
            reader.feed(raw[pos:pos + step])
            pos += step
        reader.close()
        assert {k: bytes(v) for k, v in sink.files.items()} == members
        wholes += sink.wholes
    assert (wholes > 0) == whole  # and the fast path did take members whole


def test_tar_reader_refuses_links_and_truncation() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("evil")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    reader = TarReader(lambda n, s: None, lambda d: None, lambda: None)
    with pytest.raises(BadRequest):
        reader.feed(buf.getvalue())
    reader = TarReader(lambda n, s: None, lambda d: None, lambda: None)
    info = tarfile.TarInfo("x")
    info.size = 1000
    reader.feed(info.tobuf() + b"y" * 10)
    with pytest.raises(BadRequest):
        reader.close()


def test_materialize_hardlinks_and_read_only(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", tmp_path / "tmp")
    entries = []
    for path, data in {"a/b.txt": b"one", "c.txt": b"two", "d/e/f.txt": b"one"}.items():
        h = hashlib.sha256(data).hexdigest()
        w = store.writer(h, len(data))
        w.write(data)
        w.finish()
        entries.append(Entry(path, len(data), h))
    target = tmp_path / "v1"
    assert materialize(store, entries, target) == 0
    assert (target / "d/e/f.txt").stat().st_ino == (target / "a/b.txt").stat().st_ino
    assert not os.access(target / "a", os.W_OK) or os.geteuid() == 0
    assert oct((target / "a").stat().st_mode & 0o777) == "0o555"
    remove_tree(target)
    assert not target.exists()
    assert store.exists(hashlib.sha256(b"one").hexdigest())


def test_blob_writer_refuses_lies(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", tmp_path / "tmp")
    h = hashlib.sha256(b"truth").hexdigest()
    w = store.writer(h, 5)
    w.write(b"lies!")
    with pytest.raises(BadRequest):
        w.finish()
    assert not store.exists(h)
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.parametrize("record", [b"0 path=x\n", b"abc path=x\n", b"99 path=x\n", b"-5 path=x\n"])
def test_tar_reader_refuses_malformed_pax(record: bytes) -> None:
    info = tarfile.TarInfo("././@PaxHeader")
    info.type = tarfile.XHDTYPE
    info.size = len(record)
    raw = info.tobuf() + record + b"\0" * ((-len(record)) % 512)
    reader = TarReader(lambda n, s: None, lambda d: None, lambda: None)
    with pytest.raises(BadRequest):
        reader.feed(raw)


def test_gpu_utilization_parsing() -> None:
    from jobs_bridge.resources.gpus import parse_utilization

    csv = "0, 87, 40123\n1, 3, 12\n2, [N/A], 5\n"
    assert parse_utilization(csv, ["0", "2"]) == {"system/gpu0_utilization_percent": 87.0,
                                                   "system/gpu0_memory_mib": 40123.0}


def test_manifest_mtime_is_kept_but_not_part_of_the_id() -> None:
    h = "sha256:" + "0" * 64
    plain = parse_manifest([{"path": "a", "size": 1, "hash": h}], 10, 10)
    timed = parse_manifest([{"path": "a", "size": 1, "hash": h, "mtime": 1_600_000_000.5}], 10, 10)
    assert timed[0].mtime == 1_600_000_000.5 and timed[0].record()["mtime"] == 1_600_000_000.5
    assert version_id(timed) == version_id(plain)
    assert Entry.from_record(timed[0].record()) == timed[0]
    for bad in ({"mtime": -1}, {"mtime": "yesterday"}, {"mtime": True}, {"owner": "x"}):
        with pytest.raises(BadRequest):
            parse_manifest([{"path": "a", "size": 1, "hash": h, **bad}], 10, 10)
