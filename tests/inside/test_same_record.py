"""One job, four ways in: the Lab's Run button (the server extension), the ``%floyd_run`` magic,
``floyd run`` in a workspace terminal and ``floyd run`` on a laptop after ``floyd login``. All four
must leave the same reproducibility record: same snapshot, image, environment, params, resources,
inputs, packages, project and author, and the same command."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

from tests.support.jobs import wait_state
from tests.support.lab import JupyterServer, Workspace
from tests.support.platform import Platform, as_json

SAME = ("snapshot", "image_id", "environment", "params", "resources", "inputs", "package_count", "project",
        "created_by")


def test_button_magic_terminal_and_laptop_leave_the_same_record(
        jupyter_server: tuple[JupyterServer, Workspace], platform: Platform, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, workspace_image: str) -> None:
    server, ws = jupyter_server
    user = ws.user
    # The terminal's `floyd init` goes first: it writes .floydexpt/.floydignore/floyd.yml into the
    # code directory, and every way in must snapshot the same files.
    terminal_env = {"FLOYD_URL": platform.url, "JUPYTERHUB_API_TOKEN": user.token,
                    "FLOYD_CONFIG_DIR": str(tmp_path / "terminal-config")}
    platform.cli(None, "init", ws.project, cwd=ws.code, env=terminal_env)
    laptop_code = tmp_path / "laptop" / "code"
    shutil.copytree(ws.code, laptop_code)
    ids: dict[str, str] = {}

    # (1) The button: the Lab posts the open file's path (relative to the server root).
    r = server.api("POST", "floyd/api/run", json={"path": "code/train.py", "params": {"lr": "0.1"}})
    assert r.status_code == 201, r.text
    ids["button"] = r.json()["job"]["id"]

    # (2) The magic, in an in-process shell with the workspace's variables.
    for key in [k for k in os.environ if k.startswith(("FLOYD_", "JUPYTERHUB_"))]:
        monkeypatch.delenv(key)
    for key, value in ws.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(ws.code)
    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "floyd")
        job = shell.run_line_magic("floyd_run", "train.py --param lr=0.1 --no-monitor")
        ids["magic"] = job.name
    finally:
        InteractiveShell.clear_instance()
    monkeypatch.undo()

    # (3) A workspace terminal: the workspace token, no login.
    terminal = platform.cli(None, "run", "python train.py", "--param", "lr=0.1", "--json", cwd=ws.code,
                            env=terminal_env)
    ids["terminal"] = as_json(terminal)["job"]["id"]

    # (4) A laptop: `floyd login --token` into its own config, then run from a copy of the code.
    laptop_env = {"FLOYD_CONFIG_DIR": str(tmp_path / "laptop" / "config"),
                  "FLOYD_CACHE_DIR": str(tmp_path / "laptop" / "cache")}
    platform.cli(None, "login", platform.url, "--token", user.token, env=laptop_env)
    laptop = platform.cli(None, "run", "python train.py", "--param", "lr=0.1", "--json", cwd=laptop_code,
                          env=laptop_env)
    ids["laptop"] = as_json(laptop)["job"]["id"]

    assert len(set(ids.values())) == 4, ids
    records = {way: wait_state(user, job_id, {"succeeded", "failed", "lost", "stopped"}, timeout=240)
               for way, job_id in ids.items()}
    for way, record in records.items():
        assert record["state"] == "succeeded", (way, record)

    button = records["button"]
    assert button["snapshot"].startswith("sha256:") and button["params"] == {"lr": "0.1"}
    for way, record in records.items():
        for key in SAME:
            assert key in record, (way, key, sorted(record))
        assert {k: record[k] for k in SAME} == {k: button[k] for k in SAME}, way
        # The button posts code/train.py (relative to the Lab's root); it runs as the CLI's command.
        assert record["command"] == "python train.py", (way, record["command"])
