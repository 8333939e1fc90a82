"""``floyd deploy``: serve a project's code as a new version of an HTTP endpoint.

``floyd deploy NAME`` snapshots the linked project exactly as ``floyd run`` does (floyd.yml,
.floydignore, only what the server lacks is sent), creates endpoint NAME when it is missing,
posts a new immutable version and waits until its replicas pass their readiness check. The
version that was serving keeps serving until then, and keeps serving if the new one fails.
NAME is the logged-in user's endpoint, or OWNER/NAME (admins). ``floyd run --mode serve``
calls :func:`deploy_project` too. The request and the deploy itself are the client's
(:mod:`floyd.client.deploy`), shared with the Lab's "Deploy as endpoint".
"""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from floyd.cli.consoles import RichProgress, err_console
from floyd.cli.context import Session
from floyd.cli.endpoints import EndpointRef, endpoint_ref, name_arg, replicas_text
from floyd.cli.jobrefs import linked_project
from floyd.cli.options import GpuArgs
from floyd.cli.output import print_json, say, sent_summary
from floyd.cli.scaling import autoscaling_body
from floyd.client.deploy import (
    ENTRY_SUFFIXES,
    Deployed,
    DeployOptions,
    build_version_request,
    deploy_new_version,
)
from floyd.client.errors import FloydClientError
from floyd.client.project_config import ConfigError, find_project_dir

ENDED = ("ready", "failed", "stopped", "draining")


class DeployError(click.ClickException):
    """A version that did not get ready: exit 1, as a failed job's ``floyd run -f`` does."""

    exit_code = 1


@dataclass
class DeployFlags:
    """``floyd deploy``'s flags; :meth:`options` is the front-end-neutral :class:`DeployOptions`."""

    entry: str | None = None
    task: str | None = None
    environment: str | None = None
    cpu: bool = False
    gpu: int | None = None
    cpus: float | None = None
    memory: str | None = None
    replicas: int | None = None
    data: tuple[str, ...] = ()
    health_path: str | None = None
    public: bool = False
    message: str | None = None
    model: str | None = None
    follow: bool | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None
    target_in_flight: float | None = None
    idle_timeout: float | None = None
    wait: bool = True
    as_json: bool = False

    def autoscaling(self) -> dict | None:
        return autoscaling_body(self.min_replicas, self.max_replicas, self.target_in_flight,
                                idle_timeout=self.idle_timeout)

    def options(self, entry: str | None) -> DeployOptions:
        if self.cpu and self.gpu is not None:
            raise ConfigError("Use --cpu or --gpu, not both.")
        opts = DeployOptions(entry=entry, task=self.task, environment=self.environment,
                             gpus=0 if self.cpu else self.gpu, cpus=self.cpus, memory=self.memory,
                             replicas=self.replicas, data=self.data, health_path=self.health_path,
                             public=self.public, message=self.message, model=self.model, follow=self.follow)
        opts.check()
        return opts


def find_code(path: str | None, entry: str | None) -> tuple[Path, str, str | None]:
    """The project directory, its OWNER/PROJECT and the entry: PATH may be a directory in a
    linked project (default: here) or a file in one (app.py, model.ipynb), which is then the entry."""
    if not path:
        found = linked_project()
        if found is None:
            raise FloydClientError(f"No project is linked to {Path.cwd()} (no .floydexpt here or above): "
                                   "run floyd init PROJECT first, or give the project's directory as PATH.")
        return found[0], found[1], entry
    target = Path(path)
    if not target.exists():
        raise ConfigError(f"{path}: no such file or directory; PATH is the project directory or its entry file "
                          "(app.py, model.ipynb).")
    is_file = target.is_file()
    found = find_project_dir(target.parent if is_file else target)
    if found is None:
        raise FloydClientError(f"No project is linked to {target.resolve()} (no .floydexpt there or above): "
                               "run floyd init PROJECT in the project's directory first.")
    root, project = found
    if not is_file:
        return root, project, entry
    if entry:
        raise ConfigError(f"Give the entry once: as PATH ({path}) or as --entry ({entry}), not both.")
    if not target.name.endswith(ENTRY_SUFFIXES):
        raise ConfigError(f"{path} cannot be served: the entry is a .py file (app.py, serve.py) or a notebook "
                          "(.ipynb), or use --entry module:attribute.")
    return root, project, target.resolve().relative_to(root).as_posix()


