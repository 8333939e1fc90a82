"""``floyd init/run/status/info/logs/stop/restart/clone/output/metrics``: jobs, as FloydHub had them.

A directory is linked to a project by ``floyd init PROJECT`` (``.floydexpt``); ``floyd run``
uploads it as a code snapshot (only what the server lacks) and submits a job from it. Jobs are
named ``OWNER/PROJECT/N``; ``N`` alone means a job of the linked project and ``PROJECT/N`` one
of your projects.
"""

from __future__ import annotations

import json
import math
import sys
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from floyd.cli.context import Session
from floyd.cli.output import RichProgress, console, err_console, human_bytes, print_json, print_table, when
from floyd.client import transfer
from floyd.client.errors import FloydAPIError, FloydClientError
from floyd.client.hashing import CHUNK, StatCache
from floyd.client.ignore import DEFAULT_FLOYDIGNORE, IgnoreRules
from floyd.client.progress import ProgressObserver
from floyd.client.project_config import (
    EXAMPLE_FLOYD_YML,
    YML_FILE,
    ConfigError,
    JobSettings,
    check_cpus,
    check_memory,
    find_project_dir,
    load_settings,
    merge,
    parse_input,
    parse_param_flags,
    parse_sweep_flag,
    write_expt,
)

JOB_HELP = "JOB is N (a job of the project linked here), PROJECT/N (yours) or OWNER/PROJECT/N."


# -- names ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobRef:
    owner: str
    project: str
    number: int

    def __str__(self) -> str:
        return f"{self.owner}/{self.project}/{self.number}"

    @property
    def args(self) -> tuple[str, str, int]:
        return self.owner, self.project, self.number


def split_job_ref(text: str) -> tuple[str | None, str | None, int]:
    """``12``, ``mnist-cnn/12``, ``alice/mnist-cnn/12`` (also ``…/output`` and FloydHub's
    ``alice/projects/mnist-cnn/12``) → (owner or None, project or None, number)."""
    parts = [p for p in text.strip().strip("/").split("/") if p]
    if parts and parts[-1] == "output":
        parts.pop()
    if len(parts) == 4 and parts[1] == "projects":
        del parts[1]
    if not 1 <= len(parts) <= 3 or not parts[-1].isdigit() or any(not p for p in parts):
        raise FloydClientError(f"Cannot read job name {text!r}: use N, PROJECT/N or OWNER/PROJECT/N "
                               "(e.g. 12, mnist-cnn/12, alice/mnist-cnn/12).")
    number = int(parts[-1])
    if len(parts) == 3:
        return parts[0], parts[1], number
    if len(parts) == 2:
        return None, parts[0], number
    return None, None, number


def linked_project() -> tuple[Path, str] | None:
    return find_project_dir(Path.cwd())


def resolve_job(s: Session, text: str) -> JobRef:
    owner, project, number = split_job_ref(text)
    if project is None:
        linked = linked_project()
        if linked is None:
            raise FloydClientError(f"{text!r} is short for a job of the project linked to this directory, but there is "
                                   "none: run `floyd init PROJECT` first, or say PROJECT/N.")
        owner, project = linked[1].split("/", 1)
    return JobRef(owner or s.me, project, number)


def data_source(text: str, linked: str | None) -> str:
    """Expand the short job-output source ``12/output`` (this project's job 12) and FloydHub's
    long names (``alice/projects/p/12/output``, ``alice/datasets/mnist/3``); the bridge reads the rest."""
    parts = text.strip().strip("/").split("/")
    if len(parts) == 2 and parts[0].isdigit() and parts[1] == "output":
        if linked is None:
            raise FloydClientError(f"--data {text}: {parts[0]}/output is a job of the project linked here, but there is "
                                   "none; run `floyd init PROJECT` or say PROJECT/N/output.")
        return f"{linked}/{parts[0]}/output"
    if len(parts) >= 4 and parts[1] == "projects":
        return "/".join([parts[0], *parts[2:4]]) + "/output"
    if len(parts) in (3, 4) and parts[1] == "datasets":
        return f"{parts[0]}/{parts[2]}" + (f":{parts[3]}" if len(parts) == 4 else "")
    return text.strip()


# -- formatting -----------------------------------------------------------------------------
def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def fmt_resources(res: dict) -> str:
    cpus = res.get("cpus")
    parts = []
    if cpus is not None:
        parts.append(f"{cpus:g} CPU")
    if res.get("memory"):
        parts.append(human_bytes(res["memory"]))
    if res.get("gpus"):
        parts.append(f"{res['gpus']} GPU")
    return ", ".join(parts)


