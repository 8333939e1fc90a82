"""Real ``python -m floyd.serving`` processes on free 127.0.0.1 ports, talked to over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

NOTEBOOKS = Path(__file__).parent / "notebooks"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RuntimeProcess:
    """One endpoint replica, started the way the bridge starts it."""

    def __init__(self, cwd: Path, entry: str, *extra: str) -> None:
        self.cwd = cwd
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = cwd / f".runtime-{self.port}.log"
        self._log = open(self.log_path, "wb")  # a file, not a pipe: a chatty app cannot block on it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "floyd.serving", "--entry", entry, "--port", str(self.port), *extra],
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"runtime exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/_floyd/ready", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"runtime not ready after {timeout}s:\n{self.log()}")

    def wait_exit(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout)

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def start(cwd: Path, entry: str, *extra: str) -> Iterator[RuntimeProcess]:
    """Fixture body: start, wait for readiness, yield, stop."""
    runtime = RuntimeProcess(cwd, entry, *extra)
    try:
        runtime.wait_ready()
        yield runtime
    finally:
        runtime.terminate()


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def notebooks_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the fixture notebooks, so runtime logs never land in the source tree."""
    target = tmp_path_factory.mktemp("notebooks")
    for nb in NOTEBOOKS.glob("*.ipynb"):
        (target / nb.name).write_bytes(nb.read_bytes())
    return target


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and hasattr(item, "funcargs"):
        for name, value in item.funcargs.items():
            if isinstance(value, RuntimeProcess):
                report.sections.append((f"{name} runtime log", value.log()[-6000:]))


def write_notebook(directory: Path, name: str, cells: list[str]) -> Path:
    """A minimal nbformat 4 notebook of code cells (without importing nbformat: 1.5 s)."""
    import json

    nb = {
        "cells": [
            {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}
            for source in cells
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = directory / name
    path.write_text(json.dumps(nb))
    return path
