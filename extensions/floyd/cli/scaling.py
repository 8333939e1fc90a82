"""``floyd endpoint scale | traffic | promote | rollback | limits``: how an endpoint meets its
traffic. Registered on the ``floyd endpoint`` group (cli/main.py loads this module for it)."""

from __future__ import annotations

import re
from typing import Any

import click
from rich.markup import escape

from floyd.cli.context import Session
from floyd.cli.endpoints import autoscaling_text, endpoint, endpoint_ref, split_text
from floyd.cli.output import print_json, say
from floyd.client.project_config import ConfigError
from floyd.formatting import fmt_bytes

SHARE_RE = re.compile(r"v?(\d{1,9})=(\d{1,3})%?")


def autoscaling_body(min_replicas: int | None, max_replicas: int | None, target_in_flight: float | None,
                     up_window: float | None = None, down_window: float | None = None,
                     idle_timeout: float | None = None) -> dict | None:
    """The ``autoscaling`` object of the given flags only (None: no flag given)."""
    given = {"min_replicas": min_replicas, "max_replicas": max_replicas, "target_in_flight": target_in_flight,
             "scale_up_window": up_window, "scale_down_window": down_window, "idle_timeout": idle_timeout}
    body = {k: v for k, v in given.items() if v is not None}
    return body or None


