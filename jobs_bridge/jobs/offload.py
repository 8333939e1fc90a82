"""Blocking work (database, Docker, file copies) of the job components, off the event loop.

The jobs have their own pool, apart from the handlers' one: a log stream or a wait holds a
thread for as long as its job runs, and those must not starve the API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Offload:
    def __init__(self, threads: int, prefix: str) -> None:
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix=prefix)
        self.loop: asyncio.AbstractEventLoop | None = None

    def bind(self) -> asyncio.AbstractEventLoop:
        """Remember the running loop (called once, from JobManager.start)."""
        self.loop = asyncio.get_running_loop()
        return self.loop

    async def __call__(self, fn: Callable[..., T], *args: Any) -> T:
        assert self.loop is not None, "Offload.bind() first"
        return await self.loop.run_in_executor(self.pool, lambda: fn(*args))

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
