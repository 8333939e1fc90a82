"""Jobs benchmark: what does the platform add to running a command in the environment image?

Starts a real platform the way ``make up`` does (tests.support.platform), limited to two running
jobs at once (``c.JobQueue.max_running = 2``, no per-user limit), and measures, side
by side with plain ``docker`` doing the same work with the same image (floyd/cpu:latest):

  job_submit_to_first_log_line   POST /api/v1/jobs → the first line reaches a follower
                                 (client.follow_job_log, started right after the POST
                                 returns; the code snapshot is already uploaded, its
                                 re-upload is timed on its own)  vs  ``docker run --rm
                                 --network host IMAGE python -c "print('hello', flush=True)"``
                                 → 'hello' on its stdout pipe (goal: ratio ≤ 1.15)
  job_log_latency_p50 / _p99     a job printing 5,000 timestamped lines/s; arrival at the
                                 follower − time printed  vs  the same command in a plain
                                 ``docker run -d`` read through ``docker logs -f``
                                 (goal: p50 < 100 ms); lost and duplicated lines counted
  log_line_p50_loaded            (b) again while a second job keeps a CPU busy (spinning)  vs
                                 the same pair as plain containers (goal: p50 < 100 ms)
  job_prepare_5000_vs_50         the bridge's prepare time (its "Prepared job … in N ms"
                                 log line: code, output, token, GPUs, RunSpec) of a job on a
                                 5,000-file snapshot  vs  on a 50-file one (goal: within noise,
                                 ratio ≤ 1.2: the code is mounted, not copied)
  job_resubmit_unchanged_project_bytes
                                 file bytes a second snapshot upload of an unchanged
                                 5,000-file project sends (UploadResult.sent_bytes; goal 0)
                                 vs the first upload's
  job_queue_200_short_jobs       200 jobs running ``true``, two at a time, first submit →
                                 last one finished  vs  100 sequential pairs of concurrent
                                 ``docker run --rm IMAGE true``

Where the time goes comes from Docker's own event stream (create / start / die / destroy
of every container, nanosecond timestamps on the host clock), the job records
(created_at, started_at, finished_at) and the bridge's access log (POST /jobs times).

One JSON object per measurement on stdout; logs on stderr.

    .venv/bin/python benchmarks/jobs.py [--quick] [--keep DIR]
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import resource
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import docker
import requests
from common import IMAGE, build_image, cli, fmt, log, median, num, process_cpu, run_then_cleanup
from common import emit as emit_record

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from floyd.client.http import FloydClient  # noqa: E402
from floyd.client.ignore import IgnoreRules  # noqa: E402
from floyd.client.progress import ProgressObserver  # noqa: E402
from floyd.client.statcache import StatCache  # noqa: E402
from floyd.client.transfer import UploadResult, build_manifest, upload_code  # noqa: E402
from jobs_bridge.storage.paths import StorageLayout  # noqa: E402
from tests.support.platform import Platform  # noqa: E402

HELLO = "print('hello', flush=True)"
HELLO_COMMAND = f"python -c {shlex.quote(HELLO)}"
LINE_RATE = 5000  # lines per second in (b)
FINISHED = {"succeeded", "failed", "stopped", "timed_out", "lost"}
BRIDGE_CONFIG = "c.JobQueue.max_running = 2\nc.JobQueue.max_running_per_user = 0\n"
JOB_TIMEOUT = 300.0
SPIN = "import time\nend = time.time() + 120\nwhile time.time() < end:\n    pass\n"  # one CPU busy
SPIN_COMMAND = f"python -c {shlex.quote(SPIN)}"
PREPARED_RE = re.compile(r"Prepared job (\S+) in ([0-9.]+) ms \(code by (\w+)\)")

# (b): N lines at LINE_RATE a second, each carrying the moment it was printed. Paced against
# the start time (not per-line sleeps), so the rate holds even when a sleep oversleeps.
LINES_SCRIPT = """\
import sys, time
n, rate = int(sys.argv[1]), float(sys.argv[2])
t0 = time.time()
for i in range(n):
    ahead = t0 + i / rate - time.time()
    if ahead > 0:
        time.sleep(ahead)
    print(f"t {time.time():.6f} {i}", flush=True)
"""
LINE_RE = re.compile(r"^t (\d+\.\d+) (\d+)$")

# Diagnostic for (b), a separate process so it takes no GIL from the follower: wait for the
# job's persisted log (jobs/<owner>/<project>/<n>/logs/output.log, written by the bridge as
# it receives lines), read it as it grows, print "<arrival> <line>" once N lines were seen.
TAIL_SCRIPT = """\
import os, sys, time
path, n = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 120
while not os.path.exists(path) and time.time() < deadline:
    time.sleep(0.001)
out, buf, seen = [], b"", 0
with open(path, "rb") as f:
    while seen < n and time.time() < deadline:
        chunk = f.read(1 << 16)
        if not chunk:
            time.sleep(0.0005)
            continue
        now = time.time()
        buf += chunk
        *lines, buf = buf.split(b"\\n")
        seen += len(lines)
        out += [f"{now:.6f} {line.decode()}" for line in lines]
sys.stdout.write("\\n".join(out) + "\\n")
"""


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def iso_time(value: str | None) -> float | None:
    """A job record's ISO 8601 timestamp as epoch seconds."""
    return datetime.fromisoformat(value).timestamp() if value else None