def parse_shares(shares: tuple[str, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for share in shares:
        m = SHARE_RE.fullmatch(share.strip())
        if m is None:
            raise ConfigError(f"Cannot read {share!r}: write VERSION=PERCENT, e.g. v3=10 v2=90.")
        out[m.group(1)] = int(m.group(2))
    return out


@endpoint.command("scale")
@click.argument("name")
@click.option("--min-replicas", type=click.IntRange(0), help="Fewest replicas (0: scale to zero when idle).")
@click.option("--max-replicas", type=click.IntRange(1), help="Most replicas.")
@click.option("--target-in-flight", type=click.FloatRange(0, min_open=True),
              help="Requests in flight per replica to aim at.")
@click.option("--up-window", type=click.FloatRange(0), help="Seconds the load must hold before replicas are added.")
@click.option("--down-window", type=click.FloatRange(0),
              help="Seconds the load must stay low before replicas are removed.")
@click.option("--idle-timeout", type=click.FloatRange(0), help="Seconds without requests before scaling to zero.")
@click.option("--off", is_flag=True, help="Turn autoscaling off (versions keep their replicas).")
@click.option("--json", "as_json", is_flag=True, help="Print the endpoint as JSON.")
def scale(name: str, off: bool, as_json: bool, **flags: Any) -> None:
    """Autoscale NAME on requests in flight, e.g. floyd endpoint scale iris --min-replicas 0 --max-replicas 4."""
    body = autoscaling_body(flags["min_replicas"], flags["max_replicas"], flags["target_in_flight"],
                            flags["up_window"], flags["down_window"], flags["idle_timeout"])
    if off and body:
        raise ConfigError("Use --off alone, or give the settings; not both.")
    s = Session()
    ref = endpoint_ref(s, name)
    ep = s.client.update_endpoint(ref.owner, ref.name, autoscaling=None) if off else (
        s.client.update_endpoint(ref.owner, ref.name, autoscaling=body) if body
        else s.client.get_endpoint(ref.owner, ref.name))
    if as_json:
        print_json(ep)
    else:
        say(f"{escape(str(ref))}: {escape(autoscaling_text(ep))}.")


@endpoint.command("traffic")
@click.argument("name")
@click.argument("shares", nargs=-1)
@click.option("--clear", is_flag=True, help="End the split: the newest ready version takes all traffic.")
@click.option("--auto-rollback", "rollback_at", type=click.FloatRange(0, 100, min_open=True), metavar="PERCENT",
              help="Roll the canary (the newest version of the split) back when more than PERCENT %% of its "
                   "answers are 5xx.")
@click.option("--json", "as_json", is_flag=True, help="Print the endpoint as JSON.")
def traffic(name: str, shares: tuple[str, ...], clear: bool, rollback_at: float | None, as_json: bool) -> None:
    """Split NAME's unpinned traffic between ready versions: floyd endpoint traffic iris v3=10 v2=90.

    Callers that send an X-Floyd-Client header stay on one version; others are spread at random.
    """
    if clear and shares:
        raise ConfigError("Use --clear alone, or give the shares; not both.")
    s = Session()
    ref = endpoint_ref(s, name)
    ep: dict = {}
    if rollback_at is not None:
        ep = s.client.update_endpoint(ref.owner, ref.name, rollback_error_rate=rollback_at / 100)
    if shares or clear:
        ep = s.client.set_traffic(ref.owner, ref.name, {} if clear else parse_shares(shares))
    ep = ep or s.client.get_endpoint(ref.owner, ref.name)
    if as_json:
        print_json(ep)
        return
    say(f"{escape(str(ref))} traffic split: {escape(split_text(ep.get('traffic') or {}))}")
    if ep.get("rollback_error_rate"):
        say(f"The canary rolls back by itself above {ep['rollback_error_rate']:.0%} failed answers.")


@endpoint.command("promote")
@click.argument("name")
@click.argument("version")
@click.option("--json", "as_json", is_flag=True, help="Print the endpoint as JSON.")
def promote(name: str, version: str, as_json: bool) -> None:
    """VERSION of NAME takes all unpinned traffic; the other versions drain and stop."""
    s = Session()
    ref = endpoint_ref(s, name)
    ep = s.client.promote_version(ref.owner, ref.name, version.removeprefix("v"))
    if as_json:
        print_json(ep)
    else:
        say(f"{escape(str(ref))} v{escape(version.removeprefix('v'))} takes all traffic; the others drain and stop.")


@endpoint.command("rollback")
@click.argument("name")
@click.argument("version", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the endpoint as JSON.")
def rollback(name: str, version: str | None, as_json: bool) -> None:
    """Take the canary (the split's newest version, or VERSION) out of NAME's split; it drains and stops."""
    s = Session()
    ref = endpoint_ref(s, name)
    ep = s.client.rollback_version(ref.owner, ref.name, version.removeprefix("v") if version else None)
    if as_json:
        print_json(ep)
    else:
        say(f"Rolled back; {escape(str(ref))} traffic: {escape(split_text(ep.get('traffic') or {}))}")


@endpoint.command("limits")
@click.argument("name")
@click.option("--max-body", type=click.IntRange(0), metavar="BYTES", help="Largest request body (else 413).")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), metavar="SECONDS",
              help="Seconds until the answer starts (else 504).")
@click.option("--rate", type=click.FloatRange(0, min_open=True), metavar="PER_SECOND",
              help="Requests per second per API key (else 429 with Retry-After).")
@click.option("--reset", is_flag=True, help="Back to the platform's limits.")
@click.option("--json", "as_json", is_flag=True, help="Print the endpoint as JSON.")
def limits(name: str, max_body: int | None, timeout: float | None, rate: float | None, reset: bool,
           as_json: bool) -> None:
    """NAME's limits at the edge: request body size, timeout, requests per second per key."""
    given: dict[str, float | None] = {k: v for k, v in {"max_body_bytes": max_body, "request_timeout": timeout,
                                                        "rate_limit": rate}.items()
             if v is not None}
    if reset and given:
        raise ConfigError("Use --reset alone, or give the limits; not both.")
    s = Session()
    ref = endpoint_ref(s, name)
    if reset:
        given = {"max_body_bytes": None, "request_timeout": None, "rate_limit": None}
    ep = s.client.update_endpoint(ref.owner, ref.name, limits=given) if given else \
        s.client.get_endpoint(ref.owner, ref.name)
    if as_json:
        print_json(ep)
        return
    lim = ep.get("limits") or {}
    say(f"{escape(str(ref))}: body ≤ {fmt_bytes(lim.get('max_body_bytes'), 'platform limit')}, "
        f"timeout {lim.get('request_timeout') or 'platform'} s, "
        f"rate {lim.get('rate_limit') or 'unlimited'} request(s)/s per key.")


COMMANDS = [endpoint]

__all__ = ["COMMANDS", "autoscaling_body"]
