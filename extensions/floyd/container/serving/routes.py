"""The paths of a notebook's ``# VERB /path`` cells: Kernel Gateway's ``/:name`` parameters as a
regex, as OpenAPI's ``{name}``, and the order routes are tried in.

Apart from ``notebook_http`` (which serves them) and ``openapi`` (which describes them), so that
neither needs the other."""

from __future__ import annotations

import re
import sys

from floyd.container.serving.errors import NotebookError

_PARAM = re.compile(r":([^/\s]*)")


def first_path_param_index(path: str) -> int:
    """Depth of the first ``:param`` segment; constant paths sort first (Kernel Gateway's rule)."""
    if ":" not in path:
        return sys.maxsize
    return path.count("/", 0, path.find(":")) - 1


def path_regex(path: str) -> re.Pattern[str]:
    """``/people/:id`` → a regex matched against the raw (still %-encoded) request path."""
    parts: list[str] = []
    pos = 0
    for match in _PARAM.finditer(path):
        name = match.group(1)
        if not name.isidentifier():
            raise NotebookError(
                f"path parameter ':{name}' in '{path}' must be a Python identifier, e.g. ':item_id'"
            )
        parts.append(re.escape(path[pos : match.start()]))
        parts.append(f"(?P<{name}>[^/]+)")
        pos = match.end()
    parts.append(re.escape(path[pos:]))
    return re.compile("".join(parts) + r"\Z")


def openapi_path(path: str) -> str:
    """``/people/:id`` → ``/people/{id}``."""
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", path)


def path_params(path: str) -> list[str]:
    return _PARAM.findall(path)
