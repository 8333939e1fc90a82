"""``floyd data …``: versioned datasets."""

from __future__ import annotations

import json
from pathlib import Path

import click

from floyd.cli.context import Session
from floyd.cli.output import esc, print_json, print_json_pages, print_table, print_table_pages, say, when
from floyd.cli.term import TermNotes
from floyd.client.errors import FloydAPIError, FloydClientError
from floyd.client.gcpause import gc_paused
from floyd.client.heads import TreeHeads
from floyd.client.refs import DataRef
from floyd.client.statcache import StatCache
from floyd.client.treescan import start_scan
from floyd.formatting import fmt_bytes

LINK_FILE = ".floyddata"


def linked_dataset(directory: Path) -> str | None:
    """The dataset a directory was linked to by ``floyd data init``."""
    for d in [directory, *directory.parents]:
        f = d / LINK_FILE
        if f.is_file():
            try:
                return json.loads(f.read_text())["dataset"]
            except (ValueError, KeyError):
                raise FloydClientError(f"{f} is damaged; run `floyd data init NAME` again.") from None
    return None


@click.group()
def data() -> None:
    """Versioned datasets: upload, list, download, compare, share."""


@data.command("init")
@click.argument("name")
@click.option("-d", "--description", default="", help="What the data is.")
@click.option("--public", is_flag=True, help="Let every user of the platform read it.")
def init(name: str, description: str, public: bool) -> None:
    """Create dataset NAME (if needed) and link the current directory to it."""
    s = Session()
    ref = s.data_ref(name)
    if ref.owner == s.me:
        try:
            s.client.create_dataset(ref.name, description, public)
            say(f"Created dataset [bold]{ref.owner}/{ref.name}[/].")
        except FloydAPIError as exc:
            if exc.status != 409:
                raise
            say(f"Using your existing dataset {ref.owner}/{ref.name}.")
    else:
        s.client.dataset(ref.owner, ref.name)
    Path(LINK_FILE).write_text(json.dumps({"dataset": f"{ref.owner}/{ref.name}"}) + "\n")
    say(f"Linked {esc(Path.cwd())} to {ref.owner}/{ref.name}; upload with `floyd data upload`.")


@data.command("add")
@click.argument("job")
@click.argument("name")
@click.option("-m", "--message", default="", help="Describe this version (default: 'output of job …').")
@click.option("--json", "as_json", is_flag=True, help="Print the new version as JSON.")
def add(job: str, name: str, message: str, as_json: bool) -> None:
    """Make the output of JOB (N/output, PROJECT/N/output or OWNER/PROJECT/N/output) the next
    version of dataset NAME, without copying bytes. Creates NAME if it is yours and missing."""
    from floyd.cli.jobrefs import resolve_job  # project files' parsing, which no other data command needs

    s = Session()
    ref = resolve_job(s, job)
    target = s.data_ref(name)
    if target.version or target.path:
        raise click.UsageError(f"Give a dataset name (NAME or OWNER/NAME), not a version: {name!r}.")
    if target.owner == s.me:
        try:
            s.client.dataset(target.owner, target.name)
        except FloydAPIError as exc:
            if exc.status != 404:
                raise
            s.client.create_dataset(target.name, f"outputs of {ref.owner}/{ref.project}")
            if not as_json:
                say(f"Created dataset [bold]{target.owner}/{target.name}[/].")
    v = s.client.dataset_from_job(target.owner, target.name, f"{ref}/output", message)
    if as_json:
        print_json(v)
    else:
        say(f"Created [bold]{esc(v['ref'])}[/] from {ref}/output: {v['file_count']} files, "
            f"{fmt_bytes(v['size'])}. Mount it with --data {esc(v['ref'])}")


