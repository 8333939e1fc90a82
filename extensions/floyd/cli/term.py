"""Plain terminal output that costs no import: error lines and whether stdout is a terminal.

rich (about as slow to import as the rest of a short command together) is left to the commands
that draw progress bars or styled text; see :mod:`floyd.cli.output`.
"""

from __future__ import annotations

import os
import shutil
import sys

import click

from floyd.client.progress import ProgressObserver


def stdout_is_terminal() -> bool:
    """Whether a person reads stdout (tables may then fit the width; a pipe gets full values)."""
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdout
        return False


def terminal_width() -> int:
    """The terminal's width (COLUMNS wins, as for every other tool)."""
    return shutil.get_terminal_size((int(os.environ.get("COLUMNS", 0) or 100), 24)).columns


def error_line(message: str, label: str = "Error:") -> None:
    """One line on stderr, ``Error: …`` in bold red on a terminal, plain in a pipe."""
    click.echo(f"{click.style(label, fg='red', bold=True)} {message}", err=True)


class TermNotes(ProgressObserver):
    """An observer that only says notes (skipped symlinks), in yellow on stderr: what a command
    needs before it knows whether it will draw progress bars (and import rich for them)."""

    def note(self, message: str) -> None:
        click.echo(click.style(message, fg="yellow"), err=True)
