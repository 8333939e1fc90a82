"""``floyd init/run/status/info/logs/output/clone/metrics/restart/stop`` and ``floyd data add``:
the real ``floyd`` command against the real platform, jobs in real containers."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from floyd.cli.jobrefs import split_job_ref
from floyd.cli.run import what_to_run
from floyd.client.errors import FloydClientError
from floyd.client.ignore import DEFAULT_FLOYDIGNORE
from floyd.client.project_config import (
    ConfigError,
    parse_input,
    parse_param_flags,
    parse_sweep_flag,
    settings_from_yaml,
)
from floyd.client.request import expand_source
from tests.support.docker import docker_client, workspace_image  # noqa: F401  (fixtures)
from tests.support.platform import Platform, User, as_json, write_tree

TRAIN = b"""
import json, os
lr = os.environ.get("FLOYD_PARAM_LR", "1")
print("epoch 1 lr=" + lr, flush=True)
for step in range(3):
    print(json.dumps({"metric": "loss", "value": float(lr) / (step + 1), "step": step}), flush=True)
os.makedirs("/floyd/output", exist_ok=True)
with open("/floyd/output/result.txt", "w") as f:
    f.write("trained with lr=" + lr + "\\n")
print("done training", flush=True)
"""


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr


# -- pure parts: floyd.yml, names, flags ------------------------------------------------------
def test_floyd_yml_defaults_tasks_and_errors() -> None:
    text = """
env: cpu
machine: gpu
resources: {cpus: 2, memory: 4G}
input: ["mnist:3:digits", {source: 12/output, destination: prev}]
command: python train.py
max_runtime: 600
description: baseline
params: {lr: 0.01, deep: true}
sweep: {grid: {lr: [0.1, 0.01]}}
concurrency: 2
retries: 2
task:
  evaluate: {command: python eval.py, machine: cpu, params: {lr: 1}}
