"""Code that runs inside a workspace: a project with code, and a real Jupyter server with the
``floyd`` server extension, configured the way the spawner configures a workspace.

The ``jupyter_server`` fixture is defined here and imported by tests/inside/conftest.py; TRAIN and
APP are the code the tests put in the workspace."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.platform import VENV_BIN, Platform, User, free_port

TRAIN = b"""import json, os
print("hello from the job", flush=True)
for step in range(3):
    print(json.dumps({"metric": "loss", "value": 1.0 / (step + 1), "step": step}), flush=True)
out = os.environ.get("FLOYD_OUTPUT", "/floyd/output")
open(os.path.join(out, "result.txt"), "w").write("lr=" + os.environ.get("FLOYD_PARAM_LR", "?"))
print("done", flush=True)
"""

# A Flask app.py of the workspace's code directory, deployed from the Lab as an endpoint.
APP = b"""from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/hello")
def hello():
    return jsonify(hello=request.args.get("who", "world"), source="lab")
"""


@dataclass
class Workspace:
    """A stand-in for a workspace: its code directory and the variables the spawner sets."""

    user: User
    project: str  # OWNER/NAME
    top: Path  # what JupyterLab shows as its root (/floyd in a container)
    code: Path  # FLOYD_CODE

    @property
    def env(self) -> dict[str, str]:
        p = self.user.platform
        return {"FLOYD_URL": p.url, "JUPYTERHUB_API_TOKEN": self.user.token, "FLOYD_PROJECT": self.project,
                "FLOYD_CODE": str(self.code), "FLOYD_INPUT": str(self.top / "input"),
                "FLOYD_JOBS": str(self.top / "jobs"), "FLOYD_ENVIRONMENT": "cpu",
                "FLOYD_CONFIG_DIR": str(self.top.parent / "config"), "FLOYD_CACHE_DIR": str(self.top.parent / "cache")}


def make_workspace(platform: Platform, tmp_path: Path, user: str, project: str) -> Workspace:
    u = platform.user(user)
    r = u.api("POST", "projects", json={"name": project})
    assert r.status_code in (201, 409), r.text
    top = tmp_path / "floyd"
    (top / "code").mkdir(parents=True)
    (top / "input").mkdir()
    (top / "code" / "train.py").write_bytes(TRAIN)
    (top / "code" / "slow.py").write_text("import time\nprint('sleeping', flush=True)\ntime.sleep(120)\n")
    return Workspace(u, f"{user}/{project}", top, top / "code")


@dataclass
class JupyterServer:
    url: str
    token: str
    log: Path

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"token {self.token}", **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path.lstrip("/"), headers=headers,
                                timeout=kwargs.pop("timeout", 120), **kwargs)


@pytest.fixture
def jupyter_server(platform: Platform, tmp_path: Path) -> Iterator[tuple[JupyterServer, Workspace]]:
    """``jupyter server`` with the floyd extension, as a workspace runs it (the venv's jupyter-server)."""
    ws = make_workspace(platform, tmp_path, "inside", "lab-run")
    port, token = free_port(), "t0ken-" + os.urandom(8).hex()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOYD_", "JUPYTERHUB_", "JUPYTER_"))}
    env.update(ws.env)
    jdir = tmp_path / "jupyter"
    env.update({"JUPYTER_CONFIG_DIR": str(jdir / "config"), "JUPYTER_DATA_DIR": str(jdir / "data"),
                "JUPYTER_RUNTIME_DIR": str(jdir / "runtime"), "HOME": str(tmp_path / "home")})
    (tmp_path / "home").mkdir()
    log = tmp_path / "jupyter-server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(VENV_BIN / "jupyter-server"), "--no-browser", f"--ServerApp.port={port}",
             "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0",
             f"--ServerApp.root_dir={ws.top}", "--ServerApp.jpserver_extensions={'floyd': True}",
             *(["--allow-root"] if os.geteuid() == 0 else [])],
            cwd=ws.code, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = JupyterServer(f"http://127.0.0.1:{port}/", token, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter server exited:\n{log.read_text()[-3000:]}")
            try:
                if server.api("GET", "api/status", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyter server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield server, ws
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def sse_events(text: str) -> list[tuple[str, str]]:
    events, event, data = [], "line", []
    for raw in text.splitlines():
        if raw == "":
            if data:
                events.append((event, "\n".join(data)))
            event, data = "line", []
        elif raw.startswith("data:"):
            data.append(raw[6:] if raw.startswith("data: ") else raw[5:])
        elif raw.startswith("event: "):
            event = raw[7:]
    return events

