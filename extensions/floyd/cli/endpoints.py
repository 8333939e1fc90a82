"""``floyd deploy`` and ``floyd endpoint …``: serve a project's code as an HTTP endpoint.

``floyd deploy NAME`` snapshots the linked project exactly as ``floyd run`` does (floyd.yml,
.floydignore, only what the server lacks is sent), creates endpoint NAME when it is missing,
posts a new immutable version and waits until its replicas pass their readiness check. The
version that was serving keeps serving until then, and keeps serving if the new one fails.
NAME is the logged-in user's endpoint, or OWNER/NAME (admins).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
from rich.markup import escape

from floyd.cli.context import Session
from floyd.cli.jobs import (
    GpuArgs,
    cells,
    data_source,
    fmt_resources,
    linked_project,
    say,
    sent_summary,
    short,
    stdout_line,
    upload_project,
)
from floyd.cli.output import err_console, print_json, print_table, when
from floyd.client.errors import FloydAPIError, FloydClientError
from floyd.project_config import (
    ConfigError,
    JobSettings,
    check_cpus,
    check_memory,
    find_project_dir,
    load_settings,
    merge,
    parse_input,
)

ENDED = ("ready", "failed", "stopped", "draining")
ENTRY_SUFFIXES = (".py", ".ipynb")
# Keys of floyd.yml (and flags) that mean something for a version; command, params, sweep… are for jobs.
VERSION_KEYS = ("environment", "gpus", "cpus", "memory", "inputs", "message")


class DeployError(click.ClickException):
    """A version that did not get ready: exit 1, as a failed job's ``floyd run -f`` does."""

    exit_code = 1


def _q(value: object) -> str:
    return quote(str(value), safe="")


# -- names and the API ----------------------------------------------------------------------
@dataclass(frozen=True)
class EndpointRef:
    owner: str
    name: str

    def __str__(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def path(self) -> str:
        return f"endpoints/{_q(self.owner)}/{_q(self.name)}"


def endpoint_ref(s: Session, text: str) -> EndpointRef:
    """``NAME`` (yours) or ``OWNER/NAME``; the bridge checks the characters of each."""
    parts = text.strip().split("/")
    if len(parts) > 2 or not all(parts):
        raise ConfigError(f"Cannot read endpoint name {text!r}: use NAME or OWNER/NAME (e.g. iris, alice/iris).")
    return EndpointRef(parts[0], parts[1]) if len(parts) == 2 else EndpointRef(s.me, parts[0])


class EndpointAPI:
    """The ``/api/v1/endpoints`` calls, over the CLI's one FloydClient."""

    def __init__(self, s: Session) -> None:
        self.c = s.client

    def list(self) -> list[dict]:
        return self.c.get_json("endpoints")["items"]

    def get(self, ref: EndpointRef) -> dict:
        return self.c.get_json(ref.path)

    def find(self, ref: EndpointRef) -> dict | None:
        try:
            return self.get(ref)
        except FloydAPIError as exc:
            if exc.status == 404:
                return None
            raise

    def create(self, ref: EndpointRef, me: str, public: bool) -> dict:
        body: dict[str, Any] = {"name": ref.name, "public": public}
        if ref.owner != me:
            body["owner"] = ref.owner
        return self.c.send_json("POST", "endpoints", body)

    def update(self, ref: EndpointRef, **changes: Any) -> dict:
        return self.c.send_json("PATCH", ref.path, changes)

    def delete(self, ref: EndpointRef) -> None:
        self.c.request("DELETE", ref.path)

    def versions(self, ref: EndpointRef) -> list[dict]:
        return self.c.get_json(f"{ref.path}/versions")["items"]

    def version(self, ref: EndpointRef, number: int) -> dict:
        return self.c.get_json(f"{ref.path}/versions/{int(number)}")

    def deploy(self, ref: EndpointRef, body: dict) -> dict:
        return self.c.send_json("POST", f"{ref.path}/versions", body)

    def stop(self, ref: EndpointRef, number: int) -> dict:
        return self.c.send_json("POST", f"{ref.path}/versions/{int(number)}/stop")

    def log(self, ref: EndpointRef, number: int) -> str:
        return self.c.request("GET", f"{ref.path}/versions/{int(number)}/logs").text

    def follow_log(self, ref: EndpointRef, number: int) -> Iterator[tuple[str, str]]:
        """(event, data) pairs of the live log, as FloydClient.follow_job_log reads a job's."""
        resp = self.c.request("GET", f"{ref.path}/versions/{int(number)}/logs", params={"follow": "1"},
                              stream=True, timeout=(30, None))  # type: ignore[arg-type]
        event, data = "line", []
        for raw in resp.iter_lines(decode_unicode=True, chunk_size=1):
            if raw is None:
                continue
            if raw == "":
                if data:
                    yield event, "\n".join(data)
                    if event == "end":
                        return
                event, data = "line", []
            elif raw.startswith("data: ") or raw == "data:":
                data.append(raw[6:])
            elif raw.startswith("event: "):
                event = raw[7:]

    def metrics(self, ref: EndpointRef, minutes: float = 60) -> dict:
        return self.c.get_json(f"{ref.path}/metrics", minutes=minutes)

    def keys(self, ref: EndpointRef) -> list[dict]:
        return self.c.get_json(f"{ref.path}/keys")["items"]

    def create_key(self, ref: EndpointRef, name: str | None, expires_in_days: float | None) -> dict:
        body = {k: v for k, v in (("name", name), ("expires_in_days", expires_in_days)) if v is not None}
        return self.c.send_json("POST", f"{ref.path}/keys", body)

    def revoke_key(self, ref: EndpointRef, key_id: str) -> dict:
        return self.c.send_json("DELETE", f"{ref.path}/keys/{_q(key_id)}")


# -- formatting -----------------------------------------------------------------------------
def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}" if value < 100 else f"{value:.0f}"


