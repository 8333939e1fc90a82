"""Small JSON requests over the standard library, so short commands need not import requests.

``floyd status`` is one GET; importing requests (urllib3, charset_normalizer, ssl, cookies)
takes longer than the call and everything else the command does together (30 ms of the 0.36 s an
unchanged 100,000-file tree took to re-upload). :class:`FloydClient` sends its requests of JSON
(a GET, or a small JSON body) here when nothing calls for requests' extras: a plain ``http://``
URL (the platform's default; TLS keeps requests, with its CA bundle) and no proxy in the
environment. Everything else (streams, uploads, redirects) goes through requests as before, and
the errors are the same either way (:mod:`floyd.client.errors`).
"""

from __future__ import annotations

import http.client
import json
import os
from typing import Any
from urllib.parse import urlsplit

from floyd.client.errors import ConnectionFailed, FloydAPIError

PROXY_VARIABLES = ("http_proxy", "all_proxy")


class NotQuick(Exception):
    """The answer needs requests after all (a redirect): the caller sends the request again there."""


def usable(url: str) -> bool:
    """Whether a GET of ``url`` may skip requests: plain HTTP and no proxy configured."""
    if not url.startswith("http://"):
        return False
    return not any(os.environ.get(v) or os.environ.get(v.upper()) for v in PROXY_VARIABLES)


def quick_json(method: str, url: str, headers: dict[str, str], timeout: float, platform: str,
               body: Any = None) -> Any:
    """Send ``method`` to ``url`` (with ``body`` as JSON, unless None) and decode the JSON answer
    (None for an empty one); a 4xx/5xx becomes :class:`FloydAPIError` as with requests.

    A fresh connection per call: no idle keep-alive to find closed, and safe from any thread."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    sent = {**headers, "Accept": "application/json"}
    data = None
    if body is not None:  # as requests' json= does: NaN is refused, not sent
        data = json.dumps(body, allow_nan=False).encode()
        sent["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=timeout)
    try:
        conn.request(method, target, body=data, headers=sent)
        resp = conn.getresponse()
        answer = resp.read()
    except TimeoutError as exc:
        raise ConnectionFailed(f"The platform at {platform} did not answer in time; try again.") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise ConnectionFailed(
            f"Cannot reach the platform at {platform}: is it running (make up) and is the URL right?"
        ) from exc
    finally:
        conn.close()
    if 300 <= resp.status < 400:
        raise NotQuick(resp.getheader("Location") or "")
    if resp.status >= 400:
        raise error_of(resp.status, resp.reason, answer, url)
    return json.loads(answer) if answer else None


def error_of(status: int, reason: str, body: bytes, url: str) -> FloydAPIError:
    """The bridge's ``{"status", "message"}`` body as the error, as ``http.api_error`` reads it."""
    try:
        message = json.loads(body).get("message") or reason
    except (ValueError, AttributeError):
        message = f"{status} {reason} from {url}"
    return FloydAPIError(status, message)
