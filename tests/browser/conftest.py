"""The browser tests' fixtures (browser, page) live in tests/support/browser.py, shared with
tests/inside; this hook records each phase's report so ``page`` can screenshot a failure."""

from __future__ import annotations

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
