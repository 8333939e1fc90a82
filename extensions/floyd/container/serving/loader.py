"""ENTRY → one ASGI app: an ``app`` (WSGI or ASGI), a ``predict`` function, or a notebook.

Everything that can fail at start-up (imports, a notebook's unannotated cells) fails here,
before the port opens, so a broken deploy exits non-zero with its traceback in the log
instead of answering the bridge's readiness check. A notebook endpoint cell that does not
compile is the exception: as in Kernel Gateway only its route fails (500), and the start-up
log says so.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from floyd.container.serving.asgi import ASGIApp, FloydASGI
from floyd.container.serving.errors import EntryError, NotebookError


@dataclass
class Runtime:
    entry: str
    kind: str  # "app" | "notebook" | "predict"
    app: FloydASGI
    routes: list[str] = field(default_factory=list)  # "VERB /path" lines for the start-up log
    warnings: list[str] = field(default_factory=list)  # e.g. a route whose cell does not compile


def interface(obj: Any) -> str:
    """``asgi3``, ``asgi2`` or ``wsgi``, by the callable's shape (as uvicorn guesses it)."""
    if not callable(obj):
        raise EntryError(f"{obj!r} is not callable: an app must be a WSGI or ASGI callable")
    if inspect.isclass(obj):
        return "asgi2" if inspect.iscoroutinefunction(obj.__call__) else "wsgi"
    call = obj if inspect.isfunction(obj) or inspect.ismethod(obj) else obj.__call__
    if inspect.iscoroutinefunction(call):
        return "asgi3"
    try:
        params = [
            p
            for p in inspect.signature(call).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):
        return "wsgi"
    return {3: "asgi3", 1: "asgi2"}.get(len(params), "wsgi")


def _is_factory(obj: Any) -> bool:
    """``def create_app()`` style: a plain function that takes no arguments."""
    if not inspect.isfunction(obj) or inspect.iscoroutinefunction(obj):
        return False
    return all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        for p in inspect.signature(obj).parameters.values()
    )


def as_asgi(obj: Any, threads: int) -> ASGIApp:
    kind = interface(obj)
    if kind == "asgi3":
        return obj
    if kind == "asgi2":
        from uvicorn.middleware.asgi2 import ASGI2Middleware

        return ASGI2Middleware(obj)  # type: ignore[return-value]
    from floyd.container.serving.wsgi import WSGIApp

    return WSGIApp(obj, threads)


def app_runtime(entry: str, obj: Any, title: str, threads: int) -> Runtime:
    from floyd.container.serving.openapi import empty_openapi, flask_openapi

    if _is_factory(obj):
        obj = obj()
    asgi = as_asgi(obj, threads)
    if hasattr(obj, "url_map") and hasattr(obj, "wsgi_app"):  # Flask
        routes = sorted(
            f"{m} {r.rule}"
            for r in obj.url_map.iter_rules()
            for m in (r.methods or ())
            if m not in ("HEAD", "OPTIONS")
        )
        return Runtime(entry, "app", FloydASGI(asgi, "app", lambda: flask_openapi(obj, title)), routes)
    return Runtime(entry, "app", FloydASGI(asgi, "app", lambda: empty_openapi(title)))


def predict_runtime(entry: str, predict: Any, title: str, threads: int) -> Runtime:
    from floyd.container.serving.openapi import predict_openapi
    from floyd.container.serving.predict import PREDICT_PATH, PredictApp

    app = FloydASGI(PredictApp(predict, threads), "predict", lambda: predict_openapi(title))
    return Runtime(entry, "predict", app, [f"POST {PREDICT_PATH}"])


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise EntryError(f"{path.name}: no such file in {path.parent}")
    sys.path.insert(0, str(path.parent))
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise EntryError(f"{path}: not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # Flask(__name__) finds its root path through sys.modules
    spec.loader.exec_module(module)
    return module


def load_python(entry: str, cwd: Path, threads: int) -> Runtime:
    """``app.py``, ``app.py:api``, ``main:api`` or ``main``: ``app`` (or ATTR), else ``predict``."""
    target, _, attr = entry.partition(":")
    if target.endswith(".py"):
        module = _import_file((cwd / target).resolve())
    else:
        if str(cwd) not in sys.path:
            sys.path.insert(0, str(cwd))
        module = importlib.import_module(target)
    title = Path(target).stem if target.endswith(".py") else target
    if attr:
        if not hasattr(module, attr):
            raise EntryError(f"{target} has no attribute {attr!r} (ENTRY {entry})")
        return app_runtime(entry, getattr(module, attr), title, threads)
    if hasattr(module, "app"):
        return app_runtime(entry, module.app, title, threads)
    if callable(getattr(module, "predict", None)):
        return predict_runtime(entry, module.predict, title, threads)
    raise EntryError(
        f"{target} defines neither `app` (WSGI/ASGI) nor `predict(payload)`; define one, or name it: {target}:NAME"
    )


def load_notebook(entry: str, cwd: Path, threads: int) -> Runtime:
    """Parse annotations, run the init cells once in the in-process kernel, then route.

    The kernel's working directory is the notebook's folder, as in Jupyter, so relative
    paths the author used keep working; ``KERNEL_GATEWAY=1`` as Kernel Gateway sets it.
    """
    from floyd.container.serving.kernel import InProcessKernel
    from floyd.container.serving.notebook_http import NotebookHTTP, parse_notebook
    from floyd.container.serving.openapi import kg_swagger, notebook_openapi
    from floyd.container.serving.predict import PREDICT_PATH, PredictApp

    path = (cwd / entry).resolve()
    if not path.is_file():
        raise EntryError(f"{entry}: no such notebook in {cwd}")
    parsed = parse_notebook(path)
    os.environ["KERNEL_GATEWAY"] = "1"
    os.chdir(path.parent)
    sys.path.insert(0, str(path.parent))
    kernel = InProcessKernel(str(path))
    for cell in parsed.init_cells:
        result = kernel.call(functools.partial(kernel.run, cell, capture=False))
        if result.error is not None:
            raise NotebookError(f"{cell.label} failed at start-up: {result.error_text.strip()}")
    predict = kernel.namespace.get("predict")
    predict = predict if callable(predict) else None
    if parsed.endpoints:
        routes = [f"{verb} {path}" for verb, path in parsed.routes]
        predict_app = None
        if predict is not None and not any(e.regex.match(PREDICT_PATH) for e in parsed.endpoints):
            predict_app = PredictApp(predict, threads)
            routes.append(f"POST {PREDICT_PATH}")
        has_predict = predict_app is not None
        swagger = functools.partial(kg_swagger, parsed.title, parsed.annotations)
        app = NotebookHTTP(parsed, kernel, swagger, predict_app)
        floyd_app = FloydASGI(
            app, "notebook", lambda: notebook_openapi(parsed.title, parsed.routes, has_predict)
        )
        return Runtime(entry, "notebook", floyd_app, routes, parsed.broken_routes())
    if predict is not None:
        return predict_runtime(entry, predict, parsed.title, threads)
    if "app" in kernel.namespace:
        return app_runtime(entry, kernel.namespace["app"], parsed.title, threads)
    raise EntryError(
        f"{entry} has no endpoints: annotate a cell with a first line like `# GET /hello` "
        "or `# POST /items/:id`, or define `predict(payload)`"
    )


def load(entry: str, cwd: Path | None = None, threads: int = 10) -> Runtime:
    cwd = (cwd or Path.cwd()).resolve()
    if entry.endswith(".ipynb"):
        return load_notebook(entry, cwd, threads)
    return load_python(entry, cwd, threads)
