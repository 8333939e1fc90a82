"""``%floyd_run`` and ``%%floyd_run``: a script, a notebook or the cell itself as a background job.

::

    %load_ext floyd
    job = %floyd_run train.py --gpu 1 --data mnist:3:mnist --param lr=0.01
    %floyd_run train.py --env cpu --max-runtime 600 -m "baseline" -- --epochs 3

    %%floyd_run --param lr=0.1
    import os
    print("lr", os.environ["FLOYD_PARAM_LR"])

The job runs on a snapshot of the project's code (``/floyd/code``, minus ``.floydignore``); a
cell becomes the snapshot's ``floyd_cell_<hash>.py``. Both show a live monitor and return a
:class:`floyd.Job`. What an option leaves out comes from the project's ``floyd.yml``, as for
``floyd run``: the options become the one :class:`floyd.client.request.JobOptions`.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from floyd.client.errors import FloydAPIError, FloydClientError
from floyd.client.project_config import ConfigError, parse_param_flags
from floyd.client.request import JobOptions
from floyd.lab.job import Job
from floyd.lab.submit import submit_from_lab
from floyd.lab.targets import cell_script, script_or_notebook
from floyd.lab.workspace import code_dir, relative_to_code

USAGE = ("%floyd_run SCRIPT.py|NOTEBOOK.ipynb [--env NAME] [--gpu [N] | --cpu] [--data SRC[:MOUNT]]… "
         "[--param K=V]… [--max-runtime S] [-m MESSAGE] [--no-monitor] [-- SCRIPT ARGS]")


class MagicUsageError(FloydClientError):
    """Bad options: shown as one line, with no traceback."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise MagicUsageError(f"{message}. Usage: {USAGE}")

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        raise MagicUsageError(message or self.format_help())

    def print_help(self, file: Any = None) -> None:
        raise MagicUsageError(self.format_help())


def _parser(cell: bool) -> argparse.ArgumentParser:
    p = _Parser(prog="%%floyd_run" if cell else "%floyd_run", add_help=True,
                description="Run a script, a notebook or this cell as a background job of the project.")
    if not cell:
        p.add_argument("target", help="a .py script or .ipynb notebook in the project's code directory")
    p.add_argument("--env", dest="environment", help="environment (default: the platform's first)")
    p.add_argument("--gpu", type=int, nargs="?", const=1, default=None, metavar="N", help="N GPUs (alone: 1)")
    p.add_argument("--cpu", action="store_true", help="no GPU")
    p.add_argument("--cpus", type=float, help="CPUs, e.g. 0.5")
    p.add_argument("--memory", help="memory limit, e.g. 4G")
    p.add_argument("--data", action="append", default=[], metavar="SRC[:MOUNT]",
                   help="mount a dataset version (mnist:3:mnist) or a job's output (12/output); repeatable")
    p.add_argument("--param", action="append", default=[], metavar="K=V", help="a parameter; repeatable")
    p.add_argument("--max-runtime", type=int, metavar="S", help="stop the job after S seconds")
    p.add_argument("-m", "--message", help="describe the run")
    p.add_argument("--no-monitor", action="store_true", help="do not show the live monitor")
    p.add_argument("--wait", action="store_true", help="block until the job ends")
    return p


def split_line(line: str) -> tuple[list[str], list[str]]:
    """Magic options before ``--``, the script's own arguments after it."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise MagicUsageError(f"Cannot read the options: {exc}.") from None
    if "--" in words:
        i = words.index("--")
        return words[:i], words[i + 1:]
    return words, []


def parse_options(line: str, cell: bool = False) -> tuple[argparse.Namespace, list[str]]:
    words, script_args = split_line(line)
    ns = _parser(cell).parse_args(words)
    if ns.cpu and ns.gpu is not None:
        raise MagicUsageError("Use --cpu or --gpu, not both.")
    if ns.gpu is not None and ns.gpu < 0:
        raise MagicUsageError("--gpu takes a whole number of at least 0.")
    if ns.max_runtime is not None and ns.max_runtime < 0:
        raise MagicUsageError("--max-runtime takes a whole number of seconds (0 = no limit).")
    if cell and script_args:
        raise MagicUsageError("%%floyd_run takes no script arguments; use --param K=V.")
    return ns, script_args


@dataclass
class MagicRun:
    """What a ``%floyd_run`` line or cell asks for: what to run, the options, and the cell's script."""

    what: dict[str, str]
    options: JobOptions
    extra: dict[str, bytes] = field(default_factory=dict)


