"""The image's package list is captured once, even when many jobs on a new image are prepared at once.

Found by benchmarks/load.py: two jobs picked in the same decision both found no row for their
new image id, both listed its packages and both inserted one; the second insert failed the
UNIQUE constraint and its job ended as ``failed`` ("internal error while preparing").
"""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import func, select

from jobs_bridge.executors.local import LocalExecutor
from jobs_bridge.jobs.prepare import JobPreparer
from jobs_bridge.orm import ImagePackages
from jobs_bridge.resources.gpus import GpuAllocator
from tests.support.storage import datasets_on_disk


class CountingExecutor(LocalExecutor):
    """The real local executor, counting how often the package list is taken."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.listed = 0

    def image_packages(self, image: str) -> list[str]:
        self.listed += 1
        return super().image_packages(image)


def test_parallel_preparations_capture_a_new_image_once(tmp_path: Path) -> None:
    sessions, layout, datasets = datasets_on_disk(tmp_path)
    executor = CountingExecutor(layout.root)
    preparer = JobPreparer(sessions, layout, datasets, GpuAllocator(sessions=sessions), executor, "")
    image_id = executor.image_id("any")
    start = threading.Barrier(4)
    failures: list[BaseException] = []

    def prepare_one() -> None:
        start.wait()
        try:
            preparer._capture_packages("any", image_id)
        except BaseException as exc:  # what a preparing job would have died of
            failures.append(exc)

    threads = [threading.Thread(target=prepare_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert failures == []
    assert executor.listed == 1
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(ImagePackages)) == 1
        row = s.get(ImagePackages, image_id)
        assert row is not None and "==" in row.packages
    sessions.kw["bind"].dispose()  # the helper's engine
