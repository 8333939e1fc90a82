"""Jobs from inside a workspace: take a snapshot of ``/floyd/code`` and submit, and ``floyd.Job``.

Shared by the IPython magics (``%floyd_run``), the widgets and the Jupyter server extension, so a
job started from a notebook, from the Lab's Run button or from ``floyd run`` is the same request.
Everything goes through :class:`floyd.client.FloydClient`; inside a workspace it authenticates
with the workspace's own ``JUPYTERHUB_API_TOKEN`` (``FLOYD_URL`` is set by the spawner).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shlex
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from floyd.client import FloydClient, load_config
from floyd.client.errors import FloydClientError
from floyd.client.hashing import LocalFile, StatCache, hash_files, scan
from floyd.client.ignore import IgnoreRules
from floyd.client.progress import ProgressObserver
from floyd.client.project_config import find_project_dir, param_value, parse_input
from floyd.client.transfer import UploadResult, send_missing

ENDED = frozenset({"succeeded", "failed", "stopped", "timed_out", "lost"})


# -- where things are ------------------------------------------------------------------------
def code_dir() -> Path:
    """The project's files: ``FLOYD_CODE`` (``/floyd/code`` in a workspace container)."""
    return Path(os.environ.get("FLOYD_CODE") or "/floyd/code")


def jobs_dir() -> Path:
    """Past jobs of the workspace's project, read-only: ``FLOYD_JOBS`` (``/floyd/jobs``)."""
    return Path(os.environ.get("FLOYD_JOBS") or "/floyd/jobs")


def input_dir() -> Path:
    return Path(os.environ.get("FLOYD_INPUT") or "/floyd/input")


def workspace_project(start: Path | None = None) -> str:
    """``OWNER/PROJECT``: ``FLOYD_PROJECT`` in a workspace, else the ``.floydexpt`` above ``start``."""
    project = os.environ.get("FLOYD_PROJECT", "").strip()
    if project:
        if project.count("/") != 1:
            raise FloydClientError(f"FLOYD_PROJECT={project!r} is not OWNER/PROJECT.")
        return project
    found = find_project_dir(start or Path.cwd())
    if found is None:
        raise FloydClientError("No project: FLOYD_PROJECT is not set (it is in a workspace) and no .floydexpt "
                               "is here or above; run `floyd init PROJECT` in the code directory.")
    return found[1]


def make_client() -> FloydClient:
    """A client for the workspace's user (``FLOYD_URL`` + ``JUPYTERHUB_API_TOKEN``, or ``floyd login``)."""
    return FloydClient.from_config(load_config())


# -- what to run -----------------------------------------------------------------------------
def relative_to_code(path: str | Path, root: Path, base: Path | None = None) -> str:
    """``path`` (absolute, or relative to ``base``, else to ``root``) as a POSIX path inside ``root``."""
    p = Path(path)
    candidates = [p] if p.is_absolute() else [(base or root) / p, root / p]
    real_root = root.resolve()
    for c in candidates:
        if c.exists():
            try:
                return c.resolve().relative_to(real_root).as_posix()
            except ValueError:
                raise FloydClientError(f"{path} is outside the code directory {root}; only files under it go "
                                       "into the job's snapshot.") from None
    raise FloydClientError(f"{path}: no such file in {base or root}.")


def script_command(rel: str, args: list[str] | None = None) -> str:
    """``python train.py`` run in the script's own directory (as the notebook's cwd would be)."""
    folder, _, name = rel.rpartition("/")
    cmd = " ".join(shlex.quote(a) for a in ["python", name, *(args or [])])
    return f"cd {shlex.quote(folder)} && {cmd}" if folder else cmd


def what_to_run(rel: str, args: list[str] | None = None) -> dict:
    """A path inside the code directory → ``{"notebook": …}`` or ``{"command": "python …"}``."""
    if rel.endswith(".ipynb"):
        if args:
            raise FloydClientError("A notebook takes no arguments; pass values with --param NAME=VALUE.")
        return {"notebook": rel}
    if rel.endswith(".py"):
        return {"command": script_command(rel, args)}
    raise FloydClientError(f"{rel}: run a .py script or a .ipynb notebook.")


