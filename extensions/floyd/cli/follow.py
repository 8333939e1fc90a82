"""Following a job's log until it ends, and saying what was queued (``floyd run/restart -f``)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from floyd.cli.context import Session
from floyd.cli.jobrefs import JobRef
from floyd.cli.output import esc, print_json, say


def follow_log(s: Session, ref: JobRef, out: Callable[[str], None]) -> dict:
    """Print the job's log from the first line until it ends; return its final record."""
    try:
        for event, data in s.client.follow_job_log(*ref.args):
            if event == "line":
                out(data)
            elif event == "end":
                break
    except KeyboardInterrupt:
        from floyd.cli.consoles import err_console

        err_console.print(f"Stopped following; job {esc(str(ref))} goes on (floyd logs {ref.number} -f to "
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
    from floyd.cli.consoles import err_console

    err_console.print(f"Job {esc(record['id'])} [{style}]{state}[/]{esc(reason)}", highlight=False)
    return 0 if state == "succeeded" else 1


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
                say(f"  {esc(j['id'])}  " + " ".join(f"{esc(k)}={esc(v)}" for k, v in j["params"].items()))
            if not follow:
                say(f"Compare them: floyd status --group {g['id']} --best METRIC")
        else:
            say(headline.replace("{job}", f"[bold]{esc(jobs[0]['id'])}[/]"))
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
