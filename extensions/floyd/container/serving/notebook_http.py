"""Kernel Gateway's notebook-http mode, served from an in-process kernel.

The semantics follow Jupyter Kernel Gateway's documentation ("notebook-http Mode",
https://jupyter-kernel-gateway.readthedocs.io/en/latest/http-mode.html) and its behaviour:

* a code cell whose source *starts* with ``# VERB /path`` is an endpoint (VERB is GET, PUT,
  POST or DELETE as in Kernel Gateway; PATCH is our addition); ``/:name`` segments are path
  parameters; cells sharing an annotation are concatenated in notebook order;
* ``# ResponseInfo VERB /path`` cells run after that endpoint and print
  ``{"headers": {...}, "status": N}``;
* every other code cell runs once at start-up, in order (an error there, a SyntaxError
  included, stops the start);
* an endpoint or ResponseInfo cell that does not compile fails only its own route: Kernel
  Gateway compiles a cell when its route is called, so that route answers ``500`` with the
  SyntaxError and the others serve;
* before an endpoint runs, ``REQUEST`` is a JSON *string* with ``body``, ``args`` (lists),
  ``path`` and ``headers`` (Tornado-style names, repeats as lists);
* the response body is the cell's stdout, else its ``execute_result`` bundle as JSON, with
  ``200`` and ``Content-Type: text/plain``; an error gives ``500`` and
  ``Error {ename}: {evalue} \\n``; an unknown path ``404``, a wrong method ``405``;
* routes are tried constant paths first, then by the depth of their first path parameter,
  deepest first (Kernel Gateway's ``first_path_param_index`` ordering), then
  ``/_api/spec/swagger.json``;
* the environment has ``KERNEL_GATEWAY=1`` so notebooks can skip their own test cells.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from floyd.container.serving.asgi import (
    Receive,
    Scope,
    Send,
    answered_non_http,
    read_body,
    reason,
    send_json,
    send_response,
)
from floyd.container.serving.errors import NotebookError
from floyd.container.serving.kernel import CellResult, CompiledCell, InProcessKernel, compile_cell
from floyd.container.serving.routes import first_path_param_index, path_regex

VERBS = ("GET", "PUT", "POST", "DELETE", "PATCH")
_VERB_RE = "|".join(VERBS)
API_CELL = re.compile(rf"#\s+({_VERB_RE})\s+(/.*)")
RESPONSE_CELL = re.compile(rf"#\s+ResponseInfo\s+({_VERB_RE})\s+(/.*)")
SWAGGER_PATH = "/_api/spec/swagger.json"


@dataclass
class Endpoint:
    path: str
    regex: re.Pattern[str]
    sources: dict[str, CompiledCell] = field(default_factory=dict)
    responses: dict[str, CompiledCell] = field(default_factory=dict)


@dataclass
class ParsedNotebook:
    """The annotated routes in Kernel Gateway's order, and the cells run at start-up."""

    title: str
    endpoints: list[Endpoint]
    init_cells: list[CompiledCell]
    annotations: list[tuple[str, str]]  # (verb, path) in notebook order, for the swagger spec

    @property
    def routes(self) -> list[tuple[str, str]]:
        """``(verb, path)`` in the order requests are matched: the route table and OpenAPI's."""
        return [(verb, e.path) for e in self.endpoints for verb in e.sources]

    def broken_routes(self) -> list[str]:
        """One line per route whose cell (or ResponseInfo cell) does not compile, for the
        start-up log: the route still exists and answers 500, as in Kernel Gateway."""
        lines = []
        for endpoint in self.endpoints:
            for verb, cell in [*endpoint.sources.items(), *endpoint.responses.items()]:
                if cell.error is not None and verb in endpoint.sources:
                    error = f"{type(cell.error).__name__}: {cell.error_value}"
                    lines.append(f"{verb} {endpoint.path} answers 500, a cell does not compile: {error}")
        return lines