def deploy_project(s: Session, name: str, path: str | None, flags: DeployFlags) -> None:
    """What ``floyd deploy`` and ``floyd run --mode serve`` do; exits non-zero if the version fails."""
    ref = endpoint_ref(s, name)
    flags.options(flags.entry)  # refuse bad flags before looking for the code
    root, project, entry = find_code(path, flags.entry)
    opts = flags.options(entry)
    request = build_version_request(project, root, opts)
    with RichProgress(enabled=not flags.as_json) as progress:
        done = deploy_new_version(s.client, ref.owner, ref.name, request, root, opts.public, progress,
                                  flags.autoscaling())
    if not flags.as_json:
        say_deployed(ref, done, opts.public)
    number = done.version["number"]
    facts = {"endpoint": str(ref), "endpoint_url": done.endpoint["url"], "upload": done.upload.facts()}
    if not flags.wait:
        if flags.as_json:
            print_json({**done.version, **facts})
        else:
            say(f"Watch it: floyd endpoint status {escape(name_arg(ref, s.me))}   "
                f"(floyd endpoint logs {escape(name_arg(ref, s.me))} -v {number} -f)")
        return
    final = wait_version(s, ref, number, quiet=flags.as_json)
    if flags.as_json:
        print_json({**final, **facts})
    if final["state"] != "ready":
        report_failure(ref, final, s.me, quiet=flags.as_json)
    if not flags.as_json:
        report_ready(ref, final, done.endpoint, s.me)


def say_deployed(ref: EndpointRef, done: Deployed, public: bool) -> None:
    if done.created:
        say(f"Created endpoint [bold]{escape(str(ref))}[/]{' (public)' if public else ''}.")
    if public and not done.created:
        say(f"Endpoint {escape(str(ref))} is public: anyone who can reach the platform may call it.")
    snapshot = str(done.upload.version["id"])
    say(f"Version [bold]{done.version['number']}[/] of {escape(str(ref))} deploying (snapshot "
        f"{escape(snapshot[:19])}…, {sent_summary(done.upload)}).")


def wait_version(s: Session, ref: EndpointRef, number: int, quiet: bool) -> dict:
    """Poll the version until it is ready or failed, with a live status line on a terminal."""
    live = not quiet and err_console.is_terminal
    last = ""
    delay = 0.2
    try:
        with err_console.status(f"Deploying {ref} v{number}…") if live else nullcontext() as status:
            while True:
                v = s.client.get_version(ref.owner, ref.name, number)
                line = progress_line(ref, v)
                if status is not None:
                    status.update(escape(line))
                elif not quiet and line != last:
                    err_console.print(escape(line), highlight=False)
                last = line
                if v["state"] in ENDED:
                    return v
                time.sleep(delay)
                delay = min(delay * 1.5, 1.0)
    except KeyboardInterrupt:
        err_console.print(f"Stopped waiting; v{number} of {escape(str(ref))} goes on deploying "
                          f"(floyd endpoint status {escape(str(ref))}).", highlight=False)
        sys.exit(130)


def progress_line(ref: EndpointRef, v: dict) -> str:
    state = v["state"]
    text = f"{ref} v{v['number']}: {state}, replicas ready {replicas_text(v)}"
    if state == "deploying":
        starting = [r for r in (v.get("replicas") or {}).get("items", []) if not r.get("ready")]
        if starting and starting[0].get("restarts"):
            text += f" (r{starting[0]['index']} restarted {starting[0]['restarts']}×)"
    return text


def report_ready(ref: EndpointRef, v: dict, endpoint: dict, me: str) -> None:
    url = endpoint["url"]
    say(f"[green]Ready[/]: {escape(str(ref))} v{v['number']} ({replicas_text(v)} replicas) takes the endpoint's "
        "traffic.")
    say(f"  URL:          {escape(url)}")
    say(f"  This version: {escape(v['url'])}")
    say(f"  Try it:       {escape(curl_example(url, bool(endpoint.get('public')), ref, me))}")


