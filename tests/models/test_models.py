"""The model registry on the real platform: a job writes an output, it becomes a model version
(no bytes copied), an alias names it, an endpoint deployed with the alias follows it, moving the
alias rolls out the new version, a failing one leaves the old serving and says why."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
import requests

from tests.support.jobs import submit, wait_state
from tests.support.platform import Platform, User, built, write_tree
from tests.support.serving import ASGI_LIFESPAN, call, deploy, wait_version

TRAIN = b'''import json, os, sys
out = os.path.join(os.environ["FLOYD_OUTPUT"], "model")
os.makedirs(out, exist_ok=True)
weights = sys.argv[1]
if weights != "none":
    open(os.path.join(out, "weights.txt"), "w").write(weights)
open(os.path.join(out, "card.md"), "w").write("model card " + weights)
open(os.path.join(os.environ["FLOYD_OUTPUT"], "scratch.log"), "w").write("not part of the model")
print(json.dumps({"metric": "accuracy", "value": 0.5, "step": 1}))
print(json.dumps({"metric": "accuracy", "value": 0.93, "step": 2}))
'''

# Serves the weights of the model version mounted at /floyd/model; without them it cannot start.
SERVE = b'''import os
WEIGHTS = open(os.path.join(os.environ["FLOYD_MODEL"], "weights.txt"), "rb").read()

async def app(scope, receive, send):
''' + ASGI_LIFESPAN + b'''    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(WEIGHTS)).encode())]})
    await send({"type": "http.response.body", "body": WEIGHTS})
'''


@pytest.fixture(scope="module")
def trained(platform: Platform, workspace_image: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Three finished jobs of alice's project: two with weights, one without (its model cannot serve)."""
    user = platform.user("mara")
    tmp = tmp_path_factory.mktemp("models")
    weights = [f"weights-{i}-{uuid.uuid4().hex}" for i in (1, 2)] + ["none"]
    jobs = []
    for w in weights:
        job = submit(user, "iris-train", {"train.py": TRAIN}, tmp, command=f"python train.py {w}",
                     params={"lr": "0.1"})["job"]
        jobs.append(job)
    for job in jobs:
        assert wait_state(user, job["id"], {"succeeded", "failed"}, timeout=180)["state"] == "succeeded"
    return {"user": user, "tmp": tmp, "weights": weights, "jobs": [j["id"] for j in jobs]}


def register(user: User, name: str, source: str, **extra: object) -> requests.Response:
    return user.api("POST", f"models/{user.name}/{name}/versions", json={"from": source, **extra})


def test_register_carries_the_job_and_copies_no_bytes(platform: Platform, trained: dict) -> None:
    user: User = trained["user"]
    job = trained["jobs"][0]
    out = user.cli("model", "register", "iris", "--from", f"{job}/output/model", "-d", "first try",
                   "--tag", "baseline", "--json")
    v = json.loads(out.stdout)
    assert v["ref"] == "mara/iris:1" and v["model"] == "mara/iris"
    assert v["source_job"] == job and v["output_path"] == "model"
    assert v["params"] == {"lr": "0.1"} and v["metrics"]["accuracy"] == pytest.approx(0.93)
    assert v["snapshot"].startswith("sha256:") and v["image_id"]
    assert v["id"].startswith("sha256:") and v["file_count"] == 2  # model/ only, not scratch.log
    assert v["description"] == "first try" and v["tags"] == ["baseline"]
    owner, project, number = job.split("/")
    source = platform.root / "jobs" / owner / project / number / "output" / "model" / "weights.txt"
    stored = built(platform.root / "models" / "mara" / "iris" / "1" / "weights.txt")
    assert os.stat(source).st_ino == os.stat(stored).st_ino  # the same inode: hardlinked, not copied
    assert register(user, "iris", trained["jobs"][1] + "/output/model", description="second").status_code == 201
    assert register(user, "iris", trained["jobs"][2] + "/output/model").status_code == 201
    listed = user.cli("model", "versions", "iris").stdout
    assert "mara/iris:1" in listed and "mara/iris:3" in listed and "accuracy=0.93" in listed


def test_get_downloads_the_version(trained: dict, tmp_path: Path) -> None:
    user: User = trained["user"]
    user.cli("model", "get", "iris:1", "-o", str(tmp_path))
    found = {p.name: p.read_text() for p in tmp_path.rglob("*") if p.is_file()}
    assert found["weights.txt"] == trained["weights"][0]


