"""The client reads each small file once: what it hashed goes to a spool of pack members and is
sent from there (client/spool.py); larger files, files past the spool's size and files the
server already holds are not spooled or not sent. The bytes sent are the bytes hashed."""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from floyd.client import FloydClient, spool, transfer
from floyd.client.hashing import hash_files
from floyd.client.progress import ProgressObserver
from floyd.client.spool import PackSpool
from floyd.client.transfer import upload
from floyd.client.treescan import LocalFile, scan
from tests.support.platform import User, write_tree


def _tar_members(chunks: Iterator[bytes]) -> dict[str, bytes]:
    import io

    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks)), mode="r:") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]


def test_hashing_spools_small_files_and_sends_each_wanted_one_once(tmp_path: Path) -> None:
    datas = {"a.bin": os.urandom(10), "b.bin": os.urandom(3000), "same.bin": b"", "big.bin": os.urandom(70_000)}
    datas["same.bin"] = datas["a.bin"]  # one blob under two paths: sent once
    tree = write_tree(tmp_path / "t", datas)
    files = scan(tree)
    sp = PackSpool()
    digests = hash_files(files, None, spool=sp)
    assert digests == {p: hashlib.sha256(d).hexdigest() for p, d in datas.items()}
    assert sp.members == 3  # big.bin is past MAX_FILE: read again when sent
    packs: list[dict[str, bytes]] = []
    wanted = {f"sha256:{digests[p]}" for p in ("a.bin", "b.bin", "big.bin")}
    left = sp.send(set(wanted), lambda body: packs.append(_tar_members(body)), ProgressObserver(), 4096, 64 << 20)
    assert left == {f"sha256:{digests['big.bin']}"}
    assert packs == [{digests["a.bin"]: datas["a.bin"], digests["b.bin"]: datas["b.bin"]}]
    sp.close()


def test_packs_split_by_count(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "t", {f"f{i}": os.urandom(50) for i in range(7)})
    sp = PackSpool()
    digests = hash_files(scan(tree), None, spool=sp)
    packs: list[dict[str, bytes]] = []
    left = sp.send({f"sha256:{h}" for h in digests.values()}, lambda body: packs.append(_tar_members(body)),
                   ProgressObserver(), 3, 64 << 20)
    assert left == set() and [len(p) for p in packs] == [3, 3, 1]
    assert {h for p in packs for h in p} == set(digests.values())


def test_the_spool_has_a_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool, "MAX_BYTES", 250)
    tree = write_tree(tmp_path / "t", {f"f{i}": os.urandom(100) for i in range(5)})
    sp = PackSpool()
    hash_files(scan(tree), None, spool=sp)
    assert sp.members == 2 and sp.bytes == 200


def test_a_file_that_changed_since_the_scan_is_not_spooled(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "t", {"grows.txt": b"x" * 10})
    [f] = scan(tree)
    (tree / "grows.txt").write_bytes(b"x" * 20)
    sp = PackSpool()
    hash_files([LocalFile(f.path, f.abspath, f.size, f.key)], None, spool=sp)
    assert sp.members == 0  # sent the long way, whose stat check says the file changed


def test_an_upload_reads_each_small_file_once(alice: User, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = "spooled-" + hashlib.md5(os.urandom(8)).hexdigest()[:8]
    assert alice.api("POST", "datasets", json={"name": name}).status_code == 201
    datas = {f"d{i % 4}/f{i}.txt": f"{name} {i}".encode() for i in range(60)}
    datas["large.bin"] = os.urandom(100_000)
    tree = write_tree(tmp_path / name, datas)

    reopened: list[str] = []
    real = transfer.pack_stream

    def counting(batch: list[tuple[str, LocalFile]], observer: ProgressObserver) -> Iterator[bytes]:
        reopened.extend(f.path for _, f in batch)
        return real(batch, observer)

    monkeypatch.setattr(transfer, "pack_stream", counting)
    client = FloydClient(alice.platform.url, alice.token)
    result = upload(client, "alice", name, tree, "spooled")
    assert result.sent_files == 61 and result.sent_bytes == sum(len(d) for d in datas.values())
    assert reopened == ["large.bin"]  # only the file past the spool's per-file size
    for rel in ("d3/f7.txt", "large.bin"):
        got = client.download("alice", name, result.version["number"], rel).content
        assert got == datas[rel]
