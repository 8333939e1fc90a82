"""CLI start-up benchmark: how long does ``floyd`` take before it does anything, next to Python itself?
Starts a real platform the way ``make up`` does (tests.support.platform; nothing runs on it but
the commands below) and runs each command N times as a fresh process, output to a pipe:
  cli_start_version       floyd --version               (goal: ≤ 150 ms)
  cli_start_status_help   floyd status --help           (goal: ≤ 150 ms)
  cli_start_status        floyd status, one GET of the platform's jobs (goal: ≤ 150 ms)
each the median wall time against the floor, the median of ``python -c pass`` with the same
interpreter, measured interleaved with it so both see the same load. One JSON object per
measurement on stdout; logs on stderr.

    .venv/bin/python benchmarks/cli.py [--quick] [--keep DIR]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from common import cli, emit, log, median

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.platform import VENV_BIN, Platform  # noqa: E402

GOAL_MS = 150.0
FLOOR = [sys.executable, "-c", "pass"]


def wall_ms(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    t = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True)
    took = (time.perf_counter() - t) * 1000
    if proc.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    return took


def measure(name: str, args: list[str], runs: int, env: dict[str, str], cwd: Path) -> None:
    """``floyd ARGS`` and the floor, alternating, ``runs`` times each (one warm-up of each first)."""
    floyd = [str(VENV_BIN / "floyd"), *args]
    wall_ms(floyd, env, cwd), wall_ms(FLOOR, env, cwd)
    ours, floor = [], []
    for _ in range(runs):
        ours.append(wall_ms(floyd, env, cwd))
        floor.append(wall_ms(FLOOR, env, cwd))
    value = median(ours)
    log(f"{name}: {value:.1f} ms (floor {median(floor):.1f} ms)")
    emit(name, value, "python -c pass", median(floor), unit="ms", meets_goal=value <= GOAL_MS,
         goal_ms=GOAL_MS, runs=runs, command="floyd " + " ".join(args))


def bench(base: Path, quick: bool) -> None:
    runs = 15 if quick else 60
    platform = Platform.create(base / "platform")
    log("starting a platform")
    platform.start()
    try:
        user = platform.user("bench")
        home = base / "home"
        (home / "config").mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOYD_", "JUPYTERHUB_"))}
        env.update({"FLOYD_URL": platform.url, "FLOYD_TOKEN": user.token, "FLOYD_CONFIG_DIR": str(home / "config"),
                    "FLOYD_CACHE_DIR": str(home / "cache")})
        measure("cli_start_version", ["--version"], runs, env, home)
        measure("cli_start_status_help", ["status", "--help"], runs, env, home)
        measure("cli_start_status", ["status"], runs, env, home)
    finally:
        platform.stop()


def main(argv: list[str] | None = None) -> int:
    return cli(bench, __doc__, quick_help="15 runs of each command (and of the floor): under a minute",
               keep_help="put the platform under DIR and leave it there", prefix="floyd-bench-cli-", argv=argv)


if __name__ == "__main__":
    sys.exit(main())