def test_alias_moves_atomically_with_history(trained: dict) -> None:
    user: User = trained["user"]
    user.cli("model", "alias", "iris", "staging", "1")
    r = user.api("PUT", "models/mara/iris/aliases/staging", json={"version": 2})
    assert r.status_code == 200 and r.json()["from_version"] == 1 and r.json()["version"] == 2
    assert user.api("GET", "models/mara/iris/versions/staging").json()["number"] == 2
    model = user.api("GET", "models/mara/iris").json()
    assert model["aliases"]["staging"] == 2
    history = [(e["alias"], e["from_version"], e["to_version"], e["moved_by"]) for e in model["alias_history"]]
    assert history[:2] == [("staging", 1, 2, "mara"), ("staging", None, 1, "mara")]
    # an alias keeps its version from deletion
    assert user.api("DELETE", "models/mara/iris/versions/2").status_code == 409
    shown = user.cli("model", "show", "iris").stdout
    assert "staging" in shown and "removed" not in shown and "No endpoint mounts this model." in shown
    assert "mara/iris:2" in user.cli("model", "show", "iris@staging").stdout
    assert "staging=2" in user.cli("model", "list").stdout


def test_deploy_follows_the_alias(platform: Platform, trained: dict) -> None:
    user: User = trained["user"]
    w1, w2, _ = trained["weights"]
    user.cli("model", "alias", "iris", "production", "1")
    v1 = deploy(user, "iris-api", {"app.py": SERVE}, trained["tmp"], model="iris@production")
    assert v1["model"] == "mara/iris:1@production"
    assert wait_version(user, "iris-api", v1["number"])["state"] == "ready"
    assert call(user, "iris-api", "/").text == w1
    endpoint = user.api("GET", "endpoints/mara/iris-api").json()
    assert endpoint["following"] == "mara/iris@production"

    moved = user.api("PUT", "models/mara/iris/aliases/production", json={"version": 2}).json()
    assert moved["rollouts"] == [{"endpoint": "mara/iris-api", "version": v1["number"] + 1}]
    v2 = wait_version(user, "iris-api", v1["number"] + 1)
    assert v2["state"] == "ready", v2["reason"]
    assert v2["model"] == "mara/iris:2@production"
    assert call(user, "iris-api", "/").text == w2

    # version 3 has no weights: its rollout fails, version 2 serves on, and both pages say why
    moved = user.api("PUT", "models/mara/iris/aliases/production", json={"version": 3}).json()
    v3 = wait_version(user, "iris-api", moved["rollouts"][0]["version"])
    assert v3["state"] == "failed"
    assert call(user, "iris-api", "/").text == w2
    model = user.api("GET", "models/mara/iris").json()
    failed = [d for d in model["deployments"] if d["version"] == v3["number"]]
    assert failed and failed[0]["state"] == "failed" and failed[0]["reason"] == v3["reason"]
    page = user.api("GET", "../../models/mara/iris")
    assert page.status_code == 200 and v3["reason"].split(":")[0] in page.text and "production" in page.text
    endpoint_page = user.api("GET", "../../serving/mara/iris-api")
    assert "mara/iris@production" in endpoint_page.text and "failed" in endpoint_page.text


def test_cli_deploy_with_a_pinned_model(trained: dict) -> None:
    user: User = trained["user"]
    root = write_tree(trained["tmp"] / "cli-deploy", {"app.py": SERVE})
    user.cli("init", "iris-cli-code", cwd=root)
    out = json.loads(user.cli("deploy", "iris-cli", "--model", "iris:1", "--json", cwd=root).stdout)
    assert out["state"] == "ready" and out["model"] == "mara/iris:1"
    assert call(user, "iris-cli", "/").text == trained["weights"][0]
    refused = user.cli("deploy", "iris-cli", "--model", "iris:1", "--follow", cwd=root, check=False)
    assert refused.returncode == 4 and "Only an alias can be followed" in refused.stderr


def test_pinned_version_and_data_style_still_work(trained: dict) -> None:
    user: User = trained["user"]
    w1 = trained["weights"][0]
    v = deploy(user, "iris-pinned", {"app.py": SERVE}, trained["tmp"], model="iris:1",
               inputs=[{"source": trained["jobs"][1] + "/output", "mount": "extra"}])
    assert wait_version(user, "iris-pinned", v["number"])["state"] == "ready"
    assert call(user, "iris-pinned", "/").text == w1
    assert user.api("GET", "endpoints/mara/iris-pinned").json()["following"] is None
    moved = user.api("PUT", "models/mara/iris/aliases/production", json={"version": 1}).json()
    assert "mara/iris-pinned" not in [r["endpoint"] for r in moved["rollouts"]]


