"""The real MLflow client, unchanged, inside a job: params, metrics, tags and artifacts land in the
job's record and output (jobs_bridge/jobs/tracking.py, docs/tracking.md)."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from tests.support.jobs import submit, wait_state
from tests.support.platform import Platform

SCRIPT = b'''
import json, os, urllib.error, urllib.request
import mlflow
from mlflow import MlflowClient

print("uri", os.environ["MLFLOW_TRACKING_URI"])
mlflow.set_experiment("iris-tuning")
with mlflow.start_run(run_name="first") as run:
    mlflow.log_param("lr", 0.1)
    mlflow.log_params({"depth": 3, "kernel": "rbf"})
    mlflow.log_metric("loss", 0.5, step=1)
    mlflow.log_metric("loss", 0.25, step=2)
    mlflow.log_metrics({"acc": 0.9, "f1": 0.8}, step=2)
    mlflow.set_tag("team", "vision")
    with open("model.txt", "w") as f:
        f.write("weights for mlflow test 7c1e")
    mlflow.log_artifact("model.txt")
    mlflow.log_artifact("model.txt", artifact_path="models/best")
    print(json.dumps({"metric": "printed", "value": 3.5, "step": 1}))
    try:
        mlflow.log_param("lr", 0.2)
    except Exception as exc:
        print("param change refused:", type(exc).__name__, "cannot change" in str(exc))
    try:
        MlflowClient().search_experiments()
    except Exception as exc:
        print("search refused:", "does not implement" in str(exc) and "experiments/search" in str(exc))
    base = os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow-artifacts/artifacts/" + run.info.run_id + "/"
    for bad in ("%2e%2e%2fescape.txt", "a%00b.txt"):
        req = urllib.request.Request(base + bad, data=b"x", method="PUT",
                                     headers={"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]})
        try:
            urllib.request.urlopen(req)
            print("bad path accepted", bad)
        except urllib.error.HTTPError as exc:
            print("bad path refused", exc.code)
    print("run id", run.info.run_id, "artifact uri", mlflow.get_artifact_uri())
'''


def test_mlflow_client_logs_into_the_job(platform: Platform, workspace_image: str, tmp_path: Path) -> None:
    user = platform.user("mlflow-user")
    job = submit(user, "tracked", {"train.py": SCRIPT}, tmp_path, command="python train.py")["job"]
    done = wait_state(user, job["id"], {"succeeded", "failed"}, timeout=180)
    log = user.api("GET", f"jobs/{job['id']}/logs").text
    assert done["state"] == "succeeded", log
    assert "uri http://" in log and "/services/floyd/api/v1/mlflow" in log
    assert "param change refused: MlflowException True" in log
    assert "search refused: True" in log
    assert log.count("bad path refused 400") == 2 and "bad path accepted" not in log

    time.sleep(1)  # metrics are written in batches
    record = user.api("GET", f"jobs/{job['id']}").json()
    assert record["params"] == {"lr": "0.1", "depth": "3", "kernel": "rbf"}
    assert record["tags"]["team"] == "vision" and record["tags"]["mlflow.runName"] == "first"
    assert record["tags"]["floyd.experiment"] == "iris-tuning"
    assert f"run id {record['mlflow_run_id']} artifact uri mlflow-artifacts:/{record['mlflow_run_id']}" in log
    series = user.api("GET", f"jobs/{job['id']}/metrics").json()["series"]
    assert [(p["step"], p["value"]) for p in series["loss"]] == [(1, 0.5), (2, 0.25)]
    assert series["acc"][0]["value"] == 0.9 and series["f1"][0]["value"] == 0.8
    assert series["printed"][0]["value"] == 3.5  # {"metric": …} lines keep working beside MLflow
    files = {f["path"] for f in user.api("GET", f"jobs/{job['id']}/output/files", params={"recursive": "1"}).json()["files"]}
    assert {"model.txt", "models/best/model.txt"} <= files
    got = user.api("GET", f"jobs/{job['id']}/output/download", params={"path": "models/best/model.txt"})
    assert got.content == b"weights for mlflow test 7c1e"
    assert not any("escape" in f for f in files)
    page = requests.get(platform.url + f"services/floyd/jobs/{job['id']}", headers=user.headers, timeout=30)
    assert page.status_code == 200 and "team=vision" in page.text and "lr=0.1" in page.text  # the job page


def test_mlflow_routes_outside_a_job(platform: Platform, workspace_image: str, tmp_path: Path) -> None:
    """The owner's Hub token reads the run; another user gets 404; a Hub token cannot start a run;
    an unsupported route is a 501 naming it; bad input is a 4xx that changes nothing."""
    owner, intruder = platform.user("mlflow-owner"), platform.user("mlflow-intruder")
    job = submit(owner, "runs", {"r.py": b"print('mlflow outside 51f0')"}, tmp_path, command="python r.py")["job"]
    wait_state(owner, job["id"], {"succeeded"})
    found = job["mlflow_run_id"]
    assert owner.api("GET", "mlflow/api/2.0/mlflow/runs/get", params={"run_id": "0"}).status_code == 404
    info = owner.api("GET", "mlflow/api/2.0/mlflow/runs/get", params={"run_id": found}).json()["run"]["info"]
    assert info["artifact_uri"] == f"mlflow-artifacts:/{found}" and info["status"] == "FINISHED"
    r = intruder.api("GET", "mlflow/api/2.0/mlflow/runs/get", params={"run_id": found})
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert intruder.api("POST", "mlflow/api/2.0/mlflow/runs/log-parameter",
                        json={"run_id": found, "key": "k", "value": "v"}).status_code == 404
    r = owner.api("POST", "mlflow/api/2.0/mlflow/runs/log-parameter", json={"run_id": found, "key": "k", "value": "v"})
    assert r.status_code == 409 and "has ended" in r.json()["message"]  # a finished job's record stays
    r = owner.api("POST", "mlflow/api/2.0/mlflow/runs/update", json={"run_id": found, "run_name": "renamed"})
    assert r.status_code == 409
    r = owner.api("POST", "mlflow/api/2.0/mlflow/runs/update", json={"run_id": found, "status": "DONE"})
    assert r.status_code == 400 and "RUNNING" in r.json()["message"]
    r = owner.api("POST", "mlflow/api/2.0/mlflow/runs/create", json={"experiment_id": "0"})
    assert r.status_code == 403 and "MLFLOW_TRACKING_TOKEN" in r.json()["message"]
    r = owner.api("POST", "mlflow/api/2.0/mlflow/registered-models/create", json={"name": "m"})
    assert r.status_code == 501 and "registered-models/create" in r.json()["message"]
    assert owner.api("GET", "mlflow/api/2.0/mlflow/runs/get", params={"run_id": "x/../1"}).status_code == 404
    assert owner.api("GET", "mlflow/api/2.0/mlflow/runs/get").status_code == 400
    r = owner.api("GET", "mlflow/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "Default"})
    assert r.json()["experiment"]["experiment_id"] == "0"
    assert owner.api("PUT", f"mlflow/api/2.0/mlflow-artifacts/artifacts/{found}/x.txt", data=b"x").status_code == 409
    assert owner.api("GET", f"jobs/{job['id']}").json()["params"] == {}
    assert requests_without_token(platform).status_code == 401


def requests_without_token(platform: Platform):
    return platform.api("GET", "mlflow/api/2.0/mlflow/runs/get", params={"run_id": "1"})
