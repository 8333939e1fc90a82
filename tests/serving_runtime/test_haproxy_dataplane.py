"""The HAProxy data plane that docs/serving.md ("Proxy") proposes, against a real replica: a key
of the endpoint reaches the replica (path, proxy token and credentials as the bridge's proxy
sends them), anything else falls back to the bridge, a revoked key stops at once, and
``show stat`` counts every request. `make test` installs ``haproxy``; without it these fail."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.support.haproxy import PREFIX, HAProxy
from tests.support.platform import free_port
from tests.support.runtime import RuntimeProcess


@pytest.fixture(autouse=True)
def haproxy_installed() -> None:
    """`make test` installs it (scripts/ensure-system.sh): missing is a broken setup, not a skip."""
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy is not installed: run `bash scripts/ensure-system.sh haproxy` (as root), or `make test`")


APP = b'''import time
from flask import Flask, jsonify, request
app = Flask(__name__)

@app.route("/<path:rest>", methods=["GET", "POST"])
def echo(rest):
    if rest == "slow":
        time.sleep(1)
    return jsonify(path=request.path, headers=sorted(k.lower() for k in request.headers.keys()),
                   prefix=request.headers.get("X-Forwarded-Prefix"))
'''
KEY, OTHER, LIMITED = "fk_dataplane-test-key-1", "fk_dataplane-test-key-2", "fk_dataplane-test-key-3"
TOKEN = "proxy-token-of-the-version"


class Bridge(BaseHTTPRequestHandler):
    """Stands in for the bridge's own proxy: says that it answered."""

    def do_GET(self) -> None:
        body = b'{"status": 401, "message": "from the bridge"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HAProxy]:
    code = tmp_path_factory.mktemp("app")
    (code / "app.py").write_bytes(APP)
    mp = pytest.MonkeyPatch()
    mp.setenv("FLOYD_PROXY_TOKEN", TOKEN)
    replica = RuntimeProcess(code, "app.py")
    mp.undo()
    bridge = ThreadingHTTPServer(("127.0.0.1", free_port()), Bridge)
    threading.Thread(target=bridge.serve_forever, daemon=True).start()
    proxy = HAProxy(tmp_path_factory.mktemp("haproxy"), free_port(), bridge.server_address[1])
    try:
        replica.wait_ready(headers={"X-Floyd-Proxy-Token": TOKEN})
        proxy.route("alice/model", 0, TOKEN, [replica.port])
        proxy.grant(KEY, "alice/model")
        proxy.grant(OTHER, "alice/other")
        proxy.route("alice/limited", 1, TOKEN, [replica.port])
        proxy.limit(1, max_body=1000, rate=5, timeout_ms=300)
        proxy.grant(LIMITED, "alice/limited")
        yield proxy
    finally:
        proxy.stop()
        bridge.shutdown()
        replica.terminate()


def get(plane: HAProxy, path: str, **headers: str) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{plane.port}{PREFIX}/{path}", headers=headers, timeout=10)


def test_a_key_of_the_endpoint_reaches_the_replica(plane: HAProxy) -> None:
    for headers in ({"Authorization": f"Bearer {KEY}"}, {"X-Floyd-Key": KEY}):
        r = get(plane, "alice/model/predict/x", **headers)
        assert r.status_code == 200, r.text
        seen = r.json()
        assert seen["path"] == "/predict/x"
        assert seen["prefix"] == f"{PREFIX}/alice/model"
        assert not {"authorization", "x-floyd-key", "x-floyd-proxy-token"} & set(seen["headers"])


@pytest.mark.parametrize("headers", [{}, {"X-Floyd-Key": "fk_wrong"}, {"Authorization": f"Bearer {OTHER}"},
                                     {"Authorization": "token a-hub-token"}])
def test_everything_else_goes_to_the_bridge(plane: HAProxy, headers: dict[str, str]) -> None:
    r = get(plane, "alice/model/predict/x", **headers)
    assert r.status_code == 401 and r.json()["message"] == "from the bridge"


def test_a_pinned_version_goes_to_the_bridge(plane: HAProxy) -> None:
    for path in ("alice/model/v1", "alice/model/v12/predict"):
        r = get(plane, path, **{"X-Floyd-Key": KEY})
        assert r.status_code == 401 and r.json()["message"] == "from the bridge"
    assert get(plane, "alice/model/v1x", **{"X-Floyd-Key": KEY}).json()["path"] == "/v1x"  # not a pin


def test_a_revoked_key_falls_back_at_once(plane: HAProxy) -> None:
    key = "fk_dataplane-test-key-revoked"
    plane.grant(key, "alice/model")
    assert get(plane, "alice/model/a", **{"X-Floyd-Key": key}).status_code == 200
    plane.revoke(key)
    assert get(plane, "alice/model/a", **{"X-Floyd-Key": key}).status_code == 401


def test_show_stat_counts_every_request(plane: HAProxy) -> None:
    before = plane.stats()
    n = 37
    with requests.Session() as s:
        for _ in range(n):
            r = s.get(f"http://127.0.0.1:{plane.port}{PREFIX}/alice/model/n", headers={"X-Floyd-Key": KEY}, timeout=10)
            assert r.status_code == 200
    after = plane.stats()
    assert int(after[("slot0", "BACKEND")]["hrsp_2xx"]) - int(before[("slot0", "BACKEND")]["hrsp_2xx"]) == n
    assert int(after[("slot0", "r1")]["stot"]) - int(before[("slot0", "r1")]["stot"]) == n
    assert after[("slot0", "r1")]["scur"] == "0"



def test_edge_limits_answer_in_the_platforms_json(plane: HAProxy) -> None:
    """413 for a body over the endpoint's limit, 504 past its timeout, 429 with Retry-After past
    its rate per key: the same JSON body as the bridge's (serving/edge.py)."""
    url = f"http://127.0.0.1:{plane.port}{PREFIX}/alice/limited"
    key = {"X-Floyd-Key": LIMITED}
    time.sleep(1.1)  # a rate window of its own
    assert requests.post(f"{url}/p", data=b"s" * 1000, headers=key, timeout=10).status_code == 200
    big = requests.post(f"{url}/p", data=b"b" * 2000, headers=key, timeout=10)
    assert big.status_code == 413 and big.headers["Content-Type"].startswith("application/json")
    assert big.json() == {"status": 413, "message": "alice/limited accepts request bodies of at most 1000 bytes; "
                                                    "this one has 2000."}
    time.sleep(1.1)
    slow = requests.get(f"{url}/slow", headers=key, timeout=10)
    assert slow.status_code == 504 and slow.json()["status"] == 504, slow.text
    assert "alice/limited" in slow.json()["message"]
    time.sleep(1.1)
    with requests.Session() as s:
        answers = [s.get(f"{url}/r", headers=key, timeout=10) for _ in range(12)]
    codes = [r.status_code for r in answers]
    assert codes[:5] == [200] * 5 and 429 in codes, codes
    refused = answers[codes.index(429)]
    assert refused.headers["Retry-After"] == "1" and refused.json()["status"] == 429
    assert "at most 5 request(s) per second per key" in refused.json()["message"]