def report_failure(ref: EndpointRef, v: dict, me: str, quiet: bool) -> None:
    head = v.get("reason") or "no reason was recorded"
    tail = v.get("log_tail") or []
    if tail and not quiet:
        err_console.print(f"Last lines of v{v['number']}'s log:", style="dim", highlight=False)
        for line in tail:
            err_console.print(escape(line), highlight=False, soft_wrap=True)
    state = v["state"] if v["state"] == "failed" else f"{v['state']} before it was ready"
    raise DeployError(f"{ref} v{v['number']} {state}: {head}. Whole log: floyd endpoint logs "
                      f"{name_arg(ref, me)} -v {v['number']}")


def curl_example(url: str, public: bool, ref: EndpointRef, me: str) -> str:
    if public:
        return f"curl {url}"
    short_name = ref.name if ref.owner == me else str(ref)
    return (f'curl -H "Authorization: Bearer $FLOYD_API_KEY" {url}   '
            f"(a key: floyd endpoint keys create {short_name})")


def deploy_options(fn: Any) -> Any:
    options = [
        click.option("--entry", help="What to serve: app.py (WSGI/ASGI app or predict()), module:attr, "
                                     "model.ipynb (default: app.py, or PATH when it is a file)."),
        click.option("--task", help="Use the keys of this task of floyd.yml (env, resources, input)."),
        click.option("--env", "environment", help="Environment to serve in (the platform's list)."),
        click.option("--cpu", "cpu", is_flag=True, help="Serve without a GPU."),
        click.option("--gpu", "--gpus", "gpu", type=click.IntRange(0), metavar="[N]",
                     help="GPUs per replica (--gpu alone: 1)."),
        click.option("--cpus", type=float, help="CPUs per replica (e.g. 0.5, 2)."),
        click.option("--memory", help="Memory limit per replica, e.g. 2G."),
        click.option("--replicas", type=int, help="Replicas of this version (default 1)."),
        click.option("--min-replicas", type=click.IntRange(0),
                     help="Autoscale: fewest replicas (0: scale to zero when idle)."),
        click.option("--max-replicas", type=click.IntRange(1), help="Autoscale: most replicas."),
        click.option("--target-in-flight", type=click.FloatRange(0, min_open=True),
                     help="Autoscale: requests in flight per replica to aim at (default 1)."),
        click.option("--idle-timeout", type=click.FloatRange(0),
                     help="Autoscale: seconds without requests before scaling to zero (with --min-replicas 0)."),
        click.option("--data", "data", multiple=True, metavar="SRC[:MOUNT]",
                     help="Mount a dataset version (mnist:3) or a job's output (alice/iris/12/output:model) at "
                          "/floyd/input/MOUNT. Repeatable."),
        click.option("--model", metavar="NAME[:N|@ALIAS]",
                     help="Mount a model version read-only at /floyd/model (iris:3, iris@production)."),
        click.option("--follow/--no-follow", default=None,
                     help="Roll out again whenever the alias moves (the default when --model names an alias)."),
        click.option("--health-path", help="Path that answers 2xx once the app is ready (default /_floyd/ready)."),
        click.option("--public", is_flag=True, help="Make the endpoint public: callers need no key."),
        click.option("-m", "--message", help="Describe this version."),
        click.option("--no-wait", is_flag=True, help="Return once the version is posted (state deploying)."),
        click.option("--json", "as_json", is_flag=True, help="Print the version as JSON."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.command("deploy", cls=GpuArgs)
@click.argument("name")
@click.argument("path", required=False)
@deploy_options
def deploy(name: str, path: str | None, no_wait: bool, **kwargs: Any) -> None:
    """Deploy the project here (or PATH: its directory, or its entry file) as endpoint NAME.

    Uploads a snapshot of the code, starts a new version and waits until it is ready; the
    version serving before keeps serving until then, and if the new one fails. Examples:

    \b
      floyd deploy iris                      # app.py of the project linked here
      floyd deploy iris serve.py --replicas 2 --data alice/iris/12/output:model
      floyd deploy iris --model iris@production    # follows the alias
      floyd deploy digits model.ipynb --public
      floyd deploy iris --min-replicas 0 --max-replicas 4 --target-in-flight 2
    """
    deploy_project(Session(), name, path, DeployFlags(wait=not no_wait, **kwargs))


COMMANDS = [deploy]

__all__ = ["COMMANDS", "DeployFlags", "deploy_project", "find_code"]
