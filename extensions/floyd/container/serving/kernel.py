"""An in-process stand-in for the one kernel a notebook endpoint runs on.

Why in-process instead of a ZMQ kernel (what Kernel Gateway uses): a request then costs a
thread hop instead of three execute round trips over ZMQ (REQUEST assignment, cell,
ResponseInfo) plus iopub message collection, and the replica is one process the bridge can
start, watch and stop. What a kernel guarantees is kept:

* one namespace that stays warm across requests, and is ``__main__`` (so objects pickled from
  classes defined in the notebook load, as they do in Jupyter);
* one execution at a time, always on the same thread (a single-thread executor: what the
  init cells created, e.g. a sqlite connection, is usable by the request cells);
* stdout of the running cell captured (a thread-aware ``sys.stdout``), stderr left to the log;
* an ``execute_result`` for a trailing expression, formatted by IPython's display formatter;
* ``%magics`` and ``!commands`` (converted by nbconvert) through an ``InteractiveShell``
  whose ``get_ipython()`` is available to the cells; ``display()`` output is dropped, as
  Kernel Gateway drops ``display_data``.

A real kernel would only be worth it for other languages or for isolating a crashing cell;
the replica process is already isolated by the bridge.
"""

from __future__ import annotations

import ast
import asyncio
import io
import linecache
import subprocess
import sys
import threading
import traceback
import types
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class _ThreadStdout:
    """``sys.stdout`` that writes into a per-thread buffer while a cell runs, and to the
    real stream otherwise (predict threads, the server's own output)."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self._local = threading.local()

    def capture(self, buffer: io.StringIO | None) -> None:
        self._local.buffer = buffer

    def write(self, text: str) -> int:
        buffer = getattr(self._local, "buffer", None)
        return (buffer if buffer is not None else self._real).write(text)

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        buffer = getattr(self._local, "buffer", None)
        if buffer is None:
            self._real.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _install_stdout() -> _ThreadStdout:
    if not isinstance(sys.stdout, _ThreadStdout):
        sys.stdout = _ThreadStdout(sys.stdout)
    return sys.stdout


@dataclass
class CompiledCell:
    """A cell's code, split like IPython's ``last_expr``: body, then the trailing expression.

    A cell that does not compile keeps its ``error`` instead of code: running it fails with
    that error, as a kernel fails a cell it cannot compile, so one broken endpoint cell
    costs its own route a 500 and not the whole notebook its start (Kernel Gateway compiles
    an endpoint's cell only when its route is called)."""

    label: str
    body: types.CodeType | None
    last_expr: types.CodeType | None
    source: str
    error: SyntaxError | None = None

    @property
    def error_value(self) -> str:
        """The compile error as a response shows it. Not ``str(error)``: that names only the
        file name's part after its last ``/``, which for ``<nb.ipynb GET /people/:id>`` is ``:id>``."""
        assert self.error is not None
        return f"{self.error.msg} ({self.label}, line {self.error.lineno})"


@dataclass
class CellResult:
    stdout: str = ""
    data: dict[str, Any] | None = None
    error: BaseException | None = None
    evalue: str | None = None  # the error's text where ``str(error)`` is not the one to show

    @property
    def error_text(self) -> str:
        """Kernel Gateway's error body: ``Error {ename}: {evalue} \\n``."""
        assert self.error is not None
        evalue = str(self.error) if self.evalue is None else self.evalue
        return f"Error {type(self.error).__name__}: {evalue} \n"


_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


def compile_cell(python_source: str, label: str) -> CompiledCell:
    """Compile converted (plain Python) cell source; a SyntaxError (its filename the cell's
    label) is kept in the result, to be raised when the cell runs."""
    filename = f"<{label}>"
    linecache.cache[filename] = (len(python_source), None, python_source.splitlines(True), filename)
    try:
        tree = ast.parse(python_source, filename, "exec")
        last_expr = None
        silent = python_source.rstrip().endswith(";")
        if tree.body and isinstance(last := tree.body[-1], ast.Expr) and not silent:
            tree.body.pop()
            last_expr = compile(ast.Expression(last.value), filename, "eval", flags=_FLAGS)
        body = compile(tree, filename, "exec", flags=_FLAGS) if tree.body else None
    except SyntaxError as exc:  # IndentationError and "null bytes" are SyntaxErrors too
        return CompiledCell(label, None, None, python_source, error=exc.with_traceback(None))
    return CompiledCell(label, body, last_expr, python_source)


def _make_shell(module: types.ModuleType) -> Any:
    """An IPython shell bound to the notebook namespace, so converted magics run; None if
    IPython is missing (plain Python cells still work)."""
    try:
        from IPython.core.displaypub import DisplayPublisher
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config
    except ImportError:  # pragma: no cover - IPython ships with nbconvert's stack
        return None

    class _DropDisplay(DisplayPublisher):
        def publish(self, *args: Any, **kwargs: Any) -> None:
            """Kernel Gateway ignores display_data messages; so do we."""

    class EndpointShell(InteractiveShell):
        def system(self, cmd: str) -> None:
            """``!cmd``: its output goes to the cell's stdout (the response), as a kernel's does."""
            done = subprocess.run(self.var_expand(cmd, depth=1), shell=True, capture_output=True, text=True)
            sys.stdout.write(done.stdout)
            sys.stderr.write(done.stderr)
            self.user_ns["_exit_code"] = done.returncode

    config = Config()
    config.HistoryManager.enabled = False
    shell = EndpointShell.instance(config=config, user_module=module)
    shell.display_pub = _DropDisplay(shell=shell)
    return shell


class InProcessKernel:
    """The notebook's namespace and the single thread that executes its cells."""

    def __init__(self, filename: str) -> None:
        self.module = types.ModuleType("__main__")
        self.module.__file__ = filename
        self.namespace: dict[str, Any] = self.module.__dict__
        self.stdout = _install_stdout()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="notebook-kernel")
        self._loop: asyncio.AbstractEventLoop | None = None
        self.shell = self.call(lambda: _make_shell(self.module))
        sys.modules["__main__"] = self.module

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the kernel thread and wait (start-up path)."""
        return self._thread.submit(fn).result()

    async def acall(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the kernel thread without blocking the event loop (request path)."""
        return await asyncio.wrap_future(self._thread.submit(fn))

    def run(self, cell: CompiledCell, capture: bool = True) -> CellResult:
        """Execute one cell on the calling (kernel) thread."""
        if cell.error is not None:
            # Shown as a kernel shows it: file, line, caret and message, no frames of ours.
            traceback.print_exception(type(cell.error), cell.error, None, file=sys.stderr)
            return CellResult(error=cell.error, evalue=cell.error_value)
        result = CellResult()
        buffer = io.StringIO() if capture else None
        self.stdout.capture(buffer)
        try:
            if cell.body is not None:
                self._await(eval(cell.body, self.namespace))
            if cell.last_expr is not None:
                value = self._await(eval(cell.last_expr, self.namespace))
                if value is not None:
                    result.data = self._format(value)
        except (Exception, SystemExit) as exc:
            result.error = exc
            # Skip this frame: the log shows the cell's lines, as a kernel's traceback does.
            frames = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
            traceback.print_exception(type(exc), exc, frames, file=sys.stderr)
        finally:
            self.stdout.capture(None)
        result.stdout = buffer.getvalue() if buffer is not None else ""
        return result

    def _await(self, value: Any) -> Any:
        """Cells may use top-level ``await`` (the IPython kernel allows it)."""
        if asyncio.iscoroutine(value):
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            return self._loop.run_until_complete(value)
        return value

    def _format(self, value: Any) -> dict[str, Any]:
        if self.shell is not None:
            data, _ = self.shell.display_formatter.format(value)
            return dict(data)
        return {"text/plain": repr(value)}
