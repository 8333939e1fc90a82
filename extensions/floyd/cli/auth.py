"""``floyd login`` / ``logout`` / ``whoami``."""

from __future__ import annotations

import os
import sys

import click

from floyd.cli.consoles import console
from floyd.cli.context import Session
from floyd.cli.output import print_json
from floyd.client import ClientConfig, FloydClient, load_config, save_config
from floyd.client.config import config_dir


@click.command()
@click.argument("url", required=False)
@click.option("-u", "--username", help="JupyterHub user name (asked for when no token is given).")
@click.option("--token", envvar="FLOYD_LOGIN_TOKEN", help="An API token from URL/hub/token instead of a password.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
def login(url: str | None, username: str | None, token: str | None, password_stdin: bool) -> None:
    """Log in to the platform at URL (default: the last one) and store a token under ~/.config/floyd."""
    current = load_config()
    url = (url or current.url or "").rstrip("/")
    if not url:
        raise click.UsageError("Give the platform's URL, e.g. `floyd login http://127.0.0.1:8000`.")
    if not url.startswith(("http://", "https://")):
        url = "http://" + url
    if not token:
        if os.environ.get("JUPYTERHUB_API_TOKEN") and not username:
            token = os.environ["JUPYTERHUB_API_TOKEN"]
        else:
            username = username or click.prompt("Username")
            if password_stdin:
                password = sys.stdin.readline().rstrip("\n")
            else:
                password = click.prompt("Password", hide_input=True)
            token = FloydClient.request_token(url, username, password)
    client = FloydClient(url, token)
    me = client.whoami()
    path = save_config(ClientConfig(url=url, token=token, username=me["name"]))
    console.print(f"Logged in to {url} as [bold]{me['name']}[/]{' (admin)' if me['admin'] else ''}. "
                  f"Token stored in {path}.", highlight=False)


@click.command()
def logout() -> None:
    """Forget the stored token."""
    path = config_dir() / "config.json"
    if path.exists():
        path.unlink()
        console.print("Logged out.")
    else:
        console.print("Not logged in.")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def whoami(as_json: bool) -> None:
    """Show who you are logged in as, and your storage use."""
    s = Session()
    me = s.client.whoami()
    if as_json:
        print_json(me)
        return
    console.print(f"{me['name']}{' (admin)' if me['admin'] else ''} at {s.client.url} — "
                  f"storage {me['storage_used']:,} of {me['storage_quota']:,} bytes", highlight=False)
