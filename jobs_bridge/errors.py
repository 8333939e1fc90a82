"""One exception tree for the bridge, so every failure reaches the client the same way.

::

    FloydError (status, message shown to the user, log_message for the log only)
     ├── BadRequest        400  malformed input: names, paths, manifests, JSON
     ├── Unauthorized      401  no or invalid credentials
     ├── Forbidden         403  you can see it, but may not change it
     ├── NotFound          404  unknown, or private to someone else (never revealed)
     ├── Conflict          409  state does not allow it (version exists, offset mismatch)
     ├── TooLarge          413  quota or size limit exceeded
     ├── Unprocessable     422  well-formed but impossible
     ├── TooManyRequests   429  a rate or concurrency limit; retry_after seconds go in Retry-After
     └── Unavailable       503  something the bridge depends on (JupyterHub) did not answer
"""

from __future__ import annotations


class FloydError(Exception):
    status: int = 500

    def __init__(self, message: str, *, log_message: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.log_message = log_message or message


class BadRequest(FloydError):
    status = 400


class Unauthorized(FloydError):
    status = 401


class Forbidden(FloydError):
    status = 403


class NotFound(FloydError):
    status = 404


class Conflict(FloydError):
    status = 409


class TooLarge(FloydError):
    status = 413


class Unprocessable(FloydError):
    status = 422


class TooManyRequests(FloydError):
    status = 429

    def __init__(self, message: str, retry_after: int, *, log_message: str | None = None) -> None:
        super().__init__(message, log_message=log_message)
        self.retry_after = retry_after


class Unavailable(FloydError):
    status = 503
