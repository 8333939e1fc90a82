"""Which version answers an unpinned request when the endpoint's traffic is split, pure.

A split gives each version a weight (stored as a percentage). A caller that sends a client key header always
lands on the same version while the split stays (the key's hash picks the point); any other
request draws at random. Only versions that are ready are offered, so a split never sends
traffic to a version that cannot answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence


def pick(weights: Sequence[tuple[int, int]], client_key: str | None, draw: float) -> int | None:
    """The version number for one request; ``weights`` (number, weight) of the ready versions,
    ``draw`` a random number in [0, 1). None when no version has a positive weight."""
    offered = [(n, w) for n, w in weights if w > 0]
    total = sum(w for _, w in offered)
    if not total:
        return None
    if client_key:
        digest = hashlib.blake2b(client_key.encode("utf-8", "replace"), digest_size=8).digest()
        point = int.from_bytes(digest, "big") % total
    else:
        point = int(draw * total)
    for number, weight in sorted(offered):
        if point < weight:
            return number
        point -= weight
    return offered[-1][0]  # pragma: no cover - draw < 1


def canary(split: Mapping[int, int]) -> int | None:
    """The version under trial: the newest of a split of two or more (None otherwise)."""
    return max(split) if len(split) > 1 else None


def percent(weights: Mapping[int, int]) -> dict[int, int]:
    """Relative weights as whole percentages adding up to 100 (the largest takes the rounding);
    versions with no weight leave. ``{3: 1, 2: 1}`` → ``{3: 50, 2: 50}``."""
    rest = {n: w for n, w in weights.items() if w > 0}
    total = sum(rest.values())
    if not total:
        return {}
    scaled = {n: w * 100 // total for n, w in rest.items()}
    scaled[max(rest, key=lambda n: (rest[n], n))] += 100 - sum(scaled.values())
    return {n: w for n, w in scaled.items() if w > 0}


def without(split: Mapping[int, int], number: int) -> dict[int, int]:
    """The split once ``number`` leaves it, the others scaled back to 100; one left (or none)
    means no split at all: unpinned traffic goes to the newest ready version again."""
    rest = {n: w for n, w in split.items() if n != number and w > 0}
    return percent(rest) if len(rest) > 1 else {}


def error_rate(requests: int, errors: int) -> float:
    return errors / requests if requests else 0.0