def cell_script(code: str) -> tuple[str, bytes, str]:
    """A ``%%floyd_run`` cell → (file name, bytes, command).

    Plain Python becomes ``floyd_cell_<hash>.py`` run with ``python``; a cell with IPython syntax
    (``!pip …``, ``%time``) becomes ``floyd_cell_<hash>.ipy`` run with ``ipython``, which the
    environment image has (it runs JupyterLab)."""
    text = code.strip("\n") + "\n"
    if not text.strip():
        raise FloydClientError("The cell is empty: put the code the job should run below %%floyd_run.")
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    try:
        compile(text, "<cell>", "exec")
        is_python = True
    except SyntaxError as exc:
        is_python = False
        from IPython.core.inputtransformer2 import TransformerManager

        transformed = TransformerManager().transform_cell(text)
        try:
            compile(transformed, "<cell>", "exec")
        except SyntaxError:
            raise FloydClientError(f"The cell has a syntax error (line {exc.lineno}): {exc.msg}") from None
    name = f"floyd_cell_{digest}.{'py' if is_python else 'ipy'}"
    header = "# Written by %%floyd_run from a notebook cell.\n"
    command = f"python {name}" if is_python else f"ipython --quick --no-banner {name}"
    return name, (header + text).encode(), command


def job_inputs(items: list[Any] | None) -> list[dict] | None:
    """``["mnist:3:digits", {"source": "12/output", "mount": "m"}]`` → the bridge's ``inputs``."""
    if not items:
        return None
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(parse_input(item))
        elif isinstance(item, dict) and isinstance(item.get("source"), str):
            entry = {"source": item["source"].strip()}
            mount = item.get("mount") or item.get("destination")
            if mount:
                entry["mount"] = str(mount)
            out.append(entry)
        else:
            raise FloydClientError(f"Cannot read dataset {item!r}: use SRC[:MOUNT], e.g. mnist:3:digits.")
    return out


def expand_source(source: str, project: str) -> str:
    """``12/output`` is job 12 of this project (as ``floyd run --data`` reads it)."""
    parts = source.strip("/").split("/")
    if len(parts) == 2 and parts[0].isdigit() and parts[1] == "output":
        return f"{project}/{parts[0]}/output"
    return source


