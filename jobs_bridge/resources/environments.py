"""The admin's environment list: users choose from it, never an arbitrary image."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field

from jobs_bridge.errors import Unprocessable

MEMORY_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)i?B?$", re.IGNORECASE)  # openapi.yaml: Memory
UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}

DEFAULT_ENVIRONMENTS = [
    {
        "name": "cpu",
        "image": "floyd/cpu:latest",
        "description": "Python 3.11, JupyterLab, NumPy, pandas, scikit-learn, matplotlib",
        "gpu": False,
        "cpus": 2,
        "memory": "4G",
    },
]


def parse_memory(value: object, what: str = "memory") -> int:
    """'4G', '512M', 2147483648 → bytes; anything else is a 422 that shows valid values."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        m = MEMORY_RE.match(value.strip())
        if m:
            scaled = float(m.group(1)) * UNITS[m.group(2).upper()]
            amount = int(scaled) if math.isfinite(scaled) else 0  # hundreds of digits read as inf
            if amount > 0:
                return amount
    raise Unprocessable(f"Invalid {what} {value!r}: give bytes or a size like '512M' or '4G'.")


@dataclass(frozen=True)
class Environment:
    name: str
    image: str
    description: str = ""
    gpu: bool = False
    cpus: float = 1.0
    memory: int = 2 << 30
    node_labels: dict[str, str] = field(default_factory=dict)  # swarm runtime: run only on nodes with these

    def as_json(self) -> dict:
        return asdict(self)


class EnvironmentList:
    def __init__(self, raw: list[dict]) -> None:
        self.items: dict[str, Environment] = {}
        for i, item in enumerate(raw):
            if not isinstance(item, dict) or not item.get("name") or not item.get("image"):
                raise ValueError(
                    f"c.BridgeApp.environments[{i}] needs at least 'name' and 'image', e.g. "
                    "{'name': 'cpu', 'image': 'floyd/cpu:latest', 'gpu': False, 'cpus': 2, 'memory': '4G'}"
                )
            unknown = set(item) - {"name", "image", "description", "gpu", "cpus", "memory", "node_labels"}
            if unknown:
                raise ValueError(f"c.BridgeApp.environments[{i}] has unknown keys {sorted(unknown)}; allowed: "
                                 "name, image, description, gpu, cpus, memory, node_labels")
            labels = item.get("node_labels", {})
            if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
                raise ValueError(f"c.BridgeApp.environments[{i}]['node_labels'] must map label names to strings, "
                                 "e.g. {'gpu': 'a100'}")
            env = Environment(
                name=str(item["name"]), image=str(item["image"]), description=str(item.get("description", "")),
                gpu=bool(item.get("gpu", False)), cpus=float(item.get("cpus", 1.0)),
                memory=parse_memory(item.get("memory", 2 << 30), f"memory of environment {item['name']}"),
                node_labels={str(k): v for k, v in labels.items()},
            )
            self.items[env.name] = env

    def get(self, name: object) -> Environment:
        if isinstance(name, str) and name in self.items:
            return self.items[name]
        raise Unprocessable(f"Unknown environment {name!r}; choose one of: {', '.join(self.items) or '(none configured)'}.")

    def default(self) -> Environment:
        if not self.items:
            raise Unprocessable("No environments are configured; an admin must set c.BridgeApp.environments.")
        return next(iter(self.items.values()))

    def as_json(self) -> list[dict]:
        return [e.as_json() for e in self.items.values()]

    def placement(self) -> dict[str, dict[str, str]]:
        """environment name → the node labels its jobs need (the swarm runtime's constraints)."""
        return {e.name: dict(e.node_labels) for e in self.items.values() if e.node_labels}
