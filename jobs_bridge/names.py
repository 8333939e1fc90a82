"""Validation of user-chosen names and of the short references the CLI accepts."""

from __future__ import annotations

import re

from jobs_bridge.errors import BadRequest

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
# JupyterHub user names are wider than our resource names (e.g. e-mail style); we accept
# what the hub accepts for owners but still refuse anything that could act as a path.
OWNER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")


def shown(value: object, most: int = 80) -> str:
    """``repr(value)`` for a message, cut short: a 4 KB name is not echoed back whole."""
    text = repr(value)
    return text if len(text) <= most else f"{text[:most - 20]}…' ({len(str(value))} characters)"


def check_name(value: object, what: str = "name") -> str:
    """Return ``value`` if it is a valid resource name, else raise a 400 saying what is allowed."""
    if not isinstance(value, str) or not NAME_RE.match(value) or value in (".", ".."):
        raise BadRequest(
            f"Invalid {what} {shown(value)}: use 1-64 characters from a-z, 0-9, '.', '_' and '-', "
            "starting with a letter or digit (e.g. 'mnist-v2')."
        )
    if ".." in value:
        raise BadRequest(f"Invalid {what} {value!r}: '..' is not allowed in names.")
    return value


def check_owner(value: object) -> str:
    if not isinstance(value, str) or not OWNER_RE.match(value) or ".." in value:
        raise BadRequest(f"Invalid user name {shown(value)}: use 1-128 characters from letters, digits and "
                         "'.', '_', '@', '+', '-'.")
    return value
