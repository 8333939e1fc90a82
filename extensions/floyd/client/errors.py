"""Client errors. Each carries a message a person can act on.

::

    FloydClientError            anything the client reports to a person
     ├── NotLoggedIn            no URL or token configured
     ├── ConnectionFailed       the platform did not answer
     └── FloydAPIError          the bridge answered with a 4xx/5xx ({"status", "message"})
"""

from __future__ import annotations


class FloydClientError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotLoggedIn(FloydClientError):
    pass


class ConnectionFailed(FloydClientError):
    pass


class FloydAPIError(FloydClientError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