def replicas_text(v: dict) -> str:
    r = v.get("replicas") or {}
    return f"{r.get('ready', 0)}/{r.get('desired', 0)}"


def first_line(text: str | None) -> str:
    return (text or "").split("\n", 1)[0]


def curl_example(url: str, public: bool, ref: EndpointRef, me: str) -> str:
    if public:
        return f"curl {url}"
    short_name = ref.name if ref.owner == me else str(ref)
    return (f'curl -H "Authorization: Bearer $FLOYD_API_KEY" {url}   '
            f"(a key: floyd endpoint keys create {short_name})")


def name_arg(ref: EndpointRef, me: str) -> str:
    """How to name the endpoint in the next command the user is told to run."""
    return ref.name if ref.owner == me else str(ref)


# -- floyd deploy ---------------------------------------------------------------------------
@dataclass
class DeployOptions:
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
    wait: bool = True
    as_json: bool = False


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


def version_body(root: Path, project: str, snapshot: str, entry: str | None, opts: DeployOptions) -> dict:
    """floyd.yml's env, resources, input and description, then the flags, as a version request."""
    flags = JobSettings(environment=opts.environment, message=opts.message, gpus=0 if opts.cpu else opts.gpu)
    if opts.cpus is not None:
        flags.cpus = check_cpus(opts.cpus)
    if opts.memory is not None:
        flags.memory = check_memory(opts.memory)
    if opts.data:
        flags.inputs = [parse_input(item) for item in opts.data]
    settings = merge(load_settings(root, opts.task), flags)
    if settings.inputs:
        settings.inputs = [{**i, "source": data_source(i["source"], project)} for i in settings.inputs]
    request = settings.request()
    body: dict[str, Any] = {"project": project, "snapshot": snapshot,
                            **{k: request[k] for k in VERSION_KEYS if k in request}}
    if entry:
        body["entry"] = entry
    if opts.replicas is not None:
        body["replicas"] = opts.replicas
    if opts.health_path:
        body["health_path"] = opts.health_path
    return body


def check_options(opts: DeployOptions) -> None:
    """What can be refused before anything is uploaded."""
    if opts.replicas is not None and opts.replicas < 1:
        raise ConfigError(f"--replicas must be a whole number of at least 1, not {opts.replicas}.")
    if opts.health_path is not None and not opts.health_path.startswith("/"):
        raise ConfigError(f"--health-path must be a path such as /health (answering 2xx when ready), "
                          f"not {opts.health_path!r}.")
    if opts.cpu and opts.gpu is not None:
        raise ConfigError("Use --cpu or --gpu, not both.")
    if opts.cpus is not None:
        check_cpus(opts.cpus)
    if opts.memory is not None:
        check_memory(opts.memory)


