"""The processes of a platform, read from /proc: its tree, what each one is, whether it lives."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

ROLES = {"jupyterhub_idle_culler": "culler", "jobs_bridge": "bridge", "configurable-http-proxy": "proxy",
         "jupyterhub": "hub", "floyd-up": "floyd-up"}


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def alive(pid: int) -> bool:
    """Running (a zombie nobody reaped yet is dead)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def role(pid: int) -> str | None:
    """What the process is: the first of ROLES that a word of its command line names (a module
    after -m, a script's path), so ``floyd_hub.lifeline ... -- python -m jobs_bridge`` is the bridge."""
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    names = {os.path.basename(w) for w in words}
    return next((r for key, r in ROLES.items() if key in names), None) if alive(pid) else None


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` by parent link (whatever its session or group)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def tree_roles(pid: int) -> dict[int, str]:
    """``pid`` and its descendants that have a role: {pid: role}."""
    return {p: r for p in {pid, *descendants(pid)} if (r := role(p))}


def of_root(root: Path) -> dict[int, str]:
    """Every process of the machine that works in ``root`` (cwd or FLOYD_ROOT), orphans included."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if (cwd == str(root) or f"FLOYD_ROOT={root}".encode() in environ) and (r := role(int(entry.name))):
            found[int(entry.name)] = r
    return found


def wait_dead(pids: set[int], timeout: float) -> set[int]:
    """The ones still alive after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (left := {p for p in pids if alive(p)}) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def kill_all(pids: set[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
