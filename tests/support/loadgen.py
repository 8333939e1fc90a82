"""Traffic for the load run: an error tally, a paced API sampler and an open-loop HTTP load.

Every loop here is bounded (a stop event or a fixed duration) and talks to 127.0.0.1 only.
The endpoint load is a minimal asyncio HTTP/1.1 keep-alive client (fixed request bytes,
Content-Length framing, as in benchmarks/serving.py) so 200 requests/s cost the 2-core
machine little next to what they measure.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests

T = TypeVar("T")
LENGTH_RE = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


class ErrorTally:
    """Failed requests of every kind, by "what: why" (thread-safe): the run's error count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def add(self, what: str, why: str, n: int = 1) -> None:
        with self._lock:
            self.counts[f"{what}: {why[:160]}"] += n

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def guard(self, what: str, fn: Callable[[], T]) -> T | None:
        """``fn()``, or None with the exception counted (a 4xx/5xx from the client is one)."""
        try:
            return fn()
        except Exception as exc:  # every failure is a finding, whatever its type
            self.add(what, f"{type(exc).__name__}: {exc}")
            return None


@dataclass
class Sampler:
    """GET ``url`` every ``interval`` s on one keep-alive session until ``stop``; keeps each
    answered request's latency and when it was sent (seconds after ``run`` began), so a tail can
    be placed in the run (the submission burst at the start, or all along)."""

    url: str
    headers: dict[str, str]
    errors: ErrorTally
    interval: float = 0.05
    latencies: list[float] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)
    started: float = 0.0  # time.perf_counter() when run began: sent_at counts from it

    def run(self, stop: threading.Event, limit_s: float) -> list[float]:
        out: list[float] = []
        start = self.started = time.perf_counter()
        deadline = time.monotonic() + limit_s
        with requests.Session() as session:
            while not stop.is_set() and time.monotonic() < deadline:
                t0 = time.perf_counter()
                try:
                    r = session.get(self.url, headers=self.headers, timeout=30)
                    elapsed = time.perf_counter() - t0
                    if r.status_code == 200:
                        out.append(elapsed)
                        self.sent_at.append(t0 - start)
                    else:
                        self.errors.add("api GET", f"HTTP {r.status_code}: {r.text[:100]}")
                except requests.RequestException as exc:
                    self.errors.add("api GET", f"{type(exc).__name__}: {exc}")
                stop.wait(max(0.0, self.interval - (time.perf_counter() - t0)))
        self.latencies.extend(out)
        return out


class ApartSampler:
    """A Sampler in a process of its own, so what it times is the platform's answer and not also
    the wait for the GIL of the process that makes the load (70 client threads hashing, uploading
    and encoding JSON; side by side the two p99s differed by 0 to 10 ms). ``start()`` returns once the child is sampling; ``finish()`` stops it and collects its
    latencies, send times (seconds after ``origin``, a ``time.perf_counter()`` of this process:
    CLOCK_MONOTONIC, shared by both) and errors into ``errors``."""

    def __init__(self, url: str, headers: dict[str, str], errors: ErrorTally, interval: float = 0.05) -> None:
        self.url, self.headers, self.errors, self.interval = url, headers, errors, interval
        self.latencies: list[float] = []
        self.sent_at: list[float] = []
        ctx = multiprocessing.get_context("spawn")  # no fork of a process full of threads
        self._stop = ctx.Event()
        self._ready = ctx.Event()
        self._recv, send = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_sample_apart, args=(url, headers, interval, self._stop, self._ready, send),
                                 name="api-sampler", daemon=True)

    def start(self, timeout: float = 60.0) -> None:
        self._proc.start()
        if not self._ready.wait(timeout):
            self._proc.kill()
            raise RuntimeError(f"the API sampler process did not start within {timeout:.0f} s")

    def finish(self, origin: float, timeout: float = 60.0) -> list[float]:
        self._stop.set()
        if not self._recv.poll(timeout):
            self._proc.kill()
            raise RuntimeError("the API sampler process did not report")
        latencies, sent, counts = self._recv.recv()
        self._proc.join(timeout)
        for what, n in counts.items():
            name, _, why = what.partition(": ")
            self.errors.add(name, why, n)
        self.latencies.extend(latencies)
        self.sent_at.extend(t - origin for t in sent)
        return latencies


def _sample_apart(url: str, headers: dict[str, str], interval: float, stop: Any, ready: Any, out: Any) -> None:
    """The child of ApartSampler: samples until ``stop``, then sends (latencies, absolute send
    times, error counts) back."""
    errors = ErrorTally()
    sampler = Sampler(url, headers, errors, interval)
    ready.set()
    sampler.run(stop, 24 * 3600)
    out.send((sampler.latencies, [sampler.started + t for t in sampler.sent_at], dict(errors.counts)))
    out.close()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (NaN for no values)."""
    s = sorted(values)
    if not s:
        return float("nan")
    return s[min(len(s) - 1, max(0, int(round(q / 100 * len(s))) - 1))]


@dataclass
class OpenLoopResult:
    ok: int
    failed: int
    seconds: float

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def open_loop(port: int, path: str, headers: dict[str, str], rate: float, seconds: float, errors: ErrorTally,
              connections: int = 16) -> OpenLoopResult:
    """About ``rate`` GETs/s for ``seconds``, spread over kept-alive connections; every answer
    that is not a 200, and every failed or cut connection, goes into ``errors``."""
    return asyncio.run(_open_loop(port, get_request(port, path, headers), rate, seconds, errors, connections))


def get_request(port: int, path: str, headers: dict[str, str]) -> bytes:
    """The bytes of a keep-alive ``GET path`` to 127.0.0.1:``port``, built once, sent many times."""
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """Send one request on a kept-alive connection; return the status after reading the body."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    m = LENGTH_RE.search(head)
    if m is None:
        raise RuntimeError(f"no Content-Length in {head[:120]!r}")
    await reader.readexactly(int(m.group(1)))
    return int(head[9:12])


async def _open_loop(port: int, request: bytes, rate: float, seconds: float, errors: ErrorTally,
                     connections: int) -> OpenLoopResult:
    ok, failed = [0], [0]
    interval = connections / rate
    t0 = time.perf_counter()
    end = t0 + seconds

    async def client(i: int) -> None:
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        next_at = t0 + i * interval / connections
        while next_at < end:
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            next_at += interval
            try:
                if conn is None:
                    conn = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
                status = await asyncio.wait_for(exchange(*conn, request), 30)
                if status == 200:
                    ok[0] += 1
                else:
                    failed[0] += 1
                    errors.add("endpoint GET", f"HTTP {status}")
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, RuntimeError, ValueError) as exc:
                failed[0] += 1
                errors.add("endpoint GET", f"{type(exc).__name__}: {exc}")
                if conn is not None:
                    conn[1].close()
                conn = None
        if conn is not None:
            conn[1].close()

    await asyncio.gather(*(client(i) for i in range(connections)))
    return OpenLoopResult(ok[0], failed[0], time.perf_counter() - t0)