def deploy_project(s: Session, name: str, path: str | None, opts: DeployOptions) -> None:
    """What ``floyd deploy`` and ``floyd run --mode serve`` do; exits non-zero if the version fails."""
    ref = endpoint_ref(s, name)
    check_options(opts)
    root, project, entry = find_code(path, opts.entry)
    api = EndpointAPI(s)
    existing = api.find(ref)  # also checks NAME with the bridge before anything is uploaded
    up = upload_project(s, root, project, quiet=opts.as_json)
    snapshot = up.version["id"]
    body = version_body(root, project, snapshot, entry, opts)
    created = existing is None
    endpoint = api.create(ref, s.me, opts.public) if created else existing
    assert endpoint is not None
    if created and not opts.as_json:
        say(f"Created endpoint [bold]{escape(str(ref))}[/]{' (public)' if opts.public else ''}.")
    try:
        version = api.deploy(ref, body)
    except FloydAPIError:
        if created:  # an endpoint that never had a version is not worth keeping
            try:
                api.delete(ref)
            except FloydClientError:
                pass
        raise
    if opts.public and not endpoint.get("public"):
        endpoint = api.update(ref, public=True)
        if not opts.as_json:
            say(f"Endpoint {escape(str(ref))} is now public: anyone who can reach the platform may call it.")
    number = version["number"]
    upload = {"files": up.files, "sent_files": up.sent_files, "sent_bytes": up.sent_bytes,
              "duplicate": up.duplicate}
    if not opts.as_json:
        say(f"Version [bold]{number}[/] of {escape(str(ref))} deploying (snapshot {escape(snapshot[:19])}…, "
            f"{sent_summary(up)}).")
    if not opts.wait:
        if opts.as_json:
            print_json({**version, "endpoint": str(ref), "endpoint_url": endpoint["url"], "upload": upload})
        else:
            say(f"Watch it: floyd endpoint status {escape(name_arg(ref, s.me))}   "
                f"(floyd endpoint logs {escape(name_arg(ref, s.me))} -v {number} -f)")
        return
    final = wait_version(api, ref, number, quiet=opts.as_json)
    if opts.as_json:
        print_json({**final, "endpoint": str(ref), "endpoint_url": endpoint["url"], "upload": upload})
    if final["state"] != "ready":
        report_failure(ref, final, s.me, quiet=opts.as_json)
    if not opts.as_json:
        report_ready(ref, final, endpoint, s.me)


def wait_version(api: EndpointAPI, ref: EndpointRef, number: int, quiet: bool) -> dict:
    """Poll the version until it is ready or failed, with a live status line on a terminal."""
    live = not quiet and err_console.is_terminal
    last = ""
    delay = 0.2
    try:
        with err_console.status(f"Deploying {ref} v{number}…") if live else nullcontext() as status:
            while True:
                v = api.version(ref, number)
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
        click.option("--data", "data", multiple=True, metavar="SRC[:MOUNT]",
                     help="Mount a dataset version (mnist:3) or a job's output (alice/iris/12/output:model) at "
                          "/floyd/input/MOUNT. Repeatable."),
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
      floyd deploy digits model.ipynb --public
    """
    deploy_project(Session(), name, path, DeployOptions(wait=not no_wait, **kwargs))


# -- floyd endpoint ---------------------------------------------------------------------------
@click.group("endpoint")
def endpoint() -> None:
    """Endpoints: list, status, versions, logs, stop, delete, public, API keys.

    NAME is one of your endpoints, or OWNER/NAME. Deploy one with: floyd deploy NAME
    """


@endpoint.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(as_json: bool) -> None:
    """Your endpoints (an admin's: everyone's) with the version that serves them."""
    items = EndpointAPI(Session()).list()
    if as_json:
        print_json(items)
        return
    rows = []
    for ep in items:
        serving = ep.get("serving_version")
        newest = (ep.get("versions") or [{}])[0]
        rows.append(cells([f"{ep['owner']}/{ep['name']}", f"v{serving}" if serving else "-",
                           f"v{newest['number']} {newest['state']}" if newest else "-",
                           "yes" if ep.get("public") else "no", ep.get("active_keys", 0), ep["url"]]))
    print_table(["ENDPOINT", "SERVING", "NEWEST", "PUBLIC", "KEYS", "URL"], rows,
                empty="No endpoints yet: floyd deploy NAME (in a project directory with an app.py).")


def with_stats(ep: dict, metrics: dict) -> dict:
    """The endpoint record, each version's ``stats`` taken from /metrics (which also knows stopped ones)."""
    by_number = {m["number"]: {k: v for k, v in m.items() if k not in ("number", "state", "series")}
                 for m in metrics.get("versions", [])}
    versions = [{**v, "stats": by_number.get(v["number"], v.get("stats"))} for v in ep.get("versions", [])]
    return {**ep, "versions": versions}


