"""Schemathesis hooks for the fuzz runs (loaded by the schemathesis CLI through SCHEMATHESIS_HOOKS).

- ``application/x-tar`` bodies (``POST …/uploads/{id}/pack``): schemathesis has no serializer for
  them, and without one the operation would not be fuzzed at all. Generated bodies go out as bytes.
- Every response is counted by status into the file named by ``FLOYD_FUZZ_COUNTS``, so the
  summary can say how many requests a run made (schemathesis's report counts test cases).
"""

from __future__ import annotations

import atexit
import json
import os
from collections import Counter
from typing import Any

import schemathesis

COUNTS: Counter[str] = Counter()


@schemathesis.serializer("application/x-tar")
def tar_body(ctx: Any, value: Any) -> dict[str, Any]:
    """A generated tar body as bytes: any value the schema allows, sent as it is."""
    if isinstance(value, bytes):
        return {"data": value}
    return {"data": (value if isinstance(value, str) else json.dumps(value)).encode("utf-8", "surrogatepass")}


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    COUNTS[str(response.status_code)] += 1


@atexit.register
def _write_counts() -> None:
    path = os.environ.get("FLOYD_FUZZ_COUNTS")
    if path:
        with open(path, "w") as f:
            json.dump(dict(COUNTS), f)
