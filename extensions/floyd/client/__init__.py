"""The one HTTP client of the platform API.

Everything that talks to the bridge (CLI, IPython magics, widgets, the Jupyter server
extension) goes through :class:`FloydClient`.

The names below are imported on first use: ``from floyd.client.errors import …`` (which runs
this file first) must not import requests, or every ``floyd`` command would pay for it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from floyd.client.config import ClientConfig, load_config, save_config
    from floyd.client.errors import FloydAPIError, FloydClientError, NotLoggedIn
    from floyd.client.http import FloydClient
    from floyd.client.refs import DataRef, parse_data_ref

_WHERE = {
    "ClientConfig": "config", "load_config": "config", "save_config": "config",
    "FloydAPIError": "errors", "FloydClientError": "errors", "NotLoggedIn": "errors",
    "FloydClient": "http", "DataRef": "refs", "parse_data_ref": "refs",
}

__all__ = [
    "ClientConfig",
    "DataRef",
    "FloydAPIError",
    "FloydClient",
    "FloydClientError",
    "NotLoggedIn",
    "load_config",
    "parse_data_ref",
    "save_config",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"floyd.client.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'floyd.client' has no attribute {name!r}")
