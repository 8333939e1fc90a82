"""``floyd project create/list/show/delete``."""

from __future__ import annotations

import click

from floyd.cli.consoles import console
from floyd.cli.context import Session
from floyd.cli.output import print_json, print_table, when


def split_name(s: Session, text: str) -> tuple[str, str]:
    if "/" in text:
        owner, _, name = text.partition("/")
        return owner, name
    return s.me, text


@click.group()
def project() -> None:
    """Projects: a directory that becomes a workspace's /floyd/code."""


@project.command("create")
@click.argument("name")
@click.option("-d", "--description", default="", help="What the project is for.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def create(name: str, description: str, as_json: bool) -> None:
    """Create project NAME."""
    p = Session().client.create_project(name, description)
    if as_json:
        print_json(p)
    else:
        console.print(f"Created project [bold]{p['full_name']}[/].", highlight=False)


@project.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(as_json: bool) -> None:
    """List your projects."""
    items = Session().client.projects()
    if as_json:
        print_json(items)
        return
    print_table(["PROJECT", "CREATED", "DESCRIPTION"],
                [(p["full_name"], when(p["created_at"]), p["description"]) for p in items],
                empty="No projects yet: floyd project create NAME")


@project.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(name: str, as_json: bool) -> None:
    """Show project NAME (or OWNER/NAME)."""
    s = Session()
    p = s.client.project(*split_name(s, name))
    if as_json:
        print_json(p)
    else:
        print_table(["FIELD", "VALUE"], [(k, v) for k, v in p.items()])


@project.command("delete")
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(name: str, yes: bool) -> None:
    """Delete project NAME and its files."""
    s = Session()
    owner, pname = split_name(s, name)
    if not yes:
        click.confirm(f"Delete project {owner}/{pname} and all its files?", abort=True)
    s.client.delete_project(owner, pname)
    console.print(f"Deleted project {owner}/{pname}.", highlight=False)
