"""``floyd endpoint …``: list, inspect, log, stop, delete and share the endpoints ``floyd deploy`` makes.

NAME is the logged-in user's endpoint, or OWNER/NAME (admins).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import click
from rich.markup import escape

from floyd.cli.consoles import err_console
from floyd.cli.context import Session
from floyd.cli.follow import stdout_line
from floyd.cli.output import cells, print_json, print_table, say, short, when
from floyd.client.errors import FloydClientError
from floyd.client.project_config import ConfigError
from floyd.formatting import fmt_ms, fmt_resources


# -- names ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class EndpointRef:
    owner: str
    name: str

    def __str__(self) -> str:
        return f"{self.owner}/{self.name}"


def endpoint_ref(s: Session, text: str) -> EndpointRef:
    """``NAME`` (yours) or ``OWNER/NAME``; the bridge checks the characters of each."""
    parts = text.strip().split("/")
    if len(parts) > 2 or not all(parts):
        raise ConfigError(f"Cannot read endpoint name {text!r}: use NAME or OWNER/NAME (e.g. iris, alice/iris).")
    return EndpointRef(parts[0], parts[1]) if len(parts) == 2 else EndpointRef(s.me, parts[0])


# -- formatting -----------------------------------------------------------------------------
def replicas_text(v: dict) -> str:
    r = v.get("replicas") or {}
    return f"{r.get('ready', 0)}/{r.get('desired', 0)}"


def first_line(text: str | None) -> str:
    return (text or "").split("\n", 1)[0]


def autoscaling_text(ep: dict) -> str:
    a = ep.get("autoscaling")
    if not a:
        return "autoscaling off: each version keeps the replicas it was deployed with"
    zero = f", to zero after {a['idle_timeout']:g} s idle" if a["min_replicas"] == 0 else ""
    return (f"{a['min_replicas']}–{a['max_replicas']} replicas at {a['target_in_flight']:g} request(s) in flight "
            f"each (up after {a['scale_up_window']:g} s, down after {a['scale_down_window']:g} s{zero})")


def split_text(split: dict) -> str:
    return " ".join(f"v{n}={w}%" for n, w in split.items()) or "none (the newest ready version takes it all)"


def name_arg(ref: EndpointRef, me: str) -> str:
    """How to name the endpoint in the next command the user is told to run."""
    return ref.name if ref.owner == me else str(ref)


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
    items = Session().client.endpoints()
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
    c = s.client
    ep = with_stats(c.get_endpoint(ref.owner, ref.name), c.endpoint_metrics(ref.owner, ref.name, minutes=1))
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
                           replicas_text(v), st.get("requests", 0), st.get("errors", 0), fmt_ms(lat.get("p50"), "-"),
                           fmt_ms(lat.get("p95"), "-"), fmt_ms(lat.get("p99"), "-"), st.get("in_flight", 0),
                           short(first_line(v.get("reason")) or v.get("message"), 50)]))
    say(f"Endpoint [bold]{escape(str(ref))}[/] ({'public' if ep.get('public') else 'needs a key'}, "
        f"{ep.get('active_keys', 0)} active key(s))")
    print_table(["VERSION", "STATE", "REPLICAS", "REQUESTS", "ERRORS", "P50 MS", "P95 MS", "P99 MS", "IN FLIGHT",
                 "NOTE"], rows, empty=f"No versions yet: floyd deploy {escape(name)}")
    if ep.get("autoscaling"):
        say(f"Autoscaling: {escape(autoscaling_text(ep))}.")
    hidden = len(ep["versions"]) - len(shown)
    if hidden:
        say(f"[dim]{hidden} stopped or failed version(s) not shown (--all).[/]")
    if ep.get("traffic"):
        say(f"Traffic split: {escape(split_text(ep['traffic']))}: {escape(ep['url'])}")
    elif serving:
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
    items = s.client.list_versions(ref.owner, ref.name)
    if as_json:
        print_json(items)
        return
    print_table(["VERSION", "CREATED", "STATE", "REPLICAS", "ENTRY", "ENV", "RESOURCES", "SNAPSHOT", "MESSAGE",
                 "REASON"],
                [cells([f"v{v['number']}", when(v.get("created_at")), v["state"], replicas_text(v), v.get("entry"),
                        v.get("environment"), fmt_resources(v.get("resources") or {}), (v.get("snapshot") or "")[:19],
                        short(v.get("message"), 30), short(first_line(v.get("reason")), 50)]) for v in items],
                empty=f"No versions yet: floyd deploy {escape(name)}")


def pick_version(s: Session, ref: EndpointRef, version: int | None) -> int:
    if version is not None:
        return version
    ep = s.client.get_endpoint(ref.owner, ref.name)
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
    number = pick_version(s, ref, version)
    if not follow:
        sys.stdout.write(s.client.version_log(ref.owner, ref.name, number))
        sys.stdout.flush()
        return
    try:
        for event, data in s.client.follow_version_log(ref.owner, ref.name, number):
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
    record = s.client.stop_version(ref.owner, ref.name, version)
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
    s.client.get_endpoint(ref.owner, ref.name)
    if not yes:
        click.confirm(f"Delete endpoint {ref}, all its versions and API keys?", abort=True, err=True)
    s.client.delete_endpoint(ref.owner, ref.name)
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
    ep = s.client.update_endpoint(ref.owner, ref.name, public=on)
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
    key = s.client.create_key(ref.owner, ref.name, key_name, expires_days)
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
    items = s.client.list_keys(ref.owner, ref.name)
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
    key = s.client.revoke_key(ref.owner, ref.name, key_id)
    if as_json:
        print_json(key)
    else:
        say(f"Key {key['id']} ({escape(key['name'])}) of {escape(str(ref))} revoked.")


COMMANDS = [endpoint]

__all__ = ["COMMANDS", "EndpointRef", "endpoint_ref"]
