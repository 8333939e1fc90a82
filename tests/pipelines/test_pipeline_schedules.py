"""Pipelines beyond one run, on a real platform of its own (local jobs, a half-second schedule
clock): a schedule whose runs are pipeline runs (never two at once unless allowed, a bad pipeline
refused with nothing stored), and a step's output registered as a model version with one flag."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from floyd.client.transfer import upload_code
from tests.support.jobs import client_for
from tests.support.platform import TEST_BRIDGE_CONFIG, Platform, User, write_tree

EVERY_2S = "* * * * * */2"  # a six-field cron (seconds), as the schedule tests use
PREPARE = b"""# pipeline schedules test: prepare
import os, time
os.makedirs(os.path.join(os.environ["FLOYD_OUTPUT"], "model"), exist_ok=True)
open(os.path.join(os.environ["FLOYD_OUTPUT"], "model", "weights.txt"), "w").write("rows=" + os.environ.get("FLOYD_PARAM_ROWS", "3"))
print("prepared", os.environ.get("FLOYD_PARAM_ROWS"), flush=True)
time.sleep(float(os.environ.get("FLOYD_PARAM_SLEEP", "0")))
"""
FLOYD_YML = """
pipelines:
  nightly:
    steps:
      prepare: {command: python prepare.py, params: {rows: 3, sleep: 0}}
