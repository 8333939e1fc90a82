"""Where things are in a workspace, and what the Lab's dialogs start from.

A workspace container has the project's code at ``FLOYD_CODE`` (``/floyd/code``), its past jobs
at ``FLOYD_JOBS`` and its datasets at ``FLOYD_INPUT``; the spawner sets ``FLOYD_URL``,
``FLOYD_PROJECT`` and the token. Outside one (tests, a local server) the same variables, or a
``.floydexpt`` above the working directory, say the same.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path
from typing import Any

from floyd.client import FloydClient, load_config
from floyd.client.errors import FloydClientError
from floyd.client.project_config import find_project_dir


def code_dir() -> Path:
    """The project's files: ``FLOYD_CODE`` (``/floyd/code`` in a workspace container)."""
    return Path(os.environ.get("FLOYD_CODE") or "/floyd/code")


def jobs_dir() -> Path:
    """Past jobs of the workspace's project, read-only: ``FLOYD_JOBS`` (``/floyd/jobs``)."""
    return Path(os.environ.get("FLOYD_JOBS") or "/floyd/jobs")


def job_output_dir(number: int) -> Path:
    """Where job ``number`` of the workspace's project shows its output (``/floyd/jobs/N/output``)."""
    return jobs_dir() / str(number) / "output"


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


# -- what the Run dialog starts from -------------------------------------------------------------
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
