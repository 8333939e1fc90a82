"""The endpoint runtime: what runs inside an endpoint container.

The bridge starts each replica as ``python -m floyd.container.serving --entry ENTRY --port PORT`` in the
project's code directory. ENTRY is an ``app.py`` (WSGI or ASGI ``app``; Flask and FastAPI
both work), a script or notebook defining ``predict(payload)`` (served at ``POST /predict``),
or a notebook annotated in Kernel Gateway's notebook-http style. Every runtime answers
``GET /_floyd/ready`` and ``GET /openapi.json``. Modules, one job each:

* ``loader``: ENTRY → an ASGI app (imports, init cells; failures exit before the port opens)
* ``asgi``: the wrapper adding ``/_floyd/ready`` and the fallback ``/openapi.json``
* ``notebook_http``: annotations → routes, the ``REQUEST`` variable, responses (KG semantics)
* ``kernel``: the in-process kernel that executes notebook cells
* ``wsgi``: WSGI apps in worker threads, one thread hop each way for an ordinary response
* ``predict``: ``POST /predict`` with JSON conversion of numpy/pandas results
* ``openapi``: OpenAPI 3 documents and Kernel Gateway's Swagger spec
* ``server``: uvicorn with keep-alive for the bridge's pool and graceful SIGTERM
"""

from __future__ import annotations

from floyd.container.serving.errors import EntryError
from floyd.container.serving.loader import Runtime, load

__all__ = ["EntryError", "Runtime", "load"]
