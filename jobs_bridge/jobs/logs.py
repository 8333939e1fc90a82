"""Live, persisted job logs: every line is appended to ``jobs/…/logs/output.log`` and pushed
to followers; a follower that connects late reads the file first, then the live tail, by
line number, so it sees every line exactly once."""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from pathlib import Path

from jobs_bridge.errors import storage_full

END = None  # pushed to followers when the job's output is complete


MAX_UNWRITTEN = 8 << 20  # bytes of output held in memory while the disk is full


class LogStore:
    """A job's log file and its followers. A full disk does not stop the job's watch: lines
    that cannot be written wait in memory (up to ``MAX_UNWRITTEN``) and go out with the next
    write that succeeds; ``disk_full`` remembers that it happened, for the job's reason."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._drop_torn_tail()
        self.count = self._count_lines()
        self.followers: set[asyncio.Queue] = set()
        self.complete = False
        self.disk_full = False
        self.dropped = 0  # lines lost for good (more than MAX_UNWRITTEN piled up)
        self._unwritten = bytearray()
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _drop_torn_tail(self) -> None:
        """Cut a last line without its newline: a write torn by a crash (kill -9, a full disk).
        Every line is written with its newline, and a reopened log counts only complete lines,
        so the process's stream is re-read from there; the torn piece would otherwise be glued
        to the front of that line when it is written again."""
        if not self.path.exists():
            return
        with open(self.path, "rb+") as f:
            end = f.seek(0, os.SEEK_END)
            pos = end
            while pos > 0:
                start = max(0, pos - (1 << 16))
                f.seek(start)
                block = f.read(pos - start)
                if pos == end and block.endswith(b"\n"):
                    return
                if (cut := block.rfind(b"\n")) >= 0:
                    f.truncate(start + cut + 1)
                    return
                pos = start
            f.truncate(0)

    def _count_lines(self) -> int:
        if not self.path.exists():
            return 0
        with open(self.path, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))

    def append(self, lines: list[str]) -> None:
        """Persist and publish (call on the event loop: followers are asyncio queues)."""
        data = "".join(line + "\n" for line in lines).encode("utf-8", "replace")
        if len(self._unwritten) + len(data) > MAX_UNWRITTEN:
            self.dropped += len(lines)
        else:
            self._unwritten += data
        self._write()
        first = self.count
        self.count += len(lines)
        for q in self.followers:
            q.put_nowait((first, lines))

    def _write(self) -> None:
        """Write what waits; on a full disk keep the rest for the next try."""
        while self._unwritten and self._fd is not None:
            try:
                written = os.write(self._fd, self._unwritten)
            except OSError as exc:
                if not storage_full(exc):
                    raise
                self.disk_full = True
                return
            del self._unwritten[:written]

    def finish(self) -> None:
        """The job ended: last try at what waits, then tell the followers."""
        if self.dropped:
            self._unwritten += f"[floyd] {self.dropped} line(s) of output were lost: the disk was full\n".encode()
        self._write()
        self.complete = True
        self.close()
        for q in self.followers:
            q.put_nowait(END)

    def close(self) -> None:
        """Let go of the file without ending the log (the bridge exits; the job goes on)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def read(self, start: int = 0) -> list[str]:
        with open(self.path, encoding="utf-8", errors="replace") as f:
            lines = f.read().split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return lines[start:]


def parse_metric(line: str) -> tuple[str, float, int | None] | None:
    """``{"metric": "loss", "value": 0.1, "step": 3}`` (or ``epoch``) → (name, value, step)."""
    if not line.startswith("{") or '"metric"' not in line:
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    name, value = data.get("metric"), data.get("value")
    if not isinstance(name, str) or not name or len(name) > 128 or isinstance(value, bool):
        return None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    step = data.get("step", data.get("epoch"))
    if not isinstance(step, int) or isinstance(step, bool):
        step = None
    return name, float(value), step


class MetricBuffer:
    """Metrics are written in batches (one insert per flush, not per line)."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, job_id: int, name: str, value: float, step: int | None) -> None:
        self.rows.append({"job_id": job_id, "name": name, "value": value, "step": step, "ts": time.time()})

    def take(self) -> list[dict]:
        rows, self.rows = self.rows, []
        return rows
