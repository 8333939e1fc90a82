"""app.py (Flask, FastAPI), predict(payload) scripts, broken apps and graceful SIGTERM."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.runtime import RuntimeProcess, start, write

FLASK_APP = """
import time
from pathlib import Path

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/hello")
def hello():
    return jsonify(message="hello from flask")


@app.post("/items/<int:item_id>")
def create_item(item_id):
    return jsonify(id=item_id, body=request.get_json()), 201


@app.get("/slow")
def slow():
    started = time.time()
    marker = request.args.get("marker")
    if marker:
        Path(marker).write_text("started")
    time.sleep(float(request.args.get("s", "0.5")))
    return jsonify(started=started, finished=time.time())
"""

FASTAPI_APP = """
from fastapi import FastAPI

api = FastAPI(title="fastapi fixture")


@api.get("/items/{item_id}")
async def read_item(item_id: int):
    return {"item_id": item_id}
"""

PREDICT_SCRIPT = """
class Vector:
    '''Stands in for numpy.ndarray: the runtime converts it through .tolist().'''

    def __init__(self, values):
        self.values = values

    def tolist(self):
        return list(self.values)


class Scalar:
    '''Stands in for a numpy scalar: converted through .item().'''

    def __init__(self, value):
        self.value = value

    def item(self):
        return self.value


def predict(payload):
    if payload.get("fail"):
        raise ValueError("fail was set")
    return {"doubled": Vector([2 * x for x in payload["x"]]), "total": Scalar(sum(payload["x"]))}