@endpoint.command("status")
@click.argument("name")
@click.option("--all", "show_all", is_flag=True, help="Also versions that stopped or failed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the endpoint with each version's stats).")
def status(name: str, show_all: bool, as_json: bool) -> None:
    """NAME's versions: state, replicas, requests, errors, latency; which one serves unpinned traffic."""
    s = Session()
    ref = endpoint_ref(s, name)
    api = EndpointAPI(s)
    ep = with_stats(api.get(ref), api.metrics(ref, minutes=1))
    if as_json:
        print_json(ep)
        return
    serving = ep.get("serving_version")
    shown = [v for v in ep["versions"] if show_all or v["state"] not in ("stopped", "failed")
             or v["number"] == ep["versions"][0]["number"]]
    rows = []
    for v in shown:
        st = v.get("stats") or {}
        lat = st.get("latency_ms") or {}
        rows.append(cells([f"v{v['number']}" + (" *" if v["number"] == serving else ""), v["state"],
                           replicas_text(v), st.get("requests", 0), st.get("errors", 0), fmt_ms(lat.get("p50")),
                           fmt_ms(lat.get("p95")), fmt_ms(lat.get("p99")), st.get("in_flight", 0),
                           short(first_line(v.get("reason")) or v.get("message"), 50)]))
    say(f"Endpoint [bold]{escape(str(ref))}[/] ({'public' if ep.get('public') else 'needs a key'}, "
        f"{ep.get('active_keys', 0)} active key(s))")
    print_table(["VERSION", "STATE", "REPLICAS", "REQUESTS", "ERRORS", "P50 MS", "P95 MS", "P99 MS", "IN FLIGHT",
                 "NOTE"], rows, empty=f"No versions yet: floyd deploy {escape(name)}")
    hidden = len(ep["versions"]) - len(shown)
    if hidden:
        say(f"[dim]{hidden} stopped or failed version(s) not shown (--all).[/]")
    if serving:
        say(f"* v{serving} serves unpinned traffic: {escape(ep['url'])}")
        say(f"  pinned: {escape(ep['url'])}v{serving}/")
    else:
        say(f"No version is ready, so {escape(ep['url'])} answers 503 until one is.")


@endpoint.command("versions")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def versions(name: str, as_json: bool) -> None:
    """Every version of NAME, newest first: what it serves and how it ended."""
    s = Session()
    ref = endpoint_ref(s, name)
    items = EndpointAPI(s).versions(ref)
    if as_json:
        print_json(items)
        return
    print_table(["VERSION", "CREATED", "STATE", "REPLICAS", "ENTRY", "ENV", "RESOURCES", "SNAPSHOT", "MESSAGE",
                 "REASON"],
                [cells([f"v{v['number']}", when(v.get("created_at")), v["state"], replicas_text(v), v.get("entry"),
                        v.get("environment"), fmt_resources(v.get("resources") or {}), (v.get("snapshot") or "")[:19],
                        short(v.get("message"), 30), short(first_line(v.get("reason")), 50)]) for v in items],
                empty=f"No versions yet: floyd deploy {escape(name)}")


def pick_version(api: EndpointAPI, ref: EndpointRef, version: int | None) -> int:
    if version is not None:
        return version
    ep = api.get(ref)
    if ep.get("serving_version"):
        return int(ep["serving_version"])
    if ep.get("versions"):
        return int(ep["versions"][0]["number"])
    raise FloydClientError(f"Endpoint {ref} has no versions yet: deploy one with floyd deploy {ref.name}.")


@endpoint.command("logs")
@click.argument("name")
@click.option("-v", "--version", type=click.IntRange(1), help="Version number (default: the one serving, "
                                                               "else the newest).")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until the version stops.")
def logs(name: str, version: int | None, follow: bool) -> None:
    """The log of a version of NAME: every replica's output, each line tagged [rN]."""
    s = Session()
    ref = endpoint_ref(s, name)
    api = EndpointAPI(s)
    number = pick_version(api, ref, version)
    if not follow:
        sys.stdout.write(api.log(ref, number))
        sys.stdout.flush()
        return
    try:
        for event, data in api.follow_log(ref, number):
            if event == "line":
                stdout_line(data)
            elif event == "end":
                break
    except KeyboardInterrupt:
        err_console.print(f"Stopped following v{number} of {escape(str(ref))}; it goes on serving.", highlight=False)
        sys.exit(130)


@endpoint.command("stop")
@click.argument("name")
@click.option("-v", "--version", type=click.IntRange(1), required=True, help="Version number to stop.")
@click.option("--json", "as_json", is_flag=True, help="Print the stopped version as JSON.")
def stop(name: str, version: int, as_json: bool) -> None:
    """Stop a version of NAME: it finishes its in-flight requests, then its replicas stop."""
    s = Session()
    ref = endpoint_ref(s, name)
    record = EndpointAPI(s).stop(ref, version)
    if as_json:
        print_json(record)
    else:
        say(f"{escape(str(ref))} v{record['number']} {escape(record['state'])}.")


