"""HAProxy as the endpoints' data plane (jobs_bridge/serving/dataplane), on the real platform.

Requests with a live key of a one-version endpoint are answered by HAProxy on the bridge's port;
these tests check that they really are (HAProxy's own counters), that the bridge still sees every
one of them (metrics, in-flight counts, key use), that what HAProxy must not answer reaches the
bridge (a revoked key at once, a locked-out address, a Hub token), and that HAProxy comes back
when it dies and dies with the bridge.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from jobs_bridge.serving.dataplane.plane import dataplane_state
from tests.support.platform import Platform, User
from tests.support.serving import deploy_ready, endpoint_url

pytestmark = pytest.mark.usefixtures("workspace_image")

APP = b'''import time
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/hello")
def hello():
    return jsonify(authorization=request.headers.get("Authorization"), key=request.headers.get("X-Floyd-Key"),
                   prefix=request.headers.get("X-Forwarded-Prefix"), path=request.full_path,
                   forwarded=request.headers.get("X-Forwarded-For"))


@app.get("/boom")
def boom():
    return jsonify(error="boom"), 500


@app.get("/slow")
def slow():
    time.sleep(float(request.args.get("s", "2")))
    return "slow"
'''


def runtime_api(platform: Platform, command: str) -> str:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(dataplane_state(platform.root) / "admin.sock"))
        s.sendall(command.encode() + b"\n")
        return b"".join(iter(lambda: s.recv(65536), b"")).decode()


def answered_by_haproxy(platform: Platform) -> int:
    """Requests HAProxy's slot backends have answered so far (``show stat``'s stot)."""
    total = 0
    for line in runtime_api(platform, "show stat -1 2 -1").splitlines():
        fields = line.split(",")
        if fields[0].startswith("slot") and fields[1] == "BACKEND":
            total += int(fields[7] or 0)
    return total


def haproxy_pid(platform: Platform) -> int:
    return int((dataplane_state(platform.root) / "haproxy.pid").read_text().split()[0])


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@pytest.fixture(scope="module")
def owner(platform: Platform) -> User:
    return platform.user("dataplane")


@pytest.fixture(scope="module")
def fast(owner: User, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """An endpoint with one ready version, and a key of it."""
    deploy_ready(owner, "fast", {"app.py": APP}, tmp_path_factory.mktemp("fast"))
    key = owner.api("POST", "endpoints/dataplane/fast/keys", json={"name": "k"}).json()["key"]
    return endpoint_url(owner, "fast"), key


def settled_metrics(owner: User) -> dict:
    """The version's metrics once its request count has stopped moving for half a second: HAProxy's
    log lines reach the bridge in batches, later on a loaded machine (CI counted a warm-up request
    after this read, and the exact count below never came)."""
    last = owner.api("GET", "endpoints/dataplane/fast/metrics").json()["versions"][0]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = owner.api("GET", "endpoints/dataplane/fast/metrics").json()["versions"][0]
        if now["requests"] == last["requests"]:
            return now
        last = now
    raise AssertionError("the request count kept moving for 10 s")


def until(check, seconds: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_keyed_requests_are_answered_by_haproxy_and_counted_exactly(owner: User, platform: Platform,
                                                                    fast: tuple[str, str]) -> None:
    url, key = fast
    until(lambda: requests.get(url + "hello", headers={"X-Floyd-Key": key}, timeout=10).status_code == 200)
    before_proxy = answered_by_haproxy(platform)
    before = settled_metrics(owner)  # the warm-up's log lines may still be on their way
    with requests.Session() as s:
        for i in range(40):
            r = s.get(url + f"hello?i={i}", headers={"Authorization": f"Bearer {key}"}, timeout=10)
            assert r.status_code == 200
        for _ in range(3):
            assert s.get(url + "boom", headers={"X-Floyd-Key": key}, timeout=10).status_code == 500
        assert s.get(url + "missing", headers={"X-Floyd-Key": key}, timeout=10).status_code == 404
    body = r.json()
    # What the app sees is what the bridge's own proxy sends: no credentials, its own path, the prefix.
    assert body["authorization"] is None and body["key"] is None and body["path"] == "/hello?i=39"
    assert body["prefix"] == "/services/floyd/endpoints/dataplane/fast" and body["forwarded"]
    assert answered_by_haproxy(platform) - before_proxy == 44

    def counted() -> bool:
        m = owner.api("GET", "endpoints/dataplane/fast/metrics").json()["versions"][0]
        return m["requests"] - before["requests"] == 44
    until(counted)
    m = owner.api("GET", "endpoints/dataplane/fast/metrics").json()["versions"][0]
    grew = {k: m["responses"][k] - before["responses"][k] for k in m["responses"]}
    assert grew == {"2xx": 40, "3xx": 0, "4xx": 1, "5xx": 3}
    assert 0 < m["latency_ms"]["p50"] <= m["latency_ms"]["p99"]
    # The owner's Hub token is the bridge's to check: it answers, HAProxy does not count it.
    proxied = answered_by_haproxy(platform)
    assert requests.get(url + "hello", headers=owner.headers, timeout=10).status_code == 200
    assert answered_by_haproxy(platform) == proxied


def test_in_flight_through_haproxy_reach_the_bridge(owner: User, fast: tuple[str, str]) -> None:
    url, key = fast
    done: list[int] = []
    threads = [threading.Thread(target=lambda: done.append(
        requests.get(url + "slow?s=2", headers={"X-Floyd-Key": key}, timeout=30).status_code)) for _ in range(4)]
    for t in threads:
        t.start()
    until(lambda: owner.api("GET", "endpoints/dataplane/fast/metrics").json()["versions"][0]["in_flight"] >= 4, 5)
    for t in threads:
        t.join()
    assert done == [200] * 4
    until(lambda: owner.api("GET", "endpoints/dataplane/fast/metrics").json()["versions"][0]["in_flight"] == 0, 5)


def test_revoked_key_stops_at_once_and_a_new_key_works_at_once(owner: User, fast: tuple[str, str]) -> None:
    url, _ = fast
    made = owner.api("POST", "endpoints/dataplane/fast/keys", json={"name": "brief"}).json()
    assert requests.get(url + "hello", headers={"X-Floyd-Key": made["key"]}, timeout=10).status_code == 200
    owner.api("DELETE", f"endpoints/dataplane/fast/keys/{made['id']}")
    refused = requests.get(url + "hello", headers={"X-Floyd-Key": made["key"]}, timeout=10)
    assert refused.status_code == 401 and "revoked" in refused.json()["message"]


def test_a_locked_out_address_is_refused_even_with_a_good_key(platform: Platform, fast: tuple[str, str]) -> None:
    _, key = fast
    # Straight to the bridge's port (HAProxy), so the address is the X-Forwarded-For entry sent here.
    url = f"http://127.0.0.1:{platform.bridge_port}/services/floyd/endpoints/dataplane/fast/hello"
    for _ in range(10):
        r = requests.get(url, headers={"X-Floyd-Key": "fk_wrong", "X-Forwarded-For": "10.77.0.1"}, timeout=10)
        assert r.status_code in (401, 429)
    locked = requests.get(url, headers={"X-Floyd-Key": key, "X-Forwarded-For": "10.77.0.1"}, timeout=10)
    assert locked.status_code == 429 and locked.headers["Retry-After"]
    other = requests.get(url, headers={"X-Floyd-Key": key, "X-Forwarded-For": "10.77.0.2"}, timeout=10)
    assert other.status_code == 200


def test_haproxy_that_dies_is_started_again(platform: Platform, fast: tuple[str, str]) -> None:
    url, key = fast
    old = haproxy_pid(platform)
    os.kill(old, signal.SIGKILL)
    until(lambda: alive(haproxy_pid(platform)) and haproxy_pid(platform) != old, 15)

    def serves() -> bool:
        try:
            return requests.get(url + "hello", headers={"X-Floyd-Key": key}, timeout=5).status_code == 200
        except requests.RequestException:
            return False
    until(serves, 15)
    until(lambda: answered_by_haproxy(platform) > 0 or not serves(), 15)
    assert answered_by_haproxy(platform) > 0  # the fast path is back, not only the bridge


def test_haproxy_dies_with_the_bridge(platform: Platform, fast: tuple[str, str]) -> None:
    url, key = fast
    proxy = haproxy_pid(platform)
    bridge = int((platform.root / "jupyterhub-service-floyd.pid").read_text().split()[0])
    os.kill(bridge, signal.SIGKILL)
    until(lambda: not alive(proxy), 10)

    def serves() -> bool:
        try:
            return requests.get(url + "hello", headers={"X-Floyd-Key": key}, timeout=5).status_code == 200
        except requests.RequestException:
            return False
    until(serves, 60)  # JupyterHub starts the bridge again, and the bridge its HAProxy
    assert alive(haproxy_pid(platform)) and haproxy_pid(platform) != proxy


def test_a_clean_stop_leaves_no_state_behind(tmp_path: Path) -> None:
    """The maps, sockets and error files live in the temporary directory while the bridge runs;
    a clean stop removes them (only a crash leaves them, for the next start to find its orphan)."""
    p = Platform.create(tmp_path)
    try:
        p.start()
        state = dataplane_state(p.root, create=False)
        until(lambda: (state / "haproxy.pid").exists(), 30)
    finally:
        p.stop()
    assert not state.exists()
