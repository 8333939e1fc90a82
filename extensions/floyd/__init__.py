"""The Floyd client: one HTTP client (``floyd.client``) behind the CLI, magics, widgets
and server extension, so every entry point talks to the platform the same way."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from floyd.metrics import log_metric

__all__ = ["Job", "__version__", "log_metric"]


def __getattr__(name: str) -> Any:
    """``floyd.Job`` is imported on first use, so ``import floyd`` in a job stays light."""
    if name == "Job":
        from floyd.job import Job

        return Job
    raise AttributeError(f"module 'floyd' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext floyd``: the ``%floyd_run`` / ``%%floyd_run`` magics."""
    from floyd.magics import load_ipython_extension as load

    load(ipython)


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """The ``floyd`` Jupyter server extension (handlers under ``/floyd/api/``)."""
    from floyd.server_extension import FloydExtensionApp

    return [{"module": "floyd.server_extension", "app": FloydExtensionApp}]