def job_options(ns: argparse.Namespace) -> JobOptions:
    try:
        return JobOptions(environment=ns.environment, gpus=0 if ns.cpu else ns.gpu, cpus=ns.cpus, memory=ns.memory,
                          data=list(ns.data), params=parse_param_flags(ns.param), max_runtime=ns.max_runtime,
                          message=ns.message)
    except ConfigError as exc:
        raise MagicUsageError(exc.message) from None


def checked(run: MagicRun) -> MagicRun:
    """Refuse bad values (``--memory lots``) here, as a usage error, before anything is uploaded."""
    try:
        run.options.settings()
    except ConfigError as exc:
        raise MagicUsageError(exc.message) from None
    return run


def prepare_line(line: str, cwd: Path | None = None, root: Path | None = None) -> MagicRun:
    """``train.py --gpu 1 …`` → the run (paths taken from the notebook's directory)."""
    ns, script_args = parse_options(line)
    root = root or code_dir()
    rel = relative_to_code(ns.target, root, cwd or Path.cwd())
    return checked(MagicRun(script_or_notebook(rel, script_args), job_options(ns)))


def prepare_cell(line: str, cell: str) -> MagicRun:
    """The cell's code → the run, with the extra snapshot file that holds it."""
    ns, _ = parse_options(line, cell=True)
    name, data, command = cell_script(cell)
    return checked(MagicRun({"command": command}, job_options(ns), {name: data}))


def _options(line: str, cell: bool) -> argparse.Namespace:
    return parse_options(line, cell)[0]


def start(run: MagicRun, show_monitor: bool, wait: bool) -> Job:
    submitted = submit_from_lab(run.what, run.options, run.extra or None)
    job = Job(submitted.result["job"]["id"], record=submitted.result["job"])
    up = submitted.upload
    sent = "unchanged code" if up.duplicate or not up.sent_files else f"{up.sent_files} file(s) sent"
    print(f"Job {job.name} queued (snapshot {submitted.snapshot[:19]}…, {sent}).")
    if show_monitor:
        try:
            from IPython.display import display

            display(job.monitor())
        except ImportError:  # no ipywidgets: the Job's methods still work
            print("(install ipywidgets for the live monitor; job.wait(), job.logs() work without it)")
    if wait:
        job.wait()
    return job


def run_line(line: str) -> Job:
    ns = _options(line, False)
    return start(prepare_line(line), not ns.no_monitor, ns.wait)


def run_cell(line: str, cell: str) -> Job:
    ns = _options(line, True)
    return start(prepare_cell(line, cell), not ns.no_monitor, ns.wait)


def _short_errors(fn: Any) -> Any:
    """Client and platform errors as one line (IPython's UsageError prints no traceback)."""
    from IPython.core.error import UsageError

    def wrapper(*args: Any) -> Any:
        try:
            return fn(*args)
        except MagicUsageError as exc:
            raise UsageError(exc.message) from None
        except FloydAPIError as exc:
            raise UsageError(f"The platform refused ({exc.status}): {exc.message}") from None
        except FloydClientError as exc:
            raise UsageError(exc.message) from None

    wrapper.__doc__ = fn.__doc__
    wrapper.__name__ = fn.__name__
    return wrapper


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext floyd``: register ``%floyd_run`` / ``%%floyd_run``."""

    @_short_errors
    def floyd_run(line: str, cell: str | None = None) -> Job:
        """Run SCRIPT.py / NOTEBOOK.ipynb (line magic) or this cell (cell magic) as a background job.

        %floyd_run train.py --gpu 1 --data mnist:3:mnist --param lr=0.01 [--env E] [--max-runtime S] [-m MSG]
        %%floyd_run [OPTIONS]   (the cell's code becomes the job's script)
        """
        if cell is None:
            return run_line(line)
        return run_cell(line, cell)

    ipython.register_magic_function(floyd_run, magic_kind="line_cell", magic_name="floyd_run")
