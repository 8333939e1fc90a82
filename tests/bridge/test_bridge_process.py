"""The bridge process as the hub starts it."""

from __future__ import annotations

from pathlib import Path

from tests.support.platform import Platform


def test_the_bridge_runs_on_the_allocator_that_gives_memory_back(platform: Platform) -> None:
    # pymalloc keeps arenas that a few survivors pin after a large upload; glibc's malloc_trim
    # returns freed pages (jobs_bridge/memtrim.py), so the hub starts the bridge with PYTHONMALLOC=malloc.
    environ = Path(f"/proc/{platform.bridge_pid()}/environ").read_bytes().split(b"\0")
    assert b"PYTHONMALLOC=malloc" in environ, sorted(e for e in environ if e.startswith(b"PYTHON"))
