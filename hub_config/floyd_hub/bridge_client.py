"""The hub side's only way to the bridge: its REST API, with the spawner's own service token.

The hub process never opens the bridge's database, store or GPU allocator.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest


class BridgeError(Exception):
    """The bridge refused (4xx) or failed; ``message`` is fit to show the user."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BridgeClient:
    def __init__(self, api_url: str, token: str, timeout: float = 60) -> None:
        self.api_url = api_url.rstrip("/") + "/"
        self.token = token
        self.timeout = timeout

    async def call(self, method: str, path: str, body: dict | None = None, **params: Any) -> Any:
        url = self.api_url + path
        if params:
            url += "?" + urlencode({k: v for k, v in params.items() if v is not None})
        request = HTTPRequest(
            url, method=method, headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
            body=json.dumps(body) if body is not None else None, request_timeout=self.timeout,
        )
        try:
            resp = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as exc:
            message = f"The Floyd service answered {exc.code}."
            if exc.response is not None and exc.response.body:
                try:
                    message = json.loads(exc.response.body)["message"]
                except (ValueError, KeyError):
                    pass
            raise BridgeError(exc.code, message) from None
        except OSError as exc:
            raise BridgeError(503, f"The Floyd service is not reachable ({exc}); try again in a moment.") from None
        return json.loads(resp.body) if resp.body else None
