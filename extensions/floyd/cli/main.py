"""``floyd``: the command line of Floyd Workspaces."""

from __future__ import annotations

import os
import sys

import click

from floyd._version import __version__
from floyd.cli import auth, data, deploy, downloads, endpoints, jobs, projects, run
from floyd.cli.output import err_console
from floyd.client.errors import FloydAPIError, FloydClientError


class FloydGroup(click.Group):
    """Turns every client error into one line and a non-zero exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except FloydAPIError as exc:
            err_console.print(f"[bold red]Error:[/] {exc.message}", highlight=False)
            sys.exit(4 if 400 <= exc.status < 500 else 5)
        except FloydClientError as exc:
            err_console.print(f"[bold red]Error:[/] {exc.message}", highlight=False)
            sys.exit(3)
        except KeyboardInterrupt:
            err_console.print("Interrupted. Run the same command again to resume where it stopped.")
            sys.exit(130)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except Exception as exc:  # a bug: say so in one line, details on request
            if os.environ.get("FLOYD_DEBUG"):
                raise
            err_console.print(f"[bold red]Unexpected error:[/] {type(exc).__name__}: {exc} "
                              "(set FLOYD_DEBUG=1 for details)", highlight=False)
            sys.exit(2)


@click.group(cls=FloydGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="floyd")
def cli() -> None:
    """Floyd Workspaces: projects, versioned datasets, jobs and endpoints on your own machines."""


cli.add_command(auth.login)
cli.add_command(auth.logout)
cli.add_command(auth.whoami)
cli.add_command(projects.project)
cli.add_command(data.data)
for command in run.COMMANDS + jobs.COMMANDS + downloads.COMMANDS:
    cli.add_command(command)
for command in deploy.COMMANDS + endpoints.COMMANDS:
    cli.add_command(command)


def main() -> None:
    cli(prog_name="floyd")


if __name__ == "__main__":
    main()