"""


@pytest.fixture(scope="module")
def pipe_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    config = TEST_BRIDGE_CONFIG + "c.ScheduleClock.tick_seconds = 0.5\n"
    p = Platform.create(tmp_path_factory.mktemp("pipeline-schedules"), {"FLOYD_JOB_EXECUTOR": "local",
                                                                        "FLOYD_SPAWNER": "local"}, config)
    p.start()
    yield p
    for user in list(p.users.values()):  # jobs outlive the platform: let none run on past the tests
        for run in user.api("GET", "pipelines").json()["items"]:
            if run["state"] == "running":
                user.api("POST", f"pipelines/{run['id']}/stop")
    p.stop()


def linked_dir(user: User, project: str, tmp: Path, marker: str) -> Path:
    """A project with floyd.yml's pipeline; ``marker`` makes its bytes this test's own."""
    root = write_tree(tmp / project, {"prepare.py": PREPARE + f"# {marker}\n".encode(),
                                      "floyd.yml": FLOYD_YML.encode()})
    user.cli("init", project, cwd=root)
    (root / "floyd.yml").write_text(FLOYD_YML)
    return root


def sched_runs(user: User, name: str) -> list[dict]:
    r = user.api("GET", f"schedules/{user.name}/{name}")
    assert r.status_code == 200, r.text
    return list(reversed(r.json()["runs"]))  # oldest first


def wait_for(what, ok, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = what()
        if ok(seen):
            return seen
        time.sleep(0.3)
    raise AssertionError(f"not reached: {what()}")


def test_a_pipeline_schedule_starts_pipeline_runs_one_at_a_time(pipe_platform: Platform, tmp_path: Path) -> None:
    user = pipe_platform.user("psched")
    root = linked_dir(user, "nightlyp", tmp_path, "psched")
    out = user.cli("schedule", "create", "slow", "--cron", EVERY_2S, "--pipeline", "nightly",
                   "--param", "prepare.sleep=60", "--param", "prepare.rows=7", cwd=root)
    assert "next run" in out.stdout
    assert "pipeline nightly" in user.cli("schedule", "list").stdout
    seen = wait_for(lambda: sched_runs(user, "slow"),
                    lambda rs: [r["outcome"] for r in rs].count("skipped") >= 2)
    started = [r for r in seen if r["outcome"] == "started"]
    assert len(started) == 1 and "still going" in seen[-1]["reason"], seen
    run_id = started[0]["jobs"][0]
    assert run_id == "psched/nightlyp/1"
    run = user.api("GET", f"pipelines/{run_id}").json()
    assert run["pipeline"] == "nightly" and run["created_by"] == "psched"
    step = run["steps"][0]
    assert step["name"] == "prepare" and step["job"] is not None
    job = user.api("GET", f"jobs/{step['job']}").json()
    assert job["params"]["rows"] in (7, "7")
    user.cli("schedule", "delete", "slow")
    assert user.api("POST", f"pipelines/{run_id}/stop").status_code == 200
    # Allowed to overlap: a second pipeline run starts while the first still goes.
    user.cli("schedule", "create", "both", "--cron", EVERY_2S, "--pipeline", "nightly", "--allow-overlap",
             "--param", "prepare.sleep=60", cwd=root)
    seen = wait_for(lambda: sched_runs(user, "both"), lambda rs: [r["outcome"] for r in rs].count("started") >= 2)
    assert all(r["outcome"] == "started" for r in seen), seen
    user.cli("schedule", "delete", "both")
    for r in seen:
        user.api("POST", f"pipelines/{r['jobs'][0]}/stop")


def test_bad_pipeline_schedules_are_refused_and_store_nothing(pipe_platform: Platform, tmp_path: Path) -> None:
    user = pipe_platform.user("psched-bad")
    root = linked_dir(user, "badp", tmp_path, "psched-bad")
    snapshot = upload_code(client_for(user), "psched-bad", "badp", root).version["id"]
    request = {"project": "psched-bad/badp", "snapshot": snapshot, "pipeline": "nightly",
               "steps": {"prepare": {"command": "python prepare.py"}}}
    good = {"name": "ok", "cron": "0 3 * * *", "target": {"kind": "pipeline", "request": request}}
    cycle = {"a": {"command": "x", "inputs": [{"from": "b"}]}, "b": {"command": "y", "inputs": [{"from": "a"}]}}
    cases = [
        ({**request, "steps": cycle}, 400, "cycle"),
        ({**request, "steps": {"a": {"command": "x", "inputs": [{"from": "zzz"}]}}}, 400, "zzz"),
        ({**request, "pipeline": "n" * 4096}, 400, "Invalid pipeline name"),
        ({**request, "snapshot": None}, 400, "snapshot"),
        ({**request, "command": "python prepare.py"}, 400, "Unknown field"),
        ({**request, "save_models": {"nope": "m"}}, 400, "save_models: no step 'nope'"),
        ({**request, "project": "psched-other/x"}, 404, "not found"),
    ]
    for bad, status, words in cases:
        r = user.api("POST", "schedules", json={**good, "target": {"kind": "pipeline", "request": bad}})
        assert r.status_code == status, (bad, r.status_code, r.text)
        assert words in r.json()["message"], r.text
        assert len(r.text) < 2000  # a 4 KB name is not echoed back whole
    # The CLI: a pipeline floyd.yml lacks, or a bad --param, is one line before any upload.
    for args in (["--pipeline", "nope"], ["--pipeline", "nightly", "--param", "ghost.x=1"]):
        proc = user.cli("schedule", "create", "ok", "--cron", "0 3 * * *", *args, cwd=root, check=False)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert user.api("GET", "schedules").json()["items"] == []
    assert user.api("GET", "pipelines").json()["items"] == []
    # A good one is stored with the checked request, and shows as a pipeline.
    r = user.api("POST", "schedules", json=good)
    assert r.status_code == 201, r.text
    assert r.json()["target"]["kind"] == "pipeline" and r.json()["target"]["request"]["save_models"] == {}
    assert user.api("DELETE", "schedules/psched-bad/ok").status_code == 204


def test_save_model_registers_a_steps_output(pipe_platform: Platform, tmp_path: Path) -> None:
    user = pipe_platform.user("pmodel")
    root = linked_dir(user, "modelp", tmp_path, "pmodel")
    out = user.cli("pipeline", "run", "nightly", "--save-model", "prepare=pipe-model", "--follow", "--json", cwd=root)
    run = json.loads(out.stdout)
    assert run["state"] == "succeeded", run
    step = run["steps"][0]
    assert step["model_saved_as"] == "pmodel/pipe-model:1", step
    version = user.api("GET", "models/pmodel/pipe-model/versions/1").json()
    assert version["source_job"] == step["job"], version
    assert "step prepare of pipeline nightly" in version["description"]
    status = user.cli("pipeline", "status", run["id"], cwd=root).stdout
    assert "model pmodel/pipe-model:1" in status
    # A bad flag is a CLI error naming the form; a bad model name a 400; nothing is stored.
    proc = user.cli("pipeline", "run", "nightly", "--save-model", "prepare", cwd=root, check=False)
    assert proc.returncode != 0 and "STEP=MODEL" in proc.stderr, proc.stderr
    proc = user.cli("pipeline", "run", "nightly", "--save-model", "prepare=bad/name!", cwd=root, check=False)
    assert proc.returncode != 0 and "model name" in proc.stderr, proc.stderr
    assert len(user.api("GET", "pipelines").json()["items"]) == 1
