"""An endpoint's serving settings: autoscaling, its traffic split, a canary's error threshold and
the limits at the edge. Read from a request body (checked: 400/422, nothing stored on a bad
value), kept on the endpoints row, and put on the router's LiveEndpoint (``to_live``)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from jobs_bridge.errors import BadRequest, Unprocessable
from jobs_bridge.orm import Endpoint
from jobs_bridge.serving.autoscale import Policy
from jobs_bridge.serving.edge import EdgeLimits
from jobs_bridge.serving.router import LiveEndpoint
from jobs_bridge.validate import only_keys, positive_number, whole_number

SCALING_KEYS = ("min_replicas", "max_replicas", "target_in_flight", "scale_up_window", "scale_down_window",
                "idle_timeout")
LIMIT_KEYS = ("max_body_bytes", "request_timeout", "rate_limit")
DAY = 86_400.0


@dataclass(frozen=True)
class Defaults:
    """What a setting left out means (the Autoscaler's traits) and the platform's bounds."""

    target_in_flight: float
    scale_up_window: float
    scale_down_window: float
    idle_timeout: float
    max_replicas: int  # VersionResolver.max_replicas


def _seconds(value: object, what: str, high: float = DAY) -> float:
    if value == 0 and not isinstance(value, bool):
        return 0.0
    return positive_number(value, what, high)


def change(row: Endpoint, body: dict, bounds: Defaults) -> None:
    """Apply the ``autoscaling``, ``limits`` and ``rollback_error_rate`` fields of a PATCH body."""
    if "autoscaling" in body:
        _autoscaling(row, body["autoscaling"], bounds)
    if "limits" in body:
        _limits(row, body["limits"])
    if "rollback_error_rate" in body:
        rate = body["rollback_error_rate"]
        row.rollback_error_rate = None if rate is None else positive_number(rate, "rollback_error_rate", 1.0)


def _autoscaling(row: Endpoint, value: object, bounds: Defaults) -> None:
    if value is None:  # off: each version keeps the replicas it has
        row.min_replicas = row.max_replicas = None
        row.target_in_flight = row.scale_up_window = row.scale_down_window = row.idle_timeout = None
        return
    if not isinstance(value, dict):
        raise BadRequest("'autoscaling' must be an object such as {\"min_replicas\": 1, \"max_replicas\": 4} "
                         "or null (off).")
    only_keys(value, SCALING_KEYS)
    # A field left out keeps its value (an endpoint not autoscaled yet: minimum 1, maximum the minimum).
    kept_low = 1 if row.min_replicas is None else row.min_replicas
    low = whole_number(value.get("min_replicas", kept_low), "min_replicas", 0, bounds.max_replicas)
    kept_high = max(low, 1) if row.max_replicas is None else row.max_replicas
    high = whole_number(value.get("max_replicas", kept_high), "max_replicas", 1, bounds.max_replicas)
    if high < low:
        raise Unprocessable(f"'max_replicas' ({high}) must be at least 'min_replicas' ({low}).")
    row.min_replicas, row.max_replicas = low, high
    if "target_in_flight" in value:
        row.target_in_flight = positive_number(value["target_in_flight"], "target_in_flight", 10_000)
    for key in ("scale_up_window", "scale_down_window", "idle_timeout"):
        if key in value:
            setattr(row, key, None if value[key] is None else _seconds(value[key], key))


def _limits(row: Endpoint, value: object) -> None:
    if not isinstance(value, dict):
        raise BadRequest("'limits' must be an object such as {\"max_body_bytes\": 1048576, \"request_timeout\": 30, "
                         "\"rate_limit\": 10}; null in a field means the platform's own.")
    only_keys(value, LIMIT_KEYS)
    if "max_body_bytes" in value:
        size = value["max_body_bytes"]
        row.max_body_bytes = None if size is None else whole_number(size, "max_body_bytes", 0)
    if "request_timeout" in value:
        t = value["request_timeout"]
        row.request_timeout = None if t is None else positive_number(t, "request_timeout", DAY)
    if "rate_limit" in value:
        r = value["rate_limit"]
        row.rate_limit = None if r is None else positive_number(r, "rate_limit", 1_000_000)


def split_of(row: Endpoint) -> dict[int, int]:
    return {int(n): int(w) for n, w in json.loads(row.traffic or "{}").items()}


def policy_of(row: Endpoint, defaults: Defaults) -> Policy | None:
    if row.min_replicas is None or row.max_replicas is None:
        return None
    return Policy(
        row.min_replicas, row.max_replicas, row.target_in_flight or defaults.target_in_flight,
        defaults.scale_up_window if row.scale_up_window is None else row.scale_up_window,
        defaults.scale_down_window if row.scale_down_window is None else row.scale_down_window,
        defaults.idle_timeout if row.idle_timeout is None else row.idle_timeout)


def to_live(live: LiveEndpoint, row: Endpoint, defaults: Defaults) -> LiveEndpoint:
    """Put the row's settings on the router's endpoint (at creation, change, and start-up)."""
    live.public = row.public
    live.policy = policy_of(row, defaults)
    live.edge = EdgeLimits(row.max_body_bytes, row.request_timeout, row.rate_limit)
    live.split = split_of(row)
    live.rollback_error_rate = row.rollback_error_rate
    return live


def settings_json(row: Endpoint, defaults: Defaults) -> dict:
    policy = policy_of(row, defaults)
    return {
        "autoscaling": None if policy is None else {
            "min_replicas": policy.min_replicas, "max_replicas": policy.max_replicas,
            "target_in_flight": policy.target_in_flight, "scale_up_window": policy.up_window,
            "scale_down_window": policy.down_window, "idle_timeout": policy.idle_timeout},
        "traffic": {str(n): w for n, w in sorted(split_of(row).items(), reverse=True)},
        "rollback_error_rate": row.rollback_error_rate,
        "limits": {"max_body_bytes": row.max_body_bytes, "request_timeout": row.request_timeout,
                   "rate_limit": row.rate_limit},
    }
