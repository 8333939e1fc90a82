"""The Floyd bridge: the platform service JupyterHub runs as service ``floyd``.

It owns the database, the content-addressed store, datasets and projects, and serves
the REST API under ``/services/floyd/api/v1/`` and the web pages under ``/services/floyd/``.
"""

__version__ = "0.1.0"
