"""``python -m floyd.container.serving --entry ENTRY --port PORT [--host 127.0.0.1] [--threads N]``

Exit status: 1 when ENTRY cannot be loaded (traceback on stderr), 2 for bad arguments, 3 when
the server could not start (e.g. the port is taken). On SIGTERM or SIGINT in-flight requests
finish first; then, as uvicorn does, the process ends by that signal (143 / -15 for SIGTERM).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from floyd.container.serving.errors import EntryError
from floyd.container.serving.loader import load
from floyd.container.serving.server import serve


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m floyd.container.serving",
        description="Serve a project's app.py (WSGI/ASGI app), predict(payload), or annotated notebook.",
    )
    parser.add_argument(
        "--entry",
        required=True,
        help="app.py | app.py:NAME | module:NAME | notebook.ipynb, relative to the current directory",
    )
    parser.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--threads", type=int, default=10, help="worker threads for WSGI apps and predict calls (default 10)"
    )
    parser.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    return parser.parse_args(argv)


def log(line: str) -> None:
    print(f"[floyd] {line}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        runtime = load(args.entry, Path.cwd(), threads=args.threads)
    except EntryError as exc:
        log(f"cannot serve {args.entry}: {exc}")
        return 1
    except BaseException as exc:  # noqa: B036 - user code may raise anything, even SystemExit
        if isinstance(exc, KeyboardInterrupt):
            raise
        traceback.print_exc()
        log(f"cannot serve {args.entry}: {type(exc).__name__}: {exc}")
        return 1
    log(f"serving {runtime.entry} ({runtime.kind}) on {args.host}:{args.port}")
    for route in runtime.routes:
        verb, _, path = route.partition(" ")
        log(f"  {verb:<7} {path}")
    for warning in runtime.warnings:
        log(f"warning: {warning}")
    if not serve(runtime.app, args.host, args.port, args.log_level):
        log(f"the server did not start on {args.host}:{args.port}")
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
