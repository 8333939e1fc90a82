"""The one HTTP client of the platform API.

Everything that talks to the bridge (CLI, IPython magics, widgets, the Jupyter server
extension) goes through :class:`FloydClient`.
"""

from floyd.client.config import ClientConfig, load_config, save_config
from floyd.client.errors import FloydAPIError, FloydClientError, NotLoggedIn
from floyd.client.http import FloydClient
from floyd.client.refs import DataRef, parse_data_ref

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
