"""``floyd clone`` (a job's code snapshot) and ``floyd output`` (what it wrote to /floyd/output)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from floyd.cli.consoles import RichProgress
from floyd.cli.context import Session
from floyd.cli.jobrefs import resolve_job
from floyd.cli.output import cells, print_json, print_table, say
from floyd.client.errors import FloydClientError
from floyd.client.project_config import write_expt
from floyd.client.transfer import save_download
from floyd.formatting import fmt_bytes


@click.command("clone")
@click.argument("job")
@click.option("-o", "--output", "out", type=click.Path(path_type=Path),
              help="Directory to write to (default: PROJECT-N here).")
@click.option("--force", is_flag=True, help="Write into a directory that is not empty.")
def clone(job: str, out: Path | None, force: bool) -> None:
    """Download the code snapshot JOB ran, as it was."""
    s = Session()
    ref = resolve_job(s, job)
    record = s.client.job(*ref.args)
    out = out or Path(f"{ref.project}-{ref.number}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise FloydClientError(f"{out} exists and is not empty; choose another -o DIR, or --force to write into it.")
    resp = s.client.download_snapshot(ref.owner, ref.project, record["snapshot"])
    with RichProgress() as progress:
        written = save_download(resp, "", str(out), progress)
    if not (out / ".floydexpt").exists():
        write_expt(out, f"{ref.owner}/{ref.project}")
    say(f"Wrote {len(written)} file(s) of snapshot {escape(record['snapshot'][:19])}… (job {escape(str(ref))}) "
        f"to {escape(str(out))}.")


@click.command("output")
@click.argument("job")
@click.argument("path", required=False, default="")
@click.option("-o", "--output", "out", default=".", help="Directory (or file name, for one file) to write to.")
@click.option("-l", "--list", "listing", is_flag=True, help="List the files instead of downloading.")
@click.option("--json", "as_json", is_flag=True, help="With --list: print JSON.")
def output(job: str, path: str, out: str, listing: bool, as_json: bool) -> None:
    """Download what JOB wrote to /floyd/output: all of it, a directory, or one file (PATH)."""
    s = Session()
    ref = resolve_job(s, job)
    path = path.strip("/")
    if listing:
        files = s.client.job_output_files(*ref.args, path=path, recursive=True)
        if as_json:
            print_json(files)
        else:
            print_table(["PATH", "SIZE"], [cells([f["path"], fmt_bytes(f.get("size", 0))]) for f in files],
                        empty=f"Job {ref} has no output{' under ' + path if path else ''}.")
        return
    resp = s.client.download_job_output(*ref.args, path)
    with RichProgress() as progress:
        written = save_download(resp, path, out, progress)
    if len(written) == 1:
        say(f"Wrote {escape(str(written[0]))}.")
    else:
        say(f"Wrote {len(written)} path(s) under {escape(out)}.")


COMMANDS = [clone, output]
