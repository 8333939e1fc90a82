"""The many-small-files rows of benchmarks/datasets.py (issue 16): a tree of N × 1 KiB files
(100,000; 10,000 with --quick) uploaded through the real CLI, then again unchanged, then with
one file changed, and the diff of the two versions. The first upload is measured in three
rounds (one with --quick), each a fresh tree with its own baseline just before it; the rows
give the medians and every round's figures.

  first_upload_100k        `floyd data upload` (CLI, fresh caches)  vs  sha256sum + cp -r
  tree_ready_100k          …until the version's directory exists    vs  sha256sum + cp -r (no goal)
  cli_peak_rss_100k        that CLI's peak RSS                      vs  `python -c pass`
  bridge_rss_delta         bridge RSS after the commit − before     vs  the 30 MiB allowed
  reupload_unchanged_100k  the same tree again (in process; median of 3)  vs  the first upload
  reupload_unchanged_100k_cli  …through `floyd data upload` (a process: start, imports)  vs  the first upload
  one_change_100k          one file rewritten, uploaded again       vs  the first upload
  diff_100k                GET …/diff of versions 1 and 2           vs  diff -rq of the two version trees

NO_DELETE_BEFORE: nothing is deleted between the tree's creation and the two timed sides. On
ext4 without a journal (this kind of VM's root file system) every inode allocation skips, one
inode-table lookup each, all inodes freed in the last 60 s (300 s more while their block is
dirty): deleting the baseline's 100,000-file copy just before the upload made the upload pay
~400 µs a file for it (41.9 s instead of ~15 s; measured with perf, `recently_deleted`).

The 10,000-file 1 GiB rows (reupload_unchanged_1g_10k, one_change_10k) are in datasets.py.

    .venv/bin/python benchmarks/datasets_scale.py [--quick] [--keep DIR]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from common import cli, force_remove, log, started, wait_idle
from datasets import emit, median_run, run_upload, settle, sum_and_copy, tree_built

from floyd.client.http import FloydClient
from floyd.client.statcache import StatCache
from tests.support.platform import Platform

ROUNDS = 3  # first uploads in full mode, each of a fresh tree


def small_tree(root: Path, files: int) -> None:
    """``files`` random 1 KiB files, 100 per directory, two levels deep."""
    for i in range(files):
        d = root / f"d{i // 1000:03d}" / f"e{(i // 100) % 10}"
        if i % 100 == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:06d}.bin").write_bytes(os.urandom(1024))


def peak_rss_mib(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """(seconds, peak RSS in MiB, stdout) of ``cmd`` under /usr/bin/time."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "RSSKB=%M", *cmd], env=env, cwd=cwd, capture_output=True,
                          text=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{cmd} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    kb = [line for line in proc.stderr.splitlines() if line.startswith("RSSKB=")][-1]
    return elapsed, int(kb[6:]) / 1024, proc.stdout


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench(base: Path, quick: bool) -> None:
    with started(Platform.create(base / "platform")) as platform:
        bench_scale(base, platform, quick)


@dataclass
class Round:
    baseline_s: float
    upload_s: float
    tree_s: float
    cli_mib: float
    bridge_mib: float


def first_round(base: Path, platform: Platform, client: FloydClient, owner: str, env: dict[str, str], name: str,
                files: int, bridge: int) -> Round:
    """A fresh tree of ``files`` random files: ``sha256sum`` + ``cp -r`` of it, then its first upload
    into a new dataset through the CLI. Rounds, not one run: on this shared VM either side alone
    swung by a third from run to run."""
    src = base / name
    log(f"generating {files} files of 1 KiB in {src}")
    small_tree(src, files)
    client.create_dataset(name)
    log(f"the bridge was idle after {wait_idle(bridge):.1f}s")
    # The copy is removed at the end, not before the upload: see NO_DELETE_BEFORE in the docstring.
    baseline_s = sum(sum_and_copy(src, platform.root.parent / f"cp-{name}"))
    settle(src)
    floyd = str(Path(sys.executable).with_name("floyd"))
    upload_s, cli_mib, _ = peak_rss_mib([floyd, "data", "upload", str(src), "-n", name, "-m", "first", "--json"],
                                        env, base)
    t0 = time.perf_counter()
    tree_built(platform.root / "datasets" / owner / name / "1")  # the manifest is held until then
    tree_s = upload_s + time.perf_counter() - t0
    time.sleep(1.0)
    bridge_mib = rss_mib(bridge)
    log(f"{name}: first upload {upload_s:.2f}s (sha256sum+cp {baseline_s:.2f}s), CLI peak {cli_mib:.0f} MiB, "
        f"bridge {bridge_mib:.0f} MiB, tree after {tree_s:.1f}s")
    return Round(baseline_s, upload_s, tree_s, cli_mib, bridge_mib)


