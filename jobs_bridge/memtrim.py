"""The bridge's heap: freed memory handed back after a large request, and the objects of
start-up kept out of the garbage collector's full passes.

A 100,000-file manifest makes a few hundred MiB of small Python objects; once they are freed,
glibc keeps the pages, and the bridge stayed ~100 MiB larger after every big upload.
``malloc_trim(0)`` returns the free pages at the top of the heap and in the middle of it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable

LARGE = 10_000  # entries from which a request is worth a trim (a trim takes a few ms)


def _load() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None)  # glibc only; musl has none
    except OSError:
        return None


_TRIM = _load()


def release_memory(entries: int) -> None:
    """After a request that handled ``entries`` manifest entries: collect, then trim if large."""
    if entries < LARGE:
        return
    gc.collect()
    if _TRIM is not None:
        _TRIM(0)


def freeze_startup_objects() -> int:
    """Move every object alive now (modules, mappers, compiled statements, routes: ~150,000 once
    the bridge is up) into the collector's permanent generation, and return how many.

    A full collection walks every tracked object while holding the GIL: 72–103 ms in the bridge
    under load (measured with a ``gc.callbacks`` probe during ``benchmarks/load.py``), during
    which no request moves. Frozen, the start-up objects are never walked again; the passes
    left cover what requests create (5–22 ms). Called once, when the bridge has started."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
