"""``floyd model …``: the model registry (versions from job outputs, aliases)."""

from __future__ import annotations

import re
from contextlib import nullcontext
from pathlib import Path
from urllib.parse import quote

import click

from floyd.cli.consoles import RichProgress, console, err_console
from floyd.cli.context import Session
from floyd.cli.jobrefs import JOB_HELP, resolve_job
from floyd.cli.output import print_json, print_table, when
from floyd.client.errors import FloydClientError
from floyd.client.transfer import save_download
from floyd.formatting import fmt_bytes

MODEL_REF_RE = re.compile(r"^(?:(?P<owner>[^/:@]+)/)?(?P<name>[^/:@]+)(?:(?P<sep>[:@])(?P<tag>[^/:@]+))?$")
REF_HINT = "use NAME, NAME:VERSION or NAME@ALIAS, optionally OWNER/ first (e.g. iris:3, alice/iris@production)"


def model_ref(s: Session, text: str) -> tuple[str, str, str]:
    """``iris``, ``alice/iris:3``, ``iris@production`` → (owner, name, version or alias or '')."""
    m = MODEL_REF_RE.fullmatch(text.strip())
    if not m:
        raise FloydClientError(f"Cannot read model {text!r}: {REF_HINT}.")
    return m.group("owner") or s.me, m.group("name"), m.group("tag") or ""


def api_path(owner: str, name: str, *rest: str) -> str:
    return "/".join(["models", quote(owner, safe=""), quote(name, safe=""), *(quote(r, safe="") for r in rest)])


def metrics_text(metrics: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()) if not k.startswith("system/"))


@click.group()
def model() -> None:
    """Models: versions registered from job outputs, aliases (production, staging…) to deploy."""


@model.command("register")
@click.argument("name")
@click.option("--from", "source", required=True, metavar="JOB[/output/PATH]",
              help=f"The finished job whose output (or a path inside it) becomes the version. {JOB_HELP}")
@click.option("-d", "--description", default="", help="Describe this version.")
@click.option("--tag", "tags", multiple=True, help="A tag (repeat for more).")
@click.option("--json", "as_json", is_flag=True, help="Print the new version as JSON.")
def register(name: str, source: str, description: str, tags: tuple[str, ...], as_json: bool) -> None:
    """Make the output of a job the next version of model NAME (made on first use), without copying bytes."""
    s = Session()
    owner, mname, tag = model_ref(s, name)
    if tag:
        raise click.UsageError(f"Give a model name (NAME or OWNER/NAME), not a version: {name!r}.")
    job_text, _, path = source.partition("/output")
    job = resolve_job(s, job_text)
    body = {"from": f"{job}/output{path}", "description": description, "tags": list(tags)}
    with err_console.status(f"Registering {job}/output{path} as {owner}/{mname}…") \
            if err_console.is_terminal and not as_json else nullcontext():
        v = s.client.send_json("POST", api_path(owner, mname, "versions"), body)
    if as_json:
        print_json(v)
        return
    console.print(f"Registered [bold]{v['ref']}[/] from {v['source_job']}/output{('/' + v['output_path']) if v['output_path'] else ''}: "
                  f"{v['file_count']} files, {fmt_bytes(v['size'])}. Alias it with "
                  f"`floyd model alias {mname} production {v['number']}`.", highlight=False)


@model.command("list")
@click.option("--public", is_flag=True, help="List every public model instead of yours.")
@click.option("--owner", help="List another user's models that you can see.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(public: bool, owner: str | None, as_json: bool) -> None:
    """List models with their latest version and aliases."""
    items = Session().client.get_json("models", owner=owner, public="1" if public else None)["items"]
    if as_json:
        print_json(items)
        return
    print_table(["MODEL", "VERSIONS", "LATEST", "ALIASES", "VISIBILITY"],
                [(m["model"], m["version_count"], m["latest_version"] if m["latest_version"] is not None else "-",
                  " ".join(f"{a}={n}" for a, n in m["aliases"].items()) or "-",
                  "public" if m["public"] else "private") for m in items],
                empty="No models yet: floyd model register NAME --from JOB")


@model.command("versions")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def versions(name: str, as_json: bool) -> None:
    """List the versions of model NAME with their source job and metrics."""
    s = Session()
    owner, mname, _ = model_ref(s, name)
    items = s.client.get_json(api_path(owner, mname, "versions"))["items"]
    if as_json:
        print_json(items)
        return
    print_table(["VERSION", "ALIASES", "FROM JOB", "METRICS", "SIZE", "CREATED", "DESCRIPTION"],
                [(v["ref"], ",".join(v["aliases"]) or "-", v["source_job"] or "-", metrics_text(v["metrics"]) or "-",
                  fmt_bytes(v["size"]), when(v["created_at"]), v["description"]) for v in items],
                empty=f"{owner}/{mname} has no versions yet: floyd model register {mname} --from JOB")


@model.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(ref: str, as_json: bool) -> None:
    """Show a model (NAME: versions, aliases and their history) or one version (NAME:N, NAME@ALIAS)."""
    s = Session()
    owner, name, tag = model_ref(s, ref)
    data = s.client.get_json(api_path(owner, name, "versions", tag) if tag else api_path(owner, name))
    if as_json:
        print_json(data)
        return
    if tag:
        rows = [("version", data["ref"]), ("aliases", ", ".join(data["aliases"]) or "-"),
                ("from job", f"{data['source_job']}/output/{data['output_path']}".rstrip("/")),
                ("params", ", ".join(f"{k}={v}" for k, v in sorted(data["params"].items())) or "-"),
                ("metrics", metrics_text(data["metrics"]) or "-"), ("image", data["image_id"] or "-"),
                ("code", data["snapshot"] or "-"), ("files", f"{data['file_count']} ({fmt_bytes(data['size'])})"),
                ("id", data["id"]), ("tags", ", ".join(data["tags"]) or "-"), ("description", data["description"]),
                ("created", f"{when(data['created_at'])} by {data['created_by']}")]
        print_table(["FIELD", "VALUE"], rows)
        return
    print_table(["ALIAS", "VERSION", "MOVED BY", "WHEN"],
                [(a["alias"], a["version"], a["moved_by"], when(a["moved_at"])) for a in data["alias_details"]],
                empty=f"{data['model']}: no aliases.")
    print_table(["WHEN", "ALIAS", "FROM", "TO", "BY"],
                [(when(e["moved_at"]), e["alias"], e["from_version"] if e["from_version"] is not None else "-",
                  e["to_version"] if e["to_version"] is not None else "removed", e["moved_by"])
                 for e in data["alias_history"]], empty="No alias history.")
    print_table(["ENDPOINT", "VERSION", "MODEL", "STATE", "WHY"],
                [(d["endpoint"], d["version"], d["model_ref"], d["state"], d["reason"]) for d in data["deployments"]],
                empty="No endpoint mounts this model.")


@model.command("get")
@click.argument("ref")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("."),
              help="Directory to extract the version into.")
