"""The one GPU allocator: devices are leased by id, so two holders never share a GPU.

Holders are strings such as ``workspace:alice/`` or ``job:alice/mnist/12``. Leases live in
the database, so a restarted bridge still knows who holds what.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker
from traitlets import List, Unicode
from traitlets.config import LoggingConfigurable

from jobs_bridge.errors import Conflict, Unprocessable
from jobs_bridge.orm import GpuLease

log = logging.getLogger("jobs_bridge.gpus")


def discover_gpus(nvidia_smi: str = "nvidia-smi") -> list[str]:
    """GPU indices reported by ``nvidia-smi``, or [] where there is none."""
    exe = shutil.which(nvidia_smi)
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20, check=True).stdout
    except (subprocess.SubprocessError, OSError) as exc:
        log.warning("nvidia-smi failed, assuming no GPUs: %s", exc)
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def parse_utilization(csv: str, devices: list[str]) -> dict[str, float]:
    """``nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader,nounits``
    output → metrics of the given devices (utilization in percent, memory in MiB)."""
    out: dict[str, float] = {}
    for line in csv.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3 or parts[0] not in devices:
            continue
        try:
            out[f"system/gpu{parts[0]}_utilization_percent"] = float(parts[1])
            out[f"system/gpu{parts[0]}_memory_mib"] = float(parts[2])
        except ValueError:
            continue
    return out


def gpu_utilization(devices: list[str], nvidia_smi: str = "nvidia-smi") -> dict[str, float]:
    """Utilization of ``devices`` where ``nvidia-smi`` exists ({} elsewhere)."""
    exe = shutil.which(nvidia_smi)
    if not exe or not devices:
        return {}
    try:
        out = subprocess.run([exe, "--query-gpu=index,utilization.gpu,memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return {}
    return parse_utilization(out, devices)


class GpuAllocator(LoggingConfigurable):
    """Leases GPU devices by id to workspaces and jobs (their holders)."""

    devices = List(
        Unicode(), default_value=None, allow_none=True,
        help="GPU device ids the allocator hands out (e.g. ['0', '1']). Default (None): what `nvidia-smi` "
        "reports, or none.",
    ).tag(config=True)

    def __init__(self, *, sessions: sessionmaker[Session], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sessions = sessions
        if self.devices is None:
            self.devices = discover_gpus()
        self._lock = threading.Lock()

    def leases(self) -> list[dict]:
        with self.sessions() as s:
            rows = s.scalars(select(GpuLease).order_by(GpuLease.device))
            held = {r.device: r for r in rows}
        return [{"device": d, "holder": held[d].holder if d in held else None,
                 "owner": held[d].owner if d in held else None} for d in self.devices]

    def held_by(self, holder: str) -> list[str]:
        with self.sessions() as s:
            return list(s.scalars(select(GpuLease.device).where(GpuLease.holder == holder).order_by(GpuLease.device)))

    def _plan(self, s: Session, holder: str, count: int) -> tuple[list[str], list[str]]:
        """(devices the holder keeps, devices it would newly get), or a 422/409 saying why not."""
        if count > len(self.devices):
            raise Unprocessable(
                f"{count} GPU(s) asked for, but this platform has {len(self.devices)}"
                + ("" if self.devices else " (no NVIDIA GPU was found; choose CPU)") + "."
            )
        mine = sorted(s.scalars(select(GpuLease.device).where(GpuLease.holder == holder)))
        if len(mine) >= count:
            return mine[:count], []
        taken = {r.device: r.holder for r in s.scalars(select(GpuLease))}
        free = [d for d in self.devices if d not in taken]
        need = count - len(mine)
        if len(free) < need:
            raise Conflict(f"{count} GPU(s) asked for, {len(free) + len(mine)} of {len(self.devices)} free; "
                           "try fewer, or again when one is released.")
        return mine, free[:need]

    def check_available(self, holder: str, count: int) -> list[str]:
        """What ``reserve`` would hand out, without leasing anything (for form validation)."""
        if count <= 0:
            return []
        with self.sessions() as s:
            kept, new = self._plan(s, holder, count)
            return sorted(kept + new)

    def reserve(self, holder: str, owner: str, count: int) -> list[str]:
        """Lease ``count`` free devices to ``holder`` (idempotent for the same holder)."""
        if count <= 0:
            return []
        with self._lock, self.sessions.begin() as s:
            kept, new = self._plan(s, holder, count)
            for device in new:
                s.add(GpuLease(device=device, holder=holder, owner=owner))
            return sorted(kept + new)

    def release(self, holder: str) -> list[str]:
        with self._lock, self.sessions.begin() as s:
            devices = list(s.scalars(select(GpuLease.device).where(GpuLease.holder == holder)))
            s.execute(delete(GpuLease).where(GpuLease.holder == holder))
            return devices
