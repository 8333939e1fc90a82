"""floyd.container.notebook_runner on real notebooks and a real ipykernel (no platform): parameters land after
the `parameters` cell, output reaches the log while the notebook runs, and failures, stops and bad
input give the documented exit codes with the executed notebook saved."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from floyd.container.notebook_runner import coerce_value, inject_parameters, main, parse_params, to_source

RUN_TIMEOUT = 120  # seconds; a kernel starts in about one


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "output").mkdir()
    return tmp_path


def runner(*args: str) -> list[str]:
    return [sys.executable, "-m", "floyd.container.notebook_runner", *args]


def env_for(workdir: Path) -> dict[str, str]:
    return {**os.environ, "FLOYD_OUTPUT": str(workdir / "output")}


def run(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        runner(*args), cwd=workdir, env=env_for(workdir), capture_output=True, text=True, timeout=RUN_TIMEOUT
    )


def write(workdir: Path, name: str, *cells: Any) -> Path:
    path = workdir / name
    nbformat.write(new_notebook(cells=list(cells)), str(path))
    return path


def tagged(source: str, tag: str) -> Any:
    return new_code_cell(source, metadata={"tags": [tag]})


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    """Runners started with start(); any still alive at the end of the test are killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()


def start(workdir: Path, procs: list[subprocess.Popen[str]], *args: str) -> subprocess.Popen[str]:
    """A runner read line by line; a watchdog kills it after RUN_TIMEOUT so a broken one can't hang."""
    p = subprocess.Popen(
        runner(*args),
        cwd=workdir,
        env=env_for(workdir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    procs.append(p)
    watchdog = threading.Timer(RUN_TIMEOUT, p.kill)
    watchdog.daemon = True
    watchdog.start()
    return p


def read_until(p: subprocess.Popen[str], wanted: str) -> list[str]:
    assert p.stdout is not None
    seen = []
    for line in p.stdout:
        seen.append(line.rstrip("\n"))
        if wanted in line:
            return seen
    raise AssertionError(f"{wanted!r} never appeared; stdout was {seen}")


# --- pure pieces ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("0.01", 0.01),
        ("3", 3),
        ("true", True),
        ("null", None),
        ("[1, 2]", [1, 2]),
        ('{"a": 1}', {"a": 1}),
        ("(1, 2)", (1, 2)),
        ("'007'", "007"),
        ('"1"', "1"),
        ("x", "x"),
        ("adam w", "adam w"),
        ("007", "007"),
        (0.5, 0.5),
        ([1], [1]),
    ],
)
def test_coerce_value(raw: Any, expected: Any) -> None:
    got = coerce_value(raw)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("value", [0.01, "it's", [1, {"a": None}], (1,), (), float("inf"), [float("-inf")]])
def test_to_source_round_trips(value: Any) -> None:
    scope: dict[str, Any] = {}
    exec(f"v = {to_source(value)}", scope)
    assert scope["v"] == value


def test_to_source_nan() -> None:
    scope: dict[str, Any] = {}
    exec(f"v = {to_source(float('nan'))}", scope)
    assert math.isnan(scope["v"])


def test_reinjection_replaces_the_old_cell() -> None:
    nb = new_notebook(cells=[tagged("lr = 0.1", "parameters"), new_code_cell("print(lr)")])
    inject_parameters(nb, parse_params('{"lr": 0.2}'))
    assert inject_parameters(nb, parse_params('{"lr": "0.3"}')) == 0
    assert [c.source for c in nb.cells] == ["lr = 0.1", "# Parameters\nlr = 0.3\n", "print(lr)"]


# --- the runner as a job runs it -----------------------------------------------------------------


def test_parameters_injected_and_output_streams_live(
    workdir: Path, procs: list[subprocess.Popen[str]]
) -> None:
    """The metric line must reach stdout while the notebook is still running (the next cell waits
    for a file the test creates only after it has read the line)."""
    write(
        workdir,
        "train.ipynb",
        new_markdown_cell("# Train"),
        tagged("lr = 0.1\nlayers = 1", "parameters"),
        new_code_cell('import json\nprint(json.dumps({"metric": "lr", "value": lr}), flush=True)'),
        new_code_cell(
            "import os, time\nwhile not os.path.exists('go'):\n    time.sleep(0.05)\n"
            "print('layers', layers, type(layers).__name__)"
        ),
    )
    p = start(workdir, procs, "train.ipynb", "--params-json", '{"lr": "0.01", "layers": 3}')
    seen = read_until(p, '"metric"')
    assert json.loads(seen[-1]) == {"metric": "lr", "value": 0.01}
    assert p.poll() is None, "the metric line only appeared after the notebook had finished"
    assert "[floyd] cell 4/5 (execution_count 3)" in seen
    (workdir / "go").touch()
    out, err = p.communicate(timeout=RUN_TIMEOUT)
    assert p.returncode == 0, err
    output = workdir / "output" / "train.ipynb"
    assert "layers 3 int" in out
    assert f"[floyd] notebook finished: {output}" in out

    nb = nbformat.read(str(output), as_version=4)
    assert nb.cells[1].metadata.tags == ["parameters"]
    injected = nb.cells[2]
    assert injected.metadata.tags == ["injected-parameters"]
    assert "lr = 0.01\n" in injected.source and "layers = 3\n" in injected.source
    assert nb.cells[3].outputs[0]["text"] == '{"metric": "lr", "value": 0.01}\n'
    assert nbformat.read(str(workdir / "train.ipynb"), as_version=4).cells[2].source.startswith("import json")


