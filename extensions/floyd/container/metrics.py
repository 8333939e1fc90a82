"""``floyd.log_metric("loss", 0.1, step=3)`` prints the line the platform turns into a metric series."""

from __future__ import annotations

import json
import sys


def log_metric(name: str, value: float, step: int | None = None, epoch: int | None = None) -> None:
    record: dict[str, object] = {"metric": name, "value": float(value)}
    if step is not None:
        record["step"] = int(step)
    if epoch is not None:
        record["epoch"] = int(epoch)
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()
