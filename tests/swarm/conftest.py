"""One namespace swarm (3 nodes) and one platform on it per session: bringing a swarm up costs
seconds, its image load more. node2 advertises a GPU and is labelled gpu=a100, node3 disk=ssd."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.support.platform import Platform
from tests.support.swarm import NamespaceSwarm

# floyd/base (no JupyterLab, 191 MB) is enough for shell jobs and loads on 3 nodes in seconds.
SWARM_IMAGE = os.environ.get("FLOYD_SWARM_TEST_IMAGE", "floyd/base:bookworm")
GPU_ID = "GPU-5f1c0ffe"

# No c.GpuAllocator.devices: the swarm runtime offers what the nodes advertise.
SWARM_BRIDGE_CONFIG = f"""
c.SwarmExecutor.lost_after = 3
c.SwarmExecutor.stats_interval = 1
c.JobRunner.stats_interval = 1
c.BridgeApp.environments = [
    {{"name": "base", "image": "{SWARM_IMAGE}", "cpus": 0.5, "memory": "256M"}},
    {{"name": "a100", "image": "{SWARM_IMAGE}", "cpus": 0.5, "memory": "256M", "gpu": True,
      "node_labels": {{"gpu": "a100"}}}},
    {{"name": "ssd", "image": "{SWARM_IMAGE}", "cpus": 0.5, "memory": "256M", "node_labels": {{"disk": "ssd"}}}},
    {{"name": "spare", "image": "{SWARM_IMAGE}", "cpus": 0.5, "memory": "256M", "node_labels": {{"spare": "yes"}}}},
]
"""


@pytest.fixture(scope="session")
def swarm() -> Iterator[NamespaceSwarm]:
    if os.geteuid() != 0 or not shutil.which("dockerd") or not shutil.which("nsenter"):
        pytest.skip("a namespace swarm needs root, dockerd and nsenter")
    s = NamespaceSwarm(3, generic_resources={2: [f"NVIDIA-GPU={GPU_ID}"]},
                       labels={2: {"gpu": "a100"}, 3: {"disk": "ssd"}})
    try:
        s.up([SWARM_IMAGE])
        yield s
    finally:
        s.down()


@pytest.fixture(scope="session")
def swarm_platform(swarm: NamespaceSwarm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    p = Platform.create(tmp_path_factory.mktemp("swarm-platform"), bridge_config=SWARM_BRIDGE_CONFIG,
                        extra_env={"FLOYD_JOB_EXECUTOR": "swarm", "FLOYD_SWARM_MANAGER": swarm.manager.url})
    p.start()
    yield p
    p.stop()


@pytest.fixture(scope="session")
def pretend_gpu_platform(swarm: NamespaceSwarm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A second platform on the same swarm whose GPU jobs skip the NVIDIA runtime check: there is
    no GPU here, so placement and the device id are what can be checked."""
    p = Platform.create(tmp_path_factory.mktemp("swarm-gpu-platform"),
                        bridge_config=SWARM_BRIDGE_CONFIG + "c.SwarmExecutor.require_gpu_runtime = False\n",
                        extra_env={"FLOYD_JOB_EXECUTOR": "swarm", "FLOYD_SWARM_MANAGER": swarm.manager.url})
    p.start()
    yield p
    p.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and hasattr(item, "funcargs"):
        s = item.funcargs.get("swarm")
        if isinstance(s, NamespaceSwarm):
            report.sections.append(("swarm node logs (tail)", s.dump_logs()))
        for name in ("swarm_platform", "pretend_gpu_platform"):
            p = item.funcargs.get(name)
            if isinstance(p, Platform):
                report.sections.append((f"{name} log (tail)", p.log_tail(120)))
