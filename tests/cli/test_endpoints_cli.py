"""``floyd deploy``, ``floyd run --mode serve`` and ``floyd endpoint …``: the real ``floyd``
command against the real platform, endpoint replicas in real containers."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import requests

from floyd.cli.deploy import find_code
from floyd.cli.endpoints import EndpointRef, endpoint_ref
from floyd.client.errors import FloydClientError
from floyd.client.project_config import write_expt
from tests.support.platform import Platform, User, as_json, write_tree

pytestmark = pytest.mark.usefixtures("workspace_image")

APP = b'''import os
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/hello")
def hello():
    return jsonify(greeting="hello " + request.args.get("name", "world"),
                   version=os.environ.get("FLOYD_ENDPOINT_VERSION"))
'''

BROKEN_APP = b'''import json
from flask import Flask
import no_such_module_for_floyd_tests  # noqa: F401

app = Flask(__name__)
'''

MISSING = "ModuleNotFoundError: No module named 'no_such_module_for_floyd_tests'"


@pytest.fixture
def carol(platform: Platform) -> User:
    """A user of these tests alone, so endpoint names never meet another file's."""
    return platform.user("carol-cli")


def project_dir(user: User, tmp_path: Path, project: str, files: dict[str, bytes]) -> Path:
    """A directory linked to ``project`` by the real ``floyd init`` (.floydignore, floyd.yml written)."""
    root = write_tree(tmp_path / project, files)
    user.cli("init", project, cwd=root)
    return root


def endpoint_url(user: User, name: str) -> str:
    return f"{user.platform.url}services/floyd/endpoints/{user.name}/{name}/"


