"""Checks of request bodies and numbers, with messages that say what is allowed."""

from __future__ import annotations

from collections.abc import Iterable

from jobs_bridge.errors import BadRequest, Unprocessable


def only_keys(body: dict, allowed: Iterable[str]) -> None:
    """A 400 naming unknown fields (a typo must not be silently ignored)."""
    unknown = set(body) - set(allowed)
    if unknown:
        raise BadRequest(f"Unknown field(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}.")


def whole_number(value: object, what: str, low: int, high: int | None = None) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise Unprocessable(f"'{what}' must be a whole number {bound}, not {value!r}.")
    return value


def positive_number(value: object, what: str, high: float) -> float:
    try:
        if not isinstance(value, (int, float, str)):
            raise TypeError(value)
        number = float(value)
    except (TypeError, ValueError):
        raise Unprocessable(f"'{what}' must be a number, not {value!r}.") from None
    if not 0 < number <= high:
        raise Unprocessable(f"'{what}' must be more than 0 and at most {high:g}, not {number:g}.")
    return number