def test_failing_cell_exits_1_and_saves_the_partial_notebook(workdir: Path) -> None:
    write(
        workdir,
        "bad.ipynb",
        new_code_cell("print('before')"),
        new_markdown_cell("text"),
        new_code_cell("x = 1/0  # boom"),
        new_code_cell("print('never')"),
    )
    out_path = workdir / "elsewhere" / "bad-run.ipynb"
    r = run(workdir, "bad.ipynb", "--output", str(out_path))
    assert r.returncode == 1, r.stderr
    assert "[floyd] cell 3 failed: ZeroDivisionError: division by zero" in r.stderr
    assert "x = 1/0  # boom" in r.stderr
    assert "Traceback (most recent call last)" in r.stderr and "\x1b[" not in r.stderr
    assert "before" in r.stdout and "never" not in r.stdout

    nb = nbformat.read(str(out_path), as_version=4)
    assert nb.cells[0].outputs[0]["text"] == "before\n"
    assert nb.cells[2].outputs[-1]["output_type"] == "error"
    assert nb.cells[2].outputs[-1]["ename"] == "ZeroDivisionError"
    assert nb.cells[3].outputs == []


def test_no_parameters_cell_injects_on_top_with_a_warning(workdir: Path) -> None:
    write(workdir, "plain.ipynb", new_code_cell("print('name is', name)"))
    r = run(workdir, "plain.ipynb", "--params-json", '{"name": "x"}')
    assert r.returncode == 0, r.stderr
    assert "name is x" in r.stdout
    assert "no cell is tagged 'parameters'" in r.stderr
    nb = nbformat.read(str(workdir / "output" / "plain.ipynb"), as_version=4)
    assert nb.cells[0].metadata.tags == ["injected-parameters"]
    assert nb.cells[0].source == "# Parameters\nname = 'x'\n"


def test_bad_parameter_name_exits_2(workdir: Path) -> None:
    write(workdir, "nb.ipynb", tagged("lr = 0.1", "parameters"))
    r = run(workdir, "nb.ipynb", "--params-json", '{"learning-rate": 0.1}')
    assert r.returncode == 2
    assert r.stderr.startswith("[floyd] error: parameter name 'learning-rate'"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and r.stdout == ""
    assert not (workdir / "output" / "nb.ipynb").exists()


def test_missing_notebook_exits_2_with_one_line(workdir: Path) -> None:
    r = run(workdir, "gone.ipynb")
    assert r.returncode == 2
    assert r.stderr.startswith("[floyd] error: notebook not found: gone.ipynb"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert r.stdout == ""


# The other refusals, in-process (each subprocess costs seconds of imports); main() stops before
# any kernel starts.


@pytest.mark.parametrize("params", ['{"1lr": 1}', '{"class": 1}', '{"a b": 1}', '{"lr": 1', "[1]"])
def test_other_bad_parameters_exit_2(
    workdir: Path, params: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write(workdir, "nb.ipynb", tagged("lr = 0.1", "parameters"))
    monkeypatch.chdir(workdir)
    assert main(["nb.ipynb", "--params-json", params, "--output", "out.ipynb"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("[floyd] error:") and len(err.strip().splitlines()) == 1, err
    assert not (workdir / "out.ipynb").exists()


@pytest.mark.parametrize("content", ["{not json", "{}", '{"nbformat": 9}', "directory"])
def test_invalid_notebook_exits_2_with_one_line(
    workdir: Path, content: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if content == "directory":
        (workdir / "bad.ipynb").mkdir()
    else:
        (workdir / "bad.ipynb").write_text(content)
    monkeypatch.chdir(workdir)
    assert main(["bad.ipynb"]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("[floyd] error: bad.ipynb") and len(err.strip().splitlines()) == 1, err
    assert out == ""


def test_sigterm_saves_what_ran_and_exits_143(workdir: Path, procs: list[subprocess.Popen[str]]) -> None:
    write(
        workdir,
        "long.ipynb",
        new_code_cell("print('ready', flush=True)"),
        new_code_cell("import time\ntime.sleep(300)"),
        new_code_cell("print('never')"),
    )
    p = start(workdir, procs, "long.ipynb")
    read_until(p, "ready")
    read_until(p, "[floyd] cell 2/3")
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=RUN_TIMEOUT)
    assert p.returncode == 143, err
    assert "stopped by SIGTERM" in err
    nb = nbformat.read(str(workdir / "output" / "long.ipynb"), as_version=4)
    assert nb.cells[0].outputs[0]["text"] == "ready\n"
    assert nb.cells[1].outputs[-1]["ename"] == "JobStopped"
    assert nb.cells[2].outputs == []
