"""Helpers shared by the benchmark scripts in this folder (datasets, workspaces, jobs).

One copy so that every script logs, rounds, reports and cleans up the same way, and a
record from one script reads like a record from another. Imported as ``common``: the
scripts run as ``python benchmarks/X.py``, which puts this folder on sys.path.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import stat
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, TypeVar

REPO = Path(__file__).resolve().parents[1]
MiB = 1 << 20
GiB = 1 << 30
# The environment image build_image() makes, and jobs/workspaces use; FLOYD_TEST_IMAGE gives a
# checkout a tag of its own, as in the tests (tests/support/platform.py).
IMAGE = os.environ.get("FLOYD_TEST_IMAGE", "floyd/cpu:latest")


def log(message: str) -> None:
    """Progress for the reader, on stderr, so stdout stays pure JSON lines."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def fmt(values: Iterable[float], digits: int = 3) -> list[float]:
    """Per-run values rounded for a record: milliseconds of noise would only bloat it."""
    return [round(v, digits) for v in values]


def median(values: Iterable[float]) -> float:
    """statistics.median that gives NaN for no values: a side with nothing measured (a probe
    that never fired) should show up as missing, not stop the run."""
    vals = list(values)
    return statistics.median(vals) if vals else float("nan")


def num(value: float | None, digits: int = 3) -> float | None:
    """Rounded, or None for NaN/None (json.dumps would write NaN, which is not JSON)."""
    return None if value is None or math.isnan(value) else round(value, digits)


