"""kill -9 of the whole platform at once — floyd-up, JupyterHub, the proxy, the bridge and the
idle culler — while 10 jobs print numbered lines, 2 endpoints take continuous traffic and a
dataset upload is half sent. The next start on the same FLOYD_ROOT and ports (what `make up`
does) takes everything back:

- the same 10 job containers are re-adopted, finish ``succeeded``, and each persisted log holds
  every printed line exactly once, in order (lines printed while nothing watched included);
- both endpoints answer 200 again from the same replica processes; requests failed only while
  the platform was down;
- the upload resumes: it asks only for the blobs not yet sent (a half-sent large blob from its
  offset), and its commit gives a version with the right content.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from jobs_bridge.storage.paths import StorageLayout
from tests.support.jobs import submit, wait_state
from tests.support.platform import TEST_BRIDGE_CONFIG, Platform, User
from tests.support.processes import descendants, kill_all, tree_roles, wait_dead
from tests.support.serving import deploy, wait_version
from tests.support.traffic import Traffic

pytestmark = pytest.mark.usefixtures("workspace_image")

JOBS = 10
ENDPOINTS = ("crash-a", "crash-b")
ROLES = ["bridge", "culler", "floyd-up", "hub", "proxy"]
BRIDGE_CONFIG = TEST_BRIDGE_CONFIG + """
c.JobQueue.max_running = 20
c.JobQueue.max_running_per_user = 20
c.DeploymentManager.ready_timeout = 90
"""

# Numbered lines at a steady rate until the test drops ``release`` into the job's code
# directory, so every job is certainly still running when the next bridge takes it back.
TICKER = b"""import os, time
deadline = time.time() + 300
i = 0
while not os.path.exists('release') and time.time() < deadline:
    print(i, flush=True)
    i += 1
    time.sleep(0.2)
print('end', i, flush=True)
"""

# BOOT is drawn once per process: the same value after the crash means the same replica process.
APP = b"""import os, uuid
from flask import Flask, jsonify

app = Flask(__name__)
BOOT = uuid.uuid4().hex


@app.get("/who")
def who():
    return jsonify(boot=BOOT, pid=os.getpid())
"""


def labelled(client: docker.DockerClient, p: Platform, label: str) -> dict[str, str]:
    """This platform's running containers with ``label``: {label value: container id}."""
    found = client.containers.list(filters={"label": [f"org.floyd.instance={p.instance}", label]})
    return {c.labels[label]: c.id for c in found}


