"""uvicorn, configured for life behind the bridge's proxy."""

from __future__ import annotations

import uvicorn

from floyd.container.serving.asgi import ASGIApp

# The bridge keeps pooled connections open between requests; uvicorn's default of 5 s would
# close them under it and cost a reconnect (or a failed request on a race) per idle gap.
KEEP_ALIVE_S = 75


def serve(app: ASGIApp, host: str, port: int, log_level: str = "info") -> bool:
    """Serve until SIGTERM/SIGINT; uvicorn then stops accepting and lets in-flight requests
    finish, which is what the bridge's drain-then-stop rolling deploy relies on.

    Returns False when the server never started (port taken, lifespan start-up failed).
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,  # the bridge measures requests; one line each here would be noise
        timeout_keep_alive=KEEP_ALIVE_S,
        lifespan="auto",
        log_level=log_level,
    )
    server = uvicorn.Server(config)
    server.run()
    return server.started
