"""With FLOYD_PROXY_TOKEN set (as the bridge sets it), a replica answers only the Floyd proxy:
anything else on the host's loopback gets 403, and the app never sees the token."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from tests.support.runtime import RuntimeProcess

APP = b'''from flask import Flask, jsonify, request
app = Flask(__name__)

@app.get("/headers")
def headers():
    return jsonify(sorted(k.lower() for k in request.headers.keys()))
'''


def test_only_the_proxy_gets_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "app.py").write_bytes(APP)
    monkeypatch.setenv("FLOYD_PROXY_TOKEN", "s3cret")
    runtime = RuntimeProcess(tmp_path, "app.py")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = requests.get(runtime.url + "/_floyd/ready", timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and runtime.proc.poll() is None, runtime.log()
                time.sleep(0.05)
        assert r.status_code == 403 and "Floyd proxy" in r.json()["message"]
        assert requests.get(runtime.url + "/headers", timeout=5).status_code == 403
        wrong = requests.get(runtime.url + "/headers", headers={"X-Floyd-Proxy-Token": "guess"}, timeout=5)
        assert wrong.status_code == 403
        ok = requests.get(runtime.url + "/headers", headers={"X-Floyd-Proxy-Token": "s3cret"}, timeout=5)
        assert ok.status_code == 200 and "x-floyd-proxy-token" not in ok.json()
        ready = requests.get(runtime.url + "/_floyd/ready", headers={"X-Floyd-Proxy-Token": "s3cret"}, timeout=5)
        assert ready.json()["status"] == "ready"
    finally:
        runtime.terminate()
