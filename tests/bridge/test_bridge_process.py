"""The bridge process as the hub starts it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.platform import Platform

REPO = Path(__file__).resolve().parents[2]


def test_the_bridge_runs_on_the_allocator_that_gives_memory_back(platform: Platform) -> None:
    # pymalloc keeps arenas that a few survivors pin after a large upload; glibc's malloc_trim
    # returns freed pages (jobs_bridge/memtrim.py), so the hub starts the bridge with PYTHONMALLOC=malloc.
    environ = Path(f"/proc/{platform.bridge_pid()}/environ").read_bytes().split(b"\0")
    assert b"PYTHONMALLOC=malloc" in environ, sorted(e for e in environ if e.startswith(b"PYTHON"))
    # …with two malloc arenas, not one per busy thread pool (docs/architecture.md, "Memory").
    assert b"MALLOC_ARENA_MAX=2" in environ, sorted(e for e in environ if e.startswith(b"MALLOC"))


def test_the_bridge_keeps_its_start_up_objects_out_of_full_collections(platform: Platform) -> None:
    # A full pass over ~150,000 start-up objects held the GIL 72–103 ms under load (jobs_bridge/memtrim.py).
    assert platform.log_path is not None
    lines = [line for line in platform.log_path.read_text(errors="replace").splitlines()
             if "start-up objects kept out of the garbage collector" in line]
    assert lines, platform.log_tail()
    frozen = int(lines[-1].split("] ", 1)[1].split()[0])
    assert frozen > 50_000, lines[-1]
    # …and hands the GIL on after 0.5 ms, not Python's 5 (c.BridgeApp.gil_switch_interval)
    assert lines[-1].endswith("GIL switch interval 0.50 ms"), lines[-1]


def test_freezing_moves_the_live_objects_into_the_permanent_generation() -> None:
    code = ("import gc, jobs_bridge.app\n"
            "from jobs_bridge.memtrim import freeze_startup_objects\n"
            "before = gc.get_freeze_count()\n"
            "n = freeze_startup_objects()\n"
            "assert before == 0 and n == gc.get_freeze_count() > 50_000, (before, n)\n"
            "assert sum(len(gc.get_objects(g)) for g in range(3)) < n / 10\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=120)