def get(url: str, key: str | None = None, token: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {"Authorization": f"token {token}"} if token else {}
    return requests.get(url, headers=headers, timeout=30)


def one_line_error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    """A refused command: the exit code, no traceback, and one ``Error:`` line that says what to do."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], proc.stderr


# -- pure parts -------------------------------------------------------------------------------
class FakeSession:
    me = "alice"


def test_endpoint_names_and_code_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = FakeSession()
    assert endpoint_ref(s, "iris") == EndpointRef("alice", "iris")  # type: ignore[arg-type]
    assert endpoint_ref(s, "bob/iris") == EndpointRef("bob", "iris")  # type: ignore[arg-type]
    for bad in ("a/b/c", "/iris", "bob/"):
        with pytest.raises(FloydClientError, match="use NAME or OWNER/NAME"):
            endpoint_ref(s, bad)  # type: ignore[arg-type]
    root = write_tree(tmp_path / "proj", {"app.py": b"", "models/serve.py": b"", "README.md": b""})
    write_expt(root, "alice/proj")
    assert find_code(str(root), None) == (root.resolve(), "alice/proj", None)
    assert find_code(str(root / "models"), "main:api") == (root.resolve(), "alice/proj", "main:api")
    assert find_code(str(root / "models" / "serve.py"), None) == (root.resolve(), "alice/proj", "models/serve.py")
    with pytest.raises(FloydClientError, match="not both"):
        find_code(str(root / "app.py"), "other.py")
    with pytest.raises(FloydClientError, match="cannot be served"):
        find_code(str(root / "README.md"), None)
    with pytest.raises(FloydClientError, match="no such file"):
        find_code(str(root / "nope.py"), None)
    monkeypatch.chdir(root / "models")
    assert find_code(None, None) == (root.resolve(), "alice/proj", None)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FloydClientError, match="floyd init PROJECT"):
        find_code(None, None)


# -- against the platform -----------------------------------------------------------------------
def test_deploy_key_status_and_revoke(carol: User, tmp_path: Path) -> None:
    root = project_dir(carol, tmp_path, "hello-code", {"app.py": APP})
    deployed = carol.cli("deploy", "hello", "-m", "first", cwd=root)
    url = endpoint_url(carol, "hello")
    assert "Created endpoint carol-cli/hello" in deployed.stdout
    assert "Ready" in deployed.stdout and url in deployed.stdout, deployed.stdout
    assert f"{url}v1/" in deployed.stdout and "curl -H" in deployed.stdout

    # A key: printed once on stdout (the last line), with a warning on stderr.
    created = carol.cli("endpoint", "keys", "create", "hello", "--name", "ci")
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("fk_") and "not shown again" in created.stderr
    assert get(url + "hello").status_code == 401  # private: no key, no answer
    r = get(url + "hello?name=cli", key=key)
    assert r.status_code == 200, r.text
    assert r.json() == {"greeting": "hello cli", "version": "1"}
    assert get(f"{url}v1/hello", key=key).status_code == 200

    status = as_json(carol.cli("endpoint", "status", "hello", "--json"))
    assert status["serving_version"] == 1 and status["url"] == url and status["active_keys"] == 1
    v1 = status["versions"][0]
    assert (v1["number"], v1["state"], v1["replicas"]["ready"], v1["replicas"]["desired"]) == (1, "ready", 1, 1)
    assert v1["stats"]["requests"] >= 2 and v1["stats"]["responses"]["2xx"] >= 2
    assert set(v1["stats"]["latency_ms"]) == {"p50", "p95", "p99"}
    table = carol.cli("endpoint", "status", "hello").stdout
    assert "v1 *" in table and "ready" in table and "1/1" in table and f"serves unpinned traffic: {url}" in table

    listed = as_json(carol.cli("endpoint", "list", "--json"))
    assert [e["name"] for e in listed] == ["hello"]
    versions = as_json(carol.cli("endpoint", "versions", "hello", "--json"))
    assert [(v["number"], v["entry"], v["message"]) for v in versions] == [(1, "app.py", "first")]
    log = carol.cli("endpoint", "logs", "hello").stdout
    assert "[r0]" in log and "v1 is ready" in log

    keys = as_json(carol.cli("endpoint", "keys", "list", "hello", "--json"))
    assert [(k["name"], k["state"], k["prefix"]) for k in keys] == [("ci", "active", key[:8])]
    assert key not in carol.cli("endpoint", "keys", "list", "hello").stdout
    carol.cli("endpoint", "keys", "revoke", "hello", str(keys[0]["id"]))
    assert get(url + "hello", key=key).status_code == 401
    assert as_json(carol.cli("endpoint", "keys", "list", "hello", "--json"))[0]["state"] == "revoked"
    assert get(url + "hello", token=carol.token).status_code == 200  # the owner's token still works


def test_broken_version_fails_and_the_previous_one_serves(carol: User, tmp_path: Path) -> None:
    root = project_dir(carol, tmp_path, "broken-code", {"app.py": APP})
    carol.cli("deploy", "broken", "app.py", "--public", cwd=root)
    url = endpoint_url(carol, "broken")
    assert get(url + "hello").json()["version"] == "1"  # public: no key needed

    (root / "app.py").write_bytes(BROKEN_APP)
    failed = carol.cli("deploy", "broken", cwd=root, check=False)
    assert failed.returncode == 1, (failed.stdout, failed.stderr)
    assert "Traceback (most recent call last)" not in failed.stdout
    assert MISSING in failed.stderr, failed.stderr  # the log's tail, traceback's last line included
    error = [line for line in failed.stderr.splitlines() if line.startswith("Error: ")]
    assert len(error) == 1 and "carol-cli/broken v2 failed" in error[0], failed.stderr
    assert "floyd endpoint logs broken -v 2" in error[0]

    r = get(url + "hello")
    assert r.status_code == 200 and r.json()["version"] == "1"
    versions = as_json(carol.cli("endpoint", "versions", "broken", "--json"))
    assert [(v["number"], v["state"]) for v in versions] == [(2, "failed"), (1, "ready")]
    assert MISSING in carol.cli("endpoint", "logs", "broken", "-v", "2").stdout
    assert as_json(carol.cli("endpoint", "status", "broken", "--json"))["serving_version"] == 1

    # --json: the failed version on stdout, still exit 1.
    failed_json = carol.cli("deploy", "broken", "--json", cwd=root, check=False)
    assert failed_json.returncode == 1
    record = json.loads(failed_json.stdout)
    assert record["state"] == "failed" and record["number"] == 3 and MISSING in "\n".join(record["log_tail"])

    # Following the serving version's log ends when the version stops.
    carol.cli("endpoint", "stop", "broken", "-v", "1")
    assert get(url + "hello").status_code == 503
    followed = carol.cli("endpoint", "logs", "broken", "-v", "1", "-f")
    assert "v1 stopped: stopped by request" in followed.stdout
    one_line_error(carol.cli("endpoint", "stop", "broken", "-v", "1", check=False), 4, "not running")


def test_run_mode_serve_public_and_delete(carol: User, tmp_path: Path) -> None:
    root = project_dir(carol, tmp_path, "served", {"app.py": APP})
    one_line_error(carol.cli("run", "--mode", "serve", "--param", "a=1", "-f", cwd=root, check=False), 3,
                   "--param, -f/--follow are for jobs")
    one_line_error(carol.cli("run", "--mode", "serve", "python", "app.py", cwd=root, check=False), 3,
                   "one endpoint NAME")
    out = carol.cli("run", "--mode", "serve", "--cpu", cwd=root)  # endpoint named after the project
    url = endpoint_url(carol, "served")
    assert url in out.stdout and "Ready" in out.stdout
    assert get(url + "hello", token=carol.token).json()["version"] == "1"
    assert get(url + "hello").status_code == 401

    carol.cli("endpoint", "public", "served", "--on")
    assert get(url + "hello").status_code == 200
    carol.cli("endpoint", "public", "served", "--off")
    assert get(url + "hello").status_code == 401

    # --no-wait --json: the version as posted, deploying.
    posted = as_json(carol.cli("deploy", "served", "--no-wait", "--json", "--replicas", "2", cwd=root))
    assert posted["number"] == 2 and posted["state"] == "deploying" and posted["replicas"]["desired"] == 2
    assert posted["upload"]["sent_files"] == 0  # the same snapshot: nothing sent again
    deadline = time.monotonic() + 120
    while (ep := as_json(carol.cli("endpoint", "status", "served", "--json")))["serving_version"] != 2:
        assert ep["versions"][0]["state"] == "deploying" and time.monotonic() < deadline, ep["versions"][0]
        time.sleep(0.3)
    assert ep["versions"][0]["replicas"]["ready"] == 2 and ep["versions"][1]["state"] in ("draining", "stopped")

    refused = carol.cli("endpoint", "delete", "served", input="n\n", check=False)
    assert refused.returncode == 1 and "Aborted" in refused.stderr
    carol.cli("endpoint", "delete", "served", "--yes")
    assert "served" not in [e["name"] for e in as_json(carol.cli("endpoint", "list", "--json"))]
    assert get(url + "hello", token=carol.token).status_code == 404


def test_bad_input_is_one_line(carol: User, tmp_path: Path) -> None:
    root = project_dir(carol, tmp_path, "bad-input", {"app.py": APP, "notes.txt": b"hi"})
    one_line_error(carol.cli("deploy", "Bad Name!", cwd=root, check=False), 4, "Invalid endpoint name 'Bad Name!'")
    one_line_error(carol.cli("deploy", "ok-name", "--replicas", "0", cwd=root, check=False), 3,
                   "--replicas must be a whole number of at least 1")
    one_line_error(carol.cli("deploy", "ok-name", "--memory", "lots", cwd=root, check=False), 3, "--memory")
    one_line_error(carol.cli("deploy", "ok-name", "notes.txt", cwd=root, check=False), 3, "cannot be served")
    # checked on this side before anything is uploaded or created: a client error (3)
    one_line_error(carol.cli("deploy", "ok-name", "--entry", "missing.py", cwd=root, check=False), 3,
                   "The entry's file missing.py is not in")
    one_line_error(carol.cli("deploy", "ok-name", cwd=tmp_path, check=False), 3, "floyd init PROJECT")
    one_line_error(carol.cli("endpoint", "status", "nope", check=False), 4, "carol-cli/nope not found")
    one_line_error(carol.cli("endpoint", "public", "nope", check=False), 3, "--on")
    one_line_error(carol.cli("endpoint", "keys", "revoke", "nope", "1", check=False), 4, "not found")
    # A refused version leaves no empty endpoint behind.
    assert "ok-name" not in [e["name"] for e in as_json(carol.cli("endpoint", "list", "--json"))]
