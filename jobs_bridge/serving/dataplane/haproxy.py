"""One HAProxy process: started with the bridge, dying with it, driven over its runtime API.

It runs in the foreground (``-db``) through ``floyd_hub.lifeline`` (``PR_SET_PDEATHSIG`` and a
pid file), so a bridge killed with ``kill -9`` takes it along and the next bridge stops one that
a crash left behind before binding the same port.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

CONNECT_TIMEOUT = 5.0


class RuntimeError_(Exception):
    """HAProxy's runtime API refused a command or could not be reached."""


class HAProxyProcess:
    def __init__(self, executable: str, config: Path, state: Path) -> None:
        self.executable = executable
        self.config = config
        self.state = state
        self.socket_path = state / "admin.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # one command batch at a time (the event loop and key reloads)

    def start(self, timeout: float = 10.0) -> None:
        """Start it and wait until the runtime API answers; RuntimeError_ with its output if not."""
        self.socket_path.unlink(missing_ok=True)
        log = open(self.state / "haproxy.log", "ab")
        cmd = [sys.executable, "-m", "floyd_hub.lifeline", "--pid-file", str(self.state / "haproxy.pid"), "--",
               self.executable, "-db", "-f", str(self.config)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError_(f"haproxy exited with status {self.proc.returncode}: {self.tail()}")
            try:
                self.command("show info")
                return
            except RuntimeError_:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError_(f"haproxy did not answer within {timeout:g} s: {self.tail()}") from None
                time.sleep(0.02)

    def tail(self, lines: int = 8) -> str:
        try:
            return " | ".join((self.state / "haproxy.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # SIGTERM: HAProxy stops at once (SIGUSR1 would wait for sessions)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def command(self, *lines: str) -> str:
        """Run commands in one connection (``;``-separated); their answers, concatenated."""
        with self._lock:
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.settimeout(CONNECT_TIMEOUT)
                    s.connect(str(self.socket_path))
                    s.sendall(("; ".join(lines) + "\n").encode())
                    chunks = []
                    while chunk := s.recv(1 << 16):
                        chunks.append(chunk)
            except OSError as exc:
                raise RuntimeError_(f"haproxy's runtime API did not answer: {exc}") from None
        return b"".join(chunks).decode(errors="replace")

    def apply(self, lines: list[str], batch: int = 200) -> None:
        """Commands whose answers must be empty or a known acknowledgement (raises on an error)."""
        for i in range(0, len(lines), batch):
            answer = self.command(*lines[i:i + batch])
            bad = [line for line in answer.splitlines() if line.strip() and not acknowledged(line)]
            if bad:
                raise RuntimeError_(f"haproxy refused: {bad[0]} (in {lines[i:i + batch][:3]}…)")

    def server_load(self, proxy_ids: list[int]) -> dict[tuple[str, str], tuple[int, int]]:
        """``(backend, server) → (in flight, queued)`` for the backends with these proxy ids, from
        ``show stat``; ``(backend, "BACKEND")`` holds the backend's own queue."""
        out: dict[tuple[str, str], tuple[int, int]] = {}
        if not proxy_ids:
            return out
        text = self.command(*(f"show stat {i} 6 -1" for i in proxy_ids))  # 2 (backend) + 4 (servers)
        for line in text.splitlines():
            if not line or line[0] == "#":
                continue
            px, _, rest = line.partition(",")
            fields = rest.split(",", 4)  # svname, qcur, qmax, scur, …
            out[(px, fields[0])] = (int(fields[3] or 0), int(fields[1] or 0))
        return out


ACKS = ("Done.", "Entry ", "IP changed", "no need to change", "port changed", "State of server")


def acknowledged(line: str) -> bool:
    """HAProxy answers some successful ``set server`` commands with a sentence."""
    return line.startswith(ACKS) or "changed from" in line