"""
    top = settings_from_yaml(text)
    assert top.request() == {
        "environment": "cpu", "gpus": 1, "cpus": 2.0, "memory": "4G", "max_runtime": 600, "message": "baseline",
        "inputs": [{"source": "mnist:3", "mount": "digits"}, {"source": "12/output", "mount": "prev"}],
        "params": {"lr": "0.01", "deep": "true"}, "sweep": {"grid": {"lr": [0.1, 0.01]}}, "concurrency": 2,
        "retries": 2,
    }
    assert top.command == "python train.py"
    task = settings_from_yaml(text, "evaluate")
    assert (task.command, task.gpus, task.task, task.params) == ("python eval.py", 0, "evaluate",
                                                                 {"lr": "1", "deep": "true"})
    assert settings_from_yaml("# only comments\n").request() == {}
    errors = {
        "machin: cpu": "floyd.yml: unknown key 'machin' (allowed: command, concurrency, description, env, input, "
                       "machine, max_runtime, params, pipelines, resources, retries, sweep, task)",
        "machine: tpu": "floyd.yml: machine must be cpu, gpu or gpu2, not 'tpu'",
        "task: {t: {machine: tpu}}": "floyd.yml: task 't': machine must be cpu, gpu or gpu2, not 'tpu'",
        "task: {t: {comand: x}}": "floyd.yml: unknown key 'comand' in task 't' (allowed: command, concurrency, "
                                  "description, env, input, machine, max_runtime, params, resources, retries, sweep)",
        "resources: {cpu: 1}": "floyd.yml: unknown key 'cpu' in resources (allowed: cpus, gpus, memory)",
        "resources: {memory: lots}": "floyd.yml: resources.memory must be a size such as 512M, 4G or 4GiB, not 'lots'",
        "max_runtime: -1": "floyd.yml: max_runtime must be a whole number of at least 0, not -1",
        "retries: -1": "floyd.yml: retries must be a whole number of at least 0, not -1",
        "params: {lr: [1, 2]}": "floyd.yml: params: lr must be a single value, not [1, 2]",
        "sweep: {grid: {lr: 1}}": "floyd.yml: sweep: lr needs a non-empty list of values, not 1",
        "- a list": "floyd.yml must be a mapping of keys (command, env, machine, ...), not a list",
    }
    for bad, message in errors.items():
        with pytest.raises(ConfigError) as info:
            settings_from_yaml(bad)
        assert info.value.message == message
    with pytest.raises(ConfigError, match="no task 'nope' \\(tasks: evaluate\\)"):
        settings_from_yaml(text, "nope")
    with pytest.raises(ConfigError, match="not valid YAML"):
        settings_from_yaml("a: [")


def test_names_inputs_and_flags() -> None:
    assert split_job_ref("12") == (None, None, 12)
    assert split_job_ref("mnist-cnn/12") == (None, "mnist-cnn", 12)
    assert split_job_ref("alice/mnist-cnn/12/output") == ("alice", "mnist-cnn", 12)
    assert split_job_ref("alice/projects/mnist-cnn/12") == ("alice", "mnist-cnn", 12)
    for bad in ("", "abc", "a/b/c/d/12", "mnist-cnn/x"):
        with pytest.raises(FloydClientError, match="Cannot read job name"):
            split_job_ref(bad)
    assert parse_input("mnist") == {"source": "mnist"}
    assert parse_input("mnist:3") == {"source": "mnist:3"}
    assert parse_input("mnist:latest") == {"source": "mnist:latest"}
    assert parse_input("mnist:digits") == {"source": "mnist", "mount": "digits"}
    assert parse_input("alice/mnist:3:digits") == {"source": "alice/mnist:3", "mount": "digits"}
    assert parse_input("12/output:prev") == {"source": "12/output", "mount": "prev"}
    assert expand_source("12/output", "alice/mnist-cnn") == "alice/mnist-cnn/12/output"
    assert expand_source("alice/projects/mnist-cnn/12", "alice/x") == "alice/mnist-cnn/12/output"
    assert expand_source("alice/datasets/mnist/3", "alice/x") == "alice/mnist:3"
    assert expand_source("mnist:3", "alice/x") == "mnist:3"
    assert parse_sweep_flag("lr=0.1,0.01 layers=2,3") == {"grid": {"lr": ["0.1", "0.01"], "layers": ["2", "3"]}}
    with pytest.raises(ConfigError, match="--sweep"):
        parse_sweep_flag("lr")
    assert parse_param_flags(("lr=0.1", "name=a=b")) == {"lr": "0.1", "name": "a=b"}
    with pytest.raises(ConfigError, match="--param"):
        parse_param_flags(("1x=2",))
    assert what_to_run(("python", "train.py"), None) == {"command": "python train.py"}
    assert what_to_run(("train.ipynb",), None) == {"notebook": "train.ipynb"}


# -- against the platform -------------------------------------------------------------------
@pytest.fixture(scope="module")
def runner(platform: Platform) -> User:
    return platform.user("jobcli")


@pytest.fixture(scope="module")
def project(runner: User, tmp_path_factory: pytest.TempPathFactory, workspace_image: str) -> Path:  # noqa: F811
    work = write_tree(tmp_path_factory.mktemp("jobcli") / "mnist-cnn", {
        "train.py": TRAIN, "notes.md": b"notes\n", "__pycache__/x.pyc": b"ignored",
    })
    proc = runner.cli("init", "mnist-cnn", cwd=work)
    assert "Created project" in proc.stdout
    assert json.loads((work / ".floydexpt").read_text()) == {"project": "jobcli/mnist-cnn"}
    assert (work / ".floydignore").read_text() == DEFAULT_FLOYDIGNORE
    assert "task:" in (work / "floyd.yml").read_text()  # the commented example
    again = runner.cli("init", "jobcli/mnist-cnn", cwd=work)
    assert "Using your existing project" in again.stdout
    return work


def wait_state(user: User, job: str, states: set[str], cwd: Path, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        record = as_json(user.cli("status", job, "--json", cwd=cwd))
        if record["state"] in states or time.monotonic() > deadline:
            assert record["state"] in states, record
            return record
        time.sleep(0.3)


def test_run_follow_then_inspect_the_job(runner: User, project: Path, tmp_path: Path) -> None:
    first = runner.cli("run", "python train.py", "--param", "lr=0.1", "-m", "first try", "--follow", cwd=project)
    assert first.returncode == 0
    assert "epoch 1 lr=0.1" in first.stdout and "done training" in first.stdout
    assert "Job jobcli/mnist-cnn/1 queued (snapshot sha256:" in first.stdout
    assert "jobcli/mnist-cnn/1" in first.stderr and "succeeded" in first.stderr

    listed = as_json(runner.cli("status", "--json", cwd=project))
    job1 = next(j for j in listed if j["number"] == 1)
    assert job1["state"] == "succeeded" and job1["message"] == "first try"
    table = runner.cli("status", cwd=project).stdout
    assert "jobcli/mnist-cnn/1" in table and "succeeded" in table and "loss=0.0333" in table

    info = as_json(runner.cli("info", "1", "--json", cwd=project))
    assert info["snapshot"].startswith("sha256:") and info["image_id"].startswith("sha256:")
    assert info["params"] == {"lr": "0.1"} and info["command"] == "python train.py"
    assert info["package_count"] > 10 and info["exit_code"] == 0
    info_table = runner.cli("info", "mnist-cnn/1", cwd=project).stdout
    assert "image_id" in info_table and "package_count" in info_table and '{"lr": "0.1"}' in info_table

    # The unchanged project sends no file bytes: same snapshot, a new job.
    again = as_json(runner.cli("run", "python train.py", "--param", "lr=0.1", "--json", cwd=project))
    assert again["sent_bytes"] == 0 and again["duplicate"] is True and again["snapshot"] == info["snapshot"]
    assert again["job"]["number"] == 2 and again["job"]["params"] == {"lr": "0.1"}

    log = runner.cli("logs", "1", cwd=project).stdout
    assert "epoch 1 lr=0.1" in log and '"metric": "loss"' in log

    out = tmp_path / "out"
    out.mkdir()
    runner.cli("output", "1", "result.txt", "-o", str(out), cwd=project)
    assert (out / "result.txt").read_text() == "trained with lr=0.1\n"
    runner.cli("output", "jobcli/mnist-cnn/1", "-o", str(tmp_path / "all"), cwd=project)
    assert (tmp_path / "all" / "mnist-cnn-1-output" / "result.txt").read_text() == "trained with lr=0.1\n"
    listing = as_json(runner.cli("output", "1", "--list", "--json", cwd=project))
    assert [f["path"] for f in listing] == ["result.txt"]

    clone = tmp_path / "clone"
    runner.cli("clone", "1", "-o", str(clone), cwd=project)
    assert (clone / "train.py").read_bytes() == TRAIN and (clone / "notes.md").exists()
    assert not (clone / "__pycache__").exists()  # .floydignore kept it out of the snapshot
    assert json.loads((clone / ".floydexpt").read_text()) == {"project": "jobcli/mnist-cnn"}
    busy = runner.cli("clone", "1", "-o", str(clone), cwd=project, check=False)
    assert busy.returncode == 3 and "not empty" in busy.stderr

    metrics = as_json(runner.cli("metrics", "1", "--json", cwd=project))
    assert [p["step"] for p in metrics["series"]["loss"]] == [0, 1, 2]
    assert metrics["summary"]["loss"]["steps"] == 3 and metrics["summary"]["loss"]["min"] == pytest.approx(0.1 / 3)
    assert "loss" in runner.cli("metrics", "1", cwd=project).stdout

    restarted = runner.cli("restart", "1", "--param", "lr=0.5", "--follow", "--json", cwd=project)
    new = as_json(restarted)["job"]
    assert new["state"] == "succeeded" and new["params"] == {"lr": "0.5"} and new["parent"] == "jobcli/mnist-cnn/1"
    assert "epoch 1 lr=0.5" in restarted.stderr  # with --json the log goes to stderr
    linked = as_json(runner.cli("info", str(new["number"]), "--json", cwd=project))
    assert linked["parent"] == "jobcli/mnist-cnn/1" and linked["snapshot"] == info["snapshot"]

    added = runner.cli("data", "add", "1/output", "trained", cwd=project)
    assert "jobcli/trained:1" in added.stdout
    version = as_json(runner.cli("data", "versions", "trained", "--json"))
    assert [v["ref"] for v in version] == ["jobcli/trained:1"] and version[0]["file_count"] == 1
    got = tmp_path / "got"
    got.mkdir()
    runner.cli("data", "get", "trained:1/result.txt", "-o", str(got))
    assert (got / "result.txt").read_bytes() == (out / "result.txt").read_bytes()
    wait_state(runner, "2", {"succeeded"}, project)


def test_floyd_yml_task_flags_override_and_bad_key(runner: User, project: Path, tmp_path: Path) -> None:
    work = write_tree(tmp_path / "yml", {"train.py": TRAIN, "floyd.yml": b"""
