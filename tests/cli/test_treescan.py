"""The client's tree scan: worker processes find what one process finds, with the same fingerprint."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from floyd.client.errors import FloydClientError
from floyd.client.treescan import TreeScan, scan_tree
from tests.support.platform import write_tree


@pytest.fixture
def big_tree(tmp_path: Path) -> Path:
    """24 top directories, some nested, a file symlink, a directory symlink deep inside, a marker."""
    root = tmp_path / "tree"
    write_tree(root, {f"d{i:02d}/{'sub/' * (i % 3)}f{j}.txt": f"{i}-{j}".encode() for i in range(24) for j in range(5)})
    write_tree(root, {"top.txt": b"top", ".floyddata": b"{}", "d07/sub/deep.bin": os.urandom(3000)})
    (root / "d03" / "link.txt").symlink_to(root / "top.txt")
    (root / "d05" / "sub" / "dirlink").symlink_to(root / "d01")
    return root


def describe(tree: TreeScan) -> tuple[list[tuple[str, int]], int, int, str, list[str]]:
    return ([(f.path, f.size) for f in tree.files], tree.count, tree.total_bytes, tree.fingerprint,
            sorted(tree.skipped))


def test_workers_find_what_one_process_finds(big_tree: Path) -> None:
    alone = scan_tree(big_tree, processes=1)
    shared = scan_tree(big_tree, fanout_after=1, processes=3)
    assert alone.workers == 0 and shared.workers == 2
    assert describe(shared) == describe(alone)
    paths = [f.path for f in alone.files]
    assert paths == sorted(paths) and len(paths) == 24 * 5 + 3  # + top.txt, deep.bin, link.txt
    assert ".floyddata" not in paths and "d03/link.txt" in paths
    assert alone.skipped == ["d05/sub/dirlink"]
    assert all(os.path.isabs(f.abspath) and Path(f.abspath).is_file() for f in shared.files)


def test_fingerprint_follows_names_times_and_content(big_tree: Path) -> None:
    first = scan_tree(big_tree, fanout_after=1, processes=2).fingerprint
    assert scan_tree(big_tree, processes=1).fingerprint == first
    os.utime(big_tree / "d11" / "sub" / "sub" / "f2.txt", (1, 1))
    touched = scan_tree(big_tree, fanout_after=1, processes=2).fingerprint
    assert touched != first
    (big_tree / "d11" / "sub" / "sub" / "f2.txt").rename(big_tree / "d11" / "sub" / "sub" / "g2.txt")
    renamed = scan_tree(big_tree, processes=1).fingerprint
    assert renamed not in (first, touched)
    (big_tree / "d20" / "empty").mkdir()  # a directory with no files changes no manifest
    assert scan_tree(big_tree, fanout_after=1, processes=4).fingerprint == renamed


def test_a_worker_that_cannot_run_leaves_its_share_here(big_tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alone = scan_tree(big_tree, processes=1)
    monkeypatch.setattr(sys, "executable", "/bin/false")  # starts, then exits 1 with no answer
    failed = scan_tree(big_tree, fanout_after=1, processes=3)
    assert failed.workers == 0 and describe(failed) == describe(alone)
    monkeypatch.setattr(sys, "executable", str(big_tree / "no-such-python"))  # cannot start at all
    missing = scan_tree(big_tree, fanout_after=1, processes=3)
    assert missing.workers == 0 and describe(missing) == describe(alone)


def test_a_worker_that_dies_after_its_header(big_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The header counts, the files come from scanning the share here."""
    fake = tmp_path / "python-header-only"
    fake.write_text(f"""#!{sys.executable}
import struct, subprocess, sys
real = subprocess.Popen([{sys.executable!r}, *sys.argv[1:]], stdin=sys.stdin, stdout=subprocess.PIPE)
while (said := real.stdout.read(1)) == b"+":  # batches asked for: passed on (stdin is shared)
    sys.stdout.buffer.write(said)
    sys.stdout.buffer.flush()
head = real.stdout.read(8)
sys.stdout.buffer.write(said + head + real.stdout.read(struct.unpack("<Q", head)[0]))
real.kill()
sys.exit(3)
""")
    fake.chmod(0o755)
    alone = scan_tree(big_tree, processes=1)
    monkeypatch.setattr(sys, "executable", str(fake))
    cut = scan_tree(big_tree, fanout_after=1, processes=3)
    assert cut.workers == 2 and describe(cut) == describe(alone)


def test_a_single_file_and_a_missing_path(tmp_path: Path) -> None:
    one = tmp_path / "one.csv"
    one.write_bytes(b"a,b\n")
    tree = scan_tree(one)
    assert [(f.path, f.size) for f in tree.files] == [("one.csv", 4)] and tree.count == 1
    link = tmp_path / "elsewhere" / "link.csv"  # another directory and name than its target's
    link.parent.mkdir()
    link.symlink_to(one)
    [f] = scan_tree(link).files
    assert f.path == "link.csv" and Path(f.abspath).read_bytes() == b"a,b\n"
    with pytest.raises(FloydClientError, match="neither a file nor a directory"):
        scan_tree(tmp_path / "nothing")


def test_workers_make_their_files_only_when_asked(big_tree: Path) -> None:
    """An unchanged tree needs the workers' headers only: dropped unasked, they end without
    making their files (``body`` read as empty); asked, they send them."""
    alone = scan_tree(big_tree, processes=1)
    unasked = scan_tree(big_tree, fanout_after=1, processes=3)
    workers = list(unasked._workers)
    assert len(workers) == 2 and unasked.fingerprint == alone.fingerprint
    del unasked  # as the CLI drops an unchanged tree
    for w in workers:
        w.thread.join(10)
        assert not w.thread.is_alive() and w.returncode == 0 and w.body == b""
    asked = scan_tree(big_tree, fanout_after=1, processes=3)
    workers = list(asked._workers)
    assert describe(asked) == describe(alone)
    assert all(w.returncode == 0 and w.body for w in workers)


def test_a_scan_under_way_lets_its_workers_go_when_dropped(big_tree: Path) -> None:
    """The CLI starts a scan, then asks who the user is: if that fails, the workers end too."""
    from floyd.client.treescan import start_scan

    scan = start_scan(big_tree, fanout_after=1, processes=3)
    workers = list(scan._workers)
    assert len(workers) == 2
    del scan
    for w in workers:
        w.thread.join(10)
        assert not w.thread.is_alive() and w.returncode == 0


def test_a_busy_caller_leaves_the_scan_to_its_workers(big_tree: Path) -> None:
    """Subtrees are taken by whichever process is free: while the caller does other work (the CLI
    asks who the user is), the worker takes every batch, and the caller scans none of them."""
    import time

    from floyd.client.treescan import start_scan

    alone = scan_tree(big_tree, processes=1)
    scan = start_scan(big_tree, fanout_after=1, processes=2)
    [worker] = scan._workers
    time.sleep(1.0)  # the caller busy elsewhere
    tree = scan.finish()
    assert worker.header is not None
    count, total, _skipped, _digests = worker.header
    assert count == alone.count - 1  # all but top.txt, which the caller found before dealing out
    assert describe(tree) == describe(alone)
