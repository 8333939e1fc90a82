"""The most one workspace or one job may ask for: one setting shared by both."""

from __future__ import annotations

from dataclasses import dataclass

from traitlets import Float, Integer, Unicode
from traitlets.config import LoggingConfigurable

from jobs_bridge.resources.environments import parse_memory


@dataclass(frozen=True)
class Limits:
    """The limits as values (memory in bytes), checked once at start-up."""

    max_cpus: float
    max_memory: int
    max_gpus: int


class ResourceLimits(LoggingConfigurable):
    """Upper bounds on what a user may ask for; workspaces and jobs both check against them."""

    max_cpus = Float(8.0, help="Most CPUs a workspace or a job may ask for (default 8).").tag(config=True)
    max_memory = Unicode(
        "32G", help="Most memory a workspace or a job may ask for: bytes, or a size like '32G' (default 32G)."
    ).tag(config=True)
    max_gpus = Integer(4, help="Most GPUs one workspace or one job may hold (default 4).").tag(config=True)

    def values(self) -> Limits:
        """The limits with memory in bytes; a malformed size is a FloydError naming the setting."""
        return Limits(self.max_cpus, parse_memory(self.max_memory, "c.ResourceLimits.max_memory"), self.max_gpus)
