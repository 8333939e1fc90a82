"""Helpers of the serving tests: deploy a tree of files as a new endpoint version and wait."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from floyd.client.ignore import IgnoreRules
from floyd.client.transfer import upload_code
from tests.support.jobs import client_for
from tests.support.platform import User, write_tree

# The lifespan handshake an ASGI app of these tests starts with (uvicorn sends startup and shutdown).
ASGI_LIFESPAN = b'''    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
'''

# A trivial ASGI app (no framework to import): the endpoint's own work is next to nothing.
ASGI_OK_APP = b'''async def app(scope, receive, send):
''' + ASGI_LIFESPAN + b'''    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})
'''

FLASK_OK_APP = b'''from flask import Flask

app = Flask(__name__)


@app.get("/")
def ok():
    return "ok"
'''

READY_STATES = {"ready", "failed", "stopped"}


def ensure_endpoint(user: User, name: str, public: bool = False) -> None:
    r = user.api("POST", "endpoints", json={"name": name, "public": public})
    assert r.status_code in (201, 409), r.text


def deploy(user: User, name: str, files: dict[str, bytes], tmp: Path, project: str | None = None,
           **spec: object) -> dict:
    """Create the project and endpoint if needed, snapshot ``files`` and deploy them (state deploying)."""
    project = project or f"{name}-code"
    user.api("POST", "projects", json={"name": project})
    ensure_endpoint(user, name)
    root = write_tree(tmp / f"code-{name}-{time.monotonic_ns()}", files)
    result = upload_code(client_for(user), user.name, project, root, IgnoreRules.for_directory(root).keep)
    r = user.api("POST", f"endpoints/{user.name}/{name}/versions",
                 json={"project": f"{user.name}/{project}", "snapshot": result.version["id"], **spec})
    assert r.status_code == 202, r.text
    return r.json()


def wait_version(user: User, name: str, number: int, states: set[str] = READY_STATES,
                 timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    v: dict = {}
    while time.monotonic() < deadline:
        v = user.api("GET", f"endpoints/{user.name}/{name}/versions/{number}").json()
        if v.get("state") in states:
            return v
        time.sleep(0.2)
    raise AssertionError(f"{name} v{number} did not reach {states}: {v}\n{user.platform.log_tail(60)}")


def deploy_ready(user: User, name: str, files: dict[str, bytes], tmp: Path, **spec: object) -> dict:
    v = deploy(user, name, files, tmp, **spec)
    done = wait_version(user, name, v["number"])
    assert done["state"] == "ready", done["reason"]
    return done


def endpoint_url(user: User, name: str) -> str:
    return f"{user.platform.url}services/floyd/endpoints/{user.name}/{name}/"


def call(user: User, name: str, path: str, method: str = "GET", key: str | None = None,
         headers: dict[str, str] | None = None, **kwargs: object) -> requests.Response:
    """A request to the endpoint as its owner (Hub token), or with an API key."""
    auth = {"Authorization": f"Bearer {key}"} if key else dict(user.headers)
    return requests.request(method, endpoint_url(user, name) + path.lstrip("/"), headers={**auth, **(headers or {})},
                            timeout=60, **kwargs)  # type: ignore[arg-type]