def signal_all(pids: set[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def kill_everything(p: Platform) -> tuple[dict[int, str], float]:
    """SIGSTOP, then SIGKILL, to floyd-up and every process below it: none can act on another's
    death (the lifeline's SIGTERM, a clean shutdown) before it dies itself. Returns their roles
    and when they were frozen: no request sent after that can be answered by this platform."""
    assert p.proc is not None
    roles = tree_roles(p.proc.pid)
    assert sorted(roles.values()) == ROLES, roles
    tree = {p.proc.pid, *descendants(p.proc.pid)}
    signal_all(tree, signal.SIGSTOP)
    frozen = time.monotonic()
    signal_all(tree, signal.SIGKILL)
    p.proc.wait(10)
    left = wait_dead(tree, 15)
    assert not left, f"still alive after SIGKILL: {left}"
    return roles, frozen


# -- jobs -------------------------------------------------------------------------------------
def start_jobs(user: User, tmp: Path) -> list[dict]:
    jobs = [submit(user, "ticker", {"tick.py": TICKER}, tmp, command="python tick.py", cpus=0.1)["job"]
            for _ in range(JOBS)]
    for job in jobs:
        wait_state(user, job["id"], {"running"}, timeout=180)
    return jobs


def log_lines(layout: StorageLayout, job: dict) -> int:
    owner, project = job["project"].split("/")
    path = layout.job_log(owner, project, job["number"])
    return path.read_bytes().count(b"\n") if path.exists() else 0


def wait_logs_grow(layout: StorageLayout, jobs: list[dict], beyond: dict[str, int], timeout: float) -> None:
    """Until every job's persisted log has lines beyond ``beyond``: someone follows it again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stuck = [j["id"] for j in jobs if log_lines(layout, j) <= beyond[j["id"]]]
        if not stuck:
            return
        time.sleep(0.3)
    raise AssertionError(f"no new log lines for {stuck}")


def release(layout: StorageLayout, jobs: list[dict]) -> None:
    for job in jobs:
        owner, project = job["project"].split("/")
        (layout.job_code(owner, project, job["number"]) / "release").touch()


def check_log(user: User, job: dict) -> int:
    """The persisted log is 0, 1, …, n-1 and ``end n``: nothing lost, nothing twice. Returns n."""
    lines = user.api("GET", f"jobs/{job['id']}/logs").text.splitlines()
    assert lines and lines[-1].startswith("end "), (job["id"], lines[-5:])
    n = int(lines[-1].split()[1])
    expected = [str(i) for i in range(n)] + [f"end {n}"]
    if lines != expected:
        at = next(i for i, (a, b) in enumerate(zip(lines, expected, strict=False)) if a != b)
        raise AssertionError(f"{job['id']}: {len(lines)} lines, expected {len(expected)}; from line {at}: "
                             f"{lines[at:at + 5]}, expected {expected[at:at + 5]}")
    return n


# -- endpoints -----------------------------------------------------------------------------
def deploy_endpoints(user: User, tmp: Path) -> None:
    versions = [deploy(user, name, {"app.py": APP}, tmp, cpus=0.2) for name in ENDPOINTS]
    for name, v in zip(ENDPOINTS, versions, strict=True):
        done = wait_version(user, name, v["number"], timeout=180)
        assert done["state"] == "ready", done


def boots(t: Traffic, since: float, until: float = float("inf")) -> set[str]:
    """The replica processes (their BOOT) that answered requests sent in [since, until)."""
    return {json.loads(a.body)["boot"] for a in t.answers if since <= a.started < until and a.status == 200}


def check_traffic(name: str, t: Traffic, killed: float, up: float) -> dict[str, object]:
    """Failures only between the kill and the first 200 after it, none after; the same process
    answered before and after. Returns what was measured."""
    back = t.first_ok_after(killed)
    assert back is not None, (name, t.counts())
    before = [a for a in t.answers if a.ended < killed]
    assert before and all(a.status == 200 for a in before), (name, [a for a in before if a.status != 200][:5])
    bad = [a for a in t.failures() if not (a.ended >= killed and a.started < back.started)]
    assert not bad, (name, bad[:5])
    assert boots(t, back.started) == boots(t, 0, killed), (name, boots(t, 0, killed), boots(t, back.started))
    took = sorted(a.ended - a.started for a in t.answers if a.status == 200)
    return {"failures": len(t.failures()), "statuses": dict(t.counts()),
            "no_200_for_s": round(back.started - killed, 1), "after_up_s": round(back.started - up, 1),
            "median_200_s": round(took[len(took) // 2], 3),
            "failed_with": sorted({f"{a.status} {a.body[:70]}" for a in t.failures() if isinstance(a.status, int)})}


# -- the upload ----------------------------------------------------------------------------
MIB = 1 << 20


def upload_files() -> dict[str, bytes]:
    small = {f"small/{i}.bin": os.urandom(3000 + i) for i in range(6)}
    return {**small, "big.bin": os.urandom(4 * MIB + 123)}


def hexd(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def send_pack(user: User, upload_id: str, blobs: list[bytes]) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for data in blobs:
            info = tarfile.TarInfo(hexd(data))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    r = user.api("POST", f"uploads/{upload_id}/pack", data=buf.getvalue())
    assert r.status_code == 200 and r.json()["stored"] == len(blobs), r.text


def put_blob(user: User, upload_id: str, data: bytes, start: int, end: int) -> None:
    r = user.api("PUT", f"uploads/{upload_id}/blobs/sha256:{hexd(data)}", data=data[start:end],
                 headers={"Upload-Offset": str(start)})
    assert r.status_code == 200 and r.headers["Upload-Offset"] == str(end), r.text


class StalledPut:
    """A PUT of ``data[start:]`` that sends ``sent`` bytes and then waits, as a client on a slow
    link: the kill finds it in flight. ``release()`` lets its body go on (to a dead connection)."""

    def __init__(self, user: User, upload_id: str, data: bytes, start: int, sent: int) -> None:
        self.gate = threading.Event()
        self.chunks = [data[i:min(i + MIB // 4, start + sent)] for i in range(start, start + sent, MIB // 4)]
        self.args = (f"uploads/{upload_id}/blobs/sha256:{hexd(data)}", {"Upload-Offset": str(start)})
        self.user = user
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="stalled-put", daemon=True)
        self.thread.start()

    def _body(self) -> Iterator[bytes]:
        yield from self.chunks
        self.gate.wait(120)

    def _run(self) -> None:
        path, headers = self.args
        try:
            self.user.api("PUT", path, data=self._body(), headers=headers, timeout=60)
        except Exception as exc:  # the connection dies with the platform
            self.error = exc

    def release(self) -> None:
        self.gate.set()
        self.thread.join(60)


def start_upload(user: User, layout: StorageLayout, files: dict[str, bytes]) -> tuple[dict, StalledPut]:
    """Create the dataset and the upload; send half the small blobs and 1 MiB of the big one
    completely, then 2 MiB more of it in a PUT that is still open when the platform dies."""
    assert user.api("POST", "datasets", json={"name": "halfway"}).status_code == 201
    manifest = [{"path": path, "size": len(data), "hash": f"sha256:{hexd(data)}"} for path, data in files.items()]
    r = user.api("POST", f"datasets/{user.name}/halfway/uploads", json={"manifest": manifest})
    assert r.status_code == 201, r.text
    up_id, big = r.json()["id"], files["big.bin"]
    small = [d for p, d in files.items() if p.startswith("small/")]
    send_pack(user, up_id, small[:3])
    put_blob(user, up_id, big, 0, MIB)
    stalled = StalledPut(user, up_id, big, MIB, 2 * MIB)
    part = layout.upload_dir(up_id) / f"{hexd(big)}.part"
    deadline = time.monotonic() + 60
    while (part.stat().st_size if part.exists() else 0) < 2 * MIB:  # the bridge wrote some of it
        assert time.monotonic() < deadline, "the stalled PUT's bytes never reached the part file"
        time.sleep(0.1)
    return {"id": up_id, "manifest": manifest, "unsent": small[3:]}, stalled


def finish_upload(user: User, files: dict[str, bytes], up: dict) -> int:
    """The same manifest finds the same upload, which asks only for what was not sent; the big
    blob goes on from the offset the bridge holds. Returns that offset."""
    r = user.api("POST", f"datasets/{user.name}/halfway/uploads", json={"manifest": up["manifest"]})
    assert r.status_code == 200, r.text
    status, big = r.json(), files["big.bin"]
    assert status["id"] == up["id"] and status["resumed"], status
    assert status == user.api("GET", f"uploads/{up['id']}").json()
    assert sorted(status["missing"]) == sorted(f"sha256:{hexd(d)}" for d in [*up["unsent"], big]), status
    held = status["partial"][f"sha256:{hexd(big)}"]
    assert 2 * MIB <= held <= 3 * MIB and list(status["partial"]) == [f"sha256:{hexd(big)}"], status
    head = user.api("HEAD", f"uploads/{up['id']}/blobs/sha256:{hexd(big)}")
    assert head.headers["Upload-Offset"] == str(held)
    send_pack(user, up["id"], up["unsent"])
    put_blob(user, up["id"], big, held, len(big))
    assert user.api("GET", f"uploads/{up['id']}").json()["missing"] == []
    r = user.api("POST", f"uploads/{up['id']}/commit")
    assert r.status_code == 201, r.text
    number = r.json()["number"]
    for path, data in files.items():
        got = user.api("GET", f"datasets/{user.name}/halfway/versions/{number}/download", params={"path": path})
        assert got.status_code == 200 and got.content == data, (path, got.status_code)
    return held


# -- the test ------------------------------------------------------------------------------
def while_down(layout: StorageLayout, ended: list[dict], held: list[dict]) -> dict[str, int]:
    """While nothing of the platform runs: the ``ended`` jobs finish, and the last line of one
    held job's log is torn (a write that a kill cut short). Returns each log's lines at the kill."""
    at_kill = {j["id"]: log_lines(layout, j) for j in [*ended, *held]}
    release(layout, ended)
    torn = held[-1]
    owner, project = torn["project"].split("/")
    with open(layout.job_log(owner, project, torn["number"]), "a") as f:
        f.write(str(at_kill[torn["id"]]))  # the next line, without its newline
    return at_kill


def test_whole_platform_kill_takes_everything_back(tmp_path: Path, docker_client: docker.DockerClient,
                                                   record_property: Callable[[str, object], None]) -> None:
    p = Platform.create(tmp_path, bridge_config=BRIDGE_CONFIG)
    layout = StorageLayout(p.root)
    traffic: dict[str, Traffic] = {}
    roles: dict[int, str] = {}
    stalled: StalledPut | None = None
    p.start()
    try:
        user = p.user("crash")
        deploy_endpoints(user, tmp_path)
        traffic = {name: Traffic(user, name, "/who").start() for name in ENDPOINTS}
        jobs = start_jobs(user, tmp_path)
        ended, held = jobs[:JOBS // 2], jobs[JOBS // 2:]
        files = upload_files()
        up, stalled = start_upload(user, layout, files)
        wait_logs_grow(layout, jobs, dict.fromkeys((j["id"] for j in jobs), 2), 60)
        containers = labelled(docker_client, p, "org.floyd.job")
        replicas = labelled(docker_client, p, "org.floyd.endpoint")
        assert sorted(containers) == sorted(j["id"] for j in jobs) and len(replicas) == 2, (containers, replicas)

        roles, killed = kill_everything(p)
        stalled.release()
        at_kill = while_down(layout, ended, held)
        p.start()
        up_at = time.monotonic()

        # The held jobs run on in the same containers, and their logs grow again.
        now = labelled(docker_client, p, "org.floyd.job")
        assert {j["id"]: now.get(j["id"]) for j in held} == {j["id"]: containers[j["id"]] for j in held}
        assert {j["id"]: user.api("GET", f"jobs/{j['id']}").json()["state"] for j in held} == dict.fromkeys(
            (j["id"] for j in held), "running")
        wait_logs_grow(layout, held, {j["id"]: log_lines(layout, j) for j in held}, 60)
        for t in traffic.values():
            t.wait_ok_after(killed, 60)
        held_offset = finish_upload(user, files, up)
        release(layout, held)
        for job in jobs:
            assert wait_state(user, job["id"], {"succeeded", "failed", "lost"}, 60)["state"] == "succeeded"
        lines = {j["id"]: (at_kill[j["id"]], check_log(user, j)) for j in jobs}

        time.sleep(1)  # a little traffic after the recovery, too
        for t in traffic.values():
            t.stop()
        assert labelled(docker_client, p, "org.floyd.endpoint") == replicas
        report = {name: check_traffic(name, t, killed, up_at) for name, t in traffic.items()}
        assert "left running by a previous start" not in p.log_tail(10_000)  # SIGKILL left nothing running
        print(f"\nplatform down {up_at - killed:.1f}s (kill to 'is up at'); big blob resumed at {held_offset}")
        print(f"job lines (persisted at the kill, in all): {lines}\ntraffic: {report}")
        record_property("down_s", round(up_at - killed, 1))
        record_property("traffic", report)
    finally:
        if stalled:
            stalled.release()
        for t in traffic.values():
            t.stop()
        p.stop()
        p.remove_jobs()
        kill_all(set(roles))
