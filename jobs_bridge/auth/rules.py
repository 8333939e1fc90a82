"""The one rule for what a caller may see and change.

Another user's private thing is *not found* (404), never *forbidden*: its existence is not
revealed. A public thing that is not yours is readable, and changing it is 403.
"""

from __future__ import annotations

from jobs_bridge.auth.identity import Caller
from jobs_bridge.errors import Forbidden, NotFound


def check_access(caller: Caller, owner: str, public: bool, what: str, *, write: bool = False) -> None:
    """Raise NotFound/Forbidden unless ``caller`` may read (or, with ``write``, change) it."""
    if caller.admin or caller.name == owner:
        return
    if not public:
        raise NotFound(f"{what} not found.")
    if write:
        raise Forbidden(f"{what} belongs to {owner}; only {owner} or an admin can change it.")
