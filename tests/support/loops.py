"""Running a coroutine to its end from a test, whatever the main thread holds."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_apart(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on a thread of its own: the session's Playwright browser (tests/support/browser.py)
    keeps an event loop running on the main thread once a browser test has run."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
