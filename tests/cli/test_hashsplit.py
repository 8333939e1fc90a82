"""Many small files are hashed by the CLI and worker processes together (client/hashsplit.py):
the digests and the spool are what one process makes, and a worker that fails costs nothing
but time (its files are hashed by the CLI, its spool segment is dropped)."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from floyd.client import hashsplit, spool
from floyd.client.hashing import hash_files
from floyd.client.progress import ProgressObserver
from floyd.client.spool import PackSpool
from floyd.client.treescan import scan
from tests.support.platform import write_tree


class Counting(ProgressObserver):
    def __init__(self) -> None:
        self.advanced = 0

    def advance(self, stage: str, n: int = 1) -> None:
        self.advanced += n


@pytest.fixture
def split_early(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers for a few dozen files, three processes even on one core."""
    monkeypatch.setattr(hashsplit, "SPLIT_AFTER", 10)
    monkeypatch.setattr(hashsplit, "usable_cpus", lambda: 3)


def _tree(tmp_path: Path, n: int = 60) -> tuple[Path, dict[str, bytes]]:
    datas = {f"d{i % 5}/f{i:03d}.bin": os.urandom(i * 37 % 3000) for i in range(n)}
    return write_tree(tmp_path / "t", datas), datas


def _sent(sp: PackSpool, wanted: set[str]) -> tuple[dict[str, bytes], set[str]]:
    """The members the spool sends of ``wanted``, and the names it did not hold."""
    members: dict[str, bytes] = {}

    def take(body: object) -> None:
        with tarfile.open(fileobj=io.BytesIO(b"".join(body)), mode="r:") as tar:  # type: ignore[arg-type]
            members.update({m.name: tar.extractfile(m).read() for m in tar})  # type: ignore[union-attr]

    left = sp.send(wanted, take, ProgressObserver(), 4096, 64 << 20)
    return members, left


def test_workers_hash_and_spool_what_one_process_would(tmp_path: Path, split_early: None,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    tree, datas = _tree(tmp_path)
    started: list[hashsplit.HashWorker] = []
    real = hashsplit.HashWorker
    monkeypatch.setattr(hashsplit, "HashWorker", lambda *a: started.append(real(*a)) or started[-1])
    sp, progress = PackSpool(), Counting()
    digests = hash_files(scan(tree), None, progress, spool=sp)
    assert len(started) == 2 and all(w.done == len(w.files) for w in started)
    assert digests == {p: hashlib.sha256(d).hexdigest() for p, d in datas.items()}
    assert progress.advanced == len(datas)
    assert sp.members == len(datas)  # every file, as one process spools them
    assert sp.bytes == sum(len(d) for d in datas.values())
    unique = {hashlib.sha256(d).hexdigest(): d for d in datas.values()}
    assert _sent(sp, {f"sha256:{h}" for h in unique}) == (unique, set())
    sp.close()


def test_a_worker_that_cannot_run_leaves_its_files_to_the_cli(tmp_path: Path, split_early: None,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashsplit, "WORKER_SCRIPT", str(tmp_path / "missing.py"))  # python exits 2 at once
    tree, datas = _tree(tmp_path)
    sp = PackSpool()
    digests = hash_files(scan(tree), None, spool=sp)
    assert digests == {p: hashlib.sha256(d).hexdigest() for p, d in datas.items()}
    assert 0 < sp.members < len(datas)  # the CLI's own share; the failed workers' files are read again when sent
    assert sp.room() == spool.MAX_BYTES - sp.bytes  # the workers' room was given back
    sp.close()


def test_a_file_gone_since_the_scan_is_reported_as_without_workers(tmp_path: Path, split_early: None) -> None:
    tree, _ = _tree(tmp_path)
    files = scan(tree)
    os.unlink(files[-1].abspath)  # in the last worker's share
    with pytest.raises(FileNotFoundError):
        hash_files(files, None, spool=PackSpool())


def test_the_spool_limit_holds_across_workers(tmp_path: Path, split_early: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool, "MAX_BYTES", 20_000)
    tree, datas = _tree(tmp_path)
    sp = PackSpool()
    digests = hash_files(scan(tree), None, spool=sp)
    assert digests == {p: hashlib.sha256(d).hexdigest() for p, d in datas.items()}
    assert 0 < sp.bytes <= 20_000 and sp.members < len(datas)
    unique = {hashlib.sha256(d).hexdigest(): d for d in datas.values()}
    members, left = _sent(sp, {f"sha256:{h}" for h in unique})
    assert members == {h: d for h, d in unique.items() if h in members}  # each member's own bytes
    assert {f"sha256:{h}" for h in members} | left == {f"sha256:{h}" for h in unique} and left
    sp.close()