def bench_scale(base: Path, platform: Platform, quick: bool) -> None:
    files = 10_000 if quick else 100_000
    common = {"files": files, "bytes": files * 1024, "mode": "quick" if quick else "full"}
    user = platform.user("scale")
    client = FloydClient(platform.url, user.token)
    cache_dir = base / "scale-cache"
    env = {**platform.env, "FLOYD_URL": platform.url, "FLOYD_TOKEN": user.token, "FLOYD_CACHE_DIR": str(cache_dir),
           "FLOYD_CONFIG_DIR": str(base / "scale-config")}
    bridge = platform.bridge_pid()
    before = rss_mib(bridge)
    rounds = [first_round(base, platform, client, user.name, env, f"small{k or ''}", files, bridge)
              for k in range(1 if quick else ROUNDS)]
    src = base / "small"  # round 0's tree: the one uploaded again below
    first_s = statistics.median(r.upload_s for r in rounds)
    baseline_s = statistics.median(r.baseline_s for r in rounds)
    after = max(r.bridge_mib for r in rounds)
    cli_rss = max(r.cli_mib for r in rounds)
    runs = {"runs": [round(r.upload_s, 3) for r in rounds], "baseline_runs": [round(r.baseline_s, 3) for r in rounds],
            "run_ratios": [round(r.upload_s / r.baseline_s, 3) for r in rounds]}
    emit("first_upload_100k", first_s, "find|xargs sha256sum + cp -r of the same tree", baseline_s, goal=1.5,
         note=f"the median of {len(rounds)} round(s), each a fresh tree: its baseline, then its upload", **runs, **common)
    emit("tree_ready_100k", statistics.median(r.tree_s for r in rounds), "find|xargs sha256sum + cp -r of the same tree",
         baseline_s, note="until the version's directory (hardlinks; what a job mounts) exists: its blobs leave the "
                          "journals and are linked after the commit has answered", **common)
    _, python_rss, _ = peak_rss_mib([sys.executable, "-c", "pass"], env, base)
    emit("cli_peak_rss_100k", cli_rss, "python -c pass", python_rss, unit="MiB", meets_goal=cli_rss <= 150,
         goal_mib=150, **common)
    emit("bridge_rss_delta", after - before, "allowed growth (MiB)", 30.0, unit="MiB",
         meets_goal=after - before <= 30, before_mib=round(before, 1), after_mib=round(after, 1),
         note="the most the bridge held, a second after any round's commit, over what it held before the first",
         **common)

    cache = StatCache(cache_dir / "stat-cache.sqlite")  # the CLI's: it knows the tree
    try:
        log(f"the bridge was idle after {wait_idle(bridge):.1f}s")
        agains = [run_upload(client, user.name, "small", src, cache, "again") for _ in range(len(rounds))]
        again = median_run(agains)
        emit("reupload_unchanged_100k", again.seconds, "first upload (median of the rounds)", first_s, goal=0.05,
             duplicate=all(a.result.duplicate for a in agains), runs=[round(a.seconds, 3) for a in agains],
             note="the median of as many re-uploads as rounds", **again.phases, **common)
        floyd = str(Path(sys.executable).with_name("floyd"))
        cli_agains = [peak_rss_mib([floyd, "data", "upload", str(src), "-n", "small", "-m", "again", "--json"], env, base)[0]
                      for _ in range(len(rounds))]
        emit("reupload_unchanged_100k_cli", statistics.median(cli_agains), "first upload (median of the rounds)", first_s,
             goal=0.05, runs=[round(t, 3) for t in cli_agains],
             note="the same through `floyd data upload` as a process (what a user waits for: its start and imports "
                  "too), the median of as many runs as rounds", **common)
        victim = next(src.rglob("*.bin"))
        victim.write_bytes(os.urandom(1024))
        changed = run_upload(client, user.name, "small", src, cache, "one changed")
        log(f"one change in {files}: {changed.seconds:.2f}s {changed.phases}")
        # No goal here: the (≤ 0.05×) is for a 10,000-file dataset (datasets.py
        # one_change_10k). At 100,000 files the client's scan (scan_s) and the bridge's start
        # (manifest_s: the base's 100,000 rows read, the version id over all files) are O(files);
        # the commit (commit_s) is O(changed).
        emit("one_change_100k", changed.seconds, "first upload (median of the rounds)", first_s,
             sent_bytes=changed.result.sent_bytes, **changed.phases, **common)
    finally:
        cache.close()
    vdir = platform.root / "datasets" / user.name / "small"
    tree_built(vdir / "2")
    settle()
    t0 = time.perf_counter()
    subprocess.run(["diff", "-rq", str(vdir / "1"), str(vdir / "2")], stdout=subprocess.DEVNULL, check=False)
    diff_r = time.perf_counter() - t0
    t0 = time.perf_counter()
    d = client.diff(user.name, "small", 1, 2)
    diff_s = time.perf_counter() - t0
    emit("diff_100k", diff_s, "diff -rq of the two version trees", diff_r, meets_goal=diff_s <= 1.0,
         changed=len(d["changed"]), **common)
    for k in range(len(rounds)):
        force_remove(platform.root.parent / f"cp-small{k or ''}")


if __name__ == "__main__":
    sys.exit(cli(bench, __doc__, quick_help="10,000 files instead of 100,000",
                 keep_help="generate data and the platform under DIR and leave them there", prefix="floyd-bench-"))
