"""``%floyd_run`` / ``%%floyd_run`` in an in-process IPython shell against the real platform: the
returned ``floyd.Job`` runs to the end, and its monitor widget follows it and stops by itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import floyd
from floyd.lab.widgets import JobMonitor, metrics_svg
from tests.support.lab import make_workspace
from tests.support.platform import Platform


@pytest.fixture
def shell(platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    ws = make_workspace(platform, tmp_path, "magician", "cells")
    for key in [k for k in list(__import__("os").environ) if k.startswith(("FLOYD_", "JUPYTERHUB_"))]:
        monkeypatch.delenv(key)
    for key, value in ws.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(ws.code)
    sh = InteractiveShell.instance()
    sh.run_line_magic("load_ext", "floyd")
    yield sh, ws
    InteractiveShell.clear_instance()


def test_line_and_cell_magics_run_jobs_and_the_monitor_follows(shell, workspace_image: str, capsys) -> None:
    sh, ws = shell
    job = sh.run_line_magic("floyd_run", "train.py --param lr=0.25 -m 'from a magic'")
    assert isinstance(job, floyd.Job) and job.name == f"{ws.project}/1"
    assert "queued" in capsys.readouterr().out
    assert job.wait(180) == "succeeded", job.logs()
    assert job.record["params"] == {"lr": "0.25"} and "hello from the job" in job.logs()
    assert [p["step"] for p in job.metrics()["loss"]] == [0, 1, 2]
    assert [f["path"] for f in job.output_files()] == ["result.txt"]
    assert repr(job) == f"<floyd.Job {ws.project}/1 succeeded>"

    monitor = job.monitor()
    assert isinstance(monitor, JobMonitor)
    assert monitor.join(60), "the monitor threads did not end after the job ended"
    assert "succeeded" in monitor.header.value and "done" in monitor.log_area.value
    assert "<svg" in monitor.chart.value and "loss=" in monitor.chart.value
    assert monitor.stop_button.disabled
    monitor._on_output()
    assert "result.txt" in monitor.output.value and str(ws.top / "jobs" / "1" / "output") in monitor.output.value

    cell = sh.run_cell_magic("floyd_run", "--param lr=0.5 --no-monitor",
                             "import os\nprint('cell says', os.environ['FLOYD_PARAM_LR'], flush=True)\n")
    assert cell.number == 2 and cell.wait(180) == "succeeded", cell.logs()
    assert "cell says 0.5" in cell.logs()
    assert cell.record["command"].startswith("python floyd_cell_")
    assert not list(ws.code.glob("floyd_cell_*")), "the cell's script must go into the snapshot only"


def test_monitor_stop_button_stops_a_running_job(shell, workspace_image: str) -> None:
    sh, ws = shell
    job = sh.run_line_magic("floyd_run", "slow.py --no-monitor")
    monitor = job.monitor(interval=0.5)
    for _ in range(240):
        if job.state == "running":
            break
        monitor.join(0.5)
    assert job.state == "running"
    monitor._on_stop()
    assert job.wait(60) == "stopped"
    assert monitor.join(60) and "stopped" in monitor.header.value and "sleeping" in monitor.log_area.value


def test_magic_errors_are_short(shell) -> None:
    sh, _ = shell
    with pytest.raises(UsageError, match="no such file"):
        sh.run_line_magic("floyd_run", "nope.py")
    with pytest.raises(UsageError, match="--cpu or --gpu"):
        sh.run_line_magic("floyd_run", "train.py --cpu --gpu")
    with pytest.raises(UsageError, match="refused"):
        sh.run_line_magic("floyd_run", "train.py --env nope --no-monitor")


def test_metrics_svg_copes_with_odd_series() -> None:
    assert "No metrics" in metrics_svg({})
    svg = metrics_svg({"loss": [{"step": 0, "value": 1.0}], "acc": [{"step": None, "value": 0.5},
                                                                   {"step": None, "value": float("nan")}],
                       "system/cpu": [{"step": 1, "value": 3}, {"step": 2, "value": 3}]})
    assert svg.count("<circle") == 2 and svg.count("<polyline") == 1 and "acc=0.5" in svg
