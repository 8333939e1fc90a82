"""A swarm job's CPU, memory and GPU use, whatever node it runs on.

The bridge reaches only the manager's engine, and an engine gives container stats only for its
own containers, so ``docker stats`` cannot be asked for a job on another node. Instead the job's
container copies its own cgroup counters (v1 or v2), its uptime and, where ``nvidia-smi`` exists,
its GPUs' line to a file on the shared storage root every few seconds (a shell loop beside the
command: no Python needed in the image); the bridge reads that file and turns two samples into a
CPU percentage of one CPU, as ``docker stats`` does.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from jobs_bridge.executors.contract import Mount, RunSpec, give_to_container_user
from jobs_bridge.resources.gpus import parse_utilization

STATS_TARGET = "/floyd/.stats"  # in the container: a directory of the job's own on the shared root
STATS_LABEL = "org.floyd.stats"  # the host path of the sample file, so an adopted job is read too
UPTIME = "/proc/uptime"
CPU_V2, MEMORY_V2 = "/sys/fs/cgroup/cpu.stat", "/sys/fs/cgroup/memory.current"
CPU_V1, MEMORY_V1 = "/sys/fs/cgroup/cpuacct/cpuacct.usage", "/sys/fs/cgroup/memory/memory.usage_in_bytes"
GPUS = "nvidia-smi"


def sampler_argv(argv: list[str], interval: float) -> list[str]:
    """``argv`` with the sampling loop started beside it (the loop ends with the container)."""
    files = " ".join((UPTIME, CPU_V2, MEMORY_V2, CPU_V1, MEMORY_V1))
    out = f"{STATS_TARGET}/sample"
    loop = (f'(while :; do {{ for f in {files}; do [ -r "$f" ] && echo "== $f" && cat "$f"; done; '
            f'command -v nvidia-smi >/dev/null 2>&1 && echo "== {GPUS}" && nvidia-smi '
            '--query-gpu=uuid,utilization.gpu,memory.used --format=csv,noheader,nounits; true; } '
            f'> {out}.tmp 2>/dev/null && mv -f {out}.tmp {out}; sleep {interval:g}; done) & exec "$@"')
    return ["sh", "-c", loop, "floyd-stats", *argv]


def with_sampler(spec: RunSpec, interval: float) -> RunSpec:
    """The job's RunSpec with its stats directory (created, the container user's) mounted and the
    loop around its command."""
    host_dir = Path(spec.workdir) / "stats"
    host_dir.mkdir(parents=True, exist_ok=True)
    give_to_container_user(host_dir, dir_mode=0o755)
    return dataclasses.replace(
        spec, argv=sampler_argv(spec.argv, interval), mounts=[*spec.mounts, Mount(str(host_dir), STATS_TARGET, False)],
        labels={**spec.labels, STATS_LABEL: str(host_dir / "sample")})


def sections(text: str) -> dict[str, str]:
    """The sample file's ``== SOURCE`` sections."""
    out: dict[str, str] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("== "):
            current = line[3:].strip()
            out[current] = ""
        elif current:
            out[current] += line + "\n"
    return out


def _number(text: str | None) -> int | None:
    try:
        return int(text.split()[0]) if text else None
    except (ValueError, IndexError):
        return None


def cpu_ns(parts: dict[str, str]) -> int | None:
    """Nanoseconds of CPU the container used so far (cgroup v2 ``usage_usec``, v1 ``cpuacct.usage``)."""
    for line in parts.get(CPU_V2, "").splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec" and value.strip().isdigit():
            return int(value) * 1000
    return _number(parts.get(CPU_V1))


@dataclasses.dataclass
class StatsReader:
    """Reads sample files; keeps each job's previous CPU counter to make a percentage of it."""

    stale_after: float = 30.0  # seconds: an older sample is a job that ended or a loop that died
    _last: dict[str, tuple[float, int]] = dataclasses.field(default_factory=dict)

    def read(self, path: str) -> dict[str, float]:
        try:
            p = Path(path)
            if time.time() - p.stat().st_mtime > self.stale_after:
                return {}
            parts = sections(p.read_text(errors="replace"))
        except OSError:
            return {}
        out: dict[str, float] = {}
        memory = _number(parts.get(MEMORY_V2)) or _number(parts.get(MEMORY_V1))
        if memory is not None:
            out["system/memory_bytes"] = float(memory)
        used = cpu_ns(parts)
        uptime = parts.get(UPTIME, "").split()
        if used is not None and uptime:
            now = float(uptime[0])
            before = self._last.get(path)
            self._last[path] = (now, used)
            if before and now > before[0]:
                out["system/cpu_percent"] = 100.0 * (used - before[1]) / ((now - before[0]) * 1e9)
        if parts.get(GPUS):  # the container sees only its own GPUs
            ids = [line.split(",")[0].strip() for line in parts[GPUS].splitlines() if line.strip()]
            out.update(parse_utilization(parts[GPUS], ids))
        return out

    def forget(self, path: str) -> None:
        self._last.pop(path, None)
