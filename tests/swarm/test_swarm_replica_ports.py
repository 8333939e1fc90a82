"""The replica half of the swarm runtime without a swarm: ports chosen before the node is known,
node addresses, service names (no engine is asked: the service list is given)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from traitlets import TraitError

from jobs_bridge.executors.base import ExecutorError, RunSpec
from jobs_bridge.executors.swarm_replicas import SwarmReplicas, node_address, replica_service_name


class Listed(SwarmReplicas):
    """SwarmReplicas whose engine lists one replica service, started with --port 20001."""

    def replica_services(self) -> list[dict[str, Any]]:
        argv = ["sh", "-c", "...", "python", "-m", "floyd.container.serving", "--port", "20001", "--host", "0.0.0.0"]
        return [{"Spec": {"TaskTemplate": {"ContainerSpec": {"Command": argv}}}}]


def test_ports_skip_those_given_and_run_out_with_a_message(tmp_path: Path) -> None:
    replicas = Listed(tmp_path, "t", replica_ports="20000-20003")
    assert sorted(replicas.free_port() for _ in range(3)) == [20000, 20002, 20003]
    with pytest.raises(ExecutorError, match="widen the range"):
        replicas.free_port()


@pytest.mark.parametrize("ports", ["20000", "5-3", "80-90", "20000-70000", "a-b"])
def test_a_bad_port_range_names_the_setting(tmp_path: Path, ports: str) -> None:
    with pytest.raises((TraitError, ValueError), match="c.SwarmExecutor.replica_ports"):
        Listed(tmp_path, "t", replica_ports=ports)


def test_node_address_of_a_manager_that_reports_0000() -> None:
    assert node_address({"Status": {"Addr": "10.0.0.12"}}) == "10.0.0.12"
    assert node_address({"Status": {"Addr": "0.0.0.0"}, "ManagerStatus": {"Addr": "10.0.0.1:2377"}}) == "10.0.0.1"


def test_service_names_stay_short_whatever_the_names() -> None:
    spec = RunSpec(job_id=123456, name=f"{'o' * 40}/{'e' * 60}/v12/r3/7", image="i", argv=[], env={}, mounts=[],
                   workdir="/w", cpus=1, memory=1 << 28, kind="replica")
    name = replica_service_name(spec, "abcdef")
    assert name == "floyd-abcdef-ep-123456-v12-r3-7" and len(name) <= 63