def get(ref: str, output: Path) -> None:
    """Download a model version (NAME, NAME:N or NAME@ALIAS)."""
    s = Session()
    owner, name, tag = model_ref(s, ref)
    v = s.client.get_json(api_path(owner, name, "versions", tag or "latest"))
    resp = s.client.request("GET", api_path(owner, name, "versions", str(v["number"]), "download"), stream=True)
    with RichProgress() as progress:
        written = save_download(resp, "", str(output), progress)
    console.print(f"Wrote {v['ref']} ({len(written)} path(s)) under {output.resolve()}.", highlight=False)


@model.command("delete")
@click.argument("ref")
@click.option("--force", is_flag=True, help="Delete a version even if an endpoint version mounts it.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(ref: str, force: bool, yes: bool) -> None:
    """Delete version NAME:N, or model NAME once it has no versions."""
    s = Session()
    owner, name, tag = model_ref(s, ref)
    if tag and not tag.isdigit():
        raise click.UsageError(f"Delete a version by its number (NAME:N), not {ref!r}.")
    if not yes:
        click.confirm(f"Delete {owner}/{name}{':' + tag if tag else ''}?", abort=True)
    if tag:
        info = s.client.send_json("DELETE", api_path(owner, name, "versions", tag), force="1" if force else None)
        console.print(f"Deleted {info['ref']} ({info['blobs_removed']} stored file(s) freed).", highlight=False)
    else:
        s.client.send_json("DELETE", api_path(owner, name))
        console.print(f"Deleted model {owner}/{name}.", highlight=False)


@model.command("alias")
@click.argument("name")
@click.argument("alias")
@click.argument("version", required=False, type=int)
@click.option("--delete", "remove", is_flag=True, help="Remove the alias instead.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def alias(name: str, alias: str, version: int | None, remove: bool, as_json: bool) -> None:
    """Point ALIAS of model NAME at VERSION (atomic; endpoints that follow it roll out that version)."""
    s = Session()
    owner, mname, _ = model_ref(s, name)
    if remove:
        s.client.send_json("DELETE", api_path(owner, mname, "aliases", alias))
        console.print(f"Removed {owner}/{mname}@{alias}.", highlight=False)
        return
    if version is None:
        raise click.UsageError(f"Which version? e.g. `floyd model alias {mname} {alias} 3` (or --delete).")
    result = s.client.send_json("PUT", api_path(owner, mname, "aliases", alias), {"version": version})
    if as_json:
        print_json(result)
        return
    before = result["from_version"]
    how = "a new alias" if before is None else f"moved from {before}"
    console.print(f"{owner}/{mname}@{alias} now names version {result['version']} ({how}).", highlight=False)
    for r in result["rollouts"]:
        console.print(f"Rolling out {r['endpoint']} v{r['version']} (follows {alias}); "
                      f"`floyd endpoint status {r['endpoint'].split('/', 1)[1]}` shows how it goes.", highlight=False)


@model.command("share")
@click.argument("name")
@click.option("--public/--private", default=True, help="Make it readable by every user, or only by you.")
def share(name: str, public: bool) -> None:
    """Make model NAME public (or private again)."""
    s = Session()
    owner, mname, _ = model_ref(s, name)
    m = s.client.send_json("PATCH", api_path(owner, mname), {"public": public})
    console.print(f"{m['model']} is now {'public' if m['public'] else 'private'}.", highlight=False)
