"""Serving under real traffic, on real containers: autoscaling up under a stepped load and back
down with no failed request, scale to zero and the first request answered, a 10/90 split,
promote, a canary returning 500s that rolls back by itself, and the limits at the edge."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from tests.support.platform import Platform, User
from tests.support.serving import (
    ASGI_OK_APP,
    call,
    deploy_ready,
    endpoint_url,
    ensure_endpoint,
    wait_version,
)

pytestmark = pytest.mark.usefixtures("workspace_image")

APP = b'''import os, time
from flask import Flask, jsonify, request

app = Flask(__name__)
VERSION = open("version.txt").read().strip()


@app.get("/hello")
def hello():
    if VERSION == "broken":
        return jsonify(error="boom"), 500
    return jsonify(version=VERSION, replica=os.environ.get("FLOYD_REPLICA"))


@app.get("/slow")
def slow():
    time.sleep(float(request.args.get("s", "0.3")))
    return jsonify(version=VERSION, replica=os.environ.get("FLOYD_REPLICA"))


@app.post("/echo")
def echo():
    return jsonify(size=len(request.get_data()))
'''


def files(version: str) -> dict[str, bytes]:
    return {"app.py": APP, "version.txt": version.encode()}


@pytest.fixture(scope="module")
def owner(platform: Platform) -> User:
    return platform.user("scaler")


def settings(user: User, name: str, **body: object) -> dict:
    r = user.api("PATCH", f"endpoints/{user.name}/{name}", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def version(user: User, name: str, number: int) -> dict:
    return user.api("GET", f"endpoints/{user.name}/{name}/versions/{number}").json()


def wait_for(what: str, check, timeout: float = 90):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Load:
    """``threads`` callers of ``path`` in a loop, each on its own keep-alive session."""

    def __init__(self, user: User, name: str, path: str) -> None:
        self.url = endpoint_url(user, name) + path.lstrip("/")
        self.headers = dict(user.headers)
        self.stop = threading.Event()
        self.statuses: Counter[int] = Counter()
        self.replicas: Counter[str] = Counter()
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()

    def add(self, n: int) -> None:
        for _ in range(n):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self.threads.append(t)

    def _run(self) -> None:
        with requests.Session() as s:
            while not self.stop.is_set():
                try:
                    r = s.get(self.url, headers=self.headers, timeout=60)
                    status, replica = r.status_code, (r.json().get("replica") if r.status_code == 200 else None)
                except requests.RequestException:
                    status, replica = 0, None
                with self.lock:
                    self.statuses[status] += 1
                    if replica is not None:
                        self.replicas[replica] += 1

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=90)


def test_autoscales_up_under_a_stepped_load_and_down_without_failures(owner: User, tmp_path: Path) -> None:
    v = deploy_ready(owner, "stepped", files("1"), tmp_path)
    body = settings(owner, "stepped", autoscaling={"min_replicas": 1, "max_replicas": 3, "target_in_flight": 1,
                                                    "scale_up_window": 0, "scale_down_window": 3})
    assert body["autoscaling"]["max_replicas"] == 3
    load = Load(owner, "stepped", "/slow?s=0.3")
    try:
        load.add(1)
        time.sleep(2)
        load.add(3)  # the step: four callers, one replica each wanted
        wait_for("a second replica taking traffic", lambda: len(load.replicas) >= 2)
        series = owner.api("GET", f"endpoints/{owner.name}/stepped/metrics").json()["versions"][0]
        assert series["replicas"] >= 2
        load.finish()
        light = Load(owner, "stepped", "/slow?s=0.05")
        light.add(1)  # traffic goes on while replicas drain and stop
        wait_for("scale-down to one replica",
                 lambda: version(owner, "stepped", v["number"])["replicas"]["desired"] == 1, timeout=60)
        time.sleep(1)
        light.finish()
    finally:
        load.finish()
    assert set(load.statuses) == {200}, load.statuses
    assert set(light.statuses) == {200}, light.statuses
    log = wait_for("the removal in the log", lambda: (lambda text: "removed" in text and text)(
        owner.api("GET", f"endpoints/{owner.name}/stepped/versions/{v['number']}/logs").text), 60)
    assert "autoscaler: adding r1 (load)" in log


def test_scale_to_zero_and_the_first_request_is_answered(owner: User, tmp_path: Path) -> None:
    ensure_endpoint(owner, "sleepy")
    settings(owner, "sleepy", autoscaling={"min_replicas": 0, "max_replicas": 1, "idle_timeout": 1,
                                           "scale_down_window": 0})
    v = deploy_ready(owner, "sleepy", {"app.py": ASGI_OK_APP}, tmp_path)
    wait_for("zero replicas", lambda: version(owner, "sleepy", v["number"])["replicas"]["desired"] == 0, 60)
    assert owner.api("GET", f"endpoints/{owner.name}/sleepy").json()["serving_version"] == v["number"]
    r = call(owner, "sleepy", "/")
    assert (r.status_code, r.text) == (200, "ok")
    shown = version(owner, "sleepy", v["number"])
    assert shown["cold_start_s"] and shown["cold_start_s"] > 0
    assert shown["replicas"]["ready"] == 1


def test_a_10_90_split_promote_and_sticky_clients(owner: User, tmp_path: Path) -> None:
    v1 = deploy_ready(owner, "split", files("1"), tmp_path)
    r = owner.api("PUT", f"endpoints/{owner.name}/split/traffic", json={"split": {"1": 100}})
    assert r.status_code == 200 and r.json()["traffic"] == {"1": 100}, r.text
    v2 = deploy_ready(owner, "split", files("2"), tmp_path)
    assert version(owner, "split", v1["number"])["state"] == "ready"  # the split keeps it serving
    assert call(owner, "split", "/hello").json()["version"] == "1"
    bad = owner.api("PUT", f"endpoints/{owner.name}/split/traffic", json={"split": {"2": 10, "9": 90}})
    assert bad.status_code == 404 and "has no version 9" in bad.json()["message"]
    bad = owner.api("PUT", f"endpoints/{owner.name}/split/traffic", json={})
    assert bad.status_code == 400 and "Give 'split'" in bad.json()["message"]
    r = owner.api("PUT", f"endpoints/{owner.name}/split/traffic", json={"split": {"v2": 10, "v1": 90}})
    assert r.status_code == 200, r.text
    seen: Counter[str] = Counter()
    with requests.Session() as s:
        for _ in range(1000):
            seen[s.get(endpoint_url(owner, "split") + "hello", headers=owner.headers, timeout=30).json()["version"]] += 1
    assert 50 <= seen["2"] <= 150, seen  # 10 % ± 5 points
    sticky = {call(owner, "split", "/hello", headers={"X-Floyd-Client": "alice-laptop"}).json()["version"]
              for _ in range(20)}
    assert len(sticky) == 1
    r = owner.api("POST", f"endpoints/{owner.name}/split/promote", json={"version": v2["number"]})
    assert r.status_code == 200 and r.json()["traffic"] == {}, r.text
    wait_version(owner, "split", v1["number"], {"stopped"}, timeout=60)
    assert {call(owner, "split", "/hello").json()["version"] for _ in range(10)} == {"2"}
    r = owner.api("POST", f"endpoints/{owner.name}/split/rollback", json={})
    assert r.status_code == 409 and "no traffic split" in r.json()["message"]


def test_a_canary_returning_500s_rolls_back_by_itself(owner: User, tmp_path: Path) -> None:
    deploy_ready(owner, "canary", files("1"), tmp_path)
    settings(owner, "canary", rollback_error_rate=0.2)
    owner.api("PUT", f"endpoints/{owner.name}/canary/traffic", json={"split": {"1": 100}})
    v2 = deploy_ready(owner, "canary", files("broken"), tmp_path)
    r = owner.api("PUT", f"endpoints/{owner.name}/canary/traffic", json={"split": {str(v2["number"]): 50, "1": 50}})
    assert r.status_code == 200, r.text
    with requests.Session() as s:
        for _ in range(60):
            s.get(endpoint_url(owner, "canary") + "hello", headers=owner.headers, timeout=30)
    wait_version(owner, "canary", v2["number"], {"stopped", "draining"}, timeout=30)
    assert owner.api("GET", f"endpoints/{owner.name}/canary").json()["traffic"] == {}
    assert {call(owner, "canary", "/hello").status_code for _ in range(20)} == {200}
    reason = version(owner, "canary", v2["number"])["reason"]
    assert "rolled back by itself" in reason


def test_body_limit_timeout_and_rate_limit(owner: User, tmp_path: Path) -> None:
    deploy_ready(owner, "edgy", files("1"), tmp_path)
    settings(owner, "edgy", limits={"max_body_bytes": 100, "request_timeout": 1})
    r = call(owner, "edgy", "/echo", "POST", data=b"x" * 50)
    assert r.status_code == 200 and r.json()["size"] == 50
    r = call(owner, "edgy", "/echo", "POST", data=b"x" * 101)
    assert r.status_code == 413 and "at most" in r.json()["message"]
    r = call(owner, "edgy", "/slow?s=3")
    assert r.status_code == 504 and "did not answer within 1 s" in r.json()["message"]
    bad = owner.api("PATCH", f"endpoints/{owner.name}/edgy", json={"limits": {"rate_limit": -1}})
    assert bad.status_code == 422 and "rate_limit" in bad.json()["message"]
    settings(owner, "edgy", limits={"rate_limit": 2, "request_timeout": None})
    key = owner.api("POST", f"endpoints/{owner.name}/edgy/keys", json={"name": "k"}).json()["key"]
    statuses = [call(owner, "edgy", "/hello", key=key) for _ in range(6)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited and int(limited[0].headers["Retry-After"]) >= 1
    assert "per second per key" in limited[0].json()["message"]
    assert statuses[0].status_code == 200
    other = owner.api("POST", f"endpoints/{owner.name}/edgy/keys", json={"name": "k2"}).json()["key"]
    assert call(owner, "edgy", "/hello", key=other).status_code == 200  # per key
