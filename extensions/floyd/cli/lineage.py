"""``floyd lineage`` (what made an object and what was made from it) and ``floyd compare`` (runs
side by side: params that differ, each metric's last/min/max)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from floyd.cli.context import Session
from floyd.cli.jobrefs import resolve_job
from floyd.cli.output import print_json, print_table, say
from floyd.formatting import fmt_value

if TYPE_CHECKING:
    from rich.tree import Tree

KIND_WORDS = {"job": "job", "dataset": "dataset", "snapshot": "code", "endpoint": "endpoint", "model": "model"}
KIND_STYLE = {"job": "blue", "dataset": "green", "snapshot": "magenta", "endpoint": "yellow", "model": "red"}


def api_ref(s: Session, text: str) -> str:
    """A job number (N, PROJECT/N) is made whole here (the linked project); the platform reads
    every other form: alice/proj/12, mnist@3, alice/iris:2, model:iris@production, job:alice/proj/12 …"""
    kind = text.partition(":")[0]
    if kind in KIND_WORDS:
        return text
    parts = text.strip("/").split("/")
    if parts[-1].isdigit() and len(parts) <= 3:
        return f"job:{resolve_job(s, text)}"
    return text


def node_text(node: dict) -> str:
    from rich.markup import escape

    state = f" [dim]{escape(node['state'])}[/dim]" if node["state"] else ""
    style = KIND_STYLE.get(node["kind"], "white")
    return f"[{style}]{KIND_WORDS.get(node['kind'], node['kind'])}[/{style}] {escape(node['label'])}{state}"


def grow(tree: Tree, ref: str, links: dict[str, list[str]], nodes: dict[str, dict], seen: set[str]) -> None:
    """Add ``ref``'s neighbours (parents or children) under ``tree``; a node met before is named, not repeated."""
    for other in links.get(ref, []):
        if other in seen:
            tree.add(node_text(nodes[other]) + " [dim](above)[/dim]")
            continue
        seen.add(other)
        grow(tree.add(node_text(nodes[other])), other, links, nodes, seen)


def print_tree(graph: dict) -> None:
    from rich.tree import Tree

    from floyd.cli.consoles import console

    nodes = {n["ref"]: n for n in graph["nodes"]}
    parents: dict[str, list[str]] = {}
    children: dict[str, list[str]] = {}
    for e in graph["edges"]:
        parents.setdefault(e["to"], []).append(e["from"])
        children.setdefault(e["from"], []).append(e["to"])
    root = graph["root"]
    tree = Tree(node_text(nodes[root]))
    for title, links in (("made from", parents), ("made into", children)):
        if links.get(root):
            grow(tree.add(f"[bold]{title}[/bold]"), root, links, nodes, {root})
    console.print(tree, highlight=False)
    if graph.get("truncated"):
        say("[dim]Cut at the depth or node limit; run `floyd lineage` on a node further along (or --depth).[/dim]")


@click.command("lineage")
@click.argument("ref")
@click.option("--depth", type=click.IntRange(1, 1000), help="Links to follow up and down (default 100).")
@click.option("--json", "as_json", is_flag=True, help="Print the graph as JSON (nodes and edges).")
def lineage(ref: str, depth: int | None, as_json: bool) -> None:
    """What made REF and what was made from it, as a tree upwards and downwards.

    REF is a job (12, PROJECT/12, OWNER/PROJECT/12), a dataset version (mnist@3, alice/mnist@3),
    an endpoint (iris: its serving version, iris:2, alice/iris:2) or a model version, always
    with the model: prefix (model:iris:3, model:iris@production, model:alice/iris)."""
    s = Session()
    graph = s.client.lineage(api_ref(s, ref), depth)
    if as_json:
        print_json(graph)
        return
    print_tree(graph)


def stats_text(v: dict | None) -> str:
    return "-" if not v else f"{fmt_value(v['last'])} ({fmt_value(v['min'])}..{fmt_value(v['max'])})"


@click.command("compare")
@click.argument("jobs", nargs=-1)
@click.option("--group", type=int, help="Compare all runs of a sweep (its group id).")
@click.option("--rank", metavar="METRIC", help="Order the runs by METRIC's last value, lowest first.")
@click.option("--max", "maximize", is_flag=True, help="With --rank: highest first.")
@click.option("--all-params", is_flag=True, help="Show every param, not only those that differ.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def compare(jobs: tuple[str, ...], group: int | None, rank: str | None, maximize: bool, all_params: bool,
            as_json: bool) -> None:
    """Runs side by side: the params that differ and each metric's last (min..max).

    JOBS are N (a job of the project linked here), PROJECT/N or OWNER/PROJECT/N; or --group for
    all runs of a sweep."""
    if bool(jobs) == (group is not None):
        raise click.UsageError("Name the runs (floyd compare 12 13 14) or a sweep (--group N), not both.")
    s = Session()
    result = s.client.compare([str(resolve_job(s, j)) for j in jobs] or None, group, rank,
                              "max" if maximize else "min")
    if as_json:
        print_json(result)
        return
    runs = result["runs"]
    names = [r["id"] for r in runs]
    shown = result["params"] if all_params else result["differing"]
    print_table(["PARAM", *names], [[p, *(fmt_param(r["params"], p) for r in runs)] for p in shown],
                empty="No params differ." if not all_params else "No params.")
    print()
    print_table(["METRIC", *names], [[m, *(stats_text(r["metrics"].get(m)) for r in runs)]
                                     for m in result["metrics"]], empty="No metrics reported.")


def fmt_param(params: dict, name: str) -> str:
    return json.dumps(params[name]) if name in params else "-"
