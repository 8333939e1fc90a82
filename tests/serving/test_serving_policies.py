"""The pure decisions of serving under traffic: the autoscaler's replica count, the traffic
split's pick, the limits at the edge, the settings' checks, and the proxy's bounded hold of
requests at zero replicas (no platform, no containers)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from jobs_bridge.auth.endpoint_gate import Denied
from jobs_bridge.errors import BadRequest, Unprocessable
from jobs_bridge.orm import Endpoint
from jobs_bridge.serving import autoscale, edge, settings, traffic
from jobs_bridge.serving.autoscale import History, Policy, decide
from jobs_bridge.serving.metrics import VersionStats
from jobs_bridge.serving.proxy import EndpointProxy
from jobs_bridge.serving.router import READY, LiveEndpoint, LiveVersion, Replica, Router
from tests.support.loops import run_apart

POLICY = Policy(min_replicas=1, max_replicas=4, target_in_flight=2, up_window=0, down_window=10, idle_timeout=60)


def test_scale_up_at_once_and_down_after_the_window() -> None:
    samples = [(0.0, 1.0), (1.0, 7.0)]
    assert decide(POLICY, samples, 1.0, current=1, idle_for=0).replicas == 4  # ceil(7 / 2)
    calm = [(t, 7.0 if t < 5 else 1.0) for t in range(0, 12)]
    assert decide(POLICY, calm, 11.0, current=4, idle_for=0).replicas == 4  # 7 still inside the down window
    calm = [(t, 7.0 if t < 2 else 1.0) for t in range(0, 14)]
    assert decide(POLICY, calm, 13.0, current=4, idle_for=0).replicas == 1


def test_up_window_needs_the_load_to_hold() -> None:
    policy = Policy(1, 4, 2, up_window=3, down_window=10, idle_timeout=60)
    assert decide(policy, [(0.0, 1.0), (1.0, 1.0), (2.0, 8.0)], 2.0, 1, 0).replicas == 1
    assert decide(policy, [(0.0, 8.0), (1.0, 8.0), (2.0, 8.0), (3.0, 8.0)], 3.0, 1, 0).replicas == 4


def test_scale_to_zero_only_when_idle_and_back_on_a_request() -> None:
    zero = Policy(0, 3, 1, up_window=5, down_window=0, idle_timeout=30)
    assert decide(zero, [(0.0, 0.0)], 0.0, current=1, idle_for=10).replicas == 1
    assert decide(zero, [(0.0, 0.0)], 0.0, current=1, idle_for=31).replicas == 0
    assert decide(zero, [(0.0, 0.0)], 0.0, current=0, idle_for=100).replicas == 0
    # A held request wakes it at once, whatever the up window says.
    assert decide(zero, [(0.0, 0.0), (1.0, 0.5)], 1.0, current=0, idle_for=0).replicas == 1


def test_gpu_headroom_caps_and_says_so() -> None:
    d = decide(POLICY, [(0.0, 8.0)], 0.0, current=1, idle_for=0, headroom=1)
    assert (d.replicas, d.capped, d.wanted) == (2, True, 4)
    assert not decide(POLICY, [(0.0, 8.0)], 0.0, current=1, idle_for=0, headroom=5).capped


def test_history_averages_over_the_metric_window() -> None:
    h = History(metric_window=1.0)
    for t, v in [(0.0, 4.0), (0.5, 0.0), (1.0, 2.0), (2.0, 2.0)]:
        h.add(t, v, keep=10)
    assert h.averages[-1] == (2.0, 2.0)
    assert autoscale.wish(0.1, 2) == 1 and autoscale.wish(0, 2) == 0 and autoscale.wish(4, 2) == 2


def test_split_shares_random_and_sticky() -> None:
    rng = random.Random(7)
    counts = Counter(traffic.pick([(3, 10), (2, 90)], None, rng.random()) for _ in range(10_000))
    assert 900 <= counts[3] <= 1100
    assert len({traffic.pick([(3, 10), (2, 90)], "client-42", rng.random()) for _ in range(50)}) == 1
    sticky = Counter(traffic.pick([(3, 10), (2, 90)], f"c{i}", 0.0) for i in range(5000))
    assert 350 <= sticky[3] <= 650
    assert traffic.pick([(3, 0)], None, 0.5) is None


def test_split_canary_and_rollback_shares() -> None:
    assert traffic.canary({3: 10, 2: 90}) == 3 and traffic.canary({2: 100}) is None
    assert traffic.without({3: 10, 2: 90}, 3) == {}
    assert traffic.without({4: 10, 3: 30, 2: 60}, 4) == {3: 33, 2: 67}
    assert traffic.percent({3: 1, 2: 1}) == {3: 50, 2: 50} and traffic.percent({3: 0}) == {}
    assert traffic.percent({3: 10, 2: 80}) == {3: 11, 2: 89}


def test_edge_limits() -> None:
    limits = edge.EdgeLimits(max_body_bytes=10, timeout=2, rate=2)
    rates = edge.RateLimiter()
    with pytest.raises(Denied) as exc:
        edge.check(limits, rates, "a/b", 11, "k:x", 0.0)
    assert exc.value.status == 413
    edge.check(limits, rates, "a/b", 10, "k:x", 0.0)
    edge.check(limits, rates, "a/b", 10, "k:x", 0.0)
    with pytest.raises(Denied) as exc:
        edge.check(limits, rates, "a/b", 0, "k:x", 0.1)
    assert exc.value.status == 429 and exc.value.headers["Retry-After"] == "1"
    edge.check(limits, rates, "a/b", 0, "k:other", 0.1)  # per key
    edge.check(limits, rates, "a/b", 0, "k:x", 0.6)  # a token came back
    assert edge.timeout(limits, 300) == 2 and edge.timeout(edge.EdgeLimits(), 300) == 300
    assert edge.caller_key("", "Bearer fk_abc", "1.2.3.4") == "k:fk_abc"
    assert edge.caller_key("", "token hub", "1.2.3.4") == "a:1.2.3.4"


def test_settings_keep_what_a_patch_leaves_out() -> None:
    bounds = settings.Defaults(1.0, 0.0, 30.0, 300.0, max_replicas=8)
    row = Endpoint(owner="a", name="b", traffic="{}")
    settings.change(row, {"autoscaling": {"min_replicas": 0, "max_replicas": 2}}, bounds)
    settings.change(row, {"autoscaling": {"max_replicas": 4, "idle_timeout": 0}}, bounds)
    assert (row.min_replicas, row.max_replicas, row.idle_timeout) == (0, 4, 0.0)
    policy = settings.policy_of(row, bounds)
    assert policy is not None and policy.down_window == 30.0 and policy.target_in_flight == 1.0
    for bad, error in [({"autoscaling": {"min_replicas": 5, "max_replicas": 2}}, Unprocessable),
                       ({"autoscaling": {"max_replicas": 9}}, Unprocessable),
                       ({"autoscaling": {"target_in_flight": "nan"}}, Unprocessable),
                       ({"autoscaling": {"bogus": 1}}, BadRequest),
                       ({"autoscaling": 3}, BadRequest),
                       ({"limits": {"rate_limit": 0}}, Unprocessable),
                       ({"rollback_error_rate": 2}, Unprocessable)]:
        with pytest.raises(error):
            settings.change(row, bad, bounds)
    settings.change(row, {"autoscaling": None}, bounds)
    assert settings.policy_of(row, bounds) is None


def test_requests_held_at_zero_are_bounded_in_number_and_time() -> None:
    async def scenario() -> None:
        router = Router(cold_queue_limit=1, cold_start_timeout=0.3)
        woken: list[int] = []
        router.wake = lambda ep, lv: woken.append(lv.number)
        ep = LiveEndpoint(1, "a", "b", False, policy=Policy(0, 2, 1, 0, 10, 60))
        lv = LiveVersion(1, 1, READY, VersionStats(1))
        ep.versions[1] = lv
        proxy = EndpointProxy(router, None, "/services/floyd")  # type: ignore[arg-type]  # the gate is not asked
        assert ep.latest() is lv  # at zero replicas, it still serves
        first = asyncio.ensure_future(proxy.hold(ep, lv))
        await asyncio.sleep(0.05)
        with pytest.raises(Denied) as full:
            await proxy.hold(ep, lv)  # the queue holds one
        assert full.value.status == 503 and "already holds 1" in full.value.message
        with pytest.raises(Denied) as late:
            await first  # nobody starts a replica here: the bounded wait ends
        assert late.value.status == 503 and "within 0.3 s" in late.value.message
        assert woken and lv.waiting == 0
        # A replica that gets ready answers the held request.
        held = asyncio.ensure_future(proxy.hold(ep, lv))
        await asyncio.sleep(0.05)
        replica = Replica(index=0, port=1, ready=True)
        lv.replicas.append(replica)
        lv.replica_ready()
        assert await held is replica

    run_apart(scenario())