@endpoint.command("delete")
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask first.")
def delete(name: str, yes: bool) -> None:
    """Delete NAME: stop its versions, forget them, its keys and its metrics."""
    s = Session()
    ref = endpoint_ref(s, name)
    api = EndpointAPI(s)
    api.get(ref)
    if not yes:
        click.confirm(f"Delete endpoint {ref}, all its versions and API keys?", abort=True, err=True)
    api.delete(ref)
    say(f"Deleted endpoint {escape(str(ref))}.")


@endpoint.command("public")
@click.argument("name")
@click.option("--on/--off", "on", default=None, help="Public (callers need no key) or not.")
@click.option("--json", "as_json", is_flag=True, help="Print the endpoint as JSON.")
def public(name: str, on: bool | None, as_json: bool) -> None:
    """Make NAME public (--on: anyone who reaches the platform may call it) or private (--off)."""
    if on is None:
        raise ConfigError("Say --on (anyone may call it) or --off (callers need a key or your token).")
    s = Session()
    ref = endpoint_ref(s, name)
    ep = EndpointAPI(s).update(ref, public=on)
    if as_json:
        print_json(ep)
    elif on:
        say(f"{escape(str(ref))} is public: {escape(ep['url'])} answers without a key.")
    else:
        say(f"{escape(str(ref))} is private: callers send an API key (floyd endpoint keys create "
            f"{escape(name_arg(ref, s.me))}) or your token.")


# -- floyd endpoint keys ------------------------------------------------------------------------
@endpoint.group("keys")
def keys() -> None:
    """API keys of an endpoint: callers send them as Authorization: Bearer fk_…"""


@keys.command("create")
@click.argument("name")
@click.option("--name", "key_name", help="A name for the key (default: default).")
@click.option("--expires-days", type=float, help="Days until the key stops working (default: never).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole key record (secret included) as JSON.")
def keys_create(name: str, key_name: str | None, expires_days: float | None, as_json: bool) -> None:
    """Create an API key for NAME; its secret is printed once, here, and never again."""
    if expires_days is not None and not 0 < expires_days <= 3650:
        raise ConfigError(f"--expires-days must be a number of days above 0 and at most 3650, not {expires_days:g}.")
    s = Session()
    ref = endpoint_ref(s, name)
    key = EndpointAPI(s).create_key(ref, key_name, expires_days)
    if as_json:
        print_json(key)
        return
    expires = f", expires {when(key['expires_at'])}" if key.get("expires_at") else ""
    err_console.print(f"Key {key['id']} ({escape(key['name'])}) of {escape(str(ref))}{expires}. Copy it now: it is not "
                      "shown again.", style="yellow", highlight=False)
    stdout_line(key["key"])


@keys.command("list")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def keys_list(name: str, as_json: bool) -> None:
    """NAME's API keys (never their secrets)."""
    s = Session()
    ref = endpoint_ref(s, name)
    items = EndpointAPI(s).keys(ref)
    if as_json:
        print_json(items)
        return
    print_table(["ID", "NAME", "PREFIX", "STATE", "CREATED", "EXPIRES", "LAST USED", "BY"],
                [cells([k["id"], k["name"], k["prefix"] + "…", k["state"], when(k.get("created_at")),
                        when(k.get("expires_at")) or "never", when(k.get("last_used_at")) or "-",
                        k.get("created_by")]) for k in items],
                empty=f"No keys: floyd endpoint keys create {escape(name)}")


@keys.command("revoke")
@click.argument("name")
@click.argument("key_id")
@click.option("--json", "as_json", is_flag=True, help="Print the revoked key as JSON.")
def keys_revoke(name: str, key_id: str, as_json: bool) -> None:
    """Revoke key KEY_ID of NAME (the ID column of keys list); requests with it get 401 at once."""
    s = Session()
    ref = endpoint_ref(s, name)
    key = EndpointAPI(s).revoke_key(ref, key_id)
    if as_json:
        print_json(key)
    else:
        say(f"Key {key['id']} ({escape(key['name'])}) of {escape(str(ref))} revoked.")


COMMANDS = [deploy, endpoint]

__all__ = ["COMMANDS", "DeployOptions", "EndpointRef", "deploy_project", "endpoint_ref"]
