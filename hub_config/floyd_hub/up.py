"""``make up``: start JupyterHub (which starts the proxy and the Floyd bridge) and say how to log in."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from floyd_hub.auth import ensure_password_file
from floyd_hub.lifeline import die_with_parent, stop_left_behind, write_pid_file

HUB_PID_FILE = "floyd-up-jupyterhub.pid"
CONFIG_STUB = "from floyd_hub.settings import configure\nconfigure(c)\n"


def find_config(root: Path) -> Path:
    here = Path("hub_config/jupyterhub_config.py")
    if here.exists():
        return here.resolve()
    stub = root / "jupyterhub_config.py"
    if not stub.exists():
        stub.write_text(CONFIG_STUB)
    return stub


def wait_until_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        for path in ("hub/api", "services/floyd/api/v1/info"):
            try:
                urllib.request.urlopen(url + path, timeout=2).read()
            except Exception:
                break
        else:
            return True
        time.sleep(0.5)
    return False


def start_hub(root: Path, cmd: list[str]) -> subprocess.Popen[bytes]:
    """JupyterHub, which gets SIGTERM (a clean stop) should this launcher die; a hub that a
    crashed launcher left running is stopped first (its proxy and services die with it)."""
    pid_file = root / HUB_PID_FILE
    stop_left_behind(pid_file, "jupyterhub")
    me = os.getpid()
    proc = subprocess.Popen(cmd, cwd=root, preexec_fn=lambda: die_with_parent(me))
    write_pid_file(pid_file, proc.pid, me)
    return proc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", default=os.environ.get("FLOYD_ROOT", "var"), help="storage root (FLOYD_ROOT)")
    parser.add_argument("--port", default=os.environ.get("FLOYD_HUB_PORT", "8000"))
    args, extra = parser.parse_known_args(argv)
    root = Path(args.root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    os.environ["FLOYD_ROOT"] = str(root)
    os.environ["FLOYD_HUB_PORT"] = str(args.port)
    admin = os.environ.get("FLOYD_ADMIN_USER", "admin")
    first_run = not (root / "admin-password").exists()
    password = ensure_password_file(root / "admin-password")
    config = find_config(root)
    proc = start_hub(root, [sys.executable, "-m", "jupyterhub", "-f", str(config), *extra])
    url = f"http://127.0.0.1:{args.port}/"

    def forward(signum: int, _frame: object) -> None:
        proc.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    if wait_until_up(url, proc):
        lines = [
            "",
            f"  Floyd Workspaces is up at {url}",
            f"  Log in as '{admin}' with password: {password}" if first_run else
            f"  Log in as '{admin}' (password in {root / 'admin-password'})",
            f"  Others sign up at {url}hub/signup; approve them at {url}hub/authorize",
            f"  CLI: floyd login {url}",
            "  Ctrl-C stops the platform; running jobs and endpoints go on and the next start takes them back.",
            "",
        ]
        print("\n".join(lines), flush=True)
    code = proc.wait()
    return 0 if code in (0, -signal.SIGINT, -signal.SIGTERM) else code


if __name__ == "__main__":
    sys.exit(main())
