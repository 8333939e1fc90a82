"""Dataset upload benchmark: how close does `floyd data upload` get to plain tools?

Generates an incompressible tree (many small files in nested directories plus a few
large ones), starts a real platform the way ``make up`` does (tests.support.platform), and
measures, side by side with a baseline doing comparable work on the same files:

  dataset_first_upload        upload+commit of a new dataset  vs  sha256sum + cp -r
  reupload_unchanged_1g_10k   the same tree again (duplicate)  vs  the first upload
  one_change_10k              one small file rewritten         vs  the first upload
  dataset_materialized_read   read the committed version tree  vs  read the source tree
  dataset_hash_only           scan + hash_files (no cache)     vs  sha256sum
  ls_table_100k               `floyd data ls -r` of 100k files as a table  vs  the same with --json
  ls_peak_rss_100k            that table's peak RSS (goal: at most 100 MiB)  vs  --json's

The listing rows need no generated tree: the 100k-file version is made from a generated manifest
(100 distinct small blobs, one pack). ``--only listing`` (or ``--only upload``) runs one part.

The 100,000 × 1 KiB rows (first_upload_100k, reupload_unchanged_100k, diff_100k, the CLI's
and the bridge's memory) are in datasets_scale.py.

One JSON object per measurement on stdout; logs on stderr. Page caches are not dropped
(that needs root and is unreliable); everything is read once first so both sides start
warm, and ``sync`` runs before each timed step so writeback of earlier steps does not
land inside it.

    .venv/bin/python benchmarks/datasets.py [--quick] [--keep DIR] [--only upload|listing]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from common import GiB, MiB, cli, fmt, io_pressure, log, median, wait_io_quiet
from common import emit as emit_record

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from floyd.client.hashing import hash_files  # noqa: E402
from floyd.client.http import FloydClient  # noqa: E402
from floyd.client.progress import ProgressObserver  # noqa: E402
from floyd.client.statcache import StatCache  # noqa: E402
from floyd.client.transfer import UploadResult, upload  # noqa: E402
from floyd.client.treescan import scan  # noqa: E402
from tests.support.platform import VENV_BIN, Platform  # noqa: E402

READ_BUF = MiB


# -- data ------------------------------------------------------------------------------
@dataclass
class Tree:
    root: Path
    small: list[Path]
    large: list[Path]
    total_bytes: int

    @property
    def files(self) -> int:
        return len(self.small) + len(self.large)


def generate(root: Path, small_files: int, total_bytes: int, large_files: int = 4) -> Tree:
    """Random-content files (os.urandom: incompressible) with seeded sizes and layout.

    Small files are 1–64 KiB spread over two directory levels; the large files share
    whatever is left of ``total_bytes`` so the tree has both of the upload's code paths
    (tar packs for small files, resumable blob PUTs for files of 8 MiB and more).
    """
    rng = random.Random(42)
    small: list[Path] = []
    used = 0
    for i in range(small_files):
        size = rng.randint(1 << 10, 64 << 10)
        p = root / f"d{rng.randrange(20):02d}" / f"e{rng.randrange(10)}" / f"f{i:05d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(size))
        small.append(p)
        used += size
    large: list[Path] = []
    rest = max(total_bytes - used, large_files * 16 * MiB)
    each = rest // large_files
    (root / "large").mkdir(parents=True, exist_ok=True)
    for i in range(large_files):
        p = root / "large" / f"part{i}.bin"
        with open(p, "wb") as fh:
            left = each
            while left:
                n = min(left, 8 * MiB)
                fh.write(os.urandom(n))
                left -= n
        large.append(p)
        used += each
    return Tree(root, small, large, used)


def read_tree(root: Path) -> tuple[int, int]:
    """Read every byte of every file under ``root``; returns (files, bytes)."""
    buf = bytearray(READ_BUF)
    view = memoryview(buf)
    files = total = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            with open(os.path.join(dirpath, name), "rb", buffering=0) as fh:
                while n := fh.readinto(view):
                    total += n
            files += 1
    return files, total


# -- timing ----------------------------------------------------------------------------
def tree_built(path: Path, timeout: float = 120.0) -> None:
    """Wait until a version's tree exists: the bridge builds it after the commit has answered."""
    deadline = time.monotonic() + timeout
    while not path.is_dir() and time.monotonic() < deadline:
        time.sleep(0.1)


