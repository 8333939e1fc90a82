"""What a job from the Lab runs: a script or notebook of the code directory, or a notebook cell."""

from __future__ import annotations

import hashlib
import shlex

from floyd.client.errors import FloydClientError


def script_command(rel: str, args: list[str] | None = None) -> str:
    """``python train.py`` run in the script's own directory (as the notebook's cwd would be)."""
    folder, _, name = rel.rpartition("/")
    cmd = " ".join(shlex.quote(a) for a in ["python", name, *(args or [])])
    return f"cd {shlex.quote(folder)} && {cmd}" if folder else cmd


def script_or_notebook(rel: str, args: list[str] | None = None) -> dict:
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
