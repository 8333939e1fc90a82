"""``floyd status/info/logs/stop/metrics``: looking at jobs, as FloydHub had them.

Jobs are named ``OWNER/PROJECT/N``; ``N`` alone means a job of the linked project and
``PROJECT/N`` one of your projects (:mod:`floyd.cli.jobrefs`). Starting them is in
:mod:`floyd.cli.run`, downloading their code and output in :mod:`floyd.cli.downloads`.
"""

from __future__ import annotations

import json
import math
import sys

import click

from floyd.cli.context import Session
from floyd.cli.follow import follow_log, report_end, stdout_line
from floyd.cli.jobrefs import linked_project, resolve_job
from floyd.cli.output import cells, esc, print_json, print_table, say, short, when
from floyd.client.errors import FloydClientError
from floyd.formatting import fmt_duration, fmt_resources, fmt_value

JOB_COLUMNS = ["JOB", "CREATED", "STATE", "DURATION", "ENV", "RESOURCES", "MESSAGE", "METRICS"]


def user_metrics(latest: dict[str, float]) -> dict[str, float]:
    """Metrics the job reported itself (system/… samples only if there is nothing else)."""
    mine = {k: v for k, v in latest.items() if not k.startswith("system/")}
    return mine or latest


def fmt_metrics(latest: dict[str, float], most: int = 3) -> str:
    items = sorted(user_metrics(latest).items())
    text = " ".join(f"{k}={fmt_value(v)}" for k, v in items[:most])
    return text + (" …" if len(items) > most else "")


def job_row(j: dict) -> list[str]:
    state = j["state"] + (f" ({j['exit_code']})" if j["state"] == "failed" and j.get("exit_code") else "")
    if (j.get("attempt") or 1) > 1:  # it ran again after a lost run (--retries)
        state += f" (attempt {j['attempt']}/{j['retries'] + 1})"
    return cells([j["id"], when(j["created_at"]), state, fmt_duration(j.get("duration"), "-"), j["environment"],
                  fmt_resources(j["resources"]), short(j.get("message")), fmt_metrics(j.get("latest_metrics") or {})])


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
                say(f"[dim]Reason: {esc(record['reason'])}[/]")
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
        say(f"No job reported {esc(metric)} yet.")
    else:
        say(f"Best by {esc(metric)} ({goal}): [bold]{esc(chosen['id'])}[/] "
            f"({esc(metric)}={fmt_value(chosen['latest_metrics'][metric])})")


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
        row = [j["id"], j["state"], fmt_duration(j.get("duration"), "-"), *(j["params"].get(k, "") for k in varying),
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
    if record.get("attempts"):
        say(f"Attempt {record['attempt']} of at most {record['retries'] + 1}; the lost ones:")
        print_table(["ATTEMPT", "STATE", "STARTED", "ENDED", "REASON"],
                    [cells([a["attempt"], a["state"], when(a.get("started_at")), when(a.get("finished_at")), a["reason"]])
                     for a in record["attempts"]])
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
    say(f"Job {esc(record['id'])} {esc(record['state'])}.")


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


COMMANDS = [status, info, logs, stop, metrics]