def sum_and_copy(src: Path, dest: Path) -> tuple[float, float]:
    """The first upload's baseline: seconds of ``sha256sum`` over ``src``, then of ``cp -r`` to ``dest``."""
    settle(src)
    t0 = time.perf_counter()
    sha256sum(src)
    t1 = time.perf_counter()
    subprocess.run(["cp", "-r", str(src), str(dest)], check=True)
    return t1 - t0, time.perf_counter() - t1


def settle(*warm: Path) -> None:
    """Flush earlier writes and re-read the inputs just before a timed step.

    The sync keeps writeback of the previous step out of this one, and so does waiting for
    the disk to be quiet (``common.wait_io_quiet``: deletions go on in the background). The
    re-read matters on this kind of VM: DAMON reclaim pages out memory untouched for ~60 s,
    so a tree read once at the start is not reliably still cached minutes later.
    """
    os.sync()
    waited = wait_io_quiet()
    if waited > 2:
        log(f"waited {waited:.0f} s for I/O pressure to fall (now {io_pressure()} %)")
    for path in warm:
        read_tree(path)


def timed(fn: Callable[[], Any], *warm: Path) -> tuple[float, Any]:
    """Settle (sync, re-warm ``warm``), then time ``fn``."""
    settle(*warm)
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def sha256sum(root: Path) -> None:
    subprocess.run(f"find {sh(root)} -type f -print0 | xargs -0 sha256sum > /dev/null", shell=True, check=True)


def sh(path: Path) -> str:
    return "'" + str(path).replace("'", "'\\''") + "'"


class PhaseTimer(ProgressObserver):
    """Splits an upload's wall time into scan, hash, manifest POST, send and commit.

    Only the observer hooks transfer.upload already calls are used: the 'hash' stage
    starts after the scan, hashing ends when its counter reaches the total, 'send'
    starts once the server answered the manifest, 'commit' starts after the last byte.
    """

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.marks: dict[str, float] = {}
        self.totals: dict[str, int] = {}
        self.done: dict[str, int] = {}

    def stage(self, name: str, total: int, unit: str) -> None:
        self.marks[f"{name}_start"] = time.perf_counter()
        self.totals[name] = total
        self.done[name] = 0
        if name == "hash" and total == 0:
            self.marks["hash_end"] = self.marks["hash_start"]

    def advance(self, name: str, amount: int) -> None:
        self.done[name] = self.done.get(name, 0) + amount
        if name == "hash" and self.done[name] >= self.totals.get(name, 0):
            self.marks["hash_end"] = time.perf_counter()

    def phases(self, end: float) -> dict[str, float]:
        m = self.marks
        out: dict[str, float] = {}
        if "hash_start" in m:
            out["scan_s"] = m["hash_start"] - self.t0
        if "hash_start" in m and "hash_end" in m:
            out["hash_s"] = m["hash_end"] - m["hash_start"]
        after_hash = m.get("hash_end")
        if after_hash is not None:
            out["manifest_s"] = m.get("send_start", end) - after_hash
        if "send_start" in m:
            out["send_s"] = m.get("commit_start", end) - m["send_start"]
        if "commit_start" in m:
            out["commit_s"] = end - m["commit_start"]
        return {k: round(v, 3) for k, v in out.items()}


@dataclass
class UploadRun:
    seconds: float
    result: UploadResult
    phases: dict[str, float] = field(default_factory=dict)


def run_upload(client: FloydClient, owner: str, name: str, root: Path, cache: StatCache, message: str) -> UploadRun:
    settle(root)
    timer = PhaseTimer()
    t0 = timer.t0 = time.perf_counter()
    result = upload(client, owner, name, root, message, observer=timer, cache=cache)
    end = time.perf_counter()
    return UploadRun(end - t0, result, timer.phases(end))


