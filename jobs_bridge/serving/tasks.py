"""Where the serving side runs its work: blocking calls on threads, background coroutines on the loop.

The manager and its collaborators share one TaskRunner, so they share one thread pool (the
database, Docker calls), one set of background tasks (rollouts, supervisors, log streams) kept
alive until they end, and one ``closing`` flag that tells all of them the bridge is stopping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class TaskRunner:
    def __init__(self, threads: int = 64, name: str = "serving") -> None:
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix=name)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.tasks: set[asyncio.Future] = set()
        self.closing = False

    def bind(self) -> None:
        """Remember the running loop (called once, from the manager's start)."""
        self._loop = asyncio.get_running_loop()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "TaskRunner.bind() was not called"
        return self._loop

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a thread: the event loop (and the proxy on it) never waits for it."""
        return await self.loop.run_in_executor(self.pool, lambda: fn(*args))

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` in the background, keeping a reference until it ends."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def shutdown(self) -> None:
        self.closing = True
        self.pool.shutdown(wait=False, cancel_futures=True)
