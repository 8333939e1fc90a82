"""The magic's options, the cell-to-script logic and the server extension's request checks (no platform)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from floyd.client.errors import FloydClientError
from floyd.client.request import JobOptions, build_job_request
from floyd.lab.job import parse_job_name
from floyd.lab.magics import MagicUsageError, parse_options, prepare_cell, prepare_line
from floyd.lab.records import elapsed
from floyd.lab.server_extension.app import run_request
from floyd.lab.targets import cell_script
from floyd.lab.workspace import assignments, mounted_datasets, notebook_parameters


def spec(what: dict, options: JobOptions, project: str = "a/p", root: Path | None = None) -> dict:
    """The job request's body without the project (the snapshot is not uploaded here)."""
    body = build_job_request(project, what, options, root).to_body()
    assert body.pop("project") == project
    return body


@pytest.fixture
def code(tmp_path: Path) -> Path:
    root = tmp_path / "code"
    (root / "sub").mkdir(parents=True)
    (root / "train.py").write_text("print('hi')\n")
    (root / "sub" / "eval.py").write_text("print('eval')\n")
    (root / "nb.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return root


def test_line_options_become_the_job_request(code: Path) -> None:
    run = prepare_line("train.py --gpu 1 --data mnist:3:mnist --data 12/output --param lr=0.01 --param n=3 "
                       "--env cuda --max-runtime 600 -m 'first try'", cwd=code, root=code)
    assert spec(run.what, run.options, "alice/p") == {
        "command": "python train.py", "environment": "cuda", "gpus": 1, "max_runtime": 600, "message": "first try",
        "inputs": [{"source": "mnist:3", "mount": "mnist"}, {"source": "alice/p/12/output"}],
        "params": {"lr": "0.01", "n": "3"},
    }


def test_gpu_alone_is_one_cpu_is_zero_and_script_args_follow_dashes(code: Path) -> None:
    assert prepare_line("train.py --gpu", cwd=code, root=code).options.gpus == 1
    run = prepare_line("train.py --cpu", cwd=code, root=code)
    assert spec(run.what, run.options) == {"command": "python train.py", "gpus": 0}
    req = prepare_line("train.py -- --epochs 3 'two words'", cwd=code, root=code)
    assert req.what == {"command": "python train.py --epochs 3 'two words'"}


def test_paths_are_taken_from_the_notebooks_directory_and_run_there(code: Path) -> None:
    assert prepare_line("eval.py", cwd=code / "sub", root=code).what == {"command": "cd sub && python eval.py"}
    assert prepare_line("sub/eval.py", cwd=code, root=code).what == {"command": "cd sub && python eval.py"}
    run = prepare_line("nb.ipynb --param lr=1", cwd=code, root=code)
    assert spec(run.what, run.options) == {"notebook": "nb.ipynb", "params": {"lr": "1"}}


@pytest.mark.parametrize("line, message", [
    ("", "the following arguments are required: target"),
    ("train.py --gpu x", "invalid int value"),
    ("train.py --cpu --gpu 2", "--cpu or --gpu, not both"),
    ("train.py --param lr", "--param: cannot read 'lr'"),
    ("train.py --bogus", "unrecognized arguments: --bogus"),
    ("train.py --max-runtime -5", "--max-runtime"),
    ("train.py --memory lots", "--memory must be a size"),
    ("'unclosed", "Cannot read the options"),
    ("missing.py", "missing.py: no such file"),
    ("notes.txt", "no such file"),
    ("nb.ipynb -- --x", "A notebook takes no arguments"),
    ("../outside.py", "outside the code directory"),
])
def test_bad_options_are_one_line_errors(code: Path, line: str, message: str) -> None:
    (code.parent / "outside.py").write_text("")
    with pytest.raises(FloydClientError) as info:
        prepare_line(line, cwd=code, root=code)
    assert message in info.value.message
    assert "Traceback" not in info.value.message


def test_help_is_a_message_not_an_exit() -> None:
    with pytest.raises(MagicUsageError) as info:
        parse_options("-h")
    assert "--max-runtime" in info.value.message and "--param" in info.value.message


def test_cell_becomes_a_hashed_script_in_the_snapshot() -> None:
    run = prepare_cell("--param lr=0.1 -m cell", "import os\nprint(os.environ['FLOYD_PARAM_LR'])\n")
    [(name, data)] = run.extra.items()
    assert name.startswith("floyd_cell_") and name.endswith(".py") and len(name) == len("floyd_cell_") + 12 + 3
    assert run.what == {"command": f"python {name}"}
    assert data.decode().endswith("import os\nprint(os.environ['FLOYD_PARAM_LR'])\n")
    assert spec(run.what, run.options)["params"] == {"lr": "0.1"} and run.options.message == "cell"
    # Same code, same name (the snapshot dedupes it); different code, different name.
    assert cell_script("print(1)")[0] == cell_script("print(1)\n\n")[0] != cell_script("print(2)")[0]


def test_cell_with_ipython_syntax_runs_with_ipython_and_bad_cells_are_refused() -> None:
    name, data, command = cell_script("!echo hi\nx = 1\n")
    assert name.endswith(".ipy") and command == f"ipython --quick --no-banner {name}"
    with pytest.raises(FloydClientError, match="syntax error"):
        cell_script("def f(:\n")
    with pytest.raises(FloydClientError, match="empty"):
        cell_script("\n\n")
    with pytest.raises(MagicUsageError, match="no script arguments"):
        prepare_cell("-- --x", "print(1)")


def test_job_names_and_elapsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOYD_PROJECT", "alice/p")
    assert parse_job_name(3) == ("alice", "p", 3)
    assert parse_job_name("q/4") == ("alice", "q", 4)
    assert parse_job_name("bob/r/5/output") == ("bob", "r", 5)
    with pytest.raises(FloydClientError):
        parse_job_name("x")
    assert elapsed({"state": "succeeded", "duration": 2.5}) == 2.5
    assert elapsed({"state": "queued"}) is None
    assert elapsed({"state": "running", "started_at": "2026-01-01T00:00:00Z"}, now=1767225610.0) == 10.0


def test_server_run_request_checks(code: Path) -> None:
    server_root = code.parent
    what, options = run_request({"path": "code/train.py", "gpus": 0, "datasets": ["mnist:2"], "params": {"lr": 0.5},
                                 "max_runtime": 60, "message": "m", "environment": "cpu"}, server_root, code)
    assert spec(what, options) == {"command": "python train.py", "gpus": 0, "environment": "cpu", "max_runtime": 60,
                                   "message": "m", "inputs": [{"source": "mnist:2"}], "params": {"lr": "0.5"}}
    assert run_request({"path": "train.py"}, server_root, code)[0] == {"command": "python train.py"}
    for body, message in [({}, "Say what to run"), ({"path": "train.py", "gpus": -1}, "'gpus'"),
                          ({"path": "train.py", "colour": 1}, "Unknown field"),
                          ({"path": "train.py", "max_runtime": "x"}, "max_runtime"),
                          ({"path": "nope.py"}, "no such file")]:
        with pytest.raises(FloydClientError, match=message):
            run_request(body, server_root, code)


def test_notebook_parameters_and_mounted_datasets(tmp_path: Path) -> None:
    nb = tmp_path / "p.ipynb"
    nb.write_text(json.dumps({"cells": [
        {"cell_type": "code", "metadata": {}, "source": "x = 1"},
        {"cell_type": "code", "metadata": {"tags": ["parameters"]},
         "source": ["lr = 0.01\n", "epochs: int = 3\n", "name = 'a'\n", "f = len('ab')\n"]},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert notebook_parameters(nb) == {"lr": 0.01, "epochs": 3, "name": "a", "f": "len('ab')"}
    assert assignments("not python(") == {}
    store = tmp_path / "var" / "datasets" / "alice" / "mnist" / "3"
    store.mkdir(parents=True)
    inputs = tmp_path / "input"
    inputs.mkdir()
    (inputs / "mnist").symlink_to(store)
    (inputs / "other").mkdir()
    found = mounted_datasets(inputs)
    assert [(d["mount"], d["ref"]) for d in found] == [("mnist", "alice/mnist:3"), ("other", None)]


def test_every_front_end_gets_floyd_yml_defaults_the_same_way(code: Path) -> None:
    """The magic's options, the Lab's body and Job.run's arguments all go through build_job_request:
    floyd.yml of the code directory fills in what they leave out, their values win, params merge."""
    (code / "floyd.yml").write_text("env: cpu\nmax_runtime: 900\nparams: {lr: 0.5, epochs: 2}\n"
                                    "input: [12/output:prev]\ndescription: from floyd.yml\n")
    run = prepare_line("train.py --param lr=0.1", cwd=code, root=code)
    what, options = run_request({"path": "code/train.py", "params": {"lr": "0.1"}}, code.parent, code)
    job_run = JobOptions(params={"lr": "0.1"})
    expected = {"command": "python train.py", "environment": "cpu", "max_runtime": 900, "message": "from floyd.yml",
                "params": {"lr": "0.1", "epochs": "2"}, "inputs": [{"source": "a/p/12/output", "mount": "prev"}]}
    assert spec(run.what, run.options, root=code) == expected
    assert spec(what, options, root=code) == expected
    assert spec({"command": "python train.py"}, job_run, root=code) == expected
    with pytest.raises(FloydClientError, match="What should the job run"):
        spec({}, JobOptions(), root=code)
