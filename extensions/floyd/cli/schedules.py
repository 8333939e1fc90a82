"""``floyd schedule …``: run a job (or a pipeline of floyd.yml, ``--pipeline``) on a cron time table, kept by the platform (not by a laptop or a
notebook server that may be off when it comes due).

``create`` builds the one job request (:func:`floyd.client.request.build_job_request`, as ``floyd
run``), uploads the project's code once and stores the request with that snapshot: every run
runs the same code. NAME is yours, or OWNER/NAME (admins).
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from floyd.cli.consoles import RichProgress
from floyd.cli.context import Session
from floyd.cli.jobrefs import linked_project
from floyd.cli.options import CommandArgs, job_options, options_from_flags
from floyd.cli.output import cells, print_json, print_table, say, when
from floyd.cli.pipelines import pipeline_request, with_snapshot
from floyd.cli.run import what_to_run
from floyd.client.errors import FloydClientError
from floyd.client.project_config import ConfigError
from floyd.client.request import NothingToRun, build_job_request
from floyd.client.submit import snapshot_request


def schedule_ref(s: Session, text: str) -> tuple[str, str]:
    """``NAME`` (yours) or ``OWNER/NAME``; the bridge checks the characters of each."""
    parts = text.strip().split("/")
    if len(parts) > 2 or not all(parts):
        raise ConfigError(f"Cannot read schedule name {text[:80]!r}: use NAME or OWNER/NAME (e.g. nightly).")
    return (parts[0], parts[1]) if len(parts) == 2 else (s.me, parts[0])


def what_it_runs(sched: dict) -> str:
    target = sched.get("target") or {}
    request = target.get("request") or {}
    if target.get("kind") == "pipeline":
        return f"pipeline {request.get('pipeline', '')}"
    return str(request.get("command") or request.get("notebook") or "")


def last_run(sched: dict) -> str:
    runs = sched.get("runs") or []
    if not runs:
        return "-"
    run = runs[0]
    return f"{run['outcome']} {' '.join(run['jobs'])}".strip()


@click.group("schedule")
def schedule() -> None:
    """Schedules: run a job on a cron time table (create, list, show, pause, resume, delete)."""


@schedule.command("create", cls=CommandArgs)
@click.argument("name")
@click.argument("command", nargs=-1)
@click.option("--cron", required=True, help="When: five cron fields, e.g. '0 3 * * *' (03:00 every day).")
@click.option("--timezone", default="UTC", show_default=True, help="The cron's time zone, e.g. Europe/Berlin.")
@click.option("--allow-overlap", is_flag=True, help="Start a run even while the previous one still goes.")
@click.option("--task", help="Use the keys of this task of floyd.yml.")
@click.option("--pipeline", help="Run this pipeline of floyd.yml instead of a job (--param STEP.NAME=VALUE).")
@job_options
def create(name: str, command: tuple[str, ...], cron: str, timezone: str, allow_overlap: bool, task: str | None,
           pipeline: str | None, environment: str | None, cpu: bool, gpu: int | None, cpus: float | None, memory: str | None,
           data: tuple[str, ...], params: tuple[str, ...], max_runtime: int | None, message: str | None,
           follow: bool, as_json: bool) -> None:
    """Run COMMAND (or a notebook, or floyd.yml's command) of this project on schedule NAME.

    The code is snapshotted now; each run runs that snapshot. Examples:

    \b
      floyd schedule create nightly --cron "0 3 * * *" --timezone Europe/Berlin "python train.py"
      floyd schedule create nightly-train --cron "0 3 * * *" --pipeline train --param fit.lr=0.01
    """
    if follow:
        raise click.UsageError("-f/--follow is for floyd run; a schedule's jobs start later (floyd schedule show).")
    body = {"name": name, "cron": cron, "timezone": timezone, "allow_overlap": allow_overlap}
    if pipeline is not None:
        if command or task:
            raise click.UsageError("--pipeline runs floyd.yml's pipeline: leave out COMMAND and --task.")
        create_for_pipeline(body, pipeline, params, as_json)
        return
    s = Session()
    found = linked_project()
    if found is None:
        raise FloydClientError(f"No project is linked to {Path.cwd()} (no .floydexpt here or above): "
                               "run floyd init PROJECT first.")
    root, project = found
    options = options_from_flags(environment, cpu, gpu, cpus, memory, data, params, max_runtime, message)
    try:
        request = build_job_request(project, what_to_run(command, root), options, root, task)
    except NothingToRun as exc:
        raise click.UsageError(exc.message) from None
    s.client.check_schedule(body)  # a bad name, cron or time zone is refused before any upload
    with RichProgress(enabled=not as_json) as progress:
        ready, _ = snapshot_request(s.client, request, root, observer=progress)
    result = s.client.create_schedule({**body, "target": {"kind": "job", "request": ready.to_body()}})
    show_created(result, as_json)


def create_for_pipeline(body: dict, pipeline: str, params: tuple[str, ...], as_json: bool) -> None:
    """A schedule whose runs are runs of floyd.yml's ``pipeline`` (read and checked as ``floyd
    pipeline run`` does, its code uploaded once)."""
    root, request = pipeline_request(pipeline, params)
    s = Session()
    s.client.check_schedule(body)  # a bad name, cron or time zone is refused before any upload
    ready = with_snapshot(s, root, request, as_json)
    show_created(s.client.create_schedule({**body, "target": {"kind": "pipeline", "request": ready}}), as_json)


def show_created(result: dict, as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    say(f"Schedule [bold]{escape(result['owner'])}/{escape(result['name'])}[/] ({escape(result['cron'])}, "
        f"{escape(result['timezone'])}): next run {escape(when(result['next_run_at']))}.")


@schedule.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(as_json: bool) -> None:
    """Your schedules (an admin's: everyone's)."""
    items = Session().client.schedules()
    if as_json:
        print_json(items)
        return
    rows = [cells([f"{x['owner']}/{x['name']}", x["cron"], x["timezone"], "paused" if x["paused"] else "active",
                   when(x.get("next_run_at")), what_it_runs(x)]) for x in items]
    print_table(["NAME", "CRON", "TIMEZONE", "STATE", "NEXT RUN", "COMMAND"], rows,
                empty='No schedules yet: floyd schedule create NAME --cron "0 3 * * *" "python train.py"')


@schedule.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(name: str, as_json: bool) -> None:
    """NAME's time table and its newest runs: started (with the job), skipped or failed (with why)."""
    s = Session()
    sched = s.client.schedule(*schedule_ref(s, name))
    if as_json:
        print_json(sched)
        return
    state = "paused" if sched["paused"] else f"next run {when(sched['next_run_at'])}"
    say(f"Schedule [bold]{escape(sched['owner'])}/{escape(sched['name'])}[/]: {escape(sched['cron'])} "
        f"({escape(sched['timezone'])}), {escape(state)}; runs {escape(what_it_runs(sched))}")
    rows = [cells([when(r["due_at"]), r["outcome"], " ".join(r["jobs"]) or "-", r["missed"] or "",
                   r["reason"]]) for r in sched.get("runs", [])]
    print_table(["DUE", "OUTCOME", "JOB", "MISSED", "REASON"], rows, empty="No runs yet.")


def set_paused(name: str, paused: bool) -> None:
    s = Session()
    sched = s.client.update_schedule(*schedule_ref(s, name), paused=paused)
    ref = f"{sched['owner']}/{sched['name']}"
    say(f"Paused {escape(ref)}." if paused else f"Resumed {escape(ref)}: next run {escape(when(sched['next_run_at']))}.")


@schedule.command("pause")
@click.argument("name")
def pause(name: str) -> None:
    """Stop NAME from starting runs (runs already started go on)."""
    set_paused(name, True)


@schedule.command("resume")
@click.argument("name")
def resume(name: str) -> None:
    """Start NAME's runs again from its next due time (what came due while paused is not caught up)."""
    set_paused(name, False)


@schedule.command("delete")
@click.argument("name")
def delete(name: str) -> None:
    """Delete NAME and its run history; the jobs it started stay."""
    s = Session()
    owner, sname = schedule_ref(s, name)
    s.client.delete_schedule(owner, sname)
    say(f"Deleted schedule {escape(owner)}/{escape(sname)}.")