def _convert(source: str) -> str:
    """``%magic`` / ``!cmd`` → Python: the transformation nbconvert's ``ipython2python`` filter
    applies (IPython's ``TransformerManager``), without importing nbconvert, which would add
    about 2 s to every replica's start."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # pragma: no cover - plain Python cells still work
        return source
    return TransformerManager().transform_cell(source)


def _code_cells(path: Path) -> list[str]:
    """Code cell sources in order. nbformat 4 is read as plain JSON (importing nbformat costs
    1.5 s for its schema validator); older formats are upgraded through nbformat."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    if raw.get("nbformat", 0) < 4:
        import nbformat

        raw = nbformat.reads(json.dumps(raw), as_version=4)
    metadata = raw.get("metadata", {})
    language_info, kernelspec = metadata.get("language_info") or {}, metadata.get("kernelspec") or {}
    language = language_info.get("name") or kernelspec.get("language")
    if language and language.lower() not in ("python", "ipython", "python3"):
        raise NotebookError(f"{path.name} is a {language} notebook; only Python notebooks can be served")
    sources = []
    for cell in raw.get("cells", []):
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            sources.append("".join(source) if isinstance(source, list) else source)
    return sources


def parse_notebook(path: Path) -> ParsedNotebook:
    raw_sources: dict[str, dict[str, list[str]]] = {}
    raw_responses: dict[str, dict[str, list[str]]] = {}
    init_cells: list[CompiledCell] = []
    annotations: list[tuple[str, str]] = []
    try:
        cells = _code_cells(path)
    except (ValueError, KeyError, AttributeError) as exc:
        raise NotebookError(f"{path.name} is not a readable notebook: {exc}") from exc
    for index, source in enumerate(cells, start=1):
        label = f"{path.name} code cell {index}"
        if m := API_CELL.match(source):
            verb, route = m.group(1), m.group(2).strip()
            raw_sources.setdefault(route, {}).setdefault(verb, []).append(_convert(source))
            annotations.append((verb, route))
        elif m := RESPONSE_CELL.match(source):
            verb, route = m.group(1), m.group(2).strip()
            raw_responses.setdefault(route, {}).setdefault(verb, []).append(_convert(source))
        elif source.strip():
            init_cells.append(compile_cell(_convert(source), label))
    endpoints: list[Endpoint] = []
    for route in sorted(raw_sources, key=first_path_param_index, reverse=True):
        endpoint = Endpoint(route, path_regex(route))
        for verb, parts in raw_sources[route].items():
            endpoint.sources[verb] = compile_cell("\n".join(parts), f"{path.name} {verb} {route}")
        for verb, parts in raw_responses.get(route, {}).items():
            label = f"{path.name} ResponseInfo {verb} {route}"
            endpoint.responses[verb] = compile_cell("\n".join(parts), label)
        endpoints.append(endpoint)
    return ParsedNotebook(path.stem, endpoints, init_cells, annotations)


# -- the request as Kernel Gateway hands it to a cell ----------------------------------------


def tornado_header_name(name: str) -> str:
    """Tornado's normalisation (``content-type`` → ``Content-Type``), which notebooks index by."""
    return "-".join(word.capitalize() for word in name.split("-"))


