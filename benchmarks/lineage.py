"""Lineage benchmark: how long does the trace of an endpoint take, next to reading one job?

Builds, on a real platform (local executor: no image to build), the chain an endpoint sits on
after a month of work: a dataset version → job 1 → its output committed as a dataset version →
job 2 on that version → … → job N, whose output is registered as model version traced-model:1,
aliased production, which the endpoint serves by following the alias (N jobs, N dataset versions,
one model version; 50, --quick 10). Then, interleaved so both sides see the same load:
  lineage_api_ms    GET /api/v1/lineage?ref=ENDPOINT (the whole chain) vs GET /api/v1/jobs/O/P/N
                    (goal: under 150 ms and at most 3x the plain read)
  lineage_cli_ms    floyd lineage ENDPOINT vs floyd info JOB, each a fresh process
  lineage_page_ms   the lineage page in Chromium until the graph is drawn vs the job page until
                    its record is shown
One JSON object per measurement on stdout; logs on stderr.

    .venv/bin/python benchmarks/lineage.py [--quick] [--keep DIR]
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests
from common import cli, emit, log, median

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.jobs import submit, wait_state  # noqa: E402
from tests.support.platform import VENV_BIN, Platform, User  # noqa: E402
from tests.support.serving import ASGI_OK_APP, deploy  # noqa: E402

GOAL_MS = 150.0
GOAL_RATIO = 3.0
STEP = b"""
import os
with open(os.path.join(os.environ.get("FLOYD_OUTPUT", "/floyd/output"), "model.txt"), "w") as f:
    f.write("step " + os.environ["FLOYD_PARAM_STEP"])
"""


def build_chain(user: User, jobs: int, tmp: Path) -> str:
    """N jobs, each reading the dataset version the one before made; returns the last job's id."""
    data = f"lineage benchmark seed {time.time_ns()}".encode()
    user.api("POST", "datasets", json={"name": "seed"})
    manifest = [{"path": "seed.txt", "size": len(data), "hash": "sha256:" + hashlib.sha256(data).hexdigest()}]
    up = user.api("POST", f"datasets/{user.name}/seed/uploads", json={"manifest": manifest}).json()
    user.api("PUT", f"uploads/{up['id']}/blobs/{manifest[0]['hash']}", data=data)
    user.api("POST", f"uploads/{up['id']}/commit").raise_for_status()
    user.api("POST", "datasets", json={"name": "chain"})
    source, job_id = "seed:1", ""
    for step in range(1, jobs + 1):
        job_id = submit(user, "chain", {"step.py": STEP}, tmp, command="python step.py", params={"step": str(step)},
                        inputs=[{"source": source, "mount": "data"}])["job"]["id"]
        wait_state(user, job_id, {"succeeded"}, timeout=300)
        user.api("POST", f"datasets/{user.name}/chain/from-job", json={"job": job_id}).raise_for_status()
        source = f"chain:{step}"
        if step % 10 == 0:
            log(f"chain: {step} jobs")
    return job_id


def interleaved(ours: Callable[[], object], theirs: Callable[[], object], runs: int) -> tuple[list[float], list[float]]:
    ours(), theirs()  # warm-up
    a, b = [], []
    for _ in range(runs):
        for fn, out in ((ours, a), (theirs, b)):
            t = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t) * 1000)
    return a, b


def bench_api(user: User, ref: str, job: str, runs: int, size: int) -> None:
    http = requests.Session()
    http.headers.update(user.headers)
    api = user.platform.api_url

    def get(path: str, **params: str) -> None:
        http.get(api + path, params=params, timeout=60).raise_for_status()

    nodes = len(http.get(api + "lineage", params={"ref": ref, "depth": "1000"}).json()["nodes"])
    ours, plain = interleaved(lambda: get("lineage", ref=ref, depth="1000"), lambda: get(f"jobs/{job}"), runs)
    value, base = median(ours), median(plain)
    log(f"lineage_api_ms: {value:.1f} ms for {nodes} nodes (GET job {base:.1f} ms)")
    emit("lineage_api_ms", value, "GET /api/v1/jobs/O/P/N", base, unit="ms",
         meets_goal=value <= GOAL_MS and value <= GOAL_RATIO * base, goal_ms=GOAL_MS, goal_ratio=GOAL_RATIO,
         runs=runs, jobs=size, dataset_versions=size, model_versions=1, nodes=nodes)


def bench_cli(user: User, ref: str, job: str, runs: int, home: Path, size: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOYD_", "JUPYTERHUB_"))}
    env.update({"FLOYD_URL": user.platform.url, "FLOYD_TOKEN": user.token, "FLOYD_CONFIG_DIR": str(home / "config"),
                "FLOYD_CACHE_DIR": str(home / "cache"), "COLUMNS": "200"})

    def floyd(*args: str) -> None:
        subprocess.run([str(VENV_BIN / "floyd"), *args], env=env, cwd=home, capture_output=True, check=True)

    ours, plain = interleaved(lambda: floyd("lineage", ref, "--depth", "1000"), lambda: floyd("info", job), runs)
    value, base = median(ours), median(plain)
    log(f"lineage_cli_ms: {value:.1f} ms (floyd info {base:.1f} ms)")
    emit("lineage_cli_ms", value, "floyd info JOB", base, unit="ms", runs=runs, jobs=size, dataset_versions=size)


def bench_page(platform: Platform, ref: str, job: str, runs: int, size: int) -> None:
    from playwright.sync_api import sync_playwright

    from tests.support.browser import ARGS, CHROMIUM, login

    base = platform.url + "services/floyd/"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page()
        login(page, platform, "admin", (platform.root / "admin-password").read_text().strip())

        def lineage_page() -> None:
            page.goto(base + f"lineage?ref={ref}&depth=1000")
            page.wait_for_selector("svg.lineage-graph g.node")

        def job_page() -> None:
            page.goto(base + "jobs/" + job)
            page.wait_for_selector("#state")

        ours, plain = interleaved(lineage_page, job_page, runs)
        browser.close()
    value, baseline = median(ours), median(plain)
    log(f"lineage_page_ms: {value:.1f} ms (job page {baseline:.1f} ms)")
    emit("lineage_page_ms", value, "the job page", baseline, unit="ms", runs=runs, jobs=size, dataset_versions=size)


def bench(base: Path, quick: bool) -> None:
    size, runs = (10, 15) if quick else (50, 40)
    platform = Platform.create(base / "platform", extra_env={"FLOYD_JOB_EXECUTOR": "local"})
    log("starting a platform (local executor)")
    platform.start()
    try:
        admin = platform.admin
        last = build_chain(admin, size, base)
        admin.api("POST", "models/admin/traced-model/versions", json={"from": last}).raise_for_status()
        admin.api("PUT", "models/admin/traced-model/aliases/production", json={"version": 1}).raise_for_status()
        deploy(admin, "traced", {"app.py": ASGI_OK_APP}, base, entry="app.py", model="traced-model@production")
        ref = "endpoint:admin/traced:1"
        home = base / "home"
        (home / "config").mkdir(parents=True)
        bench_api(admin, ref, last, runs, size)
        bench_cli(admin, ref, last, max(5, runs // 4), home, size)
        bench_page(platform, ref, last, max(5, runs // 4), size)
    finally:
        platform.stop()


def main(argv: list[str] | None = None) -> int:
    return cli(bench, __doc__, quick_help="10 jobs and 10 dataset versions, fewer runs: under a minute",
               keep_help="put the platform under DIR and leave it there", prefix="floyd-bench-lineage-", argv=argv)


if __name__ == "__main__":
    sys.exit(main())
