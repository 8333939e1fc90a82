"""Checks of request bodies and numbers, with messages that say what is allowed.

Every whole number taken from a request (a path, a query, a body) is read here, so one range
holds for all of them: :data:`INT_MAX`. A number the database cannot hold never reaches it
(SQLite raises OverflowError beyond 64 bits, PostgreSQL a DataError beyond an INTEGER column).

- a number that *names* something stored (a job, a dataset or endpoint version, a key) outside
  the range names nothing: :func:`id_number` answers 404, as for any number nothing has;
- a *quantity* (``limit``, ``max_runtime``, ``replicas``, ``gpus``…) outside its range is refused
  with the range: :func:`whole_number`, 422 in a body, 400 in a query.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from jobs_bridge.errors import BadRequest, FloydError, NotFound, Unprocessable

# SQLAlchemy's Integer is 32 bits on PostgreSQL (64 on SQLite): the bound every integer column holds.
INT_MAX = 2**31 - 1
_DIGITS = re.compile(r"[+-]?[0-9]+")  # ASCII digits only: str.isdigit() also takes '²' and '١'


def only_keys(body: dict, allowed: Iterable[str]) -> None:
    """A 400 naming unknown fields (a typo must not be silently ignored)."""
    unknown = set(body) - set(allowed)
    if unknown:
        raise BadRequest(f"Unknown field(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}.")


def _whole(value: object) -> int | None:
    """The whole number in a JSON integer or a string of digits, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(text := value.strip()):
        # int() refuses strings of thousands of digits; such a number is beyond every range anyway.
        return int(text) if len(text) <= 40 else (-1 if text[0] == "-" else 1) * 10**40
    return None


def _shown(value: object) -> str:
    """What was sent, short enough for a message (a number may have thousands of digits)."""
    text = repr(value)
    return text if len(text) <= 30 else text[:27] + "..."


def whole_number(value: object, what: str, low: int, high: int | None = None,
                 error: type[FloydError] = Unprocessable) -> int:
    """A quantity from ``low`` to ``high`` (at most :data:`INT_MAX`); ``error`` is 422 for bodies,
    BadRequest for query arguments."""
    top = INT_MAX if high is None else min(high, INT_MAX)
    number = _whole(value)
    if number is None or not low <= number <= top:
        raise error(f"'{what}' must be a whole number from {low} to {top}, not {_shown(value)}.")
    return number


def id_number(value: object, what: str, hint: str = "give a whole number.") -> int:
    """The number of something stored: not a number is a 400 (with ``hint``); a number out of
    range names nothing, so it is the same 404 as any number nothing has."""
    number = _whole(value)
    if number is None:
        raise BadRequest(f"Invalid {what} {_shown(value)}: {hint}")
    if not 0 <= number <= INT_MAX:
        raise NotFound(f"No {what} {_shown(value)} exists; numbers go up to {INT_MAX}.")
    return number


def json_bool(value: object, what: str) -> bool:
    """A flag from a JSON body: ``true`` or ``false`` only ("no" is a truthy string, 1 a number;
    guessing what they meant would turn "no" into yes)."""
    if not isinstance(value, bool):
        raise BadRequest(f"'{what}' must be true or false (a JSON boolean), not {_shown(value)}.")
    return value


QUERY_FLAGS = {"1": True, "true": True, "0": False, "false": False}


def query_flag(value: str | None, what: str) -> bool:
    """A flag from a query (``?follow=1``): ``1``/``true`` or ``0``/``false``, absent is false. Anything
    else is a 400: ``?public=no`` once listed every dataset, because any word but a few meant no."""
    if value is None:
        return False
    if value not in QUERY_FLAGS:
        raise BadRequest(f"'{what}' must be 1, 0, true or false, not {_shown(value)}.")
    return QUERY_FLAGS[value]


def bounded_number(value: str, what: str, low: float, high: float) -> float:
    """A real number from a query (``?minutes=``) from ``low`` to ``high``, else a 400 with the range
    (NaN and infinities are no number of minutes)."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not low <= number <= high:  # False for NaN
        raise BadRequest(f"'{what}' must be a number from {low:g} to {high:g}, not {_shown(value)}.")
    return number


def positive_number(value: object, what: str, high: float) -> float:
    if isinstance(value, bool):
        raise Unprocessable(f"'{what}' must be a number, not {value!r}.")
    try:
        if not isinstance(value, (int, float, str)):
            raise TypeError(value)
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # float(10**400) overflows
        raise Unprocessable(f"'{what}' must be a number, not {value!r}.") from None
    if not 0 < number <= high:
        raise Unprocessable(f"'{what}' must be more than 0 and at most {high:g}, not {number:g}.")
    return number