def headers_dict(raw_headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    for raw_name, raw_value in raw_headers:
        name, value = tornado_header_name(raw_name.decode("latin-1")), raw_value.decode("latin-1")
        if name not in headers:
            headers[name] = value
        elif isinstance(headers[name], list):
            headers[name].append(value)
        else:
            headers[name] = [headers[name], value]
    return headers


def query_args(query: bytes) -> dict[str, list[str]]:
    return parse_qs(query.decode("latin-1"), keep_blank_values=True)


def _multipart_fields(content_type: str, body: bytes) -> dict[str, list[str]]:
    """Form fields of a multipart body; files are left out, as Kernel Gateway does."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: dict[str, list[str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name or part.get_filename():
            continue
        payload = part.get_payload(decode=True)
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        fields.setdefault(str(name), []).append(text)
    return fields


def parse_body(content_type: str, body: bytes) -> Any:
    """JSON → object, form (urlencoded or multipart) → dict of lists, else the text.

    Kernel Gateway compares the whole Content-Type with ``application/json``; we compare the
    media type, so ``application/json; charset=utf-8`` is parsed too. Unparseable JSON stays text.
    """
    text = body.decode("utf-8", "replace") if body else ""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        return parse_qs(text, keep_blank_values=True)
    if media == "multipart/form-data":
        return _multipart_fields(content_type, body)
    if media == "application/json":
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


# -- serving ---------------------------------------------------------------------------------


class NotebookHTTP:
    """The ASGI app for an annotated notebook (and its ``predict``, if it also defines one).

    ``swagger`` builds the document for ``/_api/spec/swagger.json``; the loader passes it in so
    that this module and ``openapi`` never import each other."""

    def __init__(
        self,
        notebook: ParsedNotebook,
        kernel: InProcessKernel,
        swagger: Callable[[], dict[str, Any]],
        predict: Any = None,
    ) -> None:
        self.notebook = notebook
        self.kernel = kernel
        self.swagger = swagger
        self.predict = predict

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if await answered_non_http(scope, receive, send):
            return
        raw_path = scope.get("raw_path") or quote(scope["path"]).encode()
        path = raw_path.decode("latin-1")
        for endpoint in self.notebook.endpoints:
            match = endpoint.regex.match(path)
            if match:
                params = {k: unquote(v) for k, v in match.groupdict().items()}
                await self._endpoint(endpoint, params, scope, receive, send)
                return
        if scope["path"] == SWAGGER_PATH and scope["method"] == "GET":
            await send_json(send, 200, self.swagger())
            return
        if self.predict is not None and scope["path"] == "/predict":
            await self.predict(scope, receive, send)
            return
        await _kg_error(send, 404, f"No endpoint {scope['method']} {scope['path']} in this notebook")

    async def _endpoint(
        self, endpoint: Endpoint, params: dict[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        method = scope["method"]
        if method == "OPTIONS":
            await send_response(send, 200, headers=[("Allow", ", ".join(endpoint.sources))])
            return
        cell = endpoint.sources.get(method)
        if cell is None:
            allowed = ", ".join(endpoint.sources)
            await _kg_error(
                send, 405, f"{endpoint.path} answers {allowed}, not {method}", headers=[("Allow", allowed)]
            )
            return
        headers = headers_dict(scope["headers"])
        content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"").decode("latin-1")
        request = json.dumps(
            {
                "body": parse_body(content_type, await read_body(receive)),
                "args": query_args(scope.get("query_string", b"")),
                "path": params,
                "headers": headers,
            }
        )
        response_cell = endpoint.responses.get(method)

        def run() -> tuple[CellResult, CellResult | None]:
            self.kernel.namespace["REQUEST"] = request
            result = self.kernel.run(cell)
            if result.error is not None or response_cell is None:
                return result, None
            return result, self.kernel.run(response_cell)

        result, info = await self.kernel.acall(run)
        for ran in (result, info):
            if ran is not None and ran.error is not None:
                await send_response(send, 500, ran.error_text.encode(), [("Content-Type", "text/plain")])
                return
        status = 200
        out_headers: dict[str, str] = {"Content-Type": "text/plain"}
        if info is not None:
            try:
                meta = json.loads(info.stdout)
                for name, value in (meta.get("headers") or {}).items():
                    out_headers[str(name)] = str(value)
                status = int(meta.get("status", 200))
            except (ValueError, TypeError, AttributeError) as exc:
                text = f"Error {type(exc).__name__}: ResponseInfo for {method} {endpoint.path} must print JSON \n"
                await send_response(send, 500, text.encode(), [("Content-Type", "text/plain")])
                return
        body = result.stdout or (json.dumps(result.data) if result.data else "")
        if status in (204, 304) or 100 <= status < 200:
            # Tornado sends these without a body or representation headers; so do we.
            body = ""
            out_headers = {k: v for k, v in out_headers.items() if k.lower() != "content-type"}
        await send_response(send, status, body.encode(), list(out_headers.items()))


async def _kg_error(
    send: Send, status: int, message: str, headers: list[tuple[str, str]] | None = None
) -> None:
    """Our error body plus Kernel Gateway's ``reason`` field, so clients of either read it."""
    await send_json(send, status, {"status": status, "reason": reason(status), "message": message}, headers)
