"""The ``floyd`` server extension's handlers in a real ``jupyter server``, against the real platform:
run a script from the Lab's point of view, follow it, read its log, metrics and output, stop a job."""

from __future__ import annotations

import time

import requests

from tests.support.lab import JupyterServer, sse_events


def wait_job(server: JupyterServer, number: int, states: set[str], timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = server.api("GET", f"floyd/api/jobs/{number}")
        assert r.status_code == 200, r.text
        if r.json()["state"] in states:
            return r.json()
        assert time.monotonic() < deadline, f"job {number} is still {r.json()['state']}"
        time.sleep(0.5)


def test_run_follow_and_inspect_a_job_through_the_server_extension(jupyter_server, workspace_image: str) -> None:
    server, ws = jupyter_server
    # Unauthenticated requests are refused by Jupyter itself.
    assert requests.get(server.url + "floyd/api/jobs", timeout=30).status_code == 403

    defaults = server.api("GET", "floyd/api/defaults").json()
    assert defaults["environment"] == "cpu" and defaults["project"] == ws.project
    assert [e["name"] for e in defaults["environments"]] == ["cpu", "cuda"]

    r = server.api("POST", "floyd/api/run", json={"path": "code/train.py", "params": {"lr": 0.5},
                                                   "message": "from the lab", "max_runtime": 300})
    assert r.status_code == 201, r.text
    job = r.json()["job"]
    n = job["number"]  # other tests may have run jobs in this project first
    assert job["id"] == f"{ws.project}/{n}" and job["command"] == "python train.py"
    assert r.json()["snapshot"].startswith("sha256:") and r.json()["files"] == 2

    # The live log as the bridge's SSE stream, passed through until the job ends.
    with server.api("GET", f"floyd/api/jobs/{n}/logs", params={"follow": "1"}, stream=True) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        events = sse_events(stream.text)
    lines = [d for e, d in events if e == "line"]
    assert "hello from the job" in lines and "done" in lines, events
    assert events[-1][0] == "end" and "succeeded" in events[-1][1]

    record = wait_job(server, n, {"succeeded", "failed", "lost"})
    assert record["state"] == "succeeded", record
    assert record["params"] == {"lr": "0.5"} and record["message"] == "from the lab"
    text = server.api("GET", f"floyd/api/jobs/{n}/logs")
    assert text.headers["Content-Type"].startswith("text/plain") and "hello from the job" in text.text
    series = server.api("GET", f"floyd/api/jobs/{n}/metrics").json()["series"]
    assert [p["value"] for p in series["loss"]] == [1.0, 0.5, 1.0 / 3]
    output = server.api("GET", f"floyd/api/jobs/{n}/output").json()
    assert [f["path"] for f in output["files"]] == ["result.txt"]
    assert output["path"] == str(ws.top / "jobs" / str(n) / "output")
    listing = server.api("GET", "floyd/api/jobs").json()
    assert f"{ws.project}/{n}" in [j["id"] for j in listing["items"]]


def test_stop_errors_and_refusals_come_back_as_json(jupyter_server, workspace_image: str) -> None:
    server, ws = jupyter_server
    r = server.api("POST", "floyd/api/run", json={"path": "code/slow.py"})
    assert r.status_code == 201, r.text
    number = r.json()["job"]["number"]
    wait_job(server, number, {"running"})
    r = server.api("POST", f"floyd/api/jobs/{number}/stop")
    assert r.status_code == 200, r.text
    assert wait_job(server, number, {"stopped", "failed", "succeeded"})["state"] == "stopped"
    # Stopping it again: the bridge's refusal, with its status and message.
    r = server.api("POST", f"floyd/api/jobs/{number}/stop")
    assert r.status_code == 409 and "already ended" in r.json()["message"], r.text
    assert r.json()["status"] == 409
    r = server.api("GET", "floyd/api/jobs/999")
    assert r.status_code == 404 and r.json()["message"], r.text
    r = server.api("POST", "floyd/api/run", json={"path": "code/train.py", "environment": "nope"})
    assert 400 <= r.status_code < 500 and "nope" in r.json()["message"], r.text
    r = server.api("POST", "floyd/api/run", json={"path": "code/missing.py"})
    assert r.status_code == 400 and "no such file" in r.json()["message"]
    r = server.api("POST", "floyd/api/run", json={"path": "code/train.py", "gpus": 1})
    assert 400 <= r.status_code < 500 and "GPU" in r.json()["message"], r.text
