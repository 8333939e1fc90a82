"""What the runtime says when an entry cannot be served (exit 2 with one line, no traceback)."""

from __future__ import annotations


class EntryError(Exception):
    """ENTRY cannot be served; the message says what to change."""


class NotebookError(EntryError):
    """A notebook that cannot be served; the message says which cell and why."""
