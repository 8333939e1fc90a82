"""Run a notebook headless inside a job container: ``python -m floyd.container.notebook_runner NOTEBOOK``.

Parameters go in papermill-style (a new cell tagged ``injected-parameters`` right after the cell
tagged ``parameters``), cell output is echoed to the job log while it runs (so ``{"metric": ...}``
lines become metrics live), and the executed copy is written to ``$FLOYD_OUTPUT`` even when a cell
fails or the job is stopped, so the user can open it and see where it ended.

"cell N" in the log counts every cell of the executed notebook from 1 (markdown and the injected
cell too), so it matches the saved copy.

Exit codes: 0 finished, 1 a cell failed (or timed out, or the kernel died), 2 bad input
(notebook, parameters, kernel), 143 stopped by SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import json
import keyword
import logging
import math
import os
import re
import signal
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbformat import NotebookNode

PREFIX = "[floyd]"
DEFAULT_OUTPUT_DIR = "/floyd/output"
INJECTED_TAG = "injected-parameters"
PARAMETERS_TAG = "parameters"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 143
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class UsageError(Exception):
    """Bad input from the user: reported as one line on stderr, exit code 2."""


def say(message: str, err: bool = False) -> None:
    """Print one ``[floyd]`` line and flush, so the job log shows it right away."""
    print(f"{PREFIX} {message}", file=sys.stderr if err else sys.stdout, flush=True)


# --- reading and parameters -------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_traitlets_log() -> Iterator[None]:
    """nbformat logs schema problems as a long multi-line error; we report them in one line."""
    log = logging.getLogger("traitlets")
    was, log.disabled = log.disabled, True
    try:
        yield
    finally:
        log.disabled = was


def read_notebook(path: Path) -> NotebookNode:
    """Read NOTEBOOK as nbformat v4; anything unreadable is a UsageError naming what to do."""
    if path.is_dir():
        raise UsageError(f"{path} is a directory; pass the path of a .ipynb file")
    if not path.is_file():
        where = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
        raise UsageError(f"notebook not found: {path}{where}; check the path and that the code was uploaded")
    captured: dict[str, Any] = {}
    try:
        with _quiet_traitlets_log(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. MissingIDFieldWarning: harmless for running it
            nb = nbformat.read(str(path), as_version=4, capture_validation_error=captured)
        if not isinstance(nb.get("cells"), list):
            raise ValueError("it has no list of cells")
    except Exception as exc:  # JSON, version and structure errors all mean the same to the user
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(
            f"{path} is not a valid notebook ({reason}); open and save it in JupyterLab, then run again"
        ) from None
    if "ValidationError" in captured:
        first = str(getattr(captured["ValidationError"], "message", captured["ValidationError"])).splitlines()
        say(
            f"warning: {path} does not fully match the notebook schema ({first[0] if first else '?'}); "
            "running it anyway",
            err=True,
        )
    return nb


def coerce_value(value: Any) -> Any:
    """CLI flags arrive as strings ("0.01"): read them as JSON, then as a Python literal, else keep them."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        pass
    try:
        return ast.literal_eval(value.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return value


def parse_params(params_json: str | None) -> dict[str, Any]:
    """Parse ``--params-json`` into {name: value}; names must be assignable Python identifiers."""
    if not params_json:
        return {}
    try:
        raw = json.loads(params_json)
    except ValueError as exc:
        raise UsageError(
            f"--params-json is not valid JSON ({exc}); pass an object like '{{\"lr\": 0.01}}'"
        ) from None
    if not isinstance(raw, dict):
        raise UsageError("--params-json must be a JSON object like '{\"lr\": 0.01}'")
    for name in raw:
        if not name.isidentifier() or keyword.iskeyword(name):
            raise UsageError(
                f"parameter name {name!r} is not a valid Python variable name; "
                "use letters, digits and _ (not starting with a digit)"
            )
    return {name: coerce_value(value) for name, value in raw.items()}


def to_source(value: Any) -> str:
    """Python source for VALUE; like repr, except that inf/nan (which repr leaves unassignable) still work."""
    if isinstance(value, (float, complex)) and not (math.isfinite(value.real) and math.isfinite(value.imag)):
        return f"{type(value).__name__}({str(value)!r})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{to_source(k)}: {to_source(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(to_source(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + "".join(f"{to_source(v)}, " for v in value).rstrip(" ") + ")"
    return repr(value)


