"""TensorBoard with the local executor (a process of the platform's Python, reading the outputs
where they are), opened with ``floyd tensorboard``, and stopped after its idle time."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.jobs import submit, wait_state
from tests.support.platform import TEST_BRIDGE_CONFIG, Platform

WRITER = b"""import os
from tensorboardX import SummaryWriter
w = SummaryWriter(os.path.join(os.environ.get('FLOYD_OUTPUT', '/floyd/output'), 'tb'))
for step in range(5):
    w.add_scalar('local/accuracy', step / 5, step)
w.close()
"""


@pytest.fixture(scope="module")
def local_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    config = TEST_BRIDGE_CONFIG + "c.TensorBoardManager.idle_timeout = 4\n"
    p = Platform.create(tmp_path_factory.mktemp("tblocal"), {"FLOYD_JOB_EXECUTOR": "local",
                                                             "FLOYD_SPAWNER": "local"}, config)
    p.start()
    yield p
    p.stop()


def test_local_tensorboard_and_idle_stop(local_platform: Platform, tmp_path: Path) -> None:
    user = local_platform.user("tb-local")
    job = submit(user, "tbl", {"write.py": WRITER}, tmp_path, command="python write.py")["job"]
    assert wait_state(user, job["id"], {"succeeded", "failed"})["state"] == "succeeded"
    out = user.cli("tensorboard", job["id"], "--json")
    board = json.loads(out.stdout)
    assert board["url"].startswith(local_platform.url + "services/floyd/tensorboards/tb-local/")
    runs = requests.get(board["url"] + "data/runs", headers=user.headers, timeout=30).json()
    assert runs and runs[0].startswith("tbl/1")
    tags = requests.get(board["url"] + "data/plugin/scalars/tags", headers=user.headers, timeout=30).json()
    assert "local/accuracy" in tags[runs[0]]
    # Nobody looks at it: it stops by itself.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and user.api("GET", f"tensorboards/tb-local/{board['id']}").status_code == 200:
        time.sleep(1)
    assert user.api("GET", f"tensorboards/tb-local/{board['id']}").status_code == 404
    assert requests.get(board["url"], headers=user.headers, timeout=30).status_code == 404


def test_tensorboard_spec_mounts_outputs_read_only(tmp_path: Path) -> None:
    from jobs_bridge.executors.contract import TensorBoardRun, tensorboard_spec
    from jobs_bridge.storage.paths import StorageLayout

    layout = StorageLayout(tmp_path / "root")
    out = str(layout.job_output("ann", "proj", 3))
    run = TensorBoardRun(owner="ann", tb_id="0123456789ab", image="img", outputs={"proj/3": out},
                         listen="127.0.0.1", port=6006, path_prefix="/services/floyd/tensorboards/ann/0123456789ab",
                         local=False)
    spec = tensorboard_spec(layout, run)
    assert spec.mount_table()["/floyd/tensorboard/proj/3"] == (out, True)
    assert spec.argv[spec.argv.index("--logdir_spec") + 1] == "proj/3:/floyd/tensorboard/proj/3"
    assert spec.kind == "tensorboard" and spec.labels["org.floyd.tensorboard"] == "0123456789ab"
    local = tensorboard_spec(layout, TensorBoardRun(**{**run.__dict__, "local": True}))
    assert local.argv[local.argv.index("--logdir_spec") + 1] == f"proj/3:{out}"
