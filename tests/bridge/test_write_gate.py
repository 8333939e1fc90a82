"""The write gate (jobs_bridge/admission.py): writes past the bound wait their turn, in arrival
order, and every one of them is answered; none is refused. Reads do not pass it."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from jobs_bridge.admission import WriteGate
from tests.support.platform import Platform


def test_gate_bounds_and_keeps_arrival_order() -> None:
    async def scenario() -> tuple[WriteGate, list[int], list[int]]:
        gate = WriteGate(2)
        started: list[int] = []
        release = asyncio.Event()

        async def write(i: int) -> int:
            started.append(i)
            await release.wait()
            return i

        tasks = [asyncio.ensure_future(gate.run(lambda i=i: write(i))) for i in range(10)]
        await asyncio.sleep(0.01)
        assert (gate.running, gate.waiting, sorted(started)) == (2, 8, [0, 1])
        release.set()
        return gate, started, list(await asyncio.gather(*tasks))

    gate, started, results = asyncio.run(scenario())
    assert results == list(range(10))  # every write answered
    assert started == list(range(10))  # in the order they came
    assert (gate.peak_running, gate.peak_waiting, gate.running, gate.waiting) == (2, 8, 0, 0)


def test_gate_frees_its_place_when_a_write_fails() -> None:
    async def scenario() -> int:
        gate = WriteGate(1)

        async def fail() -> int:
            raise RuntimeError("a 4xx of this write")

        async def ok() -> int:
            return 7

        with pytest.raises(RuntimeError):
            await gate.run(fail)
        return await asyncio.wait_for(gate.run(ok), 5)

    assert asyncio.run(scenario()) == 7


def test_gate_refuses_a_bound_below_one() -> None:
    with pytest.raises(ValueError, match="write_concurrency"):
        WriteGate(0)


def test_a_burst_of_writes_behind_the_bound_all_succeed(platform: Platform) -> None:
    """60 project creations at once (the bridge admits 2 at a time) and reads alongside: every
    write gets its 201 and every project is there, every read its 200."""
    users = [platform.user(f"gate{i}") for i in range(3)]
    tag = uuid.uuid4().hex[:8]
    names = [(u, f"burst-{tag}-{n}") for u in users for n in range(20)]
    with ThreadPoolExecutor(24) as pool:
        writes = [pool.submit(u.api, "POST", "projects", json={"name": name}) for u, name in names]
        reads = [pool.submit(users[0].api, "GET", "jobs?limit=20") for _ in range(20)]
        statuses = [f.result().status_code for f in writes]
        read_statuses = [f.result().status_code for f in reads]
    assert statuses == [201] * len(names)
    assert read_statuses == [200] * len(reads)
    for u in users:
        listed = {p["name"] for p in u.api("GET", "projects").json()["items"]}
        assert {name for owner, name in names if owner is u} <= listed