def fmt_value(v: float) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def user_metrics(latest: dict[str, float]) -> dict[str, float]:
    """Metrics the job reported itself (system/… samples only if there is nothing else)."""
    mine = {k: v for k, v in latest.items() if not k.startswith("system/")}
    return mine or latest


def fmt_metrics(latest: dict[str, float], most: int = 3) -> str:
    items = sorted(user_metrics(latest).items())
    text = " ".join(f"{k}={fmt_value(v)}" for k, v in items[:most])
    return text + (" …" if len(items) > most else "")


def short(text: str | None, width: int = 40) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def cells(values: Iterable[Any]) -> list[str]:
    """Table cells as plain text (rich would read '[...]' in a message as markup)."""
    return [escape("" if v is None else str(v)) for v in values]


def job_row(j: dict) -> list[str]:
    state = j["state"] + (f" ({j['exit_code']})" if j["state"] == "failed" and j.get("exit_code") else "")
    return cells([j["id"], when(j["created_at"]), state, fmt_duration(j.get("duration")), j["environment"],
                  fmt_resources(j["resources"]), short(j.get("message")), fmt_metrics(j.get("latest_metrics") or {})])


JOB_COLUMNS = ["JOB", "CREATED", "STATE", "DURATION", "ENV", "RESOURCES", "MESSAGE", "METRICS"]


def say(text: str) -> None:
    console.print(text, highlight=False, soft_wrap=True)


# -- following ------------------------------------------------------------------------------
def follow_log(s: Session, ref: JobRef, out: Callable[[str], None]) -> dict:
    """Print the job's log from the first line until it ends; return its final record."""
    try:
        for event, data in s.client.follow_job_log(*ref.args):
            if event == "line":
                out(data)
            elif event == "end":
                break
    except KeyboardInterrupt:
        err_console.print(f"Stopped following; job {escape(str(ref))} goes on (floyd logs {ref.number} -f to "
                          f"follow it again, floyd stop {ref.number} to stop it).", highlight=False)
        sys.exit(130)
    return s.client.job(*ref.args)


