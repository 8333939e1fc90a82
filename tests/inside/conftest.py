"""Fixtures of the tests of code that runs inside a workspace (defined in tests/support/lab.py)."""

from __future__ import annotations

from tests.support.lab import jupyter_server  # noqa: F401  (a real Jupyter server with the floyd extension)
