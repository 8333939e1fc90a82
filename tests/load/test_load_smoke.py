"""The core of benchmarks/load.py, small: 10 users at once submitting 20 jobs in all (most by
two heavy users), 2 dataset uploads and 20 endpoint requests/s for 10 s, on a platform of its
own with room for 4 jobs, 2 per user. Nothing may fail, and the queue must keep fair share and
its limits. No timing is asserted: the machine is shared.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.support.load import LoadRun, Profile
from tests.support.platform import Platform

SMOKE = Profile(users=10, jobs=20, uploads=2, rate=20.0, seconds=10.0, idle_seconds=2.0, timeout=240.0)


@pytest.fixture(scope="module")
def load_platform(tmp_path_factory: pytest.TempPathFactory, workspace_image: str,
                  docker_client: docker.DockerClient) -> Iterator[Platform]:
    p = Platform.create(tmp_path_factory.mktemp("load-platform"), bridge_config=SMOKE.bridge_config())
    try:
        p.start()
        yield p
    finally:
        p.stop()
        # job containers a failed run left behind (the bridge removes those it saw end)
        for c in docker_client.containers.list(all=True, filters={"label": f"org.floyd.instance={p.instance}"}):
            c.remove(force=True)


def test_load_smoke(load_platform: Platform, tmp_path: Path) -> None:
    r = LoadRun(load_platform, SMOKE, tmp_path, prefix="smoke").run()
    assert r.errors.total == 0, dict(r.errors.counts)
    assert r.submitted == SMOKE.jobs and r.states == {"succeeded": SMOKE.jobs}, r.states
    assert r.uploads_done == SMOKE.uploads
    assert r.fair.picked == SMOKE.jobs
    assert r.fair.fair_share == [] and r.fair.limits == [], (r.fair.fair_share, r.fair.limits)
    assert r.endpoint.failed == 0 and r.endpoint.ok > 0
    assert r.idle_latencies and r.load_latencies and r.settled_latencies
    assert r.settled_errors.total == 0, dict(r.settled_errors.counts)
