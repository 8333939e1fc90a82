"""``floyd admin nodes [drain|activate NAME]``: the machines jobs run on, for admins."""

from __future__ import annotations

import click

from floyd.cli.consoles import console
from floyd.cli.context import Session
from floyd.cli.output import print_json, print_table
from floyd.formatting import fmt_bytes


@click.group()
def admin() -> None:
    """Platform administration (admins only)."""


def node_row(n: dict) -> tuple:
    gpus = f"{n['gpus_free']}/{n['gpus_total']}" if n["gpus_total"] else "-"
    storage = n["storage"] if not n.get("storage_problem") else f"{n['storage']}: {n['storage_problem']}"
    return (n["name"], n["address"], n["state"], n["availability"], f"{n['cpus']:g}", fmt_bytes(n["memory"]), gpus,
            n["running_jobs"], n.get("running_replicas", 0), n.get("running_workspaces", 0), storage)


@admin.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def nodes(ctx: click.Context, as_json: bool) -> None:
    """The nodes jobs run on: name, address, state, availability, CPUs, memory, GPUs free/total,
    running jobs, endpoint replicas and workspaces, and whether the node sees the shared storage."""
    if ctx.invoked_subcommand is not None:
        return
    data = Session().client.nodes()
    if as_json:
        print_json(data)
        return
    print_table(["NODE", "ADDRESS", "STATE", "AVAILABILITY", "CPUS", "MEMORY", "GPUS FREE", "JOBS", "REPLICAS", "WORKSPACES",
                 "STORAGE"],
                [node_row(n) for n in data["items"]],
                empty=f"The {data['runtime']} runtime runs everything on one machine: no nodes to list "
                "(FLOYD_JOB_EXECUTOR=swarm spreads jobs over a Docker Swarm).")


@nodes.command("drain")
@click.argument("name")
def drain(name: str) -> None:
    """No new work lands on node NAME; what runs there finishes."""
    n = Session().client.set_node_availability(name, "drain")
    console.print(f"Node [bold]{n['name']}[/] drained: no new work lands there; {n['running_jobs']} running "
                  "job(s) finish.", highlight=False)


@nodes.command("activate")
@click.argument("name")
def activate(name: str) -> None:
    """Node NAME takes new work again."""
    n = Session().client.set_node_availability(name, "active")
    console.print(f"Node [bold]{n['name']}[/] is active: new work may land there.", highlight=False)