def test_private_by_default_then_shared(platform: Platform, trained: dict) -> None:
    other = platform.user("nosy")
    assert other.api("GET", "models/mara/iris").status_code == 404
    assert other.api("GET", "models/mara/iris/versions/1/download").status_code == 404
    assert "mara/iris" not in other.api("GET", "models", params={"owner": "mara"}).text
    r = other.api("POST", "endpoints/nosy/x/versions", json={"model": "mara/iris:1"})
    assert r.status_code == 404
    trained["user"].cli("model", "share", "iris")
    assert other.api("GET", "models/mara/iris").status_code == 200
    assert other.api("PUT", "models/mara/iris/aliases/production", json={"version": 2}).status_code == 403
    assert register(other, "iris", "x/1").status_code == 404  # nosy's own iris: no such job
    v = deploy(other, "nosy-iris", {"app.py": SERVE}, trained["tmp"], model="mara/iris@production")
    assert wait_version(other, "nosy-iris", v["number"])["state"] == "ready"
    assert call(other, "nosy-iris", "/").text == trained["weights"][0]
    assert other.api("GET", "endpoints/nosy/nosy-iris").json()["following"] == "mara/iris@production"
    trained["user"].cli("model", "share", "iris", "--private")
    assert other.api("GET", "models/mara/iris").status_code == 404
    # no longer shared: moving the alias rolls out mara's endpoint, not nosy's
    moved = trained["user"].api("PUT", "models/mara/iris/aliases/production", json={"version": 2}).json()
    assert [r["endpoint"] for r in moved["rollouts"]] == ["mara/iris-api"]
    assert other.api("GET", "endpoints/nosy/nosy-iris").json()["serving_version"] == v["number"]
    wait_version(trained["user"], "iris-api", moved["rollouts"][0]["version"])


BAD_SOURCES = ["iris-train/1/output/../../2/output", "iris-train/1/output/a\x00b", "iris-train/1/output//etc",
               "/etc/passwd", "iris-train/99999/output", "iris-train/1/output/missing", "x" * 4096]


@pytest.mark.parametrize("source", BAD_SOURCES)
def test_bad_sources_store_nothing(trained: dict, source: str) -> None:
    user: User = trained["user"]
    before = user.api("GET", "models/mara/iris/versions").json()["items"]
    r = register(user, "iris", source)
    assert 400 <= r.status_code < 500 and r.json()["message"], r.text
    assert user.api("GET", "models/mara/iris/versions").json()["items"] == before


@pytest.mark.parametrize("name", ["..", "a..b", "a\x00b", "n" * 4096, "UPPER", "a/b"])
def test_bad_names_store_nothing(trained: dict, name: str) -> None:
    user: User = trained["user"]
    r = user.api("POST", f"models/mara/{requests.utils.quote(name, safe='')}/versions",
                 json={"from": trained["jobs"][0]})
    assert 400 <= r.status_code < 500, r.text
    assert all(m["name"] != name for m in user.api("GET", "models").json()["items"])


def test_bad_aliases_and_refs(trained: dict) -> None:
    user: User = trained["user"]
    before = user.api("GET", "models/mara/iris").json()
    assert user.api("PUT", "models/mara/iris/aliases/production", json={"version": 99}).status_code == 404
    assert user.api("PUT", "models/mara/iris/aliases/latest", json={"version": 1}).status_code == 400
    assert user.api("PUT", "models/mara/iris/aliases/" + "a" * 4096, json={"version": 1}).status_code in (400, 404)
    assert user.api("PUT", "models/mara/iris/aliases/prod", json={"version": "x"}).status_code == 400
    assert user.api("PUT", "models/mara/nope/aliases/prod", json={"version": 1}).status_code == 404
    after = user.api("GET", "models/mara/iris").json()
    assert after["alias_history"] == before["alias_history"] and after["aliases"] == before["aliases"]
    snapshot = user.api("GET", "endpoints/mara/iris-api/versions/1").json()["snapshot"]
    user.api("POST", "endpoints", json={"name": "iris-bad"})
    for spec, status in (({"model": "nope@production"}, 404), ({"model": "iris@nothing"}, 404),
                         ({"model": "iris:77"}, 404), ({"model": "../x"}, 400), ({"model": "iris@a\x00"}, 400),
                         ({"model": "m" * 4096}, 400), ({"model": "iris:1", "follow": True}, 400),
                         ({"follow": True}, 400)):
        r = user.api("POST", "endpoints/mara/iris-bad/versions",
                     json={"project": "mara/iris-api-code", "snapshot": snapshot, **spec})
        assert r.status_code == status, (spec, r.text)
        assert r.json()["message"]
    assert user.api("GET", "endpoints/mara/iris-bad/versions").json()["items"] == []


def test_delete_version_then_model(trained: dict) -> None:
    user: User = trained["user"]
    assert register(user, "scratch-model", trained["jobs"][0] + "/output/model").status_code == 201
    assert user.api("DELETE", "models/mara/scratch-model").status_code == 409
    user.cli("model", "delete", "scratch-model:1", "-y")
    user.cli("model", "delete", "scratch-model", "-y")
    assert user.api("GET", "models/mara/scratch-model").status_code == 404
    # the blobs iris:1 shares with the deleted version are still there
    assert user.api("GET", "models/mara/iris/versions/1/download", params={"path": "weights.txt"}).text \
        == trained["weights"][0]