@dataclass
class RunRequest:
    """What to run and with what; ``spec()`` is the bridge's job request without project/snapshot."""

    what: dict
    environment: str | None = None
    gpus: int | None = None
    cpus: float | None = None
    memory: str | None = None
    datasets: list[Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    max_runtime: int | None = None
    message: str | None = None

    def spec(self, project: str) -> dict:
        body: dict[str, Any] = dict(self.what)
        for key in ("environment", "gpus", "cpus", "memory", "max_runtime", "message"):
            value = getattr(self, key)
            if value is not None and value != "":
                body[key] = value
        inputs = job_inputs(self.datasets)
        if inputs:
            body["inputs"] = [{**i, "source": expand_source(i["source"], project)} for i in inputs]
        if self.params:
            body["params"] = {str(k): param_value(v) for k, v in self.params.items()}
        return body


# -- snapshot and submit -----------------------------------------------------------------------
def snapshot(client: FloydClient, project: str, root: Path, extra: dict[str, bytes] | None = None,
             message: str = "", observer: ProgressObserver | None = None) -> UploadResult:
    """Upload ``root`` (minus ``.floydignore``) as a code snapshot, plus ``extra`` files at the top.

    The extra files (a ``%%floyd_run`` cell's script) go into the snapshot only, never into the
    workspace's directory; they are written to a temporary directory so the upload protocol can
    hash and send them like any other file."""
    observer = observer or ProgressObserver()
    owner, name = project.split("/", 1)
    if not root.is_dir():
        raise FloydClientError(f"The code directory {root} does not exist (set FLOYD_CODE).")
    keep = IgnoreRules.for_directory(root).keep
    extra = extra or {}
    files = [f for f in scan(root, observer) if keep(f.path) and f.path not in extra]
    with tempfile.TemporaryDirectory(prefix="floyd-cell-") as tmp:
        for rel, data in extra.items():
            path = Path(tmp) / rel.replace("/", "_")
            path.write_bytes(data)
            st = path.stat()
            files.append(LocalFile(rel, str(path), st.st_size, (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)))
        files.sort(key=lambda f: f.path)
        cache = _stat_cache()
        try:
            hashes = hash_files(files, cache, observer)
        finally:
            if cache is not None:
                cache.close()
        manifest = [{"path": f.path, "size": f.size, "hash": f"sha256:{hashes[f.path]}"} for f in files]
        by_hash: dict[str, LocalFile] = {}
        for f in files:
            by_hash.setdefault(f"sha256:{hashes[f.path]}", f)
        status = client.start_snapshot(owner, name, manifest, message)
        return send_missing(client, status, manifest, by_hash, observer)


def _stat_cache() -> StatCache | None:
    try:
        return StatCache()
    except Exception:  # a read-only home: hash everything, it is only slower
        return None


def submit(request: RunRequest, project: str | None = None, root: Path | None = None,
           extra: dict[str, bytes] | None = None, client: FloydClient | None = None) -> dict:
    """Snapshot the code and submit the job; returns the bridge's answer plus ``snapshot`` facts."""
    client = client or make_client()
    project = project or workspace_project()
    root = root or code_dir()
    up = snapshot(client, project, root, extra)
    snap = up.version["id"]
    result = client.submit_job({"project": project, "snapshot": snap, **request.spec(project)})
    return {**result, "snapshot": snap, "duplicate": up.duplicate, "files": up.files,
            "sent_files": up.sent_files, "sent_bytes": up.sent_bytes}


# -- floyd.Job ---------------------------------------------------------------------------------
def parse_job_name(name: str | int, project: str | None = None) -> tuple[str, str, int]:
    """``12`` (a job of the workspace's project), ``PROJECT/12`` or ``OWNER/PROJECT/12``."""
    text = str(name).strip().strip("/")
    parts = [p for p in text.split("/") if p]
    if parts and parts[-1] == "output":
        parts.pop()
    if not 1 <= len(parts) <= 3 or not parts[-1].isdigit():
        raise FloydClientError(f"Cannot read job name {name!r}: use N, PROJECT/N or OWNER/PROJECT/N.")
    number = int(parts[-1])
    if len(parts) == 3:
        return parts[0], parts[1], number
    owner, proj = (project or workspace_project()).split("/", 1)
    if len(parts) == 2:
        return owner, parts[0], number
    return owner, proj, number


def parse_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def elapsed(record: dict, now: float | None = None) -> float | None:
    """Seconds the job has run (or ran); None before it started."""
    if record.get("duration") is not None and record.get("state") in ENDED:
        return float(record["duration"])
    started = parse_time(record.get("started_at"))
    if started is None:
        return None
    finished = parse_time(record.get("finished_at"))
    return max(0.0, (finished or now or time.time()) - started)


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{seconds:.1f}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


class Job:
    """A job of the platform, seen from a notebook.

    >>> job = floyd.Job(3)           # job 3 of the workspace's project (or "proj/3", "alice/proj/3")
    >>> job.state, job.wait(600), job.logs()[-200:], job.metrics()["loss"][-1]
    >>> job.monitor()                # a live widget: state, time, log tail, metrics, Stop
    """

    def __init__(self, name: str | int, record: dict | None = None, client: FloydClient | None = None) -> None:
        self.owner, self.project, self.number = parse_job_name(name)
        self._client = client
        self.record: dict = record or {}

    @property
    def name(self) -> str:
        return f"{self.owner}/{self.project}/{self.number}"

    @property
    def client(self) -> FloydClient:
        if self._client is None:
            self._client = make_client()
        return self._client

    @property
    def args(self) -> tuple[str, str, int]:
        return self.owner, self.project, self.number

    def refresh(self) -> dict:
        self.record = self.client.job(*self.args)
        return self.record

    @property
    def state(self) -> str:
        """The current state (asks the platform unless the job already ended)."""
        if self.record.get("state") not in ENDED:
            self.refresh()
        return self.record["state"]

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    def logs(self) -> str:
        return self.client.job_log(*self.args)

    def follow(self, out: Callable[[str], None] = print) -> str:
        """Print the log from the first line until the job ends; return the final state."""
        for event, data in self.client.follow_job_log(*self.args):
            if event == "line":
                out(data)
            elif event == "end":
                break
        return self.refresh()["state"]

    def metrics(self) -> dict[str, list[dict]]:
        """``{name: [{"step", "value", "ts"}, …]}``: lines like ``{"metric": "loss", "value": 0.1}``."""
        return self.client.job_metrics(*self.args)["series"]

    def stop(self) -> dict:
        self.record = self.client.stop_job(*self.args)
        return self.record

    def wait(self, timeout: float | None = None, interval: float = 1.0) -> str:
        """Block until the job ends; return its state. ``TimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = self.refresh()["state"]
            if state in ENDED:
                return state
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"Job {self.name} is still {state} after {timeout:g}s.")
            time.sleep(interval if deadline is None else max(0.05, min(interval, deadline - time.monotonic())))

    @property
    def output_dir(self) -> Path | None:
        """Where the job's output is mounted in this workspace (jobs of its own project only)."""
        if os.environ.get("FLOYD_PROJECT") != f"{self.owner}/{self.project}":
            return None
        return jobs_dir() / str(self.number) / "output"

    def output_files(self, path: str = "") -> list[dict]:
        return self.client.job_output_files(*self.args, path=path, recursive=True)

    def monitor(self, **kwargs: Any) -> Any:
        """A live ipywidgets monitor (returned; a notebook displays it)."""
        from floyd.lab.widgets import JobMonitor

        return JobMonitor(self, **kwargs)

    def __repr__(self) -> str:
        state = self.record.get("state", "?")
        return f"<floyd.Job {self.name} {state}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.args == self.args

    def __hash__(self) -> int:
        return hash(self.args)


# -- workspace defaults (for the Lab's Run dialog) -----------------------------------------------
def mounted_datasets(root: Path | None = None) -> list[dict]:
    """The datasets mounted under ``/floyd/input``: ``{mount, path, ref}``; ``ref`` (``alice/mnist:3``)
    when the mount can be traced back to ``datasets/<owner>/<name>/<version>`` of the store (the
    bind mount's source in /proc/self/mountinfo, or the link target under the local spawner)."""
    root = root or input_dir()
    if not root.is_dir():
        return []
    sources = _mount_sources()
    out = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if not entry.is_dir():
            continue
        source = os.path.realpath(entry) if entry.is_symlink() else sources.get(str(entry), "")
        out.append({"mount": entry.name, "path": str(entry), "ref": _ref_of(source), "source": source or None})
    return out


def _mount_sources() -> dict[str, str]:
    found: dict[str, str] = {}
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return found
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 4:
            found[_unescape(fields[4])] = _unescape(fields[3])
    return found


def _unescape(text: str) -> str:
    return text.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def _ref_of(source: str) -> str | None:
    parts = source.rstrip("/").split("/")
    if len(parts) >= 4 and parts[-4] == "datasets" and parts[-1].isdigit():
        return f"{parts[-3]}/{parts[-2]}:{parts[-1]}"
    if len(parts) >= 5 and parts[-5] == "jobs" and parts[-1] == "output" and parts[-2].isdigit():
        return f"{parts[-4]}/{parts[-3]}/{parts[-2]}/output"
    return None


def notebook_parameters(path: Path) -> dict[str, Any]:
    """``name = value`` assignments of the cell tagged ``parameters`` (literals; else the source text)."""
    try:
        nb = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FloydClientError(f"Cannot read notebook {path.name}: {exc}") from None
    for cell in nb.get("cells") or []:
        tags = (cell.get("metadata") or {}).get("tags") or []
        if cell.get("cell_type") != "code" or "parameters" not in tags:
            continue
        source = cell.get("source") or ""
        source = "".join(source) if isinstance(source, list) else source
        return assignments(source)
    return {}


def assignments(source: str) -> dict[str, Any]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    out: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                try:
                    out[target.id] = ast.literal_eval(value)
                    json.dumps(out[target.id])
                except (ValueError, TypeError, SyntaxError):
                    out[target.id] = ast.get_source_segment(source, value)
    return out
