"""Blocking watches — a container's end, its log stream — each in a daemon thread.

They may block for days with no timeout (an endpoint runs until it is replaced). In a
ThreadPoolExecutor they would keep the bridge from exiting, since its worker threads are
joined at exit; a daemon thread simply ends with the process, and a restarted bridge takes the
containers back by their labels.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any


def watch(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> asyncio.Future:
    """Run ``fn(*args)`` in a daemon thread; the returned future gets its result or exception."""
    future: asyncio.Future = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def target() -> None:
        try:
            result, error = fn(*args), None
        except BaseException as exc:  # handed to the awaiting coroutine
            result, error = None, exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop is closed: the bridge is exiting
            pass

    threading.Thread(target=target, daemon=True, name=f"watch-{getattr(fn, '__name__', 'fn')}").start()
    return future
