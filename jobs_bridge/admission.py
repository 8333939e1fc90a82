"""How many API writes run their blocking part at once: a bounded, first-come queue.

Why: a burst of writes (50 users creating projects, sending code snapshots, submitting jobs and
committing uploads at once) used to start as many write threads as ``executor_threads`` allows.
Each of them runs SQLAlchemy and tar/manifest code that holds the GIL, and on SQLite they take
turns at one write lock anyway. Eight of them at once took the GIL and the CPU from the event
loop and the read threads, so a plain ``GET`` waited behind the burst (the load benchmark's p99).
Writes past the bound wait here, on the event loop, holding no thread and no GIL; they are
answered in the order they came, none is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class WriteGate:
    """At most ``limit`` writes in their blocking part at once; the rest wait in arrival order."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"c.BridgeApp.write_concurrency must be 1 or more (e.g. 2), not {limit}.")
        self.limit = limit
        self._free = asyncio.Semaphore(limit)  # binds to the running loop when first awaited
        self.running = 0
        self.waiting = 0
        self.peak_running = 0  # what the tests and a curious admin read
        self.peak_waiting = 0

    async def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """``await work()`` once a place is free (asyncio.Semaphore wakes waiters first come, first served)."""
        self.waiting += 1
        self.peak_waiting = max(self.peak_waiting, self.waiting)
        try:
            await self._free.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        self.peak_running = max(self.peak_running, self.running)
        try:
            return await work()
        finally:
            self.running -= 1
            self._free.release()
