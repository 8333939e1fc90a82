"""The files of datasets' base versions, kept in memory between uploads.

The next upload of a dataset is compared with its base's files (``deltas.known_files``: ~15 ms
of a one-file change of a 10,000-file dataset, the largest part of its start). A base, a
version stored whole, never changes while it exists, and a dataset never gives a version
number twice, so (dataset, pk, number) names the same files for as long as it can be asked
for (SQLite may give a deleted version's pk to a new one: that one has another number).
Bases of more than ``max_files`` files in all are not kept: 100,000 files as a dict are ~30 MiB.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from sqlalchemy.orm import Session

from jobs_bridge.datasets import deltas
from jobs_bridge.storage.manifest import Known


class BaseFiles:
    """``deltas.known_files`` of the most recently asked bases, up to ``max_files`` files in all.
    What it returns is shared: callers read it, never change it."""

    def __init__(self, max_files: int) -> None:
        self.max_files = max_files
        self._kept: OrderedDict[tuple[int, int, int], Known] = OrderedDict()
        self._lock = threading.Lock()

    def known(self, s: Session, dataset_id: int, base_pk: int | None) -> Known | None:
        if base_pk is None:
            return None
        key = (dataset_id, base_pk, deltas.version_number(s, base_pk))
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
                return found
        known = deltas.known_files(s, base_pk)
        if known is not None and len(known) <= self.max_files:
            with self._lock:
                self._kept[key] = known
                while sum(map(len, self._kept.values())) > self.max_files:
                    self._kept.popitem(last=False)
        return known
