"""``POST /predict`` for code that defines ``predict(payload)``: JSON in, JSON out.

Calls run in a thread pool, so a slow model does not hold up other requests (FloydHub's
serve answered one request at a time). numpy arrays and scalars, pandas objects, sets and
dates are turned into JSON; anything else unknown is a 500 that names its type.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import inspect
import json
import sys
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from floyd.container.serving.asgi import (
    Receive,
    Scope,
    Send,
    answered_non_http,
    read_body,
    send_error,
    send_response,
)

PREDICT_PATH = "/predict"


def to_jsonable(value: Any) -> Any:
    """``json.dumps(default=...)``: numpy via ``.tolist()`` / ``.item()``, pandas via ``to_dict``."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "to_dict"):
        try:
            return value.to_dict(orient="records")
        except TypeError:
            return value.to_dict()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, (datetime.date, datetime.datetime, datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"predict returned a {type(value).__name__}, which is not JSON serializable")


class PredictApp:
    """Serves one ``predict`` callable; also mounted inside a notebook's app."""

    def __init__(self, predict: Callable[[Any], Any], threads: int = 10) -> None:
        self.predict = predict
        self.is_async = inspect.iscoroutinefunction(predict)
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="predict")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if await answered_non_http(scope, receive, send):
            return
        if scope["path"] != PREDICT_PATH:
            await send_error(
                send, 404, f"No route {scope['path']}; this endpoint answers POST {PREDICT_PATH}"
            )
            return
        if scope["method"] != "POST":
            await send_error(
                send, 405, f"{PREDICT_PATH} answers POST, not {scope['method']}", headers=[("Allow", "POST")]
            )
            return
        body = await read_body(receive)
        try:
            payload = json.loads(body)
        except ValueError as exc:
            await send_error(send, 400, f"POST {PREDICT_PATH} expects a JSON body: {exc}")
            return
        try:
            if self.is_async:
                result = await self.predict(payload)
            else:
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(self.executor, partial(self.predict, payload))
            out = json.dumps(result, default=to_jsonable).encode()
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            await send_error(send, 500, f"{type(exc).__name__}: {exc}")
            return
        await send_response(send, 200, out, [("Content-Type", "application/json")])
