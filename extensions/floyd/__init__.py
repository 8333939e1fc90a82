"""The Floyd client: one HTTP client (``floyd.client``) behind the CLI, magics, widgets
and server extension, so every entry point talks to the platform the same way."""

__version__ = "0.1.0"

from floyd.metrics import log_metric

__all__ = ["__version__", "log_metric"]