def write_project(root: Path, files: int, seed: int = 7) -> int:
    """``files`` small source-like files (200 B – 4 KiB) in two directory levels; returns bytes."""
    rng = random.Random(seed)
    total = 0
    for i in range(files):
        p = root / f"pkg{rng.randrange(25):02d}" / f"sub{rng.randrange(8)}" / f"mod{i:05d}.py"
        p.parent.mkdir(parents=True, exist_ok=True)
        size = rng.randint(200, 4096)
        p.write_bytes(os.urandom(size))
        total += size
    return total


# 0 bytes sent of 0 is a ratio of 0 (meets a goal of 0), not infinitely worse.
emit = partial(emit_record, zero_ratio=0.0)


# -- docker's own timestamps ---------------------------------------------------------------
class DockerEvents:
    """Container events (create, start, die, destroy…) recorded in a thread, by container name."""

    def __init__(self, dc: docker.DockerClient) -> None:
        self.by_name: dict[str, dict[str, Any]] = {}
        self.stream = dc.events(decode=True, filters={"type": "container"})
        self.thread = threading.Thread(target=self._run, name="docker-events", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for ev in self.stream:
                attrs = (ev.get("Actor") or {}).get("Attributes") or {}
                name = attrs.get("name")
                action = (ev.get("Action") or ev.get("status") or "").split(":")[0]
                if not name or not action:
                    continue
                rec = self.by_name.setdefault(name, {"labels": attrs})
                rec.setdefault(action, ev.get("timeNano", 0) / 1e9 or ev.get("time", 0))
        except Exception:  # closed from the main thread, or the engine went away
            pass

    def get(self, name: str) -> dict[str, Any]:
        return self.by_name.get(name, {})

    def job(self, job_id: str) -> dict[str, Any]:
        """The container of job owner/project/number (label org.floyd.job)."""
        for rec in list(self.by_name.values()):
            if rec["labels"].get("org.floyd.job") == job_id:
                return rec
        return {}

    def close(self) -> None:
        try:
            self.stream.close()
        except Exception:
            pass


def container_phases(ev: dict[str, Any], t0: float) -> dict[str, float]:
    """t0 (epoch) → create → start → die → destroy as consecutive slices (what exists)."""
    out: dict[str, float] = {}
    if "create" in ev:
        out["to_create_s"] = ev["create"] - t0
        if "start" in ev:
            out["create_to_start_s"] = ev["start"] - ev["create"]
            if "die" in ev:
                out["start_to_die_s"] = ev["die"] - ev["start"]
                if "destroy" in ev:
                    out["die_to_destroy_s"] = ev["destroy"] - ev["die"]
    return out


def phase_medians(phases: list[dict[str, float]]) -> dict[str, float]:
    keys = sorted({k for p in phases for k in p})
    return {k: round(median(p[k] for p in phases if k in p), 4) for k in keys}


# -- samples -------------------------------------------------------------------------------
@dataclass
class FirstLine:
    seconds: float  # from just before the POST / docker run to the first line
    phases: dict[str, float] = field(default_factory=dict)


@dataclass
class LineLog:
    """Arrivals of (b)'s timestamped lines at one follower."""

    expected: int
    arrivals: list[tuple[float, str]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds used meanwhile, by process

    def parse(self) -> tuple[list[float], list[int], list[float]]:
        """(latencies in ms, indices seen, printed times)."""
        lat, seen, printed = [], [], []
        for arrived, text in self.arrivals:
            m = LINE_RE.match(text.strip())
            if not m:
                self.other.append(text)
                continue
            t, i = float(m.group(1)), int(m.group(2))
            lat.append((arrived - t) * 1000)
            seen.append(i)
            printed.append(t)
        return lat, seen, printed

    def summary(self) -> dict[str, Any]:
        lat, seen, printed = self.parse()
        unique = set(seen)
        span = max(printed) - min(printed) if len(printed) > 1 else 0.0
        return {
            "lines_expected": self.expected, "lines_seen": len(seen), "lines_unique": len(unique),
            "lines_lost": self.expected - len(unique & set(range(self.expected))),
            "lines_duplicated": len(seen) - len(unique),
            "in_order": seen == sorted(seen),
            "print_rate_lps": round(len(printed) / span) if span else None,
            "p50_ms": num(percentile(lat, 50)), "p90_ms": num(percentile(lat, 90)),
            "p99_ms": num(percentile(lat, 99)), "max_ms": num(max(lat) if lat else float("nan")),
            "last_line_ms": num(lat[-1] if lat else float("nan")),
            "other_lines": self.other[:5],
            "cpu_s": {k: round(v, 3) for k, v in self.cpu_s.items()},
            "_lat": lat,
        }


# -- the benchmark ---------------------------------------------------------------------------
class Bench:
    """The platform, the user and every container started, so cleanup finds them all."""

    def __init__(self, base: Path, quick: bool) -> None:
        self.base = base
        self.quick = quick
        self.mode = "quick" if quick else "full"
        self.dc = docker.from_env(timeout=120)
        self.platform: Platform | None = None
        self.events: DockerEvents | None = None
        self.tag = f"jobbench{os.getpid()}"  # user name and container name prefix, unique to this run
        self.user_name = self.tag
        self.counter = 0
        self.children: list[subprocess.Popen[bytes]] = []
        self.client: FloydClient
        self.cache: StatCache | None = None
        self._watched: dict[str, int] | None = None
        self.small_snapshot = ""

    # -- helpers -------------------------------------------------------------------------
    def container_name(self) -> str:
        self.counter += 1
        return f"{self.tag}-{self.counter}"

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, **kwargs)
        self.children.append(proc)
        return proc

    def upload(self, project: str, root: Path) -> tuple[float, UploadResult]:
        assert self.cache is not None
        t0 = time.perf_counter()
        result = upload_code(self.client, self.user_name, project, root, IgnoreRules.for_directory(root).keep,
                             cache=self.cache)
        return time.perf_counter() - t0, result

    def submit(self, project: str, snapshot: str, command: str) -> dict:
        return self.client.submit_job({"project": f"{self.user_name}/{project}", "snapshot": snapshot,
                                       "command": command})["job"]

    def finish_following(self, events: Iterable[tuple[str, str]], job: dict) -> str:
        """Drain a follower to its end event; returns the final state it reports."""
        for kind, data in events:
            if kind == "end":
                return json.loads(data).get("state", "?")
        raise RuntimeError(f"the log of {job['id']} ended without an end event")

    def post_ms_from_log(self) -> list[float]:
        """The bridge's access-log times of POST /jobs (submit: resolve spec, insert, kick)."""
        assert self.platform is not None
        if not self.platform.log_path or not self.platform.log_path.exists():
            return []
        pattern = re.compile(r"201 POST /services/floyd/api/v1/jobs \(127\.0\.0\.1\) ([0-9.]+)ms")
        return [float(m.group(1)) for m in pattern.finditer(self.platform.log_path.read_text(errors="replace"))]

    # -- (a) submit → first line -------------------------------------------------------------
    def job_first_line(self, project: str, snapshot: str) -> FirstLine:
        assert self.events is not None
        wall0 = time.time()
        t0 = time.perf_counter()
        job = self.submit(project, snapshot, HELLO_COMMAND)
        posted = time.perf_counter() - t0
        events = self.client.follow_job_log(self.user_name, project, job["number"])
        first: float | None = None
        text = ""
        for kind, data in events:
            if kind == "line":
                first = time.perf_counter() - t0
                text = data
                break
            if kind == "end":
                raise RuntimeError(f"job {job['id']} ended before printing: {data}\n{self.platform_tail()}")
        assert first is not None
        state = self.finish_following(events, job)
        if text != "hello" or state != "succeeded":
            log(f"WARNING: job {job['id']} printed {text!r} first and ended {state}")
        record = self.client.job(self.user_name, project, job["number"])
        phases: dict[str, float] = {"post_s": posted}
        ev = self.events.job(job["id"])
        phases.update(container_phases(ev, wall0))
        started = iso_time(record.get("started_at"))
        if started is not None:
            phases["record_started_s"] = started - wall0
        if "start" in ev:
            phases["start_to_first_line_s"] = first - (ev["start"] - wall0)
        phases.pop("start_to_die_s", None)
        phases.pop("die_to_destroy_s", None)
        return FirstLine(first, phases)

    def docker_first_line(self) -> FirstLine:
        """The baseline: the same print in a plain ``docker run`` (a job without requirements runs
        its command as ``sh -c``, no entry point in between)."""
        assert self.events is not None
        name = self.container_name()
        argv = [IMAGE, "python", "-c", HELLO]
        wall0 = time.time()
        t0 = time.perf_counter()
        proc = self.popen(["docker", "run", "--rm", "--network", "host", "--name", name, *argv], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        first = time.perf_counter() - t0
        proc.stdout.read()
        if proc.wait(JOB_TIMEOUT) != 0 or line.strip() != b"hello":
            log(f"WARNING: docker run printed {line!r} and exited {proc.returncode}")
        ev = self.events.get(name)
        phases = container_phases(ev, wall0)
        if "start" in ev:
            phases["start_to_first_line_s"] = first - (ev["start"] - wall0)
        phases.pop("start_to_die_s", None)
        phases.pop("die_to_destroy_s", None)
        return FirstLine(first, phases)

    # -- (b) log latency ---------------------------------------------------------------------
    def job_lines(self, project: str, snapshot: str, n: int, raw: str = "") -> tuple[LineLog, LineLog | None]:
        """The job's lines as client.follow_job_log yields them. Diagnostics: ``raw`` "proxy" or
        "direct" reads them with a plain SSE reader (whole network chunks, no floyd.client)
        through the hub's proxy or straight from the bridge, and then a second process also
        tails the persisted log file (what the bridge received, before any HTTP)."""
        assert self.platform is not None
        command = f"python -c {shlex.quote(LINES_SCRIPT)} {n} {LINE_RATE}"
        out = LineLog(n)
        cpu0 = self.cpu_times()
        job = self.submit(project, snapshot, command)
        tail = None
        if raw:
            path = StorageLayout(self.platform.root).job_log(self.user_name, project, job["number"])
            tail = self.popen([sys.executable, "-c", TAIL_SCRIPT, str(path), str(n)], stdout=subprocess.PIPE)
        follow = (lambda o, p, num: self.raw_follow(o, p, num, raw == "direct")) if raw else self.client.follow_job_log
        for kind, data in follow(self.user_name, project, job["number"]):
            now = time.time()
            if kind == "end":
                state = json.loads(data).get("state")
                if state != "succeeded":
                    log(f"WARNING: job {job['id']} ended {state}")
                break
            out.arrivals.append((now, data))
        out.cpu_s = self.cpu_delta(cpu0)
        file_log = None
        if tail is not None:
            text, _ = tail.communicate(timeout=60)
            file_log = LineLog(n)
            for row in text.decode("utf-8", "replace").splitlines():
                arrived, _, line = row.partition(" ")
                file_log.arrivals.append((float(arrived), line))
        return out, file_log

    def watched(self) -> dict[str, int]:
        """The processes whose CPU (b) accounts for: this platform's bridge and proxy, and the
        Docker engine (shared with whatever else runs on this machine)."""
        if self._watched is None:
            found: dict[str, int] = {}
            if self.platform is not None:
                try:
                    found["bridge"] = self.platform.bridge_pid()
                except RuntimeError:
                    pass
                port = f"--port {self.platform.hub_port} "
                for d in Path("/proc").iterdir():
                    if not d.name.isdigit():
                        continue
                    try:
                        args = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    except OSError:
                        continue
                    if "configurable-http-proxy" in args and port in args:
                        found["proxy"] = int(d.name)
                    elif os.path.basename(args.split(" ", 1)[0]) == "dockerd":
                        found.setdefault("dockerd", int(d.name))
            self._watched = found
        return self._watched

    def cpu_times(self) -> dict[str, float]:
        """CPU seconds (user + system) so far: the watched processes, this one, its children."""
        out = {"follower": time.process_time()}
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        out["children"] = children.ru_utime + children.ru_stime
        for name, pid in self.watched().items():
            try:
                out[name] = process_cpu(pid)
            except (OSError, ValueError, IndexError):
                pass
        return out

    def cpu_delta(self, before: dict[str, float]) -> dict[str, float]:
        after = self.cpu_times()
        return {k: after[k] - before[k] for k in before if k in after and (k != "children" or after[k] > before[k])}

    def raw_follow(self, owner: str, project: str, number: int, direct: bool) -> Iterator[tuple[str, str]]:
        """Diagnostic SSE reader: whole chunks as they arrive, split into events."""
        assert self.platform is not None
        api = self.platform.bridge_direct if direct else self.client.api
        url = f"{api}jobs/{owner}/{project}/{number}/logs"
        with self.client.session.get(url, params={"follow": "1"}, stream=True, timeout=(30, None)) as resp:
            resp.raise_for_status()
            buf = b""
            for chunk in resp.iter_content(chunk_size=None):
                buf += chunk
                *events, buf = buf.split(b"\n\n")
                for raw in events:
                    kind, data = "line", []
                    for line in raw.decode("utf-8", "replace").split("\n"):
                        if line.startswith("data:"):
                            data.append(line[6:] if line.startswith("data: ") else line[5:])
                        elif line.startswith("event: "):
                            kind = line[7:]
                    if data:
                        yield kind, "\n".join(data)
                        if kind == "end":
                            return

    def docker_lines(self, n: int) -> LineLog:
        name = self.container_name()
        out = LineLog(n)
        cpu0 = self.cpu_times()
        subprocess.run(["docker", "run", "-d", "--name", name, IMAGE, "python", "-c", LINES_SCRIPT, str(n),
                        str(LINE_RATE)], check=True, capture_output=True, timeout=JOB_TIMEOUT)
        try:
            proc = self.popen(["docker", "logs", "-f", name], stdout=subprocess.PIPE)
            assert proc.stdout is not None
            for raw in proc.stdout:
                out.arrivals.append((time.time(), raw.decode("utf-8", "replace")))
            proc.wait(JOB_TIMEOUT)
            out.cpu_s = self.cpu_delta(cpu0)
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
        return out

    # -- (d) queue ---------------------------------------------------------------------------
    def job_queue(self, project: str, snapshot: str, n: int) -> dict[str, Any]:
        assert self.events is not None
        wall0 = time.time()
        t0 = time.perf_counter()
        jobs = [self.submit(project, snapshot, "true") for _ in range(n)]
        submitted = time.perf_counter() - t0
        last = jobs[-1]
        self.finish_following(self.client.follow_job_log(self.user_name, project, last["number"]), last)
        deadline = time.monotonic() + JOB_TIMEOUT
        while True:
            records = self.client.jobs(project=f"{self.user_name}/{project}", limit=1000)
            if sum(r["state"] in FINISHED for r in records) >= n:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the queue did not drain: {[r['state'] for r in records]}")
            time.sleep(0.1)
        observed = time.perf_counter() - t0
        states: dict[str, int] = {}
        for r in records:
            states[r["state"]] = states.get(r["state"], 0) + 1
        finished = sorted(t for r in records if (t := iso_time(r.get("finished_at"))) is not None)
        started = [iso_time(r.get("started_at")) for r in records]
        created = [iso_time(r.get("created_at")) for r in records]
        total = finished[-1] - wall0 if finished else observed
        # Per job: Docker's create → start → die → destroy, and the bridge's own slices around
        # them: container gone → the job recorded as finished, and a slot freed → the next
        # container created (kick, pick, prepare: snapshot copy, token, image and package lookups).
        phases: list[dict[str, float]] = []
        creates: list[float] = []
        for r in records:
            ev = self.events.job(r["id"])
            p = {k: v for k, v in container_phases(ev, wall0).items() if k != "to_create_s"}
            end = iso_time(r.get("finished_at"))
            if "destroy" in ev and end is not None:
                p["destroy_to_recorded_s"] = end - ev["destroy"]
            if "create" in ev:
                creates.append(ev["create"])
            phases.append(p)
        creates.sort()
        slot_gaps = [c - finished[k - 2] for k, c in enumerate(creates) if k >= 2 and k - 2 < len(finished)]
        first_create = creates[0] - wall0 if creates else float("nan")
        return {"total": total, "observed": observed, "submitted": submitted, "states": states,
                "phases": phase_medians(phases), "slot_gap_s": num(median(slot_gaps), 4),
                "slot_gap_p90_s": num(percentile(slot_gaps, 90), 4), "first_create_s": num(first_create, 4),
                "queued_s": num(median(s - c for s, c in zip(started, created, strict=True)
                                       if s is not None and c is not None), 3)}

    def docker_pairs(self, pairs: int, options: list[str] | None = None) -> dict[str, Any]:
        assert self.events is not None
        names: list[str] = []
        wall0 = time.time()
        t0 = time.perf_counter()
        failures = 0
        for _ in range(pairs):
            procs = []
            for _ in range(2):
                name = self.container_name()
                names.append(name)
                procs.append(self.popen(["docker", "run", "--rm", *(options or []), "--name", name, IMAGE, "true"]))
            for p in procs:
                failures += p.wait(JOB_TIMEOUT) != 0
        total = time.perf_counter() - t0
        phases = [{k: v for k, v in container_phases(self.events.get(n), wall0).items() if k != "to_create_s"}
                  for n in names]
        return {"total": total, "failures": failures, "phases": phase_medians(phases)}

    # -- (e) prepare time by snapshot size ---------------------------------------------------
    def prepared(self) -> dict[str, tuple[float, str]]:
        """job id → (prepare ms, code mode), from the bridge's log."""
        assert self.platform is not None and self.platform.log_path is not None
        text = self.platform.log_path.read_text(errors="replace")
        return {m.group(1): (float(m.group(2)), m.group(3)) for m in PREPARED_RE.finditer(text)}

    def prepare_ms(self, project: str, snapshot: str) -> tuple[float, str]:
        """Run ``true`` on the snapshot to its end; the bridge's prepare time and code mode."""
        job = self.submit(project, snapshot, "true")
        self.finish_following(self.client.follow_job_log(self.user_name, project, job["number"]), job)
        found = self.prepared().get(job["id"])
        if found is None:
            raise RuntimeError(f"no 'Prepared job {job['id']}' line in the bridge's log")
        return found

    # -- (f) log latency with a second job spinning -------------------------------------------
    def spinning(self, fn: Callable[[], LineLog], plain: bool) -> LineLog:
        """``fn`` while one CPU is kept busy by a second job (or, ``plain``, a plain container)."""
        if plain:
            name = self.container_name()
            self.popen(["docker", "run", "-d", "--rm", "--name", name, IMAGE, "python", "-c", SPIN],
                       stdout=subprocess.DEVNULL).wait(60)
            try:
                return fn()
            finally:
                subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        job = self.submit("hello", self.small_snapshot, SPIN_COMMAND)
        deadline = time.monotonic() + JOB_TIMEOUT
        while self.client.job(self.user_name, "hello", job["number"])["state"] != "running":
            if time.monotonic() > deadline:
                raise RuntimeError(f"the spinning job {job['id']} never ran")
            time.sleep(0.1)
        try:
            return fn()
        finally:
            self.client.stop_job(self.user_name, "hello", job["number"])

    def platform_tail(self) -> str:
        return self.platform.log_tail(40) if self.platform else ""

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> None:
        quick = self.quick
        # the first line's median over 11 alternating pairs: single runs of either side spread
        # over ±20 ms on this machine, as wide as the gap the goal allows
        rounds = 2 if quick else 11
        line_seconds = 1 if quick else 2
        project_files = 500 if quick else 5000
        queue_jobs = 20 if quick else 200

        t = time.perf_counter()
        said = build_image()
        log(f"image {IMAGE} ready in {time.perf_counter() - t:.1f}s ({said})")

        self.events = DockerEvents(self.dc)
        platform = self.platform = Platform.create(self.base / "platform", bridge_config=BRIDGE_CONFIG)
        t = time.perf_counter()
        platform.start()
        log(f"platform up at {platform.url} in {time.perf_counter() - t:.1f}s (FLOYD_ROOT={platform.root}), "
            "JobQueue.max_running = 2, per user unlimited")
        user = platform.user(self.user_name)
        self.client = FloydClient(platform.url, user.token)
        self.cache = StatCache(self.base / "stat-cache.sqlite")
        common = {"mode": self.mode, "image": IMAGE, "max_running_jobs": 2}

        # A one-file project for (a), (b) and (d): the jobs' commands do not read it.
        small = self.base / "small"
        small.mkdir()
        (small / "README.md").write_text("benchmark project\n")
        self.client.create_project("hello")
        first_upload_s, up = self.upload("hello", small)
        snapshot = self.small_snapshot = up.version["id"]
        log(f"small project snapshot {snapshot[:19]}… uploaded in {first_upload_s:.3f}s")

        # (c) a many-file project: first snapshot upload, then the same tree unchanged.
        big = self.base / "big"
        t = time.perf_counter()
        big_bytes = write_project(big, project_files)
        log(f"generated {project_files} files, {big_bytes / 1024:.0f} KiB in {time.perf_counter() - t:.1f}s")
        self.client.create_project("many")
        os.sync()
        first_s, first = self.upload("many", big)
        again_s, again = self.upload("many", big)
        t = time.perf_counter()
        build_manifest(big, ProgressObserver(), self.cache, IgnoreRules.for_directory(big).keep)
        manifest_s = time.perf_counter() - t
        log(f"{project_files}-file project: first upload {first_s:.2f}s ({first.sent_bytes} bytes, "
            f"{first.sent_files} files), unchanged again {again_s:.2f}s ({again.sent_bytes} bytes, "
            f"duplicate={again.duplicate}); scan+hash with a warm stat cache {manifest_s:.3f}s")
        if first.files != project_files:
            log(f"WARNING: the snapshot has {first.files} files, {project_files} were written")
        emit("job_resubmit_unchanged_project_bytes", again.sent_bytes, "bytes sent by the first snapshot upload "
             "of the same project", first.sent_bytes, unit="bytes", goal=0.0, meets_goal=again.sent_bytes == 0,
             duplicate=again.duplicate, sent_files=again.sent_files, baseline_sent_files=first.sent_files,
             upload_s=round(again_s, 3), baseline_upload_s=round(first_s, 3),
             upload_time_ratio=round(again_s / first_s, 4) if first_s else None,
             client_scan_hash_s=round(manifest_s, 3), files=first.files, project_bytes=first.total_bytes, **common)

        self.prepare_rows(project_files, first.version["id"], rounds, common)

        # The same "hello" job on the many-file snapshot, once, untimed in the goal: before the
        # code was mounted, the bridge copied the snapshot into every job's directory.
        many_first = self.job_first_line("many", first.version["id"])
        log(f"hello on the {project_files}-file snapshot: first line after {many_first.seconds:.3f}s "
            f"{ {k: round(v, 3) for k, v in many_first.phases.items()} }")

        # (a) submit → first line vs docker run → 'hello', alternating which goes first. Full
        # mode warms both up first (the first job also captures the image's package list).
        if not quick:
            log("warm-up: one job and one docker run (not counted)")
            self.job_first_line("hello", snapshot)
            self.docker_first_line()
        ours: list[FirstLine] = []
        plain: list[FirstLine] = []
        uploads: list[float] = []
        for i in range(rounds):
            up_s, res = self.upload("hello", small)
            uploads.append(up_s)
            if not res.duplicate:
                log(f"WARNING: re-uploading the unchanged small project was not a duplicate: {res}")
            order: list[tuple[Callable[[], FirstLine], list[FirstLine], str]] = [
                (lambda: self.job_first_line("hello", snapshot), ours, "job"),
                (self.docker_first_line, plain, "docker run")]
            for fn, side, label in order if i % 2 == 0 else reversed(order):
                s = fn()
                side.append(s)
                log(f"  round {i + 1}/{rounds} {label:<31} first line {s.seconds:6.3f}s "
                    f"{ {k: round(v, 3) for k, v in s.phases.items()} }")
        post_ms = self.post_ms_from_log()
        emit("job_submit_to_first_log_line", median(s.seconds for s in ours),
             "docker run --rm --network host IMAGE python -c \"print('hello', flush=True)\" → 'hello' on its "
             "stdout pipe", median(s.seconds for s in plain), goal=1.15,
             runs=fmt(s.seconds for s in ours), baseline_runs=fmt(s.seconds for s in plain),
             phases=phase_medians([s.phases for s in ours]), baseline_phases=phase_medians([s.phases for s in plain]),
             snapshot_upload_s=round(median(uploads), 4), snapshot_upload_runs=fmt(uploads, 4),
             snapshot_first_upload_s=round(first_upload_s, 4), bridge_post_jobs_ms=num(median(post_ms), 2),
             many_file_snapshot_first_line_s=round(many_first.seconds, 3), many_file_snapshot_files=project_files,
             many_file_snapshot_phases={k: round(v, 3) for k, v in many_first.phases.items()},
             rounds=rounds, warmup=not quick, **common)

        # (b) 5,000 lines/s for line_seconds, job follower vs docker logs -f; alternating.
        n = LINE_RATE * line_seconds
        line_rounds = 1 if quick else 3
        job_logs: list[dict[str, Any]] = []
        docker_logs: list[dict[str, Any]] = []
        for i in range(line_rounds):
            order2: list[tuple[Callable[[], LineLog], list[dict[str, Any]], str]] = [
                (lambda: self.job_lines("hello", snapshot, n)[0], job_logs, "job follower"),
                (lambda: self.docker_lines(n), docker_logs, "docker logs -f")]
            for fn2, side2, label in order2 if i % 2 == 0 else reversed(order2):
                summary = fn2().summary()
                side2.append(summary)
                log(f"  round {i + 1}/{line_rounds} {label:<14} " + json.dumps(
                    {k: v for k, v in summary.items() if not k.startswith("_")}))
        # Diagnostic, not in the goal: the same job read by a plain SSE reader (whole chunks),
        # which separates the bridge's delivery from floyd.client's parsing.
        diagnostics: dict[str, dict[str, Any]] = {}
        for how in ("proxy", "direct"):
            reader, file_log = self.job_lines("hello", snapshot, n, raw=how)
            diagnostics[f"raw_sse_reader_{how}"] = reader.summary()
            if file_log is not None:
                diagnostics[f"log_file_during_{how}"] = file_log.summary()
        for label, summary in diagnostics.items():
            log(f"  {label} (diagnostic) " + json.dumps({k: v for k, v in summary.items() if not k.startswith("_")}))
        ours_lat = [v for s in job_logs for v in s["_lat"]]
        plain_lat = [v for s in docker_logs for v in s["_lat"]]

        def totals(side: list[dict[str, Any]]) -> dict[str, Any]:
            return {k: sum(s[k] for s in side) for k in
                    ("lines_expected", "lines_seen", "lines_unique", "lines_lost", "lines_duplicated")}

        def per_run(side: list[dict[str, Any]]) -> list[dict[str, Any]]:
            keep = ("p50_ms", "p99_ms", "max_ms", "last_line_ms", "print_rate_lps", "lines_seen", "in_order",
                    "cpu_s")
            return [{k: s[k] for k in keep} for s in side]

        base_label = ("the same command in a plain `docker run -d` container, read through `docker logs -f` "
                      "(subprocess pipe)")
        shared = {"rate_lps": LINE_RATE, "seconds": line_seconds, "rounds": line_rounds, **totals(job_logs),
                  **{f"baseline_{k}": v for k, v in totals(docker_logs).items()},
                  "in_order": all(s["in_order"] for s in job_logs), "per_run": per_run(job_logs),
                  "baseline_per_run": per_run(docker_logs),
                  # where the latency comes from: the persisted log file (docker → bridge), a plain
                  # SSE reader through the hub's proxy and straight from the bridge (no floyd.client)
                  "diagnostics": {label: {k: d[k] for k in ("p50_ms", "p99_ms", "max_ms", "lines_seen", "lines_lost",
                                                            "lines_duplicated", "cpu_s")}
                                  for label, d in diagnostics.items()}, **common}
        lossless = shared["lines_lost"] == 0 and shared["lines_duplicated"] == 0
        p50, bp50 = percentile(ours_lat, 50), percentile(plain_lat, 50)
        emit("job_log_latency_p50", p50, base_label, bp50, unit="ms", goal_ms=100,
             meets_goal=p50 < 100 and lossless, lossless=lossless, **shared)
        p99, bp99 = percentile(ours_lat, 99), percentile(plain_lat, 99)
        emit("job_log_latency_p99", p99, base_label, bp99, unit="ms", lossless=lossless,
             p90_ms=num(percentile(ours_lat, 90)), baseline_p90_ms=num(percentile(plain_lat, 90)),
             max_ms=num(max(ours_lat) if ours_lat else float("nan")),
             baseline_max_ms=num(max(plain_lat) if plain_lat else float("nan")), **shared)

        self.loaded_rows(n, line_rounds, base_label, common)

        # (d) queue_jobs short jobs through a 2-wide queue vs pairs of docker runs.
        log(f"queue: {queue_jobs // 2} pairs of docker run --rm {IMAGE} true")
        pairs = self.docker_pairs(queue_jobs // 2)
        log(f"  docker pairs: {pairs['total']:.2f}s {pairs['phases']}")
        # Job containers use host networking; the baseline does not (a network
        # namespace and veth per container). The same pairs with --network host, for reference.
        host_pairs = self.docker_pairs(queue_jobs // 2, ["--network", "host"])
        log(f"  docker pairs --network host: {host_pairs['total']:.2f}s {host_pairs['phases']}")
        self.client.create_project("queue")
        _, qup = self.upload("queue", small)
        log(f"queue: {queue_jobs} jobs running `true`, at most 2 at once")
        q = self.job_queue("queue", qup.version["id"], queue_jobs)
        log(f"  jobs: {q['total']:.2f}s (observed {q['observed']:.2f}s, submitted all in {q['submitted']:.2f}s) "
            f"{q['states']} {q['phases']} slot gap {q['slot_gap_s']}s")
        if q["states"].get("succeeded", 0) != queue_jobs:
            log(f"WARNING: not every queued job succeeded: {q['states']}")
        emit("job_queue_200_short_jobs", q["total"], f"{queue_jobs // 2} sequential pairs of concurrent "
             f"`docker run --rm {IMAGE} true`", pairs["total"], jobs=queue_jobs,
             per_job_s=round(q["total"] / queue_jobs, 4), baseline_per_container_s=round(pairs["total"] / queue_jobs, 4),
             observed_s=round(q["observed"], 3), submit_all_s=round(q["submitted"], 3), states=q["states"],
             phases=q["phases"], baseline_phases=pairs["phases"], baseline_failures=pairs["failures"],
             slot_free_to_next_create_s=q["slot_gap_s"], slot_free_to_next_create_p90_s=q["slot_gap_p90_s"],
             first_submit_to_first_create_s=q["first_create_s"], median_queued_s=q["queued_s"],
             host_network_baseline_s=round(host_pairs["total"], 3),
             host_network_ratio=round(q["total"] / host_pairs["total"], 4) if host_pairs["total"] else None,
             host_network_baseline_phases=host_pairs["phases"], **common)

    def prepare_rows(self, files: int, many: str, rounds: int, common: dict[str, Any]) -> None:
        """(e) the bridge's prepare time on the many-file snapshot vs a 50-file one, alternating."""
        few = self.base / "few"
        write_project(few, 50, seed=11)
        self.client.create_project("few")
        _, up = self.upload("few", few)
        sides: dict[str, list[tuple[float, str]]] = {"many": [], "few": []}
        for project, snap in (("many", many), ("few", up.version["id"])):
            self.prepare_ms(project, snap)  # warm-up (the first job also probes overlay / reflink)
        for i in range(rounds * 2):
            order = [("many", many), ("few", up.version["id"])]
            for project, snap in order if i % 2 == 0 else reversed(order):
                sides[project].append(self.prepare_ms(project, snap))
        ms = {k: [v for v, _ in side] for k, side in sides.items()}
        modes = sorted({m for side in sides.values() for _, m in side})
        log(f"prepare: {files} files {fmt(ms['many'], 2)} ms, 50 files {fmt(ms['few'], 2)} ms, code by {modes}")
        emit("job_prepare_5000_vs_50", median(ms["many"]), "the same job's prepare time on a 50-file snapshot",
             median(ms["few"]), unit="ms", goal=1.2, files=files, baseline_files=50, code_mount=modes,
             runs=fmt(ms["many"], 2), baseline_runs=fmt(ms["few"], 2), **common)

    def loaded_rows(self, n: int, rounds: int, base_label: str, common: dict[str, Any]) -> None:
        """(f) log latency while a second job spins on a CPU vs the same pair of plain containers."""
        ours: list[dict[str, Any]] = []
        plain: list[dict[str, Any]] = []
        for i in range(rounds):
            order: list[tuple[Callable[[], LineLog], list[dict[str, Any]], str]] = [
                (lambda: self.spinning(lambda: self.job_lines("hello", self.small_snapshot, n)[0], False), ours,
                 "job follower, loaded"),
                (lambda: self.spinning(lambda: self.docker_lines(n), True), plain, "docker logs -f, loaded")]
            for fn, side, label in order if i % 2 == 0 else reversed(order):
                summary = fn().summary()
                side.append(summary)
                log(f"  round {i + 1}/{rounds} {label:<22} " + json.dumps(
                    {k: v for k, v in summary.items() if not k.startswith("_")}))
        lat = [v for s in ours for v in s["_lat"]]
        base = [v for s in plain for v in s["_lat"]]
        lossless = all(s["lines_lost"] == 0 and s["lines_duplicated"] == 0 for s in ours)
        p50 = percentile(lat, 50)
        emit("log_line_p50_loaded", p50, base_label + ", each beside a container spinning on a CPU",
             percentile(base, 50), unit="ms", goal_ms=100, meets_goal=p50 < 100 and lossless, lossless=lossless,
             p99_ms=num(percentile(lat, 99)), baseline_p99_ms=num(percentile(base, 99)), rate_lps=LINE_RATE,
             rounds=rounds, per_run=[{k: s[k] for k in ("p50_ms", "p99_ms", "lines_seen", "cpu_s")} for s in ours],
             baseline_per_run=[{k: s[k] for k in ("p50_ms", "p99_ms", "lines_seen")} for s in plain], **common)

    def cleanup(self) -> None:
        """Child processes, the platform, then every container of this run (jobs are left
        running by a stopped bridge, by design: a restarted one re-adopts them)."""
        for proc in self.children:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        if self.platform is not None:
            log(f"stopping the platform at {self.platform.url}")
            self.platform.stop()
        if self.events is not None:
            self.events.close()
        try:
            leftovers = self.dc.containers.list(all=True, filters={"label": f"org.floyd.owner={self.user_name}"})
            leftovers += self.dc.containers.list(all=True, filters={"name": f"^/{self.tag}-"})
        except (docker.errors.APIError, requests.RequestException) as exc:
            log(f"could not list leftover containers: {exc}")
            leftovers = []
        for c in leftovers:
            try:
                c.remove(force=True)
                log(f"removed leftover container {c.name}")
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                log(f"could not remove container {c.name}: {exc}")
        if self.cache is not None:
            self.cache.close()
        self.dc.close()


def bench(base: Path, quick: bool) -> None:
    # No DOCKER_HOST given: the engine scripts/ensure-docker.sh starts, where it runs.
    if "DOCKER_HOST" not in os.environ and Path("/run/floyd-docker.sock").exists():
        os.environ["DOCKER_HOST"] = "unix:///run/floyd-docker.sock"
    run_then_cleanup(Bench(base, quick))


def main(argv: list[str] | None = None) -> int:
    return cli(bench, __doc__, quick_help="2 rounds, 1 s of lines, 500 files, 20 jobs: under a minute",
               keep_help="put the data and the platform under DIR and leave them there",
               prefix="floyd-bench-jobs-", argv=argv)


if __name__ == "__main__":
    sys.exit(main())
