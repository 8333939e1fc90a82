"""Real ``python -m floyd.container.serving`` processes on free 127.0.0.1 ports, talked to over HTTP.

Used by tests/serving_runtime (its conftest.py holds the ``notebooks_dir`` fixture and the log hook)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from tests.support.platform import free_port

# The fixture notebooks stay beside the tests that serve them.
NOTEBOOKS = Path(__file__).resolve().parents[1] / "serving_runtime" / "notebooks"


class RuntimeProcess:
    """One endpoint replica, started the way the bridge starts it."""

    def __init__(self, cwd: Path, entry: str, *extra: str) -> None:
        self.cwd = cwd
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = cwd / f".runtime-{self.port}.log"
        self._log = open(self.log_path, "wb")  # a file, not a pipe: a chatty app cannot block on it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "floyd.container.serving", "--entry", entry, "--port", str(self.port), *extra],
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30, headers: dict[str, str] | None = None) -> None:
        """Until ``/_floyd/ready`` answers 200 (send the proxy token in ``headers`` where it is set)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"runtime exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/_floyd/ready", headers=headers, timeout=1).status_code == 200:
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


def write_notebook(directory: Path, name: str, cells: list[str]) -> Path:
    """A minimal nbformat 4 notebook of code cells (without importing nbformat: 1.5 s)."""
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
