"""``floyd init``, ``floyd run`` and ``floyd restart``: starting jobs from a project directory.

A directory is linked to a project by ``floyd init PROJECT`` (``.floydexpt``); ``floyd run``
builds the one job request (:func:`floyd.client.request.build_job_request`: the flags over
floyd.yml), uploads the directory as a code snapshot (only what the server lacks) and submits
the job from it, exactly as the Lab's Run button and ``%floyd_run`` do.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from floyd.cli.consoles import RichProgress
from floyd.cli.context import Session
from floyd.cli.deploy import DeployFlags, deploy_project
from floyd.cli.follow import print_submitted
from floyd.cli.jobrefs import linked_project, resolve_job
from floyd.cli.options import CommandArgs, job_options, options_from_flags
from floyd.cli.output import say, sent_summary
from floyd.client.errors import FloydAPIError, FloydClientError
from floyd.client.ignore import DEFAULT_FLOYDIGNORE
from floyd.client.project_config import EXAMPLE_FLOYD_YML, YML_FILE, ConfigError, parse_sweep_flag, write_expt
from floyd.client.request import JobOptions, NothingToRun, build_job_request, resolve_settings
from floyd.client.submit import submit_job


# -- floyd init -----------------------------------------------------------------------------
@click.command("init")
@click.argument("project")
@click.option("-d", "--description", default="", help="What the project is for (when it is created).")
def init(project: str, description: str) -> None:
    """Link this directory to PROJECT (OWNER/PROJECT allowed); create it if it is yours and missing.

    Writes .floydexpt, and a default .floydignore and an example floyd.yml when there are none.
    """
    s = Session()
    owner, _, name = project.rpartition("/")
    owner = owner or s.me
    if "/" in owner or not name:
        raise click.UsageError(f"Cannot read project {project!r}: use NAME or OWNER/NAME.")
    if owner == s.me:
        try:
            s.client.create_project(name, description)
            say(f"Created project [bold]{escape(owner)}/{escape(name)}[/].")
        except FloydAPIError as exc:
            if exc.status != 409:
                raise
            s.client.project(owner, name)
            say(f"Using your existing project {escape(owner)}/{escape(name)}.")
    else:
        s.client.project(owner, name)
    here = Path.cwd()
    write_expt(here, f"{owner}/{name}")
    made = []
    if not (here / ".floydignore").exists():
        (here / ".floydignore").write_text(DEFAULT_FLOYDIGNORE)
        made.append(".floydignore")
    if not (here / YML_FILE).exists():
        (here / YML_FILE).write_text(EXAMPLE_FLOYD_YML)
        made.append(YML_FILE)
    extra = f" (wrote .floydexpt{''.join(', ' + m for m in made)})"
    say(f"Linked {escape(str(here))} to {escape(owner)}/{escape(name)}{extra}. "
        f"Run a job with: floyd run \"python train.py\"")


# -- floyd run ------------------------------------------------------------------------------
def what_to_run(words: tuple[str, ...] | list[str], root: Path | None) -> dict:
    """``("python", "train.py")`` → {command}; one argument ending in .ipynb → {notebook}."""
    text = " ".join(words).strip()
    if not text:
        return {}
    if len(words) == 1 and text.endswith(".ipynb") and " " not in text:
        nb = Path(text)
        if root is not None and not nb.is_absolute() and (Path.cwd() / nb).exists():
            try:
                nb = (Path.cwd() / nb).resolve().relative_to(root)
            except ValueError:
                raise FloydClientError(f"{text} is outside the project directory {root}.") from None
        return {"notebook": nb.as_posix()}
    return {"command": text}


@click.command("run", cls=CommandArgs)
@click.argument("command", nargs=-1)
@job_options
@click.option("--task", help="Use the keys of this task of floyd.yml.")
@click.option("--sweep", help="A grid of parameters, one job each: 'lr=0.1,0.01 layers=2,3'.")
@click.option("--concurrency", type=click.IntRange(0), help="Most jobs of the sweep running at once.")
@click.option("--retries", type=click.IntRange(0), metavar="N",
              help="Run the job again, up to N times, if its run is lost (its machine went away, its engine "
                   "restarted); never when it fails by its own exit code.")
@click.option("--mode", type=click.Choice(["job", "serve"]), default="job", show_default=True,
              help="serve: deploy this project as endpoint COMMAND (default: the project's name), as floyd deploy.")
def run(command: tuple[str, ...], environment: str | None, cpu: bool, gpu: int | None, cpus: float | None,
        memory: str | None, data: tuple[str, ...], params: tuple[str, ...], max_runtime: int | None,
        message: str | None, follow: bool, as_json: bool, task: str | None, sweep: str | None,
        concurrency: int | None, retries: int | None, mode: str) -> None:
    """Run COMMAND (or a notebook, NAME.ipynb) as a job on a snapshot of this project's code.

    Settings come from floyd.yml, then from these flags. Examples:

    \b
      floyd run "python train.py" --param lr=0.01 --data mnist:3:digits -f
      floyd run --gpu --env cuda train.ipynb
      floyd run --sweep 'lr=0.1,0.01' --concurrency 2 "python train.py"
      floyd run --retries 2 "python train.py"   # again if its machine goes away
      floyd run --mode serve iris            # = floyd deploy iris
    """
    s = Session()
    if mode == "serve":
        job_only = {"--param": params, "--max-runtime": max_runtime is not None, "-f/--follow": follow,
                    "--sweep": sweep is not None, "--concurrency": concurrency is not None,
                    "--retries": retries is not None}
        serve_mode(s, command, [flag for flag, value in job_only.items() if value],
                   DeployFlags(task=task, environment=environment, cpu=cpu, gpu=gpu, cpus=cpus, memory=memory,
                                 data=data, message=message, as_json=as_json))
        return
    options = options_from_flags(environment, cpu, gpu, cpus, memory, data, params, max_runtime, message)
    options.sweep = parse_sweep_flag(sweep) if sweep is not None else None
    options.concurrency = concurrency
    options.retries = retries
    run_job(s, command, options, task, follow, as_json)


def serve_mode(s: Session, command: tuple[str, ...], job_flags: list[str], opts: DeployFlags) -> None:
    """``floyd run --mode serve [NAME]``: ``floyd deploy NAME`` (default: the project's name)."""
    if job_flags:
        raise ConfigError(f"{', '.join(job_flags)} {'is' if len(job_flags) == 1 else 'are'} for jobs, not for "
                          "--mode serve (an endpoint runs until it is stopped; see floyd deploy --help).")
    if len(command) > 1:
        raise ConfigError(f"--mode serve takes one endpoint NAME, not a command ({' '.join(command)!r}); "
                          "the entry is app.py, or floyd deploy NAME --entry FILE.")
    found = linked_project()
    name = command[0] if command else (found[1].split("/", 1)[1] if found else "")
    deploy_project(s, name or ".", None, opts)


def run_job(s: Session, command: tuple[str, ...], options: JobOptions, task: str | None, follow: bool,
            as_json: bool) -> None:
    """Build the request (flags over floyd.yml), upload the project, submit, say what was queued."""
    found = linked_project()
    if found is None:
        raise FloydClientError(f"No project is linked to {Path.cwd()} (no .floydexpt here or above): "
                               "run floyd init PROJECT first.")
    root, project = found
    try:
        request = build_job_request(project, what_to_run(command, root), options, root, task)
    except NothingToRun as exc:
        raise click.UsageError(exc.message) from None
    with RichProgress(enabled=not as_json) as progress:
        submitted = submit_job(s.client, request, root, observer=progress)
    snapshot, up = submitted.snapshot, submitted.upload
    extra = {"snapshot": snapshot, **up.facts()}
    if submitted.result.get("group") and not as_json:
        say(f"Snapshot {escape(snapshot[:19])}… ({sent_summary(up)}).")
    print_submitted(s, submitted.result, as_json, extra, follow,
                    f"Job {{job}} queued (snapshot {escape(snapshot[:19])}…, {sent_summary(up)})")


# -- floyd restart --------------------------------------------------------------------------
@click.command("restart", cls=CommandArgs)
@click.argument("job")
@click.argument("command", nargs=-1)
@job_options
def restart(job: str, command: tuple[str, ...], environment: str | None, cpu: bool, gpu: int | None,
            cpus: float | None, memory: str | None, data: tuple[str, ...], params: tuple[str, ...],
            max_runtime: int | None, message: str | None, follow: bool, as_json: bool) -> None:
    """Run JOB's code snapshot again, with changes: a new COMMAND, --param, --data, --env, ...

    The new job records JOB as its parent; --param values are merged into JOB's.
    """
    s = Session()
    ref = resolve_job(s, job)
    linked = linked_project()
    options = options_from_flags(environment, cpu, gpu, cpus, memory, data, params, max_runtime, message)
    project = linked[1] if linked else f"{ref.owner}/{ref.project}"
    overrides = {**what_to_run(command, None), **resolve_settings(project, None, options).request()}
    result = s.client.restart_job(*ref.args, overrides)
    print_submitted(s, result, as_json, {"parent": str(ref)}, follow,
                    f"Job {{job}} queued: a restart of {escape(str(ref))} (its parent)")


COMMANDS = [init, run, restart]
