"""``floyd pipeline run|status|logs|stop``: floyd.yml's pipelines on the platform.

``run`` reads the pipeline from floyd.yml (client/pipelines.py), uploads the project once as a
code snapshot (only what the server lacks, with progress) and starts the run; the bridge starts
each step when its inputs exist and reuses unchanged steps. RUN is N (a run of the project
linked here), PROJECT/N or OWNER/PROJECT/N.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from floyd.cli.consoles import RichProgress
from floyd.cli.context import Session
from floyd.cli.jobrefs import JobRef, linked_project, resolve_job
from floyd.cli.output import print_json, print_table, say
from floyd.client.errors import FloydClientError
from floyd.client.pipelines import apply_params, parse_saves, pipeline_steps
from floyd.client.project_config import YML_FILE
from floyd.client.transfer import upload_code

POLL = 1.0  # seconds between looks at a followed run


def step_state(step: dict) -> str:
    """What a step is doing, in words: its job's state while it runs, ``reused from job N``…"""
    if step["state"] == "running" and step.get("job_state"):
        return step["job_state"]
    if step.get("reused_from"):
        return f"reused from job {step['reused_from']}"
    return step["state"]


def print_run(run: dict) -> None:
    rows = [(st["name"], step_state(st), st["job_number"] or "", ", ".join(st["needs"]),
             " · ".join(x for x in (st["reason"] if not st.get("reused_from") else "",
                                    f"saved as {st['saved_as']}" if st.get("saved_as") else "",
                                    f"model {st['model_saved_as']}" if st.get("model_saved_as") else "") if x))
            for st in run["steps"]]
    click.echo(f"Pipeline {run['pipeline']} run {run['id']}: {run['state']}")
    print_table(["STEP", "STATE", "JOB", "AFTER", "NOTE"], rows)


def page_url(s: Session, run: dict) -> str:
    return f"{s.client.url.rstrip('/')}/services/floyd/pipelines/{run['id']}"


def wait(s: Session, ref: JobRef) -> dict:
    while True:
        run = s.client.get_json(f"pipelines/{ref}")
        if run["state"] != "running":
            return run
        time.sleep(POLL)


@click.group("pipeline")
def pipeline() -> None:
    """Run floyd.yml's pipelines: steps that start when their inputs exist, unchanged steps reused."""


def pipeline_request(name: str, params: tuple[str, ...], no_reuse: bool = False,
                     saves: tuple[str, ...] = (), models: tuple[str, ...] = ()) -> tuple[Path, dict]:
    """floyd.yml's pipeline NAME of the project linked here as the body of ``POST /api/v1/pipelines``
    (without its snapshot yet), and the project's root. Shared by ``pipeline run`` and ``schedule create``."""
    found = linked_project()
    if found is None:
        raise FloydClientError(f"No project is linked to {Path.cwd()} (no .floydexpt here or above): "
                               "run floyd init PROJECT first.")
    root, project = found
    yml = root / YML_FILE
    if not yml.is_file():
        raise FloydClientError(f"There is no {YML_FILE} in {root} to define pipeline {name!r}.")
    steps = apply_params(pipeline_steps(yml.read_text(encoding="utf-8"), name, project), params)
    return root, {"project": project, "pipeline": name, "steps": steps, "no_reuse": no_reuse,
                  "save_outputs": parse_saves(saves),
                  "save_models": parse_saves(models, "--save-model", "MODEL", "train=mnist-cnn")}


def with_snapshot(s: Session, root: Path, body: dict, quiet: bool) -> dict:
    """``body`` with the project's code uploaded once as its snapshot (only what the server lacks)."""
    owner, pname = body["project"].split("/", 1)
    with RichProgress(enabled=not quiet) as progress:
        up = upload_code(s.client, owner, pname, root, observer=progress)
    return {**body, "snapshot": up.version["id"]}