@data.command("upload")
@click.argument("path", required=False, default=".", type=click.Path(exists=True, path_type=Path))
@click.option("-n", "--name", "dataset", help="Dataset to upload to (default: the one `floyd data init` linked).")
@click.option("-m", "--message", default="", help="Describe this version.")
@click.option("--allow-duplicate", is_flag=True, help="Make a new version even if the files are unchanged.")
@click.option("--create", is_flag=True, help="Create the dataset (yours, private) if it does not exist yet.")
@click.option("--json", "as_json", is_flag=True, help="Print the new version as JSON.")
def upload(path: Path, dataset: str | None, message: str, allow_duplicate: bool, create: bool, as_json: bool) -> None:
    """Upload PATH (a directory or file) as a new version. Resumes after an interruption."""
    name = dataset or linked_dataset(path.resolve() if path.is_dir() else path.resolve().parent)
    if not name:
        raise click.UsageError("Which dataset? Run `floyd data init NAME` here first, or pass --name NAME.")
    with gc_paused():  # a 100,000-file scan is ~300,000 objects, none in a cycle: gone before it ends
        v, facts = _upload_tree(Session(), name, path, message, allow_duplicate, create, as_json)
    if as_json:
        print_json({**v, **facts})
    elif facts["duplicate"]:
        say(f"Unchanged: these files are already [bold]{esc(v['ref'])}[/]; no new version made "
            "(--allow-duplicate makes one anyway).")
    else:
        rest = "" if facts["sent_files"] == v["file_count"] else ", the rest was already stored"
        say(f"Created [bold]{esc(v['ref'])}[/]: {v['file_count']} files, {fmt_bytes(v['size'])}; "
            f"sent {facts['sent_files']} files ({fmt_bytes(facts['sent_bytes'])}){rest}. Id {v['id'][:19]}…")


def _upload_tree(s: Session, name: str, path: Path, message: str, allow_duplicate: bool, create: bool,
                 as_json: bool) -> tuple[dict, dict]:
    """The version ``path`` is now, and what it took. An unchanged tree costs its scan and one
    request (``heads.py``): the dataset is not looked up, and transfer and rich are not imported."""
    scan = start_scan(path)  # its workers scan while this process learns who it is…
    ref = s.data_ref(name)
    cache = StatCache()
    try:
        heads = TreeHeads(cache, s.client.url, ref.owner, ref.name, path)
        if not allow_duplicate:
            heads.ask_early(s.client)  # …and asks about the last upload's version
        tree = scan.finish(TermNotes())
        same = None if allow_duplicate else heads.unchanged(s.client, tree)
        if same is not None:
            return same, {"duplicate": True, "sent_bytes": 0, "sent_files": 0}
        ensure_dataset(s, ref, create, quiet=as_json)
        from floyd.cli.consoles import RichProgress
        from floyd.client.transfer import upload_scanned

        with RichProgress(enabled=not as_json) as progress:
            result = upload_scanned(s.client, ref.owner, ref.name, tree, heads, message, allow_duplicate, progress,
                                    cache)
        return result.version, {"duplicate": result.duplicate, "sent_bytes": result.sent_bytes,
                                "sent_files": result.sent_files}
    finally:
        cache.close()


def ensure_dataset(s: Session, ref: DataRef, create: bool, quiet: bool) -> None:
    """A missing dataset is refused (or, with --create, made) before a single file is hashed."""
    try:
        s.client.dataset(ref.owner, ref.name)
        return
    except FloydAPIError as exc:
        if exc.status != 404:
            raise
        missing = exc
    full = f"{ref.owner}/{ref.name}"
    if not create or ref.owner != s.me:
        hint = (f"create it with `floyd data init {ref.name}` (which also links this directory), or upload "
                "with --create" if ref.owner == s.me else "only its owner can create it")
        raise FloydAPIError(missing.status, f"Dataset {full} does not exist: {hint}.") from None
    s.client.create_dataset(ref.name)
    if not quiet:
        say(f"Created dataset [bold]{full}[/].")


