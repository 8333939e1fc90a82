"""The client's version, apart from the package's ``__init__`` so that ``floyd.client.http``
(its User-Agent) and ``floyd.cli.main`` (``--version``) need not import the package itself."""

__version__ = "0.1.0"
