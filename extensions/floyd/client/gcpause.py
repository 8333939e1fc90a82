"""The cyclic garbage collector paused while a tree is uploaded.

An upload of 100,000 files holds ~500,000 objects (scanned files, digests, the manifest, the
server's list of what it lacks) and makes another object per file at each step; every 700
new objects the collector walks the young ones, and each time the old ones pile up it walks
them all: 0.4 s of list building in one 6 s upload was the collector's (py-spy), none of it
needed, since an upload makes no reference cycles worth collecting. The collector is paused
while any upload runs in this process (the Lab's server extension may run two) and resumed
when the last one ends, unless it was off already.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_running = 0
_resume = False  # whether the collector was on when the first running upload paused it


@contextmanager
def gc_paused() -> Iterator[None]:
    global _running, _resume
    with _lock:
        if _running == 0:
            _resume = gc.isenabled()
            gc.disable()
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            if _running == 0 and _resume:
                gc.enable()