@pipeline.command("run")
@click.argument("name")
@click.option("--param", "params", multiple=True, metavar="STEP.NAME=VALUE", help="A step's parameter (repeatable).")
@click.option("--no-reuse", is_flag=True, help="Run every step, even those an earlier run already computed.")
@click.option("--save-output", "saves", multiple=True, metavar="STEP=DATASET",
              help="The step's output becomes a new version of DATASET (made if missing; repeatable).")
@click.option("--save-model", "models", multiple=True, metavar="STEP=MODEL",
              help="The step's output becomes a new version of model MODEL (registered, made if missing; repeatable).")
@click.option("-f", "--follow", is_flag=True, help="Wait for the run to end, then show its steps.")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
def run(name: str, params: tuple[str, ...], no_reuse: bool, saves: tuple[str, ...], models: tuple[str, ...],
        follow: bool, as_json: bool) -> None:
    """Start pipeline NAME of floyd.yml on this project's code."""
    root, body = pipeline_request(name, params, no_reuse, saves, models)
    s = Session()
    result = s.client.send_json("POST", "pipelines", with_snapshot(s, root, body, as_json))
    if follow:
        result = wait(s, JobRef(result["owner"], result["project"], result["number"]))
    if as_json:
        print_json(result)
        return
    if follow:
        print_run(result)
    else:
        say(f"Pipeline [bold]{name}[/bold] run [bold]{result['id']}[/bold] started "
            f"({len(body['steps'])} steps). Follow it: floyd pipeline status {result['id']}")
    click.echo(page_url(s, result))
    if follow and result["state"] != "succeeded":
        raise SystemExit(1)


@pipeline.command("status")
@click.argument("run_ref", metavar="[RUN]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(run_ref: str | None, as_json: bool) -> None:
    """One run's steps, or (no RUN) the runs of the project linked here.

    RUN is N (a run of the project linked here), PROJECT/N or OWNER/PROJECT/N."""
    s = Session()
    if run_ref:
        result = s.client.get_json(f"pipelines/{resolve_job(s, run_ref)}")
        if as_json:
            print_json(result)
        else:
            print_run(result)
        return
    found = linked_project()
    items = s.client.get_json("pipelines", project=found[1].split("/", 1)[1] if found else None)["items"]
    if as_json:
        print_json(items)
        return
    print_table(["RUN", "PIPELINE", "STATE", "STEPS", "CREATED"],
                [(r["id"], r["pipeline"], r["state"], len(r["steps"]), r["created_at"]) for r in items],
                empty="No pipeline runs yet: floyd pipeline run NAME")


@pipeline.command("logs")
@click.argument("run_ref", metavar="RUN")
@click.option("--step", "only", default=None, help="Only this step's log.")
def logs(run_ref: str, only: str | None) -> None:
    """The logs of a run's steps, in order (a reused step's log is its earlier job's).

    RUN is N (a run of the project linked here), PROJECT/N or OWNER/PROJECT/N."""
    s = Session()
    ref = resolve_job(s, run_ref)
    result = s.client.get_json(f"pipelines/{ref}")
    names = [st["name"] for st in result["steps"]]
    if only is not None and only not in names:
        raise FloydClientError(f"Run {ref} has no step {only!r} (steps: {', '.join(names)}).")
    for st in result["steps"]:
        if only is not None and st["name"] != only:
            continue
        click.echo(f"==> {st['name']}: {step_state(st)}" + (f" (job {st['job']})" if st["job"] else ""))
        if st["job_number"] is not None:
            click.echo(s.client.job_log(ref.owner, ref.project, st["job_number"]), nl=False)


@pipeline.command("stop")
@click.argument("run_ref", metavar="RUN")
def stop(run_ref: str) -> None:
    """Stop a run: steps not started are skipped, running ones stopped.

    RUN is N (a run of the project linked here), PROJECT/N or OWNER/PROJECT/N."""
    s = Session()
    ref = resolve_job(s, run_ref)
    print_run(s.client.send_json("POST", f"pipelines/{ref}/stop"))