@data.command("list")
@click.option("--public", is_flag=True, help="List every public dataset instead of yours.")
@click.option("--owner", help="List another user's datasets that you can see.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(public: bool, owner: str | None, as_json: bool) -> None:
    """List datasets."""
    items = Session().client.datasets(owner=owner, public=public)
    if as_json:
        print_json(items)
        return
    print_table(
        ["DATASET", "VERSIONS", "LATEST", "SIZE", "FILES", "VISIBILITY"],
        [(d["full_name"], d["version_count"], d["latest"]["ref"] if d["latest"] else "-",
          fmt_bytes(d["latest"]["size"]) if d["latest"] else "-",
          d["latest"]["file_count"] if d["latest"] else "-", "public" if d["public"] else "private")
         for d in items],
        empty="No datasets yet: floyd data init NAME",
    )


@data.command("versions")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def versions(name: str | None, as_json: bool) -> None:
    """List the versions of dataset NAME (default: the linked one)."""
    s = Session()
    name = name or linked_dataset(Path.cwd())
    if not name:
        raise click.UsageError("Which dataset? Give NAME, or run this where `floyd data init` linked one.")
    ref = s.data_ref(name)
    items = s.client.versions(ref.owner, ref.name)
    if as_json:
        print_json(items)
        return
    print_table(
        ["VERSION", "CREATED", "FILES", "SIZE", "BY", "MESSAGE"],
        [(v["ref"], when(v["created_at"]), v["file_count"], fmt_bytes(v["size"]), v["created_by"], v["message"])
         for v in items],
        empty=f"{ref.owner}/{ref.name} has no versions yet: floyd data upload",
    )


@data.command("ls")
@click.argument("ref")
@click.argument("path", required=False, default="")
@click.option("-r", "--recursive", is_flag=True, help="List every file below PATH.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def ls(ref: str, path: str, recursive: bool, as_json: bool) -> None:
    """List files of version REF (NAME:N) under PATH."""
    s = Session()
    r = s.data_ref(ref)
    # Page by page, each printed as it arrives: a version of a million files is never held whole.
    pages = s.client.file_pages(r.owner, r.name, r.version or "latest", path or r.path, recursive)
    if as_json:
        print_json_pages(pages, "files")
        return
    print_table_pages(["PATH", "TYPE", "SIZE", "FILES"],
                      ([(f["path"], f["type"], fmt_bytes(f["size"]), f.get("file_count", "")) for f in p["files"]]
                       for p in pages))


@data.command("get")
@click.argument("ref")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("."),
              help="Directory (or file name, for a single file) to write to.")
def get(ref: str, output: Path) -> None:
    """Download NAME:N[/PATH]: a file, a directory, or the whole version."""
    s = Session()
    r = s.data_ref(ref)
    from floyd.cli.consoles import RichProgress
    from floyd.client.transfer import download

    with RichProgress() as progress:
        written = download(s.client, r.owner, r.name, r.version or "latest", r.path, output, progress)
    say(f"Wrote {len(written)} path(s) under {esc(output.resolve())}.")


@data.command("diff")
@click.argument("a")
@click.argument("b")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def diff(a: str, b: str, as_json: bool) -> None:
    """Compare two versions of a dataset: NAME:A NAME:B."""
    s = Session()
    ra, rb = s.data_ref(a), s.data_ref(b)
    if (ra.owner, ra.name) != (rb.owner, rb.name):
        raise click.UsageError("Compare two versions of the same dataset, e.g. `floyd data diff mnist:1 mnist:2`.")
    result = s.client.diff(ra.owner, ra.name, ra.version or "latest", rb.version or "latest")
    if as_json:
        print_json(result)
        return
    for mark, key, style in (("+", "added", "green"), ("-", "removed", "red"), ("~", "changed", "yellow")):
        for p in result[key]:
            say(f"[{style}]{mark} {esc(p)}[/]")
    say(f"{len(result['added'])} added, {len(result['removed'])} removed, "
        f"{len(result['changed'])} changed ({esc(result['from']['ref'])} → {esc(result['to']['ref'])}).")


@data.command("delete")
@click.argument("ref")
@click.option("--force", is_flag=True, help="Delete even if a job used this version.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(ref: str, force: bool, yes: bool) -> None:
    """Delete version NAME:N (files no other version uses are freed)."""
    s = Session()
    r = s.data_ref(ref)
    if not r.version:
        raise click.UsageError("Say which version to delete: NAME:N (e.g. mnist:3).")
    if not yes:
        click.confirm(f"Delete {r.owner}/{r.name}:{r.version}?", abort=True)
    info = s.client.delete_version(r.owner, r.name, r.version, force)
    say(f"Deleted {info['ref']} ({info['blobs_removed']} stored file(s) freed).")


@data.command("share")
@click.argument("name")
@click.option("--public/--private", default=True, help="Make it readable by every user, or only by you.")
def share(name: str, public: bool) -> None:
    """Make dataset NAME public (or private again)."""
    s = Session()
    r = s.data_ref(name)
    d = s.client.update_dataset(r.owner, r.name, public=public)
    say(f"{d['full_name']} is now {'public' if d['public'] else 'private'}.")
