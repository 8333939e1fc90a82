"""Fixtures of the runtime tests: a copy of the fixture notebooks, and each runtime's log on failure
(the processes themselves: tests/support/runtime.py)."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from tests.support.runtime import NOTEBOOKS, RuntimeProcess


@pytest.fixture(scope="module")
def notebooks_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the fixture notebooks, so runtime logs never land in the source tree."""
    target = tmp_path_factory.mktemp("notebooks")
    for nb in NOTEBOOKS.glob("*.ipynb"):
        (target / nb.name).write_bytes(nb.read_bytes())
    return target


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and hasattr(item, "funcargs"):
        for name, value in item.funcargs.items():
            if isinstance(value, RuntimeProcess):
                report.sections.append((f"{name} runtime log", value.log()[-6000:]))
