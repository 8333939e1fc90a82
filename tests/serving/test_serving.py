"""Endpoints in real containers: Flask and notebooks, keys, pinned and latest routing, a broken
version that never takes traffic, rolling deploys under load, replicas, metrics, recovery."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import docker
import pytest
import requests

from tests.support.jobs import submit, wait_state
from tests.support.platform import TEST_BRIDGE_CONFIG, Platform, User
from tests.support.serving import call, deploy, deploy_ready, endpoint_url, ensure_endpoint, wait_version

pytestmark = pytest.mark.usefixtures("workspace_image")

FLASK_APP = b'''import os, time
from flask import Flask, jsonify, request

app = Flask(__name__)
VERSION = open("version.txt").read().strip() if os.path.exists("version.txt") else "1"


@app.get("/hello")
def hello():
    return jsonify(version=VERSION, replica=os.environ.get("FLOYD_REPLICA"), q=request.args.get("q"))


@app.post("/echo")
def echo():
    return jsonify(request.get_json(force=True))


@app.get("/slow")
def slow():
    time.sleep(float(request.args.get("s", "2")))
    return jsonify(version=VERSION, slow=True)


@app.get("/boom")
def boom():
    return jsonify(error="boom"), 500


@app.get("/headers")
def headers():
    return jsonify(authorization=request.headers.get("Authorization"), key=request.headers.get("X-Floyd-Key"),
                   prefix=request.headers.get("X-Forwarded-Prefix"), cookie=request.headers.get("Cookie"))


@app.get("/model")
def model():
    return open("/floyd/input/model/weights.txt").read()
'''


def flask_files(version: str) -> dict[str, bytes]:
    return {"app.py": FLASK_APP, "version.txt": version.encode()}


def notebook(cells: list[str]) -> bytes:
    return json.dumps({"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                                  "source": c} for c in cells],
                       "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
                       "nbformat": 4, "nbformat_minor": 5}).encode()


@pytest.fixture(scope="module")
def owner(platform: Platform) -> User:
    return platform.user("server")


def test_flask_app_latest_and_pinned(owner: User, tmp_path: Path) -> None:
    v = deploy_ready(owner, "greeter", flask_files("1"), tmp_path)
    assert v["number"] == 1 and v["replicas"] == {"desired": 1, "ready": 1, "items": v["replicas"]["items"]}
    r = call(owner, "greeter", "/hello?q=x")
    assert r.status_code == 200 and r.json() == {"version": "1", "replica": "0", "q": "x"}
    assert call(owner, "greeter", "/echo", "POST", json={"a": [1, 2]}).json() == {"a": [1, 2]}
    assert call(owner, "greeter", "/v1/hello").json()["version"] == "1"
    missing = call(owner, "greeter", "/v7/hello")
    assert missing.status_code == 404 and "no version 7" in missing.json()["message"]
    info = owner.api("GET", "endpoints/server/greeter").json()
    assert info["serving_version"] == 1 and info["url"].endswith("/services/floyd/endpoints/server/greeter/")
    # The app's own 404 passes through untouched.
    assert call(owner, "greeter", "/nope").status_code == 404
    # The endpoint describes its routes (Flask has no document of its own: made from its url_map).
    doc = call(owner, "greeter", "/openapi.json").json()
    assert "/hello" in doc["paths"] and "post" in doc["paths"]["/echo"]


def test_api_keys(owner: User, platform: Platform, tmp_path: Path) -> None:
    deploy_ready(owner, "keyed", flask_files("1"), tmp_path)
    url = endpoint_url(owner, "keyed") + "headers"
    nothing = requests.get(url, timeout=10)
    assert nothing.status_code == 401 and "API key" in nothing.json()["message"]
    created = owner.api("POST", "endpoints/server/keyed/keys", json={"name": "ci"})
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("fk_") and created.json()["prefix"] == key[:8]
    ok = requests.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert ok.status_code == 200
    # Credentials meant for the platform never reach the app.
    assert ok.json()["authorization"] is None and ok.json()["prefix"] == "/services/floyd/endpoints/server/keyed"
    assert requests.get(url, headers={"X-Floyd-Key": key}, timeout=10).json()["key"] is None
    # Listed without the secret; stored hashed.
    listed = owner.api("GET", "endpoints/server/keyed/keys").json()["items"]
    assert [k["name"] for k in listed] == ["ci"] and "key" not in listed[0]
    db = (platform.root / "db.sqlite").read_bytes()
    assert key.encode() not in db
    # Another endpoint's key, a wrong key, another user's Hub token: refused.
    deploy_ready(owner, "other", flask_files("1"), tmp_path)
    other_key = owner.api("POST", "endpoints/server/other/keys", json={}).json()["key"]
    assert requests.get(url, headers={"Authorization": f"Bearer {other_key}"}, timeout=10).status_code == 401
    assert requests.get(url, headers={"X-Floyd-Key": "fk_wrong"}, timeout=10).status_code == 401
    stranger = platform.user("stranger")
    assert requests.get(url, headers=stranger.headers, timeout=10).status_code == 403
    assert stranger.api("GET", "endpoints/server/keyed/keys").status_code == 404
    # Revoked: 401 from then on.
    revoked = owner.api("DELETE", f"endpoints/server/keyed/keys/{listed[0]['id']}").json()
    assert revoked["state"] == "revoked"
    assert requests.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=10).status_code == 401
    # Expiry.
    short = owner.api("POST", "endpoints/server/keyed/keys", json={"name": "short", "expires_in_days": 2 / 86400})
    assert short.json()["expires_at"]
    assert requests.get(url, headers={"X-Floyd-Key": short.json()["key"]}, timeout=10).status_code == 200
    time.sleep(2.5)
    assert requests.get(url, headers={"X-Floyd-Key": short.json()["key"]}, timeout=10).status_code == 401
    assert owner.api("POST", "endpoints/server/keyed/keys", json={"expires_in_days": -1}).status_code == 400
    # Public, explicitly: no key needed; and back.
    assert owner.api("PATCH", "endpoints/server/keyed", json={"public": True}).json()["public"] is True
    assert requests.get(url, timeout=10).status_code == 200
    owner.api("PATCH", "endpoints/server/keyed", json={"public": False})
    assert requests.get(url, timeout=10).status_code == 401


def test_broken_version_never_takes_traffic(owner: User, tmp_path: Path) -> None:
    deploy_ready(owner, "fragile", flask_files("1"), tmp_path)
    broken = {"app.py": b"import numpy\nraise RuntimeError('the model file is missing')\n"}
    v2 = deploy(owner, "fragile", broken, tmp_path, project="fragile-code")
    during = call(owner, "fragile", "/hello")
    assert during.status_code == 200 and during.json()["version"] == "1"
    failed = wait_version(owner, "fragile", v2["number"])
    assert failed["state"] == "failed"
    assert "exited with code" in failed["reason"] and "the model file is missing" in "\n".join(failed["log_tail"])
    assert call(owner, "fragile", "/hello").json()["version"] == "1"
    pinned = call(owner, "fragile", "/v2/hello")
    assert pinned.status_code == 503 and "failed" in pinned.json()["message"]
    # A version whose readiness path never answers 2xx fails when its time is up (30 s in these
    # tests' config), and v1 serves all along.
    v3 = deploy(owner, "fragile", flask_files("3"), tmp_path, project="fragile-code", health_path="/boom")
    assert call(owner, "fragile", "/v3/hello").status_code == 503
    assert call(owner, "fragile", "/hello").json()["version"] == "1"
    failed = wait_version(owner, "fragile", v3["number"], timeout=90)
    assert failed["state"] == "failed" and "not ready within" in failed["reason"]
    assert owner.api("GET", "endpoints/server/fragile").json()["serving_version"] == 1


def _hammer(user: User, name: str, stop: threading.Event, results: list, rate: float = 150.0) -> None:
    session = requests.Session()
    session.headers.update(user.headers)
    url = endpoint_url(user, name) + "hello"
    interval = 1.0 / rate
    next_at = time.monotonic()
    while not stop.is_set():
        try:
            r = session.get(url, timeout=30)
            results.append((r.status_code, r.json().get("version") if r.status_code == 200 else r.text))
        except requests.RequestException as exc:
            results.append((0, repr(exc)))
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))


def test_rolling_deploy_under_load_drops_nothing(owner: User, tmp_path: Path) -> None:
    deploy_ready(owner, "rolling", flask_files("1"), tmp_path, replicas=2)
    stop, results = threading.Event(), []
    workers = [threading.Thread(target=_hammer, args=(owner, "rolling", stop, results, 75.0)) for _ in range(2)]
    for w in workers:
        w.start()
    slow_result: dict = {}

    def slow() -> None:  # in flight on v1 while v2 takes over: it must finish, from v1
        r = call(owner, "rolling", "/slow?s=3")
        slow_result.update(status=r.status_code, body=r.json())

    try:
        time.sleep(1)
        slow_thread = threading.Thread(target=slow)
        slow_thread.start()
        time.sleep(0.5)
        v2 = deploy(owner, "rolling", flask_files("2"), tmp_path, project="rolling-code", replicas=2)
        assert wait_version(owner, "rolling", v2["number"])["state"] == "ready"
        time.sleep(1.5)
        v3 = deploy(owner, "rolling", flask_files("3"), tmp_path, project="rolling-code", replicas=2)
        assert wait_version(owner, "rolling", v3["number"])["state"] == "ready"
        time.sleep(1.5)
        slow_thread.join(30)
    finally:
        stop.set()
        for w in workers:
            w.join(30)
    failures = [r for r in results if r[0] != 200]
    assert not failures, failures[:5]
    versions = [v for _, v in results]
    assert {"1", "2", "3"} <= set(versions), set(versions)
    # Traffic moved forward only: once a version answered, older ones never did again.
    first = {v: versions.index(v) for v in ("2", "3")}
    assert "1" not in versions[first["2"] + 50:] and "2" not in versions[first["3"] + 50:]
    assert slow_result == {"status": 200, "body": {"version": "1", "slow": True}}
    old = wait_version(owner, "rolling", 1, {"stopped"}, timeout=30)
    assert "replaced by v2" in old["reason"]
    assert len(results) > 300


def test_replicas_are_balanced_and_restarted(owner: User, tmp_path: Path, docker_client: docker.DockerClient) -> None:
    deploy_ready(owner, "pair", flask_files("1"), tmp_path, replicas=2)
    seen = {call(owner, "pair", "/hello").json()["replica"] for _ in range(20)}
    assert seen == {"0", "1"}
    containers = docker_client.containers.list(filters={"label": "org.floyd.endpoint=server/pair/v1/r1/0"})
    assert len(containers) == 1
    containers[0].kill()
    # Requests keep succeeding on the other replica meanwhile.
    for _ in range(20):
        assert call(owner, "pair", "/hello").status_code == 200
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        v = owner.api("GET", "endpoints/server/pair/versions/1").json()
        r1 = v["replicas"]["items"][1]
        if r1["ready"] and r1["restarts"] == 1:
            break
        time.sleep(0.3)
    else:
        raise AssertionError(f"replica 1 was not restarted: {v}")
    assert {call(owner, "pair", "/hello").json()["replica"] for _ in range(20)} == {"0", "1"}
    log = owner.api("GET", "endpoints/server/pair/versions/1/logs").text
    assert "r1: exited with code" in log


def test_notebook_with_annotations(owner: User, tmp_path: Path) -> None:
    nb = notebook([
        "import json\nGREETING = 'hello'\ncalls = 0",
        "# GET /greet/:name\nreq = json.loads(REQUEST)\ncalls += 1\nprint(f\"{GREETING} {req['path']['name']} {calls}\")",
        "# POST /sum\nreq = json.loads(REQUEST)\nprint(json.dumps({'sum': sum(req['body']['values'])}))",
        "# ResponseInfo POST /sum\nprint(json.dumps({'headers': {'Content-Type': 'application/json'}, 'status': 201}))",
    ])
    deploy_ready(owner, "nb-api", {"api.ipynb": nb}, tmp_path, entry="api.ipynb")
    assert call(owner, "nb-api", "/greet/ada").text.strip() == "hello ada 1"
    assert call(owner, "nb-api", "/greet/bob").text.strip() == "hello bob 2"  # the kernel stays warm
    r = call(owner, "nb-api", "/sum", "POST", json={"values": [1, 2, 3]})
    assert r.status_code == 201 and r.headers["Content-Type"].startswith("application/json") and r.json() == {"sum": 6}
    doc = call(owner, "nb-api", "/openapi.json").json()
    assert "/greet/{name}" in doc["paths"] and "post" in doc["paths"]["/sum"]


def test_notebook_with_predict(owner: User, tmp_path: Path) -> None:
    nb = notebook([
        "import numpy as np\nW = np.array([2.0, 3.0])",
        "def predict(payload):\n    return np.asarray(payload['x']) @ W",
    ])
    deploy_ready(owner, "nb-predict", {"model.ipynb": nb}, tmp_path, entry="model.ipynb")
    r = call(owner, "nb-predict", "/predict", "POST", json={"x": [[1, 1], [2, 0]]})
    assert r.status_code == 200 and r.json() == [5.0, 4.0]
    bad = call(owner, "nb-predict", "/predict", "POST", data=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400


def test_endpoint_mounts_a_job_output(owner: User, tmp_path: Path) -> None:
    job = submit(owner, "trainer", {"train.py": b"open('/floyd/output/weights.txt', 'w').write('w=0.42')\n"},
                 tmp_path, command="python train.py")["job"]
    assert wait_state(owner, job["id"], {"succeeded", "failed"})["state"] == "succeeded"
    deploy_ready(owner, "with-model", flask_files("1"), tmp_path,
                 inputs=[{"source": f"{job['id']}/output", "mount": "model"}])
    assert call(owner, "with-model", "/model").text == "w=0.42"
    v = owner.api("GET", "endpoints/server/with-model/versions/1").json()
    assert v["inputs"][0]["mount"] == "model" and v["inputs"][0]["kind"] == "job"


def test_metrics_by_status_class(owner: User, tmp_path: Path) -> None:
    deploy_ready(owner, "counted", flask_files("1"), tmp_path)
    for _ in range(10):
        call(owner, "counted", "/hello")
    for _ in range(3):
        call(owner, "counted", "/boom")
    call(owner, "counted", "/missing")
    m = owner.api("GET", "endpoints/server/counted/metrics").json()["versions"][0]
    assert m["requests"] == 14 and m["responses"] == {"2xx": 10, "3xx": 0, "4xx": 1, "5xx": 3}
    assert m["errors"] == 4 and m["in_flight"] == 0
    assert 0 < m["latency_ms"]["p50"] <= m["latency_ms"]["p95"] <= m["latency_ms"]["p99"]
    assert sum(p["requests"] for p in m["series"]) == 14


def test_gpu_endpoint_reaches_docker_and_fails_clearly(owner: User, tmp_path: Path) -> None:
    v = deploy(owner, "on-gpu", flask_files("1"), tmp_path, environment="cuda", gpus=1)
    done = wait_version(owner, "on-gpu", v["number"])
    assert done["state"] == "failed" and "NVIDIA container runtime" in done["reason"], done
    assert done["replicas"]["items"][0]["gpu_devices"] in (["0"], ["1"])
    too_many = deploy_request(owner, "on-gpu", {"environment": "cuda", "gpus": 1, "replicas": 3})
    assert too_many.status_code == 422 and "GPU" in too_many.json()["message"]


def deploy_request(user: User, name: str, extra: dict) -> requests.Response:
    project = f"{name}-code"
    snap = user.api("GET", f"endpoints/{user.name}/{name}/versions").json()["items"][0]["snapshot"]
    return user.api("POST", f"endpoints/{user.name}/{name}/versions",
                    json={"project": f"{user.name}/{project}", "snapshot": snap, **extra})


@pytest.mark.parametrize("extra,status,words", [
    ({"bogus": 1}, 400, "Unknown field"),
    ({"replicas": 0}, 422, "replicas"),
    ({"replicas": 99}, 422, "replicas"),
    ({"entry": "missing.py"}, 422, "not in the code snapshot"),
    ({"entry": "../etc/passwd.py"}, 400, "entry"),
    ({"entry": "os:system; rm"}, 400, "Invalid entry"),
    ({"environment": "nope"}, 422, "nope"),
    ({"health_path": "health"}, 400, "health_path"),
    ({"memory": "9999G"}, 422, "memory"),
    ({"inputs": [{"source": "server/none/1", "mount": "x"}]}, 404, ""),
])
def test_bad_deploy_requests(owner: User, tmp_path: Path, extra: dict, status: int, words: str) -> None:
    if owner.api("GET", "endpoints/server/bad-input").status_code == 404:
        deploy_ready(owner, "bad-input", flask_files("1"), tmp_path)
    r = deploy_request(owner, "bad-input", extra)
    assert r.status_code == status, r.text
    assert words in r.json()["message"]
    # Nothing was created by a refused request.
    numbers = [v["number"] for v in owner.api("GET", "endpoints/server/bad-input/versions").json()["items"]]
    assert numbers == [1]


def test_bad_names_and_other_users(owner: User, platform: Platform) -> None:
    assert owner.api("POST", "endpoints", json={"name": "Bad Name!"}).status_code == 400
    assert owner.api("POST", "endpoints", json={"name": "x", "owner": "someone-else"}).status_code == 403  # only for yourself (an admin may name anyone)
    ensure_endpoint(owner, "mine")
    assert owner.api("POST", "endpoints", json={"name": "mine"}).status_code == 409
    intruder = platform.user("intruder")
    assert intruder.api("POST", "endpoints/server/mine/versions", json={}).status_code == 404
    assert intruder.api("DELETE", "endpoints/server/mine").status_code == 404
    assert requests.get(endpoint_url(owner, "nothing-here") + "x", timeout=10).status_code == 404


def test_logs_follow_and_delete(owner: User, tmp_path: Path) -> None:
    deploy_ready(owner, "chatty", flask_files("1"), tmp_path)
    with owner.api("GET", "endpoints/server/chatty/versions/1/logs", params={"follow": "1"}, stream=True) as r:
        lines = []
        for raw in r.iter_lines(decode_unicode=True):
            if raw.startswith("data: "):
                lines.append(raw[6:])
            if any("takes the endpoint's traffic" in ln for ln in lines):
                break
    assert any(ln.startswith("[r0] ") for ln in lines)
    assert owner.api("DELETE", "endpoints/server/chatty").status_code == 204
    assert owner.api("GET", "endpoints/server/chatty").status_code == 404
    assert call(owner, "chatty", "/hello").status_code == 404


def test_bridge_restart_keeps_serving(owner: User, platform: Platform, tmp_path: Path,
                                      docker_client: docker.DockerClient) -> None:
    deploy_ready(owner, "durable", flask_files("1"), tmp_path)
    before = docker_client.containers.list(filters={"label": "org.floyd.endpoint=server/durable/v1/r0/0"})
    assert call(owner, "durable", "/hello").status_code == 200
    os.kill(platform.bridge_pid(), signal.SIGKILL)
    platform.wait_bridge(90)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and call(owner, "durable", "/hello").status_code != 200:
        time.sleep(0.2)
    assert call(owner, "durable", "/hello").json()["version"] == "1"
    after = docker_client.containers.list(filters={"label": "org.floyd.endpoint=server/durable/v1/r0/0"})
    assert [c.id for c in after] == [c.id for c in before]  # the same container, re-adopted
    assert owner.api("GET", "endpoints/server/durable").json()["serving_version"] == 1


def test_kernel_gateway_notebook_serves_unchanged_through_the_proxy(owner: User, tmp_path: Path) -> None:
    """A notebook written for Kernel Gateway's notebook-http mode (its documentation's examples,
    tests/serving_runtime/notebooks/kg_docs.ipynb), deployed as it is, through keys and the proxy."""
    nb = (Path(__file__).parents[1] / "serving_runtime" / "notebooks" / "kg_docs.ipynb").read_bytes()
    deploy_ready(owner, "kg-docs", {"kg_docs.ipynb": nb}, tmp_path, entry="kg_docs.ipynb")
    key = owner.api("POST", "endpoints/server/kg-docs/keys", json={}).json()["key"]
    assert call(owner, "kg-docs", "/hello/world", key=key).text == "I'm cell #1\nI'm cell #2\n"
    assert call(owner, "kg-docs", "/hello/Jane/Doe", key=key).text == "hello Jane Doe\n"
    r = call(owner, "kg-docs", "/people", key=key, params=[("person", "governor"), ("person", "rick")])
    assert r.text == "hello governor, rick\n"
    swagger = call(owner, "kg-docs", "/_api/spec/swagger.json", key=key).json()
    assert "/hello/world" in swagger["paths"]


def test_ctrl_c_leaves_endpoints_serving_and_the_next_start_takes_them_back(
        tmp_path: Path, docker_client: docker.DockerClient) -> None:
    """`make up`, deploy, Ctrl-C: the platform stops, the replica keeps running, and the next
    start on the same ./var routes to that very container again (no redeploy)."""
    base = tmp_path / "up"
    first = Platform.create(base, bridge_config=TEST_BRIDGE_CONFIG)
    first.start()
    try:
        user = first.user("keeper")
        deploy_ready(user, "kept", flask_files("1"), tmp_path)
        assert call(user, "kept", "/hello").status_code == 200
        label = {"label": ["org.floyd.endpoint=keeper/kept/v1/r0/0", f"org.floyd.instance={first.instance}"]}
        before = [c.id for c in docker_client.containers.list(filters=label)]
    finally:
        first.stop(remove_endpoints=False)
    assert first.proc is not None and first.proc.returncode != -signal.SIGKILL, "floyd-up had to be killed"
    assert [c.id for c in docker_client.containers.list(filters=label)] == before
    second = Platform.create(base, bridge_config=TEST_BRIDGE_CONFIG)
    second.start()
    try:
        user = second.user("keeper")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and call(user, "kept", "/hello").status_code != 200:
            time.sleep(0.3)
        assert call(user, "kept", "/hello").json()["version"] == "1"
        assert [c.id for c in docker_client.containers.list(filters=label)] == before
    finally:
        second.stop()
    assert docker_client.containers.list(all=True, filters=label) == []
