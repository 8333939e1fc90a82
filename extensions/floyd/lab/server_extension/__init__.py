"""The ``floyd`` Jupyter server extension: the Lab front end's door to the platform.

Enabled by ``jupyter_server_config.d/floyd.json`` (``{"ServerApp": {"jpserver_extensions":
{"floyd": true}}}``). Its handlers live under ``<base_url>/floyd/api/`` of the single-user
server, behind Jupyter's own authentication, and call the bridge with the workspace's token.
"""

from floyd.lab.server_extension.app import FloydExtensionApp

__all__ = ["FloydExtensionApp"]
