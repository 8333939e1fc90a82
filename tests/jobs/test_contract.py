"""One container contract, two runtimes: the same job RunSpec gives the same /floyd tree, user,
working directory, labels and FLOYD_* variables as a Docker container and as a local process."""

from __future__ import annotations

import dataclasses
import os
import uuid
from pathlib import Path

import docker
import pytest

from jobs_bridge.executors import contract
from jobs_bridge.executors.contract import JobRun, RunSpec, job_spec
from jobs_bridge.executors.docker import DockerExecutor
from jobs_bridge.executors.local import LocalExecutor
from jobs_bridge.storage.paths import StorageLayout
from tests.support.platform import IMAGE

PUBLIC_URL = "http://bridge.example:8000/"


def make_spec(tmp: Path, image: str, command: str = "env") -> tuple[StorageLayout, RunSpec]:
    """A job with a code copy, an output and one input, as the runner would hand it over."""
    layout = StorageLayout(tmp / "root")
    layout.ensure()
    code = layout.job_code("ann", "proj", 3)
    code.mkdir(parents=True)
    (code / "train.py").write_text("print('hi')\n")
    layout.job_output("ann", "proj", 3).mkdir()
    data = (tmp / "data-v1").resolve()
    data.mkdir()
    (data / "x.txt").write_text("data!")
    run = JobRun(job_id=42, owner="ann", project="proj", number=3, image=image, image_id="sha256:test",
                 command=command, notebook="", params={"lr": "0.1"}, requirements=False,
                 inputs=[{"path": str(data), "mount": "d", "source": "ann/d:1"}], token="fjt_secret", cpus=0.5,
                 memory=256 << 20, gpu_devices=[])
    return layout, job_spec(layout, run, PUBLIC_URL)


def env_lines(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_spec_is_the_contract(tmp_path: Path) -> None:
    layout, spec = make_spec(tmp_path, IMAGE)
    assert spec.mount_table() == {
        "/floyd/code": (str(layout.job_code("ann", "proj", 3)), False),
        "/floyd/output": (str(layout.job_output("ann", "proj", 3)), False),
        "/floyd/cache/pip": (str(layout.pip_cache("ann", "sha256:test")), False),
        "/floyd/input/d": (str((tmp_path / "data-v1").resolve()), True),
    }
    assert spec.workdir == str(layout.job_dir("ann", "proj", 3)) and spec.argv == ["sh", "-c", "env"]
    assert layout.pip_cache("ann", "sha256:test").is_dir()


def test_docker_container_gets_the_mount_table(tmp_path: Path, workspace_image: str,
                                               docker_client: docker.DockerClient) -> None:
    layout, spec = make_spec(tmp_path, workspace_image)
    instance = "t" + uuid.uuid4().hex[:7]
    executor = DockerExecutor(layout.root, instance)
    handle = executor.start(spec)
    try:
        assert executor.wait(handle, spec.workdir) == 0
        container = docker_client.containers.get(handle)
        attrs = container.attrs
        mounts = {m["Destination"]: (m["Source"], not m["RW"]) for m in attrs["Mounts"]}
        assert mounts == spec.mount_table()
        assert attrs["Config"]["User"] == "1000:100" == contract.CONTAINER_USER
        assert attrs["Config"]["WorkingDir"] == "/floyd/code"
        assert attrs["HostConfig"]["Init"] is True and attrs["HostConfig"]["NetworkMode"] == "host"
        assert attrs["HostConfig"]["NanoCpus"] == 500_000_000 and attrs["HostConfig"]["Memory"] == 256 << 20
        labels = attrs["Config"]["Labels"]
        assert {k: labels.get(k) for k in (contract.INSTANCE_LABEL, contract.JOB_LABEL, contract.JOB_NAME_LABEL,
                                           contract.OWNER_LABEL, contract.PROJECT_LABEL)} == {
            contract.INSTANCE_LABEL: instance, contract.JOB_LABEL: "42", contract.JOB_NAME_LABEL: "ann/proj/3",
            contract.OWNER_LABEL: "ann", contract.PROJECT_LABEL: "ann/proj"}
        assert [f.job_id for f in executor.find()] == [42]  # a restarted bridge finds it by those labels
        env = env_lines(container.logs().decode())
        assert {k: env.get(k) for k in spec.env} == spec.env  # every variable of the contract, as given
        assert env["FLOYD_CODE"] == "/floyd/code" and env["FLOYD_INPUT"] == "/floyd/input"
        assert env["FLOYD_OUTPUT"] == "/floyd/output" and env["FLOYD_PIP_CACHE"] == "/floyd/cache/pip"
        assert env["FLOYD_JOB"] == "ann/proj/3" and env["FLOYD_PARAM_LR"] == "0.1" and env["FLOYD_URL"] == PUBLIC_URL
    finally:
        executor.cleanup(handle)
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(handle)


def link_table(top: Path) -> dict[str, str]:
    """The link tree a local process gets: /floyd/<relative path> → the link's target."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                out[f"{contract.FLOYD}/{path.relative_to(top)}"] = os.readlink(path)
    return out


def test_local_process_gets_the_same_tree(tmp_path: Path) -> None:
    layout, spec = make_spec(tmp_path, IMAGE, command="env; pwd")
    executor = LocalExecutor(layout.root)
    handle = executor.start(spec)
    assert executor.wait(handle, spec.workdir) == 0
    run = Path(spec.workdir) / "run"
    # Read-only is not enforced for a local process (no mount namespace): the targets are.
    assert link_table(run) == {target: source for target, (source, _ro) in spec.mount_table().items()}
    assert (run / "input" / "d" / "x.txt").read_text() == "data!"
    output = (run / "output.log").read_text()
    env = env_lines(output)
    local = {"FLOYD_CODE": spec.mount_table()["/floyd/code"][0], "FLOYD_OUTPUT": spec.mount_table()["/floyd/output"][0],
             "FLOYD_PIP_CACHE": spec.mount_table()["/floyd/cache/pip"][0], "FLOYD_INPUT": str(run / "input")}
    assert {k: env.get(k) for k in local} == local
    assert {k: env.get(k) for k in spec.env if k not in local} == {k: v for k, v in spec.env.items() if k not in local}
    assert output.splitlines()[-1] == local["FLOYD_CODE"]  # it runs in its code directory
    assert "CUDA_VISIBLE_DEVICES" not in env and "JUPYTERHUB_API_TOKEN" not in env
    assert [(f.job_id, f.handle, f.exit_code) for f in executor.find()] == [(42, handle, 0)]


def test_gpus_by_device_id_in_each_runtime(tmp_path: Path) -> None:
    _, spec = make_spec(tmp_path, IMAGE)
    gpu = dataclasses.replace(spec, gpu_devices=["0"])
    options = contract.docker_options(gpu, "inst")
    (request,) = options["device_requests"]
    assert request.device_ids == ["0"] and request.capabilities == [["gpu"]]
    assert "device_requests" not in contract.docker_options(spec, "inst")
    create = DockerExecutor(Path(tmp_path / "root"), "inst").create_options(gpu)
    assert create["device_requests"] == options["device_requests"]
    assert create["name"] == "floyd-inst-job-ann-proj-3" and create["init"] is True and create["detach"] is True
    top = tmp_path / "links"
    env = contract.local_env(gpu, contract.link_tree(gpu, top), top)
    assert env["CUDA_VISIBLE_DEVICES"] == "0"