command: python missing.py
params: {lr: 0.9}
task:
  quick: {command: python train.py, params: {lr: 0.2}, description: from the task, max_runtime: 120}
"""})
    runner.cli("init", "mnist-cnn", cwd=work)
    assert (work / "floyd.yml").read_text().startswith("\ncommand: python missing.py")  # not replaced
    sub = work / "sub"
    sub.mkdir()  # .floydexpt is found above the current directory
    result = as_json(runner.cli("run", "--task", "quick", "--param", "lr=0.3", "--json", cwd=sub))
    job = result["job"]
    assert job["command"] == "python train.py" and job["task"] == "quick" and job["message"] == "from the task"
    assert job["params"] == {"lr": "0.3"} and job["max_runtime"] == 120

    (work / "floyd.yml").write_text("machin: gpu\ncommand: python train.py\n")
    bad = runner.cli("run", cwd=work, check=False)
    assert bad.returncode == 3, bad.stderr
    assert ("floyd.yml: unknown key 'machin' (allowed: command, concurrency, description, env, input, machine, "
            "max_runtime, params, pipelines, resources, retries, sweep, task)") in bad.stderr.replace("\n", " ")
    no_traceback(bad)
    (work / "floyd.yml").write_text("machine: tpu\n")
    bad = runner.cli("run", "python train.py", cwd=work, check=False)
    assert bad.returncode == 3 and "machine must be cpu, gpu or gpu2, not 'tpu'" in bad.stderr
    (work / "floyd.yml").write_text("task: {quick: {command: python train.py}}\n")
    missing = runner.cli("run", "--task", "slow", cwd=work, check=False)
    assert missing.returncode == 3 and "no task 'slow' (tasks: quick)" in missing.stderr
    wait_state(runner, str(job["number"]), {"succeeded"}, work)


def test_sweep_group_side_by_side_with_best(runner: User, project: Path) -> None:
    result = as_json(runner.cli("run", "python train.py", "--sweep", "lr=0.1,0.2", "--concurrency", "1", "--json",
                                cwd=project))
    group = result["group"]["id"]
    assert result["group"]["size"] == 2 and result["group"]["concurrency"] == 1
    numbers = [j["number"] for j in result["jobs"]]
    assert sorted(j["params"]["lr"] for j in result["jobs"]) == ["0.1", "0.2"]
    for n in numbers:
        assert runner.cli("logs", str(n), "-f", cwd=project).returncode == 0
    shown = as_json(runner.cli("status", "--group", str(group), "--best", "loss", "--json", cwd=project))
    assert [j["number"] for j in shown["jobs"]] == numbers
    best = next(j for j in result["jobs"] if j["params"]["lr"] == "0.1")
    assert shown["best"] == best["id"] and shown["goal"] == "min"
    table = runner.cli("status", "--group", str(group), "--best", "loss", "--max", cwd=project).stdout
    assert "lr" in table and "loss" in table and "0.2" in table and "BEST" in table
    worst = next(j for j in result["jobs"] if j["params"]["lr"] == "0.2")
    assert f"Best by loss (max): {worst['id']}" in table


def test_stop_a_running_job(platform: Platform, tmp_path: Path, workspace_image: str) -> None:  # noqa: F811
    user = platform.user("jobstop")
    work = write_tree(tmp_path / "sleepy", {"run.sh": b"echo started\nsleep 60\n"})
    user.cli("init", "sleepy", cwd=work)
    job = as_json(user.cli("run", "sh run.sh", "--json", cwd=work))["job"]
    deadline = time.monotonic() + 60
    while "started" not in user.cli("logs", str(job["number"]), cwd=work).stdout:
        assert time.monotonic() < deadline, "the job did not start"
        time.sleep(0.3)
    stopped = user.cli("stop", str(job["number"]), cwd=work)
    assert "jobstop/sleepy/1 stopped" in stopped.stdout
    record = as_json(user.cli("status", "1", "--json", cwd=work))
    assert record["state"] == "stopped" and record["duration"] < 55
    again = user.cli("stop", "1", cwd=work, check=False)
    assert again.returncode == 4 and "already ended" in again.stderr


def test_errors_are_one_line(runner: User, project: Path, tmp_path: Path) -> None:
    loose = tmp_path / "loose"
    loose.mkdir()
    unlinked = runner.cli("run", "python train.py", cwd=loose, check=False)
    assert unlinked.returncode == 3 and "run floyd init PROJECT first" in unlinked.stderr
    short = runner.cli("logs", "3", cwd=loose, check=False)
    assert short.returncode == 3 and "floyd init PROJECT" in short.stderr
    missing = runner.cli("status", "999", cwd=project, check=False)
    assert missing.returncode == 4 and "not found" in missing.stderr
    both = runner.cli("run", "--cpu", "--gpu", "python train.py", cwd=project, check=False)
    assert both.returncode == 2 and "--cpu or --gpu" in both.stderr
    gpus = runner.cli("run", "--gpu", "3", "python train.py", cwd=project, check=False)
    assert gpus.returncode == 4 and "GPU" in gpus.stderr
    name = runner.cli("info", "not-a-job", cwd=project, check=False)
    assert name.returncode == 3 and "Cannot read job name" in name.stderr
    for proc in (unlinked, short, missing, both, gpus, name):
        no_traceback(proc)
