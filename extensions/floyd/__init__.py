"""The ``floyd`` package, in parts named after where they run.

``floyd.client`` (HTTP client, job request, code uploader, floyd.yml) is shared by
``floyd.cli`` (a laptop or a terminal) and ``floyd.lab`` (JupyterLab: server extension, magics,
widgets, ``floyd.Job``); ``floyd.container`` runs inside jobs and endpoint replicas. The top level
keeps the public names: ``floyd.Job``, ``floyd.log_metric``, ``%load_ext floyd`` and the Jupyter
server extension's entry point."""

from __future__ import annotations

from typing import Any

from floyd._version import __version__
from floyd.container.metrics import log_metric

__all__ = ["Job", "__version__", "log_metric"]


def __getattr__(name: str) -> Any:
    """``floyd.Job`` is imported on first use, so ``import floyd`` in a job stays light."""
    if name == "Job":
        from floyd.lab.job import Job

        return Job
    raise AttributeError(f"module 'floyd' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext floyd``: the ``%floyd_run`` / ``%%floyd_run`` magics."""
    from floyd.lab.magics import load_ipython_extension as load

    load(ipython)


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """The ``floyd`` Jupyter server extension (handlers under ``/floyd/api/``)."""
    from floyd.lab.server_extension import FloydExtensionApp

    return [{"module": "floyd.lab.server_extension", "app": FloydExtensionApp}]