def stdout_line(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def stderr_line(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def report_end(record: dict) -> int:
    state = record["state"]
    reason = f": {record['reason']}" if record.get("reason") and state != "succeeded" else ""
    style = "green" if state == "succeeded" else "red"
    err_console.print(f"Job {escape(record['id'])} [{style}]{state}[/]{escape(reason)}", highlight=False)
    return 0 if state == "succeeded" else 1


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


# -- shared options of run and restart ------------------------------------------------------
class GpuArgs(click.Command):
    """``--gpu`` alone means one GPU (``--gpu "python train.py"`` still works); ``--gpu2`` two."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        out: list[str] = []
        for i, arg in enumerate(args):
            if arg == "--":
                out.extend(args[i:])
                break
            if arg == "--gpu2":
                out.append("--gpu=2")
            elif arg == "--gpu" and (i + 1 >= len(args) or not args[i + 1].isdigit()):
                out.append("--gpu=1")
            else:
                out.append(arg)
        return super().parse_args(ctx, out)


def job_options(fn: Callable) -> Callable:
    options = [
        click.option("--env", "environment", help="Environment to run in (the platform's list)."),
        click.option("--cpu", "cpu", is_flag=True, help="Run without a GPU."),
        click.option("--gpu", "gpu", type=click.IntRange(0), metavar="[N]",
                     help="Run with N GPUs (--gpu alone: 1)."),
        click.option("--cpus", type=float, help="CPUs for the job (e.g. 0.5, 2)."),
        click.option("--memory", help="Memory limit, e.g. 4G."),
        click.option("--data", "data", multiple=True, metavar="SRC[:MOUNT]",
                     help="Mount a dataset version (mnist:3, alice/mnist:3) or a job's output (12/output, "
                          "alice/mnist-cnn/12/output) at /floyd/input/MOUNT. Repeatable."),
        click.option("--param", "params", multiple=True, metavar="K=V",
                     help="A parameter (FLOYD_PARAM_K in the job). Repeatable."),
        click.option("--max-runtime", type=click.IntRange(0), help="Stop the job after this many seconds."),
        click.option("-m", "--message", help="Describe this run."),
        click.option("-f", "--follow", is_flag=True, help="Stream the log until the job ends (exit 0 if it succeeded)."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def flag_settings(environment: str | None, cpu: bool, gpu: int | None, cpus: float | None, memory: str | None,
                  data: tuple[str, ...], params: tuple[str, ...], max_runtime: int | None, message: str | None,
                  linked: str | None) -> JobSettings:
    if cpu and gpu is not None:
        raise click.UsageError("Use --cpu or --gpu, not both.")
    out = JobSettings(environment=environment, max_runtime=max_runtime, message=message)
    out.gpus = 0 if cpu else gpu
    if cpus is not None:
        out.cpus = check_cpus(cpus)
    if memory is not None:
        out.memory = check_memory(memory)
    if data:
        inputs = []
        for item in data:
            entry = parse_input(item)
            entry["source"] = data_source(entry["source"], linked)
            inputs.append(entry)
        out.inputs = inputs
    out.params = parse_param_flags(params)
    return out


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


def print_submitted(s: Session, result: dict, as_json: bool, extra: dict, follow: bool, headline: str) -> None:
    """Say what was queued (``headline`` with ``{job}`` for a single job), then follow it if asked."""
    jobs = result.get("jobs") or [result["job"]]
    if as_json and not follow:
        print_json({**result, **extra})
        return
    if not as_json:
        if result.get("group"):
            g = result["group"]
            limit = f", at most {g['concurrency']} at once" if g.get("concurrency") else ""
            say(f"Sweep group [bold]{g['id']}[/]: {len(jobs)} jobs queued{limit}.")
            for j in jobs:
                say(f"  {escape(j['id'])}  " + " ".join(f"{escape(k)}={escape(v)}" for k, v in j["params"].items()))
            if not follow:
                say(f"Compare them: floyd status --group {g['id']} --best METRIC")
        else:
            say(headline.replace("{job}", f"[bold]{escape(jobs[0]['id'])}[/]"))
            if not follow:
                n = jobs[0]["number"]
                say(f"Follow it: floyd logs {n} -f   (floyd status {n}, floyd output {n})")
    if not follow:
        return
    out = stderr_line if as_json else stdout_line
    final = []
    for j in jobs:
        if len(jobs) > 1:
            out(f"==> {j['id']} <==")
        owner, project, number = j["id"].split("/")
        final.append(follow_log(s, JobRef(owner, project, int(number)), out))
    code = max(report_end(r) for r in final)
    if as_json:
        print_json({**result, **extra, **({"jobs": final} if result.get("group") else {"job": final[0]})})
    sys.exit(code)


# -- floyd run ------------------------------------------------------------------------------
def upload_project(s: Session, root: Path, project: str, quiet: bool = False) -> transfer.UploadResult:
    """Snapshot the project directory (.floydignore applied; only what the server lacks is sent)."""
    owner, name = project.split("/", 1)
    rules = IgnoreRules.for_directory(root)
    cache = StatCache()
    try:
        with RichProgress(enabled=not quiet) as progress:
            return transfer.upload_code(s.client, owner, name, root, rules.keep, progress, cache)
    finally:
        cache.close()


def sent_summary(up: transfer.UploadResult) -> str:
    return ("0 files sent: unchanged" if up.duplicate or not up.sent_files
            else f"{up.sent_files} file(s) sent, {human_bytes(up.sent_bytes)}")


@click.command("run", cls=GpuArgs)
@click.argument("command", nargs=-1)
@job_options
@click.option("--task", help="Use the keys of this task of floyd.yml.")
@click.option("--sweep", help="A grid of parameters, one job each: 'lr=0.1,0.01 layers=2,3'.")
@click.option("--concurrency", type=click.IntRange(0), help="Most jobs of the sweep running at once.")
@click.option("--mode", type=click.Choice(["job", "serve"]), default="job", show_default=True,
              help="serve: deploy this project as endpoint COMMAND (default: the project's name), as floyd deploy.")
def run(command: tuple[str, ...], environment: str | None, cpu: bool, gpu: int | None, cpus: float | None,
        memory: str | None, data: tuple[str, ...], params: tuple[str, ...], max_runtime: int | None,
        message: str | None, follow: bool, as_json: bool, task: str | None, sweep: str | None,
        concurrency: int | None, mode: str) -> None:
    """Run COMMAND (or a notebook, NAME.ipynb) as a job on a snapshot of this project's code.

    Settings come from floyd.yml, then from these flags. Examples:

    \b
      floyd run "python train.py" --param lr=0.01 --data mnist:3:digits -f
      floyd run --gpu --env cuda train.ipynb
      floyd run --sweep 'lr=0.1,0.01' --concurrency 2 "python train.py"
      floyd run --mode serve iris            # = floyd deploy iris
    """
    s = Session()
    if mode == "serve":
        job_only = {"--param": params, "--max-runtime": max_runtime is not None, "-f/--follow": follow,
                    "--sweep": sweep is not None, "--concurrency": concurrency is not None}
        used = [flag for flag, value in job_only.items() if value]
        if used:
            raise ConfigError(f"{', '.join(used)} {'is' if len(used) == 1 else 'are'} for jobs, not for --mode serve "
                              "(an endpoint runs until it is stopped; see floyd deploy --help).")
        if len(command) > 1:
            raise ConfigError(f"--mode serve takes one endpoint NAME, not a command ({' '.join(command)!r}); "
                              "the entry is app.py, or floyd deploy NAME --entry FILE.")
        from floyd.cli.deploy import DeployOptions, deploy_project  # deploy imports this module

        found = linked_project()
        name = command[0] if command else (found[1].split("/", 1)[1] if found else "")
        deploy_project(s, name or ".", None, DeployOptions(task=task, environment=environment, cpu=cpu, gpu=gpu,
                                                           cpus=cpus, memory=memory, data=data, message=message,
                                                           as_json=as_json))
        return
    found = linked_project()
    if found is None:
        raise FloydClientError(f"No project is linked to {Path.cwd()} (no .floydexpt here or above): "
                               "run floyd init PROJECT first.")
    root, project = found
    settings = load_settings(root, task)
    flags = flag_settings(environment, cpu, gpu, cpus, memory, data, params, max_runtime, message, project)
    if sweep is not None:
        flags.sweep = parse_sweep_flag(sweep)
    flags.concurrency = concurrency
    settings = merge(settings, flags)
    if settings.inputs:
        settings.inputs = [{**i, "source": data_source(i["source"], project)} for i in settings.inputs]
    what = what_to_run(command, root)
    if not what and settings.command:
        what = what_to_run([settings.command], root)
    if not what:
        raise click.UsageError('What should the job run? floyd run "python train.py" '
                               "(or set command: in floyd.yml).")
    up = upload_project(s, root, project, quiet=as_json)
    snapshot = up.version["id"]
    body = {"project": project, "snapshot": snapshot, **what, **settings.request()}
    result = s.client.submit_job(body)
    sent = sent_summary(up)
    extra = {"snapshot": snapshot, "duplicate": up.duplicate, "sent_bytes": up.sent_bytes,
             "sent_files": up.sent_files, "files": up.files, "total_bytes": up.total_bytes}
    if result.get("group") and not as_json:
        say(f"Snapshot {escape(snapshot[:19])}… ({sent}).")
    print_submitted(s, result, as_json, extra, follow, f"Job {{job}} queued (snapshot {escape(snapshot[:19])}…, {sent})")


# -- floyd status ---------------------------------------------------------------------------
def pick_best(jobs: list[dict], metric: str, maximize: bool) -> dict | None:
    scored = [(j["latest_metrics"][metric], j) for j in jobs
              if isinstance((j.get("latest_metrics") or {}).get(metric), (int, float))
              and not math.isnan(j["latest_metrics"][metric])]
    if not scored:
        return None
    return (max if maximize else min)(scored, key=lambda t: t[0])[1]


@click.command("status")
@click.argument("job", required=False)
@click.option("--group", type=int, help="Show a sweep's jobs side by side.")
@click.option("-p", "--project", help="List this project's jobs (default: the linked one, else all yours).")
@click.option("--best", "best", metavar="METRIC", help="Mark the job with the lowest METRIC (--max: highest).")
@click.option("--max", "maximize", is_flag=True, help="With --best: higher is better.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(job: str | None, group: int | None, project: str | None, best: str | None, maximize: bool,
           as_json: bool) -> None:
    """Jobs of this project (or JOB, or a sweep --group N) with state, duration and latest metrics."""
    s = Session()
    if job:
        ref = resolve_job(s, job)
        record = s.client.job(*ref.args)
        if as_json:
            print_json(record)
        else:
            print_table(JOB_COLUMNS, [job_row(record)])
            if record.get("reason") and record["state"] != "succeeded":
                say(f"[dim]Reason: {escape(record['reason'])}[/]")
        return
    if group is not None:
        jobs = sorted(s.client.jobs(group=group), key=lambda j: j["number"])
        if not jobs:
            raise FloydClientError(f"No sweep group {group} among your jobs.")
        show_group(jobs, group, best, maximize, as_json)
        return
    if project is None:
        linked = linked_project()
        project = linked[1] if linked else None
    jobs = s.client.jobs(project=project)
    chosen = pick_best(jobs, best, maximize) if best else None
    if as_json:
        print_json(jobs if not best else {"jobs": jobs, "best": chosen["id"] if chosen else None,
                                          "metric": best, "goal": "max" if maximize else "min"})
        return
    where = f"{project}" if project else "your projects"
    print_table(JOB_COLUMNS, [job_row(j) for j in jobs],
                empty=f"No jobs in {where} yet: floyd run \"python train.py\"")
    if best:
        say_best(chosen, best, maximize)


def say_best(chosen: dict | None, metric: str, maximize: bool) -> None:
    goal = "max" if maximize else "min"
    if chosen is None:
        say(f"No job reported {escape(metric)} yet.")
    else:
        say(f"Best by {escape(metric)} ({goal}): [bold]{escape(chosen['id'])}[/] "
            f"({escape(metric)}={fmt_value(chosen['latest_metrics'][metric])})")


def show_group(jobs: list[dict], group: int, best: str | None, maximize: bool, as_json: bool) -> None:
    chosen = pick_best(jobs, best, maximize) if best else None
    if as_json:
        print_json({"group": group, "jobs": jobs, "best": chosen["id"] if chosen else None, "metric": best,
                    "goal": "max" if maximize else "min"})
        return
    param_names = sorted({k for j in jobs for k in j["params"]})
    varying = [k for k in param_names if len({j["params"].get(k) for j in jobs}) > 1] or param_names
    metric_names = sorted({k for j in jobs for k in user_metrics(j.get("latest_metrics") or {})})
    if best and best not in metric_names:
        metric_names.append(best)
    columns = ["JOB", "STATE", "DURATION", *varying, *metric_names]
    if best:
        columns.append("BEST")
    rows = []
    for j in jobs:
        latest = j.get("latest_metrics") or {}
        row = [j["id"], j["state"], fmt_duration(j.get("duration")), *(j["params"].get(k, "") for k in varying),
               *(fmt_value(latest[m]) if m in latest else "" for m in metric_names)]
        if best:
            row.append("*" if chosen is not None and chosen["id"] == j["id"] else "")
        rows.append(cells(row))
    print_table(columns, rows)
    done = sum(j["state"] in ("succeeded", "failed", "stopped", "timed_out", "lost") for j in jobs)
    say(f"Sweep group {group}: {len(jobs)} jobs, {done} ended.")
    if best:
        say_best(chosen, best, maximize)


# -- floyd info / logs / stop ---------------------------------------------------------------
@click.command("info")
@click.argument("job")
@click.option("--packages", is_flag=True, help="Also list the environment's installed packages.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(job: str, packages: bool, as_json: bool) -> None:
    """Everything recorded about JOB: what reproduces it (snapshot, image id, inputs, params, parent)."""
    s = Session()
    ref = resolve_job(s, job)
    record = s.client.job(*ref.args)
    pkgs = s.client.job_packages(*ref.args) if packages else None
    if as_json:
        print_json({**record, **({"packages": pkgs} if pkgs is not None else {})})
        return
    rows = []
    for key, value in record.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value, sort_keys=True) if value else "-"
        rows.append(cells([key, "-" if value is None or value == "" else value]))
    print_table(["FIELD", "VALUE"], rows)
    if pkgs is not None:
        print_table(["PACKAGE"], [cells([p]) for p in pkgs], empty="No package list recorded for this image.")


@click.command("logs")
@click.argument("job")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until the job ends.")
def logs(job: str, follow: bool) -> None:
    """The log of JOB (its stdout and stderr)."""
    s = Session()
    ref = resolve_job(s, job)
    if follow:
        sys.exit(report_end(follow_log(s, ref, stdout_line)))
    text = s.client.job_log(*ref.args)
    sys.stdout.write(text)
    sys.stdout.flush()


@click.command("stop")
@click.argument("job")
def stop(job: str) -> None:
    """Stop JOB (queued or running); what it wrote to /floyd/output is kept."""
    s = Session()
    ref = resolve_job(s, job)
    record = s.client.stop_job(*ref.args)
    say(f"Job {escape(record['id'])} {escape(record['state'])}.")


# -- floyd restart --------------------------------------------------------------------------
@click.command("restart", cls=GpuArgs)
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
    flags = flag_settings(environment, cpu, gpu, cpus, memory, data, params, max_runtime, message,
                          linked[1] if linked else f"{ref.owner}/{ref.project}")
    overrides = {**what_to_run(command, None), **flags.request()}
    result = s.client.restart_job(*ref.args, overrides)
    print_submitted(s, result, as_json, {"parent": str(ref)}, follow,
                    f"Job {{job}} queued: a restart of {escape(str(ref))} (its parent)")


# -- floyd clone / output -------------------------------------------------------------------
class _Counting:
    def __init__(self, raw: Any, observer: ProgressObserver) -> None:
        self.raw = raw
        self.observer = observer

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if data:
            self.observer.advance("download", len(data))
        return data


def extract_tar(raw: Any, out: Path) -> list[Path]:
    """Extract a tar stream under ``out``, refusing links and paths that leave it."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tarfile.open(fileobj=raw, mode="r|") as tar:
        for member in tar:
            try:
                tar.extract(member, out, filter="data")
            except tarfile.FilterError as exc:
                raise FloydClientError(f"Refused to write {member.name!r}: {exc}") from None
            written.append(out / member.name)
    return written


def save_download(resp: Any, path: str, out: str, observer: ProgressObserver) -> list[Path]:
    """A file (written into directory ``out``, or as ``out``) or a tar of a directory (under ``out``)."""
    observer.stage("download", int(resp.headers.get("Content-Length") or 0), "bytes")
    raw = _Counting(resp.raw, observer)
    target_dir = Path(out)
    if resp.headers.get("Content-Type", "").startswith("application/x-tar"):
        return extract_tar(raw, target_dir)
    name = path.rstrip("/").rsplit("/", 1)[-1]
    target = target_dir / name if target_dir.is_dir() or out.endswith(("/", "\\")) else target_dir
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    with open(tmp, "wb") as fh:
        while block := raw.read(CHUNK):
            fh.write(block)
    tmp.replace(target)
    return [target]


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
            print_table(["PATH", "SIZE"], [cells([f["path"], human_bytes(f.get("size", 0))]) for f in files],
                        empty=f"Job {ref} has no output{' under ' + path if path else ''}.")
        return
    resp = s.client.download_job_output(*ref.args, path)
    with RichProgress() as progress:
        written = save_download(resp, path, out, progress)
    if len(written) == 1:
        say(f"Wrote {escape(str(written[0]))}.")
    else:
        say(f"Wrote {len(written)} path(s) under {escape(out)}.")


# -- floyd metrics --------------------------------------------------------------------------
def summarize(series: dict[str, list[dict]]) -> dict[str, dict]:
    out = {}
    for name, points in series.items():
        values = [p["value"] for p in points]
        out[name] = {"steps": len(points), "last": values[-1] if values else None,
                     "min": min(values) if values else None, "max": max(values) if values else None,
                     "last_step": points[-1].get("step") if points else None}
    return out


@click.command("metrics")
@click.argument("job")
@click.option("--json", "as_json", is_flag=True, help="Print every point as JSON.")
def metrics(job: str, as_json: bool) -> None:
    """JOB's metric series: from stdout lines like {"metric": "loss", "value": 0.1, "step": 3}."""
    s = Session()
    ref = resolve_job(s, job)
    data = s.client.job_metrics(*ref.args)
    summary = summarize(data["series"])
    if as_json:
        print_json({**data, "summary": summary})
        return
    names = sorted(summary, key=lambda n: (n.startswith("system/"), n))
    print_table(["NAME", "STEPS", "LAST", "MIN", "MAX"],
                [cells([n, summary[n]["steps"], fmt_value(summary[n]["last"]), fmt_value(summary[n]["min"]),
                        fmt_value(summary[n]["max"])]) for n in names],
                empty=f"Job {ref} reported no metrics; print lines like "
                      '{"metric": "loss", "value": 0.1, "step": 3}.')


COMMANDS = [init, run, status, info, logs, stop, restart, clone, output, metrics]

__all__ = ["COMMANDS", "ConfigError", "JobRef", "resolve_job", "split_job_ref"]
