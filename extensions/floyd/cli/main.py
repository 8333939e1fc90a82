"""``floyd``: the command line of Floyd Workspaces.

Start-up time is part of the interface (``floyd status`` is typed dozens of times a day), so this
module imports only click and the client's error classes: each command's module, and with it
requests, rich and yaml, is imported when that command runs (:class:`FloydGroup`).
"""

from __future__ import annotations

import gc
import os
import sys
from importlib import import_module

import click

from floyd._version import __version__
from floyd.cli.term import error_line
from floyd.client.errors import FloydAPIError, FloydClientError

# command name → (module under floyd.cli, attribute); imported only when the command is used
# ("endpoint": cli/scaling.py adds its commands to the group of cli/endpoints.py)
COMMANDS: dict[str, tuple[str, str]] = {
    "login": ("auth", "login"), "logout": ("auth", "logout"), "whoami": ("auth", "whoami"),
    "project": ("projects", "project"), "data": ("data", "data"),
    "init": ("run", "init"), "run": ("run", "run"), "restart": ("run", "restart"),
    "status": ("jobs", "status"), "info": ("jobs", "info"), "logs": ("jobs", "logs"), "stop": ("jobs", "stop"),
    "metrics": ("jobs", "metrics"), "clone": ("downloads", "clone"), "output": ("downloads", "output"),
    "deploy": ("deploy", "deploy"), "endpoint": ("scaling", "endpoint"), "model": ("models", "model"),
    "lineage": ("lineage", "lineage"), "compare": ("lineage", "compare"),
    "pipeline": ("pipelines", "pipeline"),
    "schedule": ("schedules", "schedule"), "tensorboard": ("tensorboard", "tensorboard"),
    "admin": ("admin", "admin"),
}


class FloydGroup(click.Group):
    """Loads a command's module on first use, and turns every client error into one line and a
    non-zero exit code, never a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr = COMMANDS[cmd_name]
        command = getattr(import_module(f"floyd.cli.{module}"), attr)
        assert isinstance(command, click.Command), f"floyd.cli.{module}.{attr} is not a command"
        return command

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except FloydAPIError as exc:
            error_line(exc.message)
            sys.exit(4 if 400 <= exc.status < 500 else 5)
        except FloydClientError as exc:
            error_line(exc.message)
            sys.exit(3)
        except KeyboardInterrupt:
            click.echo("Interrupted. Run the same command again to resume where it stopped.", err=True)
            sys.exit(130)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except Exception as exc:  # a bug: say so in one line, details on request
            if os.environ.get("FLOYD_DEBUG"):
                raise
            error_line(f"{type(exc).__name__}: {exc} (set FLOYD_DEBUG=1 for details)", "Unexpected error:")
            sys.exit(2)


@click.group(cls=FloydGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="floyd")
def cli() -> None:
    """Floyd Workspaces: projects, versioned datasets, jobs and endpoints on your own machines."""


def main() -> None:
    try:
        cli(prog_name="floyd")
    finally:
        # The process ends here: its objects need no last collection, which walked every module's
        # (6 ms of a 10 ms teardown; 0.23 s is all an unchanged 100,000-file tree's upload takes).
        gc.freeze()


if __name__ == "__main__":
    main()
