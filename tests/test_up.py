"""``make up``'s launcher: first start prints the login, Ctrl-C stops the platform's processes, a restart keeps ./var."""

from __future__ import annotations

import stat
import subprocess
import time
from pathlib import Path

import requests

from floyd.client import FloydClient
from floyd.client.transfer import upload
from tests.support.platform import Platform, write_tree


def processes_under(root: Path) -> list[str]:
    """Command lines of processes that belong to this platform (they all carry FLOYD_ROOT)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if f"FLOYD_ROOT={root}".encode() in environ and "pytest" not in cmdline:
            found.append(cmdline)
    return found


def test_first_start_restart_and_ctrl_c(tmp_path: Path) -> None:
    p = Platform.create(tmp_path)
    p.start()
    try:
        log = p.log_path.read_text()
        password = (p.root / "admin-password").read_text().strip()
        assert f"Log in as 'admin' with password: {password}" in log
        assert stat.S_IMODE((p.root / "admin-password").stat().st_mode) == 0o600
        assert (p.root / "db.sqlite").exists() and (p.root / "jupyterhub.sqlite").exists()
        p.admin.api("POST", "datasets", json={"name": "kept"})
        upload(FloydClient(p.url, p.admin.token), "admin", "kept", write_tree(tmp_path / "t", {"f": b"keep me"}))
        assert any("jobs_bridge" in c for c in processes_under(p.root))
        assert any("configurable-http-proxy" in c for c in processes_under(p.root))
    finally:
        p.stop()
    assert p.proc.returncode == 0
    time.sleep(1)
    assert processes_under(p.root) == []
    try:
        requests.get(p.url, timeout=2)
        raise AssertionError("something still answers on the hub's port")
    except requests.ConnectionError:
        pass

    # Again on the same ./var: nothing is lost, and the password is not printed twice.
    p.log_path.write_text("")
    p.start()
    try:
        log = p.log_path.read_text()
        assert "password: " not in log and "admin-password" in log
        assert FloydClient(p.url, p.admin.token).download("admin", "kept", 1, "f").content == b"keep me"
    finally:
        p.stop()


def test_help_of_the_launcher() -> None:
    out = subprocess.run([str(Path(__import__("sys").executable).parent / "floyd-up"), "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "--root" in out
