"""The data plane's bookkeeping without a platform: HAProxy accepts the configuration the bridge
renders, slots hand servers out and take them back only once nothing is in flight there, and a
freed slot is the last to be taken again."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from jobs_bridge.serving.dataplane import config
from jobs_bridge.serving.dataplane.slots import SlotTable


def test_haproxy_accepts_the_rendered_configuration(tmp_path: Path) -> None:
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy is not installed: run `bash scripts/ensure-system.sh haproxy` (as root), or `make test`")
    shape = config.Shape(tmp_path, "127.0.0.1", 18000, 18001, "/services/floyd/endpoints", 3, 4, 8, 1, log_port=18002)
    path = config.write(shape)
    checked = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = path.read_text()
    assert text.count("server-template r 1-4 ") == 3 and "id 1002" in text
    # "/services/floyd/endpoints/<owner>/<name>": the owner is field 5 of the path
    assert "path,field(5,/,2)" in text
    # log followers and server-sent events: each piece goes out at once, not held by the kernel for
    # more (benchmarks/jobs.py job_log_latency_p50: 133 ms without it, 1 ms with it)
    assert "\n    option http-no-delay\n" in text.split("frontend service")[0]
    head, body = (tmp_path / "error-503.http").read_bytes().decode().split("\r\n\r\n", 1)
    assert json.loads(body) == {"status": 503, "message": config.OWN_ERRORS[503]} and "Retry-After: 2" in head


def test_servers_are_placed_retired_and_freed_when_idle() -> None:
    table = SlotTable(slots=2, servers=2)
    slot = table.slot(7)
    assert slot is not None and slot.name == "slot0"
    cmds = table.place(slot, (("127.0.0.1", 5001),))
    assert cmds == ["set server slot0/r1 addr 127.0.0.1 port 5001", "set server slot0/r1 state ready"]
    assert table.place(slot, (("127.0.0.1", 5001),)) == []  # nothing changed, nothing sent
    # a new replica while the old one leaves: the old one goes to maintenance, keeping its server
    cmds = table.place(slot, (("127.0.0.1", 5002),))
    assert cmds == ["set server slot0/r1 state maint", "set server slot0/r2 addr 127.0.0.1 port 5002",
                    "set server slot0/r2 state ready"]
    # both servers taken: a third replica waits until r1 has finished its requests
    assert table.place(slot, (("127.0.0.1", 5002), ("127.0.0.1", 5003))) == []
    table.settle({("slot0", "r1"): (1, 0)}, keep={7})
    assert slot.servers[0] == ("127.0.0.1", 5001)  # one request still in flight there
    table.settle({("slot0", "r1"): (0, 0)}, keep={7})
    assert slot.servers[0] is None
    assert table.place(slot, (("127.0.0.1", 5002), ("127.0.0.1", 5003)))[0] == "set server slot0/r1 addr 127.0.0.1 port 5003"
    assert table.busy(slot, {("slot0", "r1"): (2, 1)}) == {("127.0.0.1", 5003): 3, ("127.0.0.1", 5002): 0}


def test_a_slot_is_freed_after_its_version_retired_and_reused_last() -> None:
    table = SlotTable(slots=2, servers=1)
    a = table.slot(1)
    assert a is not None
    table.place(a, (("127.0.0.1", 6001),))
    assert table.retire_all(a) == ["set server slot0/r1 state maint"]
    table.settle({("slot0", "r1"): (0, 0), ("slot0", "BACKEND"): (0, 2)}, keep=set())
    assert table.version_of(0) == 1  # two requests still queued in the backend: kept
    table.settle({("slot0", "r1"): (0, 0)}, keep=set())
    assert table.version_of(0) is None
    b = table.slot(2)
    assert b is not None and b.index == 1  # slot0 went to the back of the line
    c = table.slot(3)
    assert c is not None and c.index == 0
    assert table.slot(4) is None  # all in use: the bridge answers that version itself
