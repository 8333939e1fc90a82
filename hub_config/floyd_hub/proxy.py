"""How JupyterHub starts configurable-http-proxy: behind proxy_guard.mjs when CHP is the Node one.

CHP answers 500 to any path with an invalid percent escape (``URIError: URI malformed``, no
option or release changes that); the guard, preloaded with ``node --import``, answers 400.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

GUARD = Path(__file__).with_name("proxy_guard.mjs")
MAX_HEADER_BYTES = 65536  # as Tornado's default (the bridge behind it)


def find_proxy() -> str:
    found = shutil.which("configurable-http-proxy")
    if found:
        return found
    local = Path.cwd() / "node_modules" / ".bin" / "configurable-http-proxy"
    return str(local) if local.exists() else "configurable-http-proxy"


def is_node_script(path: Path) -> bool:
    """CHP's bin is a Node script (``#!/usr/bin/env node``); another proxy gets no guard."""
    try:
        with path.open("rb") as f:
            return b"node" in f.readline()
    except OSError:
        return False


def proxy_command() -> list[str]:
    """``node --import <guard> <chp>``, or plain CHP (with a warning) when that cannot be had."""
    chp = find_proxy()
    node = shutil.which("node")
    path = Path(chp)
    if node and path.is_file() and is_node_script(path) and GUARD.is_file():
        # Node's 16 KiB limit on a request's head would refuse (431) requests the API document
        # allows: a query's two 1024-character paths of multi-byte characters, percent-encoded.
        return [node, f"--max-http-header-size={MAX_HEADER_BYTES}", "--import", GUARD.as_uri(), str(path)]
    print(f"floyd_hub: starting {chp} without proxy_guard.mjs (node: {node}); paths with invalid "
          "percent escapes will be answered 500", file=sys.stderr)
    return [chp]
