"""Validation of user-chosen names and of the short references the CLI accepts."""

from __future__ import annotations

import re

from jobs_bridge.errors import BadRequest

# A name starts with a letter or digit, and a '.' is never followed by another: no '.', '..' or
# 'a..b' can act as a path. The same patterns and lengths are in openapi.yaml (components/schemas
# Name and Owner; tests/bridge/test_openapi.py compares them), written without a look-ahead so that
# any JSON Schema tool can read them.
NAME_RE = re.compile(r"^[a-z0-9](\.?[a-z0-9_-])*\.?$")
NAME_MAX = 64
# JupyterHub user names are wider than our resource names (e.g. e-mail style); we accept
# what the hub accepts for owners but still refuse anything that could act as a path.
OWNER_RE = re.compile(r"^[A-Za-z0-9](\.?[A-Za-z0-9_@+-])*\.?$")
OWNER_MAX = 128


def shown(value: object, most: int = 80) -> str:
    """``repr(value)`` for a message, cut short: a 4 KB name is not echoed back whole."""
    text = repr(value)
    return text if len(text) <= most else f"{text[:most - 20]}…' ({len(str(value))} characters)"


def check_name(value: object, what: str = "name") -> str:
    """Return ``value`` if it is a valid resource name, else raise a 400 saying what is allowed."""
    if not isinstance(value, str) or len(value) > NAME_MAX or not NAME_RE.fullmatch(value):
        raise BadRequest(
            f"Invalid {what} {shown(value)}: use 1-64 characters from a-z, 0-9, '.', '_' and '-', "
            "starting with a letter or digit (e.g. 'mnist-v2')."
        )
    return value


def check_owner(value: object) -> str:
    if not isinstance(value, str) or len(value) > OWNER_MAX or not OWNER_RE.fullmatch(value):
        raise BadRequest(f"Invalid user name {shown(value)}: use 1-128 characters from letters, digits and "
                         "'.', '_', '@', '+', '-', starting with a letter or digit, with no '..'.")
    return value
