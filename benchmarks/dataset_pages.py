"""The dataset pages on a version of 100,000 files (10,000 with --quick), each page against the
files API's page of the same folder, fetched side by side in the same run (median of 7).

  page_root_100k        the dataset page: versions + the root (100 folders, each summed up)
                          vs  GET …/files of the root (the same 100 folders)
  page_folder_100k      a folder of 1,000 files, first page            vs  GET …/files?path=<folder>
  page_folder_next_100k the same folder's page after a cursor          vs  GET …/files?path=&after=
  page_preview_100k     a CSV file's preview page                      vs  GET …/download of that file
  page_diff_100k        the diff page of two versions (one file changed) vs  GET …/diff

A page's cost should follow the page, not the version: the ratios say how much the HTML adds.

    .venv/bin/python benchmarks/dataset_pages.py [--quick] [--keep DIR]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests
from common import REPO, cli, emit, log, started

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from floyd.client.http import FloydClient
from floyd.client.transfer import upload
from tests.support.platform import Platform

REPEAT = 7
PER_FOLDER = 1000


def tree(root: Path, files: int, salt: str) -> None:
    """``files`` small CSV files, 1,000 to a folder (d000/, d001/ …)."""
    for i in range(files):
        d = root / f"d{i // PER_FOLDER:03d}"
        if i % PER_FOLDER == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:06d}.csv").write_text(f"id,value,salt\n{i},{i * 0.5},{salt}\n")


def median_time(fn: Callable[[], requests.Response]) -> float:
    times = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        r = fn()
        times.append(time.perf_counter() - t0)
        if r.status_code != 200:
            raise RuntimeError(f"{r.request.url}: {r.status_code} {r.text[:300]}")
    return statistics.median(times)


def bench(base: Path, quick: bool) -> None:
    with started(Platform.create(base / "platform")) as platform:
        measure(base, platform, quick)


def measure(base: Path, platform: Platform, quick: bool) -> None:
    files = 10_000 if quick else 100_000
    src = base / "tree"
    log(f"generating {files} files")
    tree(src, files, str(time.time_ns()))
    user = platform.user("pages")
    client = FloydClient(platform.url, user.token)
    client.create_dataset("big")
    t0 = time.perf_counter()
    upload(client, user.name, "big", src, "first")
    (src / "d000" / "f000000.csv").write_text("id,value,salt\nchanged\n")
    upload(client, user.name, "big", src, "one file changed")
    log(f"two versions uploaded in {time.perf_counter() - t0:.1f}s")

    session = requests.Session()
    session.headers["Authorization"] = f"token {user.token}"
    page = platform.url + "services/floyd/datasets/pages/big"
    api = platform.api_url + "datasets/pages/big"
    files_api = api + "/versions/2/files"
    folder = f"d{(files // PER_FOLDER) // 2:03d}"
    middle = f"{folder}/f{(files // PER_FOLDER) // 2 * PER_FOLDER + PER_FOLDER // 2:06d}.csv"

    def get(url: str, **params: object) -> Callable[[], requests.Response]:
        return lambda: session.get(url, params=params, timeout=60)

    common = {"files": files, "mode": "quick" if quick else "full", "repeat": REPEAT}
    rows = [
        ("page_root_100k", get(page, version=2), "GET …/files of the root", get(files_api, limit=1000)),
        ("page_folder_100k", get(page, version=2, path=folder), "GET …/files?path=<folder>",
         get(files_api, path=folder, limit=1000)),
        ("page_folder_next_100k", get(page, version=2, path=folder, after=middle, limit=100),
         "GET …/files?path=<folder>&after=", get(files_api, path=folder, after=middle, limit=100)),
        ("page_preview_100k", get(page + "/preview", version=2, path=middle), "GET …/download of the file",
         get(api + "/versions/2/download", path=middle)),
        ("page_diff_100k", get(page + "/diff", **{"from": 1, "to": 2}), "GET …/diff",
         get(api + "/diff", **{"from": 1, "to": 2})),
    ]
    for name, ours, baseline, theirs in rows:
        ours(), theirs()  # warm both
        value, base_value = median_time(ours), median_time(theirs)
        log(f"{name}: {value * 1000:.1f} ms (baseline {base_value * 1000:.1f} ms)")
        emit(name, value, baseline, base_value, meets_goal=value <= 0.5, goal_seconds=0.5, **common)


if __name__ == "__main__":
    sys.exit(cli(bench, __doc__, quick_help="10,000 files instead of 100,000",
                 keep_help="generate data and the platform under DIR and leave them there", prefix="floyd-bench-"))