def inject_parameters(nb: NotebookNode, params: dict[str, Any]) -> int | None:
    """Insert the ``injected-parameters`` cell after the ``parameters`` cell, papermill-style.

    Returns the index of the parameters cell (None: none tagged, so the cell went on top).
    Cells injected by an earlier run are dropped first, so re-running an output notebook works.
    """
    nb.cells = [c for c in nb.cells if INJECTED_TAG not in c.get("metadata", {}).get("tags", [])]
    if not params:
        return None
    source = "# Parameters\n" + "".join(f"{name} = {to_source(value)}\n" for name, value in params.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": [INJECTED_TAG]})
    if nb.get("nbformat_minor", 5) < 5:  # cell ids are only valid from nbformat 4.5
        cell.pop("id", None)
    marked = [i for i, c in enumerate(nb.cells) if PARAMETERS_TAG in c.get("metadata", {}).get("tags", [])]
    where = marked[0] if marked else None
    nb.cells.insert(0 if where is None else where + 1, cell)
    return where


# --- execution ---------------------------------------------------------------------------------


class StreamingClient(NotebookClient):
    """A NotebookClient that echoes progress and the cells' own output to the job log as they happen,
    and turns SIGTERM/SIGINT into a clean stop (partial notebook written, exit 143)."""

    def __init__(self, nb: NotebookNode, **kw: Any) -> None:
        super().__init__(nb, **kw)
        self.on_cell_execute = self._announce
        self.on_cell_executed = self._done
        self.current_index: int | None = None
        self.busy = False
        self.stopped_by: int | None = None
        self._task: asyncio.Task[Any] | None = None

    def _announce(self, cell: NotebookNode, cell_index: int) -> None:
        """Called by nbclient just before a code cell runs (empty cells never get here)."""
        self.current_index, self.busy = cell_index, True
        say(f"cell {cell_index + 1}/{len(self.nb.cells)} (execution_count {self.code_cells_executed + 1})")

    def _done(self, cell: NotebookNode, cell_index: int, execute_reply: dict[str, Any]) -> None:
        self.busy = False

    def output(
        self, outs: list[NotebookNode], msg: dict[str, Any], display_id: str | None, cell_index: int
    ) -> NotebookNode | None:
        """Write stream text to our stdout/stderr as it arrives, not only into the saved notebook."""
        if msg["msg_type"] == "stream":
            stream = sys.stderr if msg["content"].get("name") == "stderr" else sys.stdout
            stream.write(msg["content"].get("text", ""))
            stream.flush()
        return super().output(outs, msg, display_id, cell_index)

    async def async_start_new_kernel(self, **kwargs: Any) -> None:
        """nbclient's own signal handlers only shut the kernel down; ours also remember why we stop."""
        self._task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(RuntimeError, ValueError):  # not in the main thread
                loop.add_signal_handler(signum, self._stop, signum)
        if getattr(self.km, "ipykernel", False):  # its TCP-encryption warning is noise in a job log
            self.extra_arguments = [*self.extra_arguments, "--IPKernelApp.log_level=ERROR"]
        await super().async_start_new_kernel(**kwargs)

    async def _async_handle_timeout(self, timeout: int, cell: NotebookNode | None = None) -> Any:
        """A timed-out cell is still busy: kill the kernel rather than ask it to shut down politely."""
        self.shutdown_kernel = "immediate"
        return await super()._async_handle_timeout(timeout, cell)

    def _stop(self, signum: int) -> None:
        if self.stopped_by is None:
            self.stopped_by = signum
            self.shutdown_kernel = "immediate"  # the container is about to be killed anyway
            if self._task is not None:
                self._task.cancel()


def pick_kernel(nb: NotebookNode, requested: str | None) -> str:
    """--kernel wins; else the notebook's kernelspec, falling back to python3 if that one isn't here."""
    specs = KernelSpecManager()
    if requested:
        try:
            specs.get_kernel_spec(requested)
        except NoSuchKernel:
            known = ", ".join(sorted(specs.find_kernel_specs())) or "none"
            raise UsageError(
                f"kernel {requested!r} is not installed in this environment (installed: {known}); "
                "pass --kernel with one of those"
            ) from None
        return requested
    name = (nb.metadata.get("kernelspec") or {}).get("name") or "python3"
    if name != "python3":
        try:
            specs.get_kernel_spec(name)
        except NoSuchKernel:
            say(f"warning: the notebook's kernel {name!r} is not installed here; using python3", err=True)
            return "python3"
    return name


def default_output(notebook: Path) -> Path:
    """$FLOYD_OUTPUT/<name> (or /floyd/output/<name>), else the current directory; never the input itself."""
    out_dir = Path(os.environ.get("FLOYD_OUTPUT") or DEFAULT_OUTPUT_DIR)
    if not out_dir.is_dir():
        out_dir = Path.cwd()
    out = out_dir / notebook.name
    if out.resolve() == notebook.resolve():
        out = out.with_name(f"{notebook.stem}-output{notebook.suffix or '.ipynb'}")
    return out


def write_notebook(nb: NotebookNode, path: Path) -> bool:
    """Write atomically (a stop mid-write must not leave half a notebook); False if it could not."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _quiet_traitlets_log():
            nbformat.write(nb, str(tmp))
        os.replace(tmp, path)
        return True
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        say(f"could not write the executed notebook to {path}: {exc}", err=True)
        return False


def _mark_cell(client: StreamingClient, ename: str, evalue: str) -> None:
    """Leave an error output on the cell that was running, so the saved notebook shows where it ended."""
    if client.busy and client.current_index is not None:
        client.nb.cells[client.current_index].outputs.append(
            nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])
        )


def _report_failure(client: StreamingClient, exc: CellExecutionError) -> None:
    """One block on stderr: the traceback (colours stripped), then which cell failed and why."""
    index = client.current_index
    cell = client.nb.cells[index] if index is not None else None
    errors = [o for o in (cell.outputs if cell else []) if o.get("output_type") == "error"]
    tb = _ANSI.sub("", "\n".join(line for o in errors for line in o.get("traceback", [])))
    if tb.strip():
        print(tb.rstrip(), file=sys.stderr)
    number = index + 1 if index is not None else "?"
    say(f"cell {number} failed: {exc.ename}: {exc.evalue}", err=True)
    first = next((line for line in (cell.source.splitlines() if cell else []) if line.strip()), "")
    if first:
        say(f"  {first.strip()}", err=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m floyd.container.notebook_runner",
        description="Run a notebook headless and save the executed copy.",
    )
    parser.add_argument("notebook", type=Path)
    parser.add_argument(
        "--params-json", default=None, help="parameters as a JSON object, e.g. '{\"lr\": 0.01}'"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="where to write the executed notebook (default: $FLOYD_OUTPUT/<name>)",
    )
    parser.add_argument("--timeout", type=int, default=None, help="seconds per cell (default or 0: no limit)")
    parser.add_argument("--kernel", default=None, help="kernel name (default: the notebook's, or python3)")
    return parser


def _execute(client: StreamingClient, timeout: int | None) -> int:
    """Run every cell; the exit code, with what went wrong said on stderr."""
    try:
        asyncio.run(client.async_execute())
    except CellExecutionError as exc:
        if client.stopped_by is None:
            _report_failure(client, exc)
        return EXIT_FAILED
    except CellTimeoutError:
        _mark_cell(client, "CellTimeoutError", f"cell timed out after {timeout} s")
        say(f"cell {(client.current_index or 0) + 1} timed out after {timeout} s "
            "(raise --timeout, or 0 for no limit)", err=True)
        return EXIT_FAILED
    except DeadKernelError:
        if client.stopped_by is None:
            _mark_cell(client, "DeadKernelError", "the kernel died")
            say(f"the kernel died while running cell {(client.current_index or 0) + 1} "
                "(out of memory? check the job's memory limit)", err=True)
        return EXIT_FAILED
    except RuntimeError as exc:  # the kernel would not start or answer
        if client.stopped_by is None:
            say(f"the kernel failed: {exc}", err=True)
        return EXIT_FAILED
    except (KeyboardInterrupt, asyncio.CancelledError):
        client.stopped_by = client.stopped_by or signal.SIGINT
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run the notebook; returns the exit code (see the module docstring)."""
    args = _parser().parse_args(argv)
    try:
        nb = read_notebook(args.notebook)
        params = parse_params(args.params_json)
        kernel = pick_kernel(nb, args.kernel)
    except UsageError as exc:
        say(f"error: {exc}", err=True)
        return EXIT_USAGE

    if inject_parameters(nb, params) is None and params:
        say("warning: no cell is tagged 'parameters'; the parameters were injected at the top", err=True)
    output = args.output or default_output(args.notebook)
    workdir = args.notebook.resolve().parent
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # silences ipykernel's debugger warning
    client = StreamingClient(nb, kernel_name=kernel, timeout=args.timeout if args.timeout and args.timeout > 0 else None,
                             allow_errors=False, coalesce_streams=True,
                             resources={"metadata": {"path": str(workdir)}})
    say(f"running {args.notebook} ({len(nb.cells)} cells, kernel {kernel})")
    try:
        code = _execute(client, args.timeout)
    except NoSuchKernel as exc:
        say(f"error: kernel not found: {exc}; pass --kernel", err=True)
        return EXIT_USAGE

    if client.stopped_by is not None:
        code = EXIT_STOPPED
        _mark_cell(client, "JobStopped", f"stopped by {signal.Signals(client.stopped_by).name}")
        say(f"stopped by {signal.Signals(client.stopped_by).name}; writing the cells that ran", err=True)
    if not write_notebook(client.nb, output):
        return code or EXIT_FAILED
    if code == EXIT_OK:
        say(f"notebook finished: {output}")
    else:
        say(f"executed notebook (partial) written to {output}", err=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