"""


@pytest.fixture(scope="module")
def flask_rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeProcess]:
    cwd = tmp_path_factory.mktemp("flask")
    write(cwd, "app.py", FLASK_APP)
    yield from start(cwd, "app.py")


@pytest.fixture(scope="module")
def fastapi_rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeProcess]:
    cwd = tmp_path_factory.mktemp("fastapi")
    write(cwd, "main.py", FASTAPI_APP)
    yield from start(cwd, "main:api")


@pytest.fixture(scope="module")
def predict_rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeProcess]:
    cwd = tmp_path_factory.mktemp("predict")
    write(cwd, "model.py", PREDICT_SCRIPT)
    yield from start(cwd, "model.py")


# -- Flask ---------------------------------------------------------------------------------


def test_flask_ready_and_start_line(flask_rt: RuntimeProcess) -> None:
    r = requests.get(flask_rt.url + "/_floyd/ready")
    assert r.json() == {"status": "ready", "kind": "app"}
    assert f"[floyd] serving app.py (app) on 127.0.0.1:{flask_rt.port}" in flask_rt.log()


def test_flask_get_and_post_json(flask_rt: RuntimeProcess) -> None:
    assert requests.get(flask_rt.url + "/hello").json() == {"message": "hello from flask"}
    r = requests.post(flask_rt.url + "/items/5", json={"name": "widget"})
    assert r.status_code == 201
    assert r.json() == {"id": 5, "body": {"name": "widget"}}
    assert requests.get(flask_rt.url + "/missing").status_code == 404  # Flask's own 404


def test_flask_requests_run_concurrently(flask_rt: RuntimeProcess) -> None:
    """Two slow requests overlap in time: WSGI apps run on a thread pool, not one at a time."""
    results: list[dict[str, float]] = []

    def call() -> None:
        results.append(requests.get(flask_rt.url + "/slow", params={"s": "0.6"}).json())

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first, second = sorted(results, key=lambda r: r["started"])
    assert second["started"] < first["finished"], "the second request waited for the first"


def test_flask_openapi_from_url_map(flask_rt: RuntimeProcess) -> None:
    doc = requests.get(flask_rt.url + "/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {"/hello", "/items/{item_id}", "/slow"}
    post = doc["paths"]["/items/{item_id}"]["post"]
    assert post["parameters"] == [
        {"name": "item_id", "in": "path", "required": True, "schema": {"type": "integer"}}
    ]
    assert set(doc["paths"]["/hello"]) == {"get"}


def test_reserved_prefix_is_json_404(flask_rt: RuntimeProcess) -> None:
    r = requests.get(flask_rt.url + "/_floyd/anything")
    assert r.status_code == 404
    assert r.json()["status"] == 404 and "reserved" in r.json()["message"]


# -- FastAPI -------------------------------------------------------------------------------


def test_fastapi_module_attr_entry(fastapi_rt: RuntimeProcess) -> None:
    assert requests.get(fastapi_rt.url + "/_floyd/ready").json() == {"status": "ready", "kind": "app"}
    assert requests.get(fastapi_rt.url + "/items/3").json() == {"item_id": 3}
    assert requests.get(fastapi_rt.url + "/items/x").status_code == 422


def test_fastapi_own_openapi_passes_through(fastapi_rt: RuntimeProcess) -> None:
    doc = requests.get(fastapi_rt.url + "/openapi.json").json()
    assert doc["info"]["title"] == "fastapi fixture"
    assert "/items/{item_id}" in doc["paths"]
    assert requests.get(fastapi_rt.url + "/docs").status_code == 200


# -- predict(payload) in a script ------------------------------------------------------------


def test_predict_script(predict_rt: RuntimeProcess) -> None:
    assert requests.get(predict_rt.url + "/_floyd/ready").json() == {"status": "ready", "kind": "predict"}
    r = requests.post(predict_rt.url + "/predict", json={"x": [1, 2, 3]})
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"doubled": [2, 4, 6], "total": 6}


def test_predict_errors_are_json(predict_rt: RuntimeProcess) -> None:
    bad = requests.post(
        predict_rt.url + "/predict", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert bad.status_code == 400
    assert bad.json()["status"] == 400
    boom = requests.post(predict_rt.url + "/predict", json={"x": [1], "fail": True})
    assert boom.status_code == 500
    assert boom.json() == {"status": 500, "message": "ValueError: fail was set"}
    assert "Traceback" in predict_rt.log()  # the traceback goes to the log, not to the client
    assert requests.get(predict_rt.url + "/predict").status_code == 405
    assert requests.get(predict_rt.url + "/other").json()["status"] == 404


def test_predict_openapi(predict_rt: RuntimeProcess) -> None:
    doc = requests.get(predict_rt.url + "/openapi.json").json()
    assert list(doc["paths"]) == ["/predict"]
    assert "post" in doc["paths"]["/predict"]


# -- failures and shutdown -------------------------------------------------------------------


def test_import_error_exits_non_zero_with_traceback(tmp_path: Path) -> None:
    write(tmp_path, "app.py", "import json\nimport no_such_module_for_floyd\napp = None\n")
    runtime = RuntimeProcess(tmp_path, "app.py")
    try:
        assert runtime.wait_exit() != 0
        log = runtime.log()
        assert "Traceback" in log and "No module named 'no_such_module_for_floyd'" in log
        assert "[floyd] cannot serve app.py" in log
    finally:
        runtime.terminate()


def test_nothing_to_serve_says_what_to_define(tmp_path: Path) -> None:
    write(tmp_path, "app.py", "x = 1\n")
    runtime = RuntimeProcess(tmp_path, "app.py")
    try:
        assert runtime.wait_exit() == 1
        assert "defines neither `app`" in runtime.log()
    finally:
        runtime.terminate()


def test_sigterm_lets_the_in_flight_request_finish(tmp_path: Path) -> None:
    write(tmp_path, "app.py", FLASK_APP)
    marker = tmp_path / "started"
    runtime = RuntimeProcess(tmp_path, "app.py")
    result: dict[str, requests.Response] = {}

    def call() -> None:
        result["r"] = requests.get(runtime.url + "/slow", params={"s": "1.5", "marker": str(marker)})

    try:
        runtime.wait_ready()
        thread = threading.Thread(target=call)
        thread.start()
        deadline = time.monotonic() + 10
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert marker.exists(), "the slow request never started"
        runtime.proc.terminate()  # SIGTERM, as the bridge stops an old version after draining
        thread.join(20)
        assert result["r"].status_code == 200
        assert "finished" in result["r"].json()
        # uvicorn re-raises the signal once drained: the exit status says "stopped by SIGTERM".
        assert runtime.wait_exit() in (0, -15)
    finally:
        runtime.terminate()