def force_remove(path: Path) -> None:
    """rmtree that also removes the platform's read-only (0555) version directories."""
    if not path.exists():
        return
    for dirpath, _dirs, _files in os.walk(path):
        mode = os.lstat(dirpath).st_mode
        if not stat.S_ISLNK(mode):
            os.chmod(dirpath, stat.S_IMODE(mode) | stat.S_IRWXU)
    shutil.rmtree(path)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds a process has used (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(pid: int, window: float = 0.5, busy: float = 0.02, timeout: float = 60.0) -> float:
    """Wait until ``pid`` used at most ``busy`` CPU seconds in ``window`` seconds (work a previous
    step left it, e.g. a tree built after a commit, would otherwise share the next timed step's
    two cores); the seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        before = process_cpu(pid)
        time.sleep(window)
        if process_cpu(pid) - before <= busy:
            break
    return time.monotonic() - t0


def io_pressure() -> float | None:
    """The share of the last 10 s some task waited for I/O (/proc/pressure/io, ``some avg10``,
    percent); None where the kernel has no PSI."""
    try:
        first = Path("/proc/pressure/io").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return float(dict(f.split("=") for f in first.split()[1:])["avg10"])


def wait_io_quiet(below: float = 10.0, timeout: float = 90.0) -> float:
    """Wait until I/O pressure is under ``below`` percent (or ``timeout``); the seconds waited.
    After a benchmark deletes a big tree the disk stays busy for a minute or more, and a step
    that writes 100,000 files and then flushes them to disk (an upload's commit) pays for that
    backlog while ``cp -r``, which never flushes, does not."""
    t0 = time.monotonic()
    while (p := io_pressure()) is not None and p >= below and time.monotonic() - t0 < timeout:
        time.sleep(1.0)
    return time.monotonic() - t0


def build_image() -> str:
    """Build IMAGE the way a site does (images/build.sh, a no-op when it is up to date), so
    the benchmark measures what users run; returns build.sh's last ``build:`` line for the log."""
    proc = subprocess.run(["bash", str(REPO / "images" / "build.sh"), "--variant", "cpu", "--tag", IMAGE], cwd=REPO,
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode:
        raise RuntimeError(f"images/build.sh failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    said = [line for line in proc.stderr.splitlines() if line.startswith("build:")]
    return said[-1] if said else "build.sh said nothing"


def emit(name: str, value: float, baseline: str, baseline_value: float, unit: str = "s",
         meets_goal: bool | None = None, *, cache: str | None = None, goal_slack: float = 1.0,
         zero_ratio: float = math.inf, **extra: Any) -> None:
    """Print one measurement as a JSON line: ours vs the baseline, their ratio, and the load.

    ``extra`` is appended as is; a ``goal`` in it (a ratio) sets ``meets_goal`` to ratio ≤
    goal × ``goal_slack`` (slack for a goal of "equal" that noise alone would miss half the
    time), unless ``meets_goal`` is given because the goal is not a ratio. ``cache`` says
    how warm the page cache was, for scripts where that decides the numbers. ``zero_ratio``
    is the ratio when the baseline is 0 and so is the value (e.g. 0 bytes of 0 sent); any
    other value over a 0 baseline is infinitely worse.
    """
    ratio = value / baseline_value if baseline_value else (zero_ratio if value == 0 else math.inf)
    record: dict[str, Any] = {
        "name": name, "value": round(value, 4), "unit": unit, "baseline": baseline,
        # an infinite ratio (something over a baseline of 0) is null: JSON has no Infinity
        "baseline_value": round(baseline_value, 4), "ratio": round(ratio, 4) if math.isfinite(ratio) else None,
    }
    if cache is not None:
        record["cache"] = cache
    # other work on the machine skews both sides; the 1-minute load average says how much
    record.update({"load_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(), "io_pressure_avg10": io_pressure()})
    goal = extra.get("goal")
    if meets_goal is not None:
        record["meets_goal"] = meets_goal
    elif goal is not None:
        record["meets_goal"] = ratio <= goal * goal_slack
    record.update(extra)
    print(json.dumps(record), flush=True)


class Stoppable(Protocol):
    """A benchmark that holds platforms and containers: ``cleanup`` frees them all."""

    def run(self) -> None: ...

    def cleanup(self) -> None: ...


class Startable(Protocol):
    """A platform of the tests' kind (tests/support/platform.py): start it, stop it."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


S = TypeVar("S", bound=Startable)


@contextmanager
def started(platform: S) -> Iterator[S]:
    """The platform, started, and stopped again even after a failure or an interrupt."""
    try:
        platform.start()
        yield platform
    finally:
        log("stopping the platform")
        platform.stop()


def run_then_cleanup(bench: Stoppable) -> None:
    """Run, then clean up even after a failure or an interrupt: a platform or container
    left behind would skew the next run and hold ports and disk."""
    try:
        bench.run()
    finally:
        bench.cleanup()


def cli(bench: Callable[[Path, bool], None], doc: str | None, *, quick_help: str, keep_help: str,
         prefix: str, argv: list[str] | None = None) -> int:
    """A benchmark script's command line: ``[--quick] [--keep DIR]``, then ``bench(base, quick)``
    in a fresh directory that is removed afterwards (every byte of it, read-only version
    directories included) unless --keep named one. Returns the exit status, 130 when
    interrupted, so ``sys.exit(cli(...))`` ends the script."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--keep", type=Path, metavar="DIR", help=keep_help)
    args = parser.parse_args(argv)

    def interrupted(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    # SIGTERM as an interrupt, so the finally blocks stop platforms and remove containers.
    signal.signal(signal.SIGTERM, interrupted)
    # Started in the background by a non-interactive shell, SIGINT arrives ignored: that
    # would make Ctrl-C/kill -INT do nothing here and, inherited by floyd-up, make
    # Platform.stop's SIGINT wait out its 30 s. A real handler fixes both.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.keep:
        base = args.keep.resolve()
        base.mkdir(parents=True, exist_ok=True)
        if any(base.iterdir()):
            parser.error(f"{base} is not empty")
    else:
        base = Path(tempfile.mkdtemp(prefix=prefix))
    t = time.perf_counter()
    try:
        bench(base, args.quick)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        if args.keep:
            log(f"kept everything under {base}")
        else:
            force_remove(base)
        log(f"total {time.perf_counter() - t:.1f}s")
    return 0
