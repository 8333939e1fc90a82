"""Platform processes that do not outlive their parent, and pid files for what a crash left behind.

JupyterHub starts the proxy and its managed services (the bridge, the idle culler) in sessions of
their own, so a crash of the hub (``kill -9`` of the ``make up`` group, the OOM killer) used to
leave them running: the next start then had two cullers and an old bridge holding its port.

``python -m floyd_hub.lifeline [--parent PID] [--pid-file F] -- CMD...`` asks the kernel to send
SIGTERM when the parent dies (``PR_SET_PDEATHSIG``, kept across ``exec``), then, with a pid file,
stops the process a previous start left there if it is an orphan (its parent is gone), records
itself and ``exec``s CMD: same pid, so JupyterHub's own bookkeeping is unchanged.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int, sig: int = signal.SIGTERM) -> None:
    """Get ``sig`` when ``parent`` dies; at once if it is already gone. Linux only (a no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:  # it died before the request: nobody would send the signal
        os.kill(os.getpid(), sig)


@dataclass(frozen=True)
class ProcInfo:
    """What /proc says of a process: enough to tell it from a later one with the same pid."""

    pid: int
    ppid: int
    start: int  # clock ticks after boot: a reused pid has another
    zombie: bool


def proc_info(pid: int) -> ProcInfo | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state, ppid, ... starttime (22nd)
    return ProcInfo(pid, int(fields[1]), int(fields[19]), fields[0] == "Z")


def write_pid_file(path: Path, pid: int, parent: int) -> None:
    """``pid start parent``: the process, and the parent it dies with."""
    me = proc_info(pid)
    if me is None:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{pid} {me.start} {parent}\n")
    tmp.replace(path)


def left_behind(path: Path) -> ProcInfo | None:
    """The process recorded in ``path`` if it still runs and its parent is gone (an orphan).

    A process whose recorded parent still has it belongs to a platform that is up (a second
    start on the same FLOYD_ROOT): that one is left alone."""
    try:
        pid, start, parent = (int(x) for x in path.read_text().split()[:3])
    except (OSError, ValueError):
        return None
    info = proc_info(pid)
    if info is None or info.zombie or info.start != start or info.ppid == parent:
        return None
    return info


def stop(info: ProcInfo, timeout: float = 15) -> None:
    """SIGTERM (and SIGCONT, should it be stopped), then SIGKILL after ``timeout`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGCONT):
        os.kill(info.pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = proc_info(info.pid)
        if now is None or now.zombie or now.start != info.start:
            return
        time.sleep(0.1)
    os.kill(info.pid, signal.SIGKILL)


def stop_left_behind(path: Path, label: str) -> None:
    stale = left_behind(path)
    if stale is not None:
        print(f"floyd lifeline: stopping {label} (pid {stale.pid}), left running by a previous start "
              "whose parent is gone", file=sys.stderr, flush=True)
        try:
            stop(stale)
        except ProcessLookupError:
            pass


def wrap(cmd: list[str], parent: int, pid_file: Path | None = None) -> list[str]:
    """``cmd`` run through this module (for JupyterHub's service and proxy commands)."""
    extra = ["--pid-file", str(pid_file)] if pid_file else []
    return [sys.executable, "-m", "floyd_hub.lifeline", "--parent", str(parent), *extra, "--", *cmd]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m floyd_hub.lifeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--parent", type=int, default=os.getppid(), help="the process to die with")
    parser.add_argument("--pid-file", type=Path, help="stop the orphan recorded here, then record this process")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    args = parser.parse_args(argv)
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        parser.error("no command")
    die_with_parent(args.parent)
    if args.pid_file:
        stop_left_behind(args.pid_file, " ".join(cmd[:3]))
        write_pid_file(args.pid_file, os.getpid(), args.parent)
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main()