def median_run(runs: list[UploadRun]) -> UploadRun:
    """The run with the median time, so its phase split adds up to the reported value."""
    return sorted(runs, key=lambda r: r.seconds)[(len(runs) - 1) // 2]


# Every measurement here starts from warm page caches (see settle), and says so.
emit = partial(emit_record, cache="warm")


# -- the benchmark ---------------------------------------------------------------------
def bench(base: Path, quick: bool, only: str | None = None) -> None:
    if only != "listing":
        bench_upload(base, quick)
    if only != "upload":
        bench_listing(base, quick)


def bench_upload(base: Path, quick: bool) -> None:
    small_files, total = (1_000, 100 * MiB) if quick else (10_000, GiB)
    repeats = 1 if quick else 3
    fresh_uploads = 1 if quick else 3

    src = base / "src"
    log(f"generating {small_files} small files + 4 large, {total / MiB:.0f} MiB total, in {src}")
    t = time.perf_counter()
    tree = generate(src, small_files, total)
    log(f"generated {tree.files} files, {tree.total_bytes / MiB:.1f} MiB in {time.perf_counter() - t:.1f}s")
    os.sync()
    read_tree(src)  # warm the page cache for both sides
    common = {"files": tree.files, "bytes": tree.total_bytes, "mode": "quick" if quick else "full"}

    platform = Platform.create(base / "platform")
    try:
        t = time.perf_counter()
        platform.start()
        log(f"platform up at {platform.url} in {time.perf_counter() - t:.1f}s (FLOYD_ROOT={platform.root})")

        # (e) hashing alone, and sha256sum, to explain (a); the two sides alternate.
        hash_runs, sum_runs, scan_runs = [], [], []
        for _ in range(repeats):
            scan_s, files = timed(lambda: scan(src), src)
            hash_s, _ = timed(lambda f=files: hash_files(f, None))
            hash_runs.append(scan_s + hash_s)
            scan_runs.append(scan_s)
            sum_runs.append(timed(lambda: sha256sum(src), src)[0])
        log(f"scan+hash_files {fmt(hash_runs)}  sha256sum {fmt(sum_runs)}")

        # (a) first upload vs sha256sum + cp -r, alternating which goes first. Every round
        # uploads a tree of its own (same layout and sizes, other bytes) into a dataset of its
        # own, so the store has none of its blobs; the last round's tree is the corpus the later
        # rows use. Nothing is deleted until the end: on ext4 without a journal every inode
        # allocation skips each inode freed in the last minute (datasets_scale.py, NO_DELETE_BEFORE),
        # and deleting one round's copy or dataset charged the next timed step for it.
        user = platform.user("bench")
        client = FloydClient(platform.url, user.token)
        owner = user.name
        baseline_runs, sum_part, cp_part = [], [], []
        firsts: list[UploadRun] = []
        cache: StatCache | None = None
        for i in range(fresh_uploads):
            last = i == fresh_uploads - 1
            round_src = src if last else base / f"src-round{i}"
            if not last:
                generate(round_src, small_files, total)
            dest = base / "platform" / f"cp-copy{i}"  # next to FLOYD_ROOT: same filesystem
            name = "corpus" if last else f"scratch{i}"
            client.create_dataset(name)
            if cache is not None:
                cache.close()
            cache = StatCache(base / f"stat-cache-{i}.sqlite")  # fresh: every file is hashed
            baseline_first = i % 2 == 0
            if baseline_first:
                sum_s, cp_s = sum_and_copy(round_src, dest)
            run = run_upload(client, owner, name, round_src, cache, "first")
            if not baseline_first:
                sum_s, cp_s = sum_and_copy(round_src, dest)
            baseline_runs.append(sum_s + cp_s)
            sum_part.append(sum_s)
            cp_part.append(cp_s)
            log(f"round {i + 1}: sha256sum+cp {baseline_runs[-1]:.2f}s (cp {cp_part[-1]:.2f}s); "
                f"upload {run.seconds:.2f}s {run.phases}, sent {run.result.sent_bytes} bytes")
            firsts.append(run)
        assert cache is not None
        first = median_run(firsts)
        first_s = first.seconds
        emit("dataset_first_upload", first_s, "find|xargs sha256sum + cp -r of the same tree (same filesystem)",
             statistics.median(baseline_runs), goal=1.3, runs=fmt(r.seconds for r in firsts),
             baseline_runs=fmt(baseline_runs), baseline_sha256sum_s=round(statistics.median(sum_part), 3),
             baseline_cp_s=round(statistics.median(cp_part), 3), sent_bytes=first.result.sent_bytes,
             sent_files=first.result.sent_files,
             send_mib_s=round(first.result.sent_bytes / MiB / max(first.phases.get("send_s", 0.0), 1e-9), 1),
             **first.phases, **common)

        # (b) the unchanged tree again: the stat cache answers every hash, the server says duplicate.
        re_runs = []
        for _ in range(repeats):
            run = run_upload(client, owner, "corpus", src, cache, "again")
            if not run.result.duplicate or run.result.sent_bytes:
                log(f"WARNING: re-upload was not a free duplicate: {run.result}")
            re_runs.append(run)
        again = median_run(re_runs)
        emit("reupload_unchanged_1g_10k", again.seconds, "first upload of the same tree", first_s, goal=0.03,
             runs=fmt(r.seconds for r in re_runs), sent_bytes=max(r.result.sent_bytes for r in re_runs),
             duplicate=all(r.result.duplicate for r in re_runs), **again.phases, **common)

        # (d) reading the committed version (hardlinks into the blob store) vs the source.
        vdir = platform.root / "datasets" / owner / "corpus" / "1"
        tree_built(vdir)
        read_v, read_s = [], []
        for _ in range(repeats):
            elapsed, (nv, bv) = timed(lambda: read_tree(vdir), vdir)
            read_v.append(elapsed)
            elapsed, (ns, bs) = timed(lambda: read_tree(src), src)
            read_s.append(elapsed)
            if (nv, bv) != (ns, bs):
                log(f"WARNING: version dir has {nv} files/{bv} bytes, source {ns}/{bs}")
        emit("dataset_materialized_read", statistics.median(read_v), "reading the source tree the same way",
             statistics.median(read_s), goal=1.0, goal_slack=1.1, runs=fmt(read_v),
             baseline_runs=fmt(read_s), **common)

        # (c) one small file changed → a new version that sends just that file.
        changed_runs: list[UploadRun] = []
        changed_sizes: list[int] = []
        latest = vdir  # each round starts once the bridge has built the previous version's tree
        for i in range(repeats):
            tree_built(latest)
            victim = tree.small[(i * 7919) % len(tree.small)]
            size = victim.stat().st_size
            victim.write_bytes(os.urandom(size))
            run = run_upload(client, owner, "corpus", src, cache, f"changed {victim.name}")
            if run.result.duplicate or run.result.sent_bytes != size:
                log(f"WARNING: expected {size} bytes sent for {victim.name}, got {run.result}")
            changed_runs.append(run)
            changed_sizes.append(size)
            latest = vdir.parent / str(run.result.version.get("number"))
        changed = median_run(changed_runs)
        emit("one_change_10k", changed.seconds, "first upload of the same tree", first_s, goal=0.05,
             runs=fmt(r.seconds for r in changed_runs), sent_bytes=changed.result.sent_bytes,
             changed_file_bytes=changed_sizes[changed_runs.index(changed)],
             versions=[r.result.version.get("number") for r in changed_runs], **changed.phases, **common)

        emit("dataset_hash_only", statistics.median(hash_runs), "find|xargs sha256sum over the same files",
             statistics.median(sum_runs), runs=fmt(hash_runs),
             baseline_runs=fmt(sum_runs), scan_s=round(statistics.median(scan_runs), 3),
             **common)
        cache.close()
    finally:
        log("stopping the platform")
        platform.stop()


# -- listing ---------------------------------------------------------------------------
def make_listing_version(client: FloydClient, owner: str, name: str, files: int) -> None:
    """A version of ``files`` paths over 100 distinct small blobs: one manifest, one pack, commit."""
    blobs = {i: f"file content {i}\n".encode() for i in range(100)}
    digest = {i: "sha256:" + hashlib.sha256(b).hexdigest() for i, b in blobs.items()}
    manifest = [{"path": f"d{i % 20:02d}/e{i // 20 % 10}/file-{i:06d}.txt", "size": len(blobs[i % 100]),
                 "hash": digest[i % 100]} for i in range(files)]
    client.create_dataset(name)
    started = client.start_upload(owner, name, manifest, "listing benchmark")
    pack = io.BytesIO()
    with tarfile.open(fileobj=pack, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for i, data in blobs.items():
            if digest[i] in started["missing"]:
                info = tarfile.TarInfo(digest[i].split(":", 1)[1])
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    client.send_pack(started["id"], [pack.getvalue()])
    client.commit_upload(started["id"])


# A small parent for the measured command: Linux carries a process's peak RSS across fork and
# exec, so a child forked straight from this (large) benchmark process would report ours.
RSS_PROBE = ("import os, sys\npid = os.fork()\nif pid == 0:\n    os.execv(sys.argv[2], sys.argv[2:])\n"
             "_, status, usage = os.wait4(pid, 0)\nopen(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n"
             "sys.exit(os.waitstatus_to_exitcode(status))")


def run_ls(env: dict[str, str], ref: str, out: Path, *flags: str) -> tuple[float, float]:
    """One ``floyd data ls -r`` into a file (stdout not a terminal): its seconds and peak RSS in MiB."""
    rss_file = out.with_suffix(".rss")
    command = [sys.executable, "-S", "-c", RSS_PROBE, str(rss_file), str(VENV_BIN / "floyd"), "data", "ls", ref,
               "-r", *flags]
    with open(out, "wb") as fh:
        t0 = time.perf_counter()
        subprocess.run(command, stdout=fh, env=env, check=True)
        elapsed = time.perf_counter() - t0
    return elapsed, int(rss_file.read_text()) / 1024  # ru_maxrss is in KiB on Linux


def bench_listing(base: Path, quick: bool) -> None:
    files = 10_000 if quick else 100_000
    platform = Platform.create(base / "listing-platform")
    try:
        platform.start()
        user = platform.user("lister")
        client = FloydClient(platform.url, user.token)
        t = time.perf_counter()
        make_listing_version(client, user.name, "many", files)
        log(f"made a version of {files} files in {time.perf_counter() - t:.1f}s")
        env = {**os.environ, "FLOYD_URL": platform.url, "FLOYD_TOKEN": user.token,
               "FLOYD_CONFIG_DIR": str(base / "listing-config")}
        ref = f"{user.name}/many:1"
        table: list[tuple[float, float]] = []
        as_json: list[tuple[float, float]] = []
        for _ in range(1 if quick else 3):  # the two sides alternate
            as_json.append(run_ls(env, ref, base / "ls.json", "--json"))
            table.append(run_ls(env, ref, base / "ls.txt"))
        listed = len(json.loads((base / "ls.json").read_text())["files"])
        lines = sum(1 for _ in open(base / "ls.txt", encoding="utf-8")) - 1
        if listed != files or lines != files:
            log(f"WARNING: expected {files} files, --json listed {listed}, the table {lines}")
        common = {"files": files, "mode": "quick" if quick else "full"}
        emit("ls_table_100k", median(s for s, _ in table), "floyd data ls -r --json of the same version (same run)",
             median(s for s, _ in as_json), goal=2.0, runs=fmt(s for s, _ in table),
             baseline_runs=fmt(s for s, _ in as_json), **common)
        rss = max(m for _, m in table)
        emit("ls_peak_rss_100k", rss, "peak RSS of the --json run", max(m for _, m in as_json), unit="MiB",
             meets_goal=rss <= 100, goal_mib=100, runs=fmt(m for _, m in table),
             baseline_runs=fmt(m for _, m in as_json), **common)
    finally:
        platform.stop()


def main(argv: list[str] | None = None) -> int:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--only", choices=("upload", "listing"))
    known, rest = pre.parse_known_args(argv)
    return cli(partial(bench, only=known.only), __doc__, quick_help="a tenth of the data (~100 MiB; 10k files "
               "to list), one run each", keep_help="generate data and the platform under DIR and leave them there",
               prefix="floyd-bench-", argv=rest)


if __name__ == "__main__":
    sys.exit(main())
