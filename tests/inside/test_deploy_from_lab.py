"""The Lab's "Deploy as endpoint": the server extension's ``POST /floyd/api/deploy`` in a real
``jupyter server`` against the real platform, a Flask app.py of the workspace's code directory served
in a container, then called through the platform's URL with the owner's token."""

from __future__ import annotations

import time

import requests

from tests.support.lab import APP, JupyterServer


def wait_version(server: JupyterServer, name: str, number: int, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        r = server.api("GET", f"floyd/api/endpoints/{name}/versions/{number}")
        assert r.status_code == 200, r.text
        v = r.json()
        seen.append(v["state"])
        if v["state"] in ("ready", "failed", "stopped"):
            return v
        assert time.monotonic() < deadline, f"{name} v{number} is still {v['state']} ({seen})"
        time.sleep(0.3)


def test_deploy_a_flask_app_from_the_lab_and_call_it(jupyter_server, workspace_image: str) -> None:
    server, ws = jupyter_server
    (ws.code / "app.py").write_bytes(APP)
    assert requests.post(server.url + "floyd/api/deploy", json={}, timeout=30).status_code == 403

    r = server.api("POST", "floyd/api/deploy", json={"path": "code/app.py", "name": "lab-hello",
                                                      "environment": "cpu", "replicas": 1,
                                                      "message": "from the lab"})
    assert r.status_code == 202, r.text
    v = r.json()
    assert v["state"] == "deploying" and v["number"] == 1 and v["entry"] == "app.py", v
    assert v["endpoint"] == f"{ws.user.name}/lab-hello" and v["created"] is True and v["public"] is False
    assert v["project"] == ws.project and v["snapshot"].startswith("sha256:") and v["message"] == "from the lab"
    url = v["endpoint_url"]
    assert url.endswith(f"/services/floyd/endpoints/{ws.user.name}/lab-hello/"), url

    done = wait_version(server, "lab-hello", v["number"])
    assert done["state"] == "ready", (done["reason"], done["log_tail"])
    assert done["replicas"]["ready"] == 1

    # Through the platform's URL with the owner's Hub token; without it the endpoint is closed.
    call = requests.get(url + "hello", params={"who": "lab"}, headers=ws.user.headers, timeout=60)
    assert call.status_code == 200, call.text
    assert call.json() == {"hello": "lab", "source": "lab"}
    assert requests.get(url + "hello", timeout=60).status_code in (401, 403)

    # A second deploy is version 2 of the same endpoint; an unchanged tree sends no file again.
    r = server.api("POST", "floyd/api/deploy", json={"path": "/code/app.py", "name": "lab-hello"})
    assert r.status_code == 202, r.text
    assert r.json()["number"] == 2 and r.json()["created"] is False and r.json()["upload"]["sent_files"] == 0
    assert wait_version(server, "lab-hello", 2)["state"] == "ready"


def test_deploy_refusals_come_back_as_json(jupyter_server, workspace_image: str) -> None:
    server, ws = jupyter_server
    (ws.code / "app.py").write_bytes(APP)
    (ws.code / "notes.txt").write_text("not an app\n")
    cases = [
        ({"path": "code/app.py"}, "Name the endpoint"),
        ({"path": "code/app.py", "name": "x", "replicas": 0}, "replicas"),
        ({"path": "code/app.py", "name": "x", "public": "yes"}, "public"),
        ({"path": "code/app.py", "name": "x", "memory": "lots"}, "memory"),
        ({"path": "code/app.py", "name": "x", "colour": "red"}, "colour"),
        ({"path": "code/notes.txt", "name": "x"}, "cannot be served"),
        ({"path": "code/missing.py", "name": "x"}, "missing.py"),
    ]
    for body, words in cases:
        r = server.api("POST", "floyd/api/deploy", json=body)
        assert r.status_code == 400 and words in r.json()["message"], (body, r.text)
        assert r.json()["status"] == 400
    # The bridge's refusal, with its status and message; the endpoint made for it is gone again.
    r = server.api("POST", "floyd/api/deploy", json={"path": "code/app.py", "name": "lab-nope", "environment": "nope"})
    assert 400 <= r.status_code < 500 and "nope" in r.json()["message"], r.text
    assert ws.user.api("GET", f"endpoints/{ws.user.name}/lab-nope").status_code == 404
    r = server.api("GET", "floyd/api/endpoints/lab-nope/versions/1")
    assert r.status_code == 404 and r.json()["message"], r.text
