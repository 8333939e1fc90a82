"""Pipelines benchmark: what do parallel steps, reuse and the step-to-step hand-over give?

Starts a real platform (tests.support.platform) with four jobs running at once
(``c.JobQueue.max_running = 4``, no per-user limit) and measures, side by side:

  pipeline_10_steps_vs_by_hand   a 10-step pipeline of trivial steps (two diamonds three
                                 wide, then a chain: a→{b,c,d}→e→{f,g,h}→i→j), POST → run ended, every
                                 step run (no_reuse)  vs  the same 10 jobs submitted by hand,
                                 one after another, each waited for (goal: ratio ≤ 0.7)
  pipeline_rerun_unchanged       the same pipeline again with nothing changed (every step
                                 reused)  vs  the first run, both from the bridge's own
                                 record (created_at → finished_at: the client's polling is
                                 left out of both sides) (goal: ratio ≤ 0.05)
  pipeline_step_handover         a step's job end (its finished_at) → the child's first line
                                 (the time it prints), median over the edges of a 4-step
                                 chain run on its own (each child starts alone, as the plain
                                 job does)  vs  a plain job's submit → its first line, the
                                 by-hand jobs above (goal: ratio ≤ 1.2)

--quick: a 6-step pipeline (a→{b,c,d}→e→f), one round. One JSON object per measurement on
stdout; logs on stderr.

    .venv/bin/python benchmarks/pipelines.py [--quick] [--keep DIR]
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime
from pathlib import Path

from common import cli, emit, log, median, run_then_cleanup

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from floyd.client.http import FloydClient  # noqa: E402
from floyd.client.transfer import upload_code  # noqa: E402
from tests.support.platform import IMAGE, Platform, write_tree  # noqa: E402

BRIDGE_CONFIG = "c.JobQueue.max_running = 4\nc.JobQueue.max_running_per_user = 0\n"
STEP = "python step.py"
STEP_PY = b"# benchmarks/pipelines.py step\nimport time\nprint('t', time.time(), flush=True)\n"
# Two diamonds three wide, then a chain: a→{b,c,d}→e→{f,g,h}→i→j (quick: a→{b,c,d}→e→f).
FULL = {"a": [], "b": ["a"], "c": ["a"], "d": ["a"], "e": ["b", "c", "d"], "f": ["e"], "g": ["e"], "h": ["e"],
        "i": ["f", "g", "h"], "j": ["i"]}
QUICK = {"a": [], "b": ["a"], "c": ["a"], "d": ["a"], "e": ["b", "c", "d"], "f": ["e"]}
CHAIN = {"w": [], "x": ["w"], "y": ["x"], "z": ["y"]}  # for the hand-over
POLL = 0.02  # seconds between looks at a run or a job, the same for both sides
TIMEOUT = 600.0


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def recorded(run: dict) -> float:
    """A run's own duration as the bridge recorded it."""
    return epoch(run["finished_at"]) - epoch(run["created_at"])


def first_time(client: FloydClient, owner: str, project: str, number: int) -> float:
    """The time a step printed on its first line."""
    return float(client.job_log(owner, project, number).split()[1])


class Bench:
    def __init__(self, base: Path, quick: bool) -> None:
        self.base = base
        self.quick = quick
        self.mode = "quick" if quick else "full"
        self.dag = QUICK if quick else FULL
        self.platform: Platform | None = None
        self.user = f"pipebench{os.getpid()}"
        self.client: FloydClient

    def steps(self, salt: str, dag: dict[str, list[str]] | None = None) -> dict:
        return {n: {"command": STEP, "params": {"step": n, "salt": salt},
                    "inputs": [{"from": p} for p in needs]} for n, needs in (dag or self.dag).items()}

    def wait_run(self, run_id: str) -> dict:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            run = self.client.get_json(f"pipelines/{run_id}")
            if run["state"] != "running":
                assert run["state"] == "succeeded", run
                return run
            time.sleep(POLL)
        raise TimeoutError(run_id)

    def run_pipeline(self, snapshot: str, salt: str, no_reuse: bool,
                     dag: dict[str, list[str]] | None = None) -> tuple[float, dict]:
        t0 = time.perf_counter()
        run = self.client.send_json("POST", "pipelines", {
            "project": f"{self.user}/bench", "snapshot": snapshot, "pipeline": "bench",
            "steps": self.steps(salt, dag), "no_reuse": no_reuse})
        run = self.wait_run(run["id"])
        return time.perf_counter() - t0, run

    def by_hand(self, snapshot: str, salt: str) -> tuple[float, list[float]]:
        """The same jobs one after another; also each job's submit → first line."""
        t0 = time.perf_counter()
        firsts = []
        for name in self.dag:
            submitted = time.time()
            job = self.client.submit_job({"project": f"{self.user}/bench", "snapshot": snapshot, "command": STEP,
                                          "params": {"step": name, "salt": salt}})["job"]
            while True:
                record = self.client.job(self.user, "bench", job["number"])
                if record["state"] in ("succeeded", "failed", "stopped", "timed_out", "lost"):
                    break
                time.sleep(POLL)
            firsts.append(first_time(self.client, self.user, "bench", job["number"]) - submitted)
        return time.perf_counter() - t0, firsts

    def handovers(self, run: dict) -> list[float]:
        jobs = {st["name"]: st["job_number"] for st in run["steps"]}
        out = []
        for child, parents in CHAIN.items():
            if not parents:
                continue
            parent = parents[0]
            ended = epoch(self.client.job(self.user, "bench", jobs[parent])["finished_at"])
            out.append(first_time(self.client, self.user, "bench", jobs[child]) - ended)
        return out

    def run(self) -> None:
        platform = self.platform = Platform.create(self.base / "platform", bridge_config=BRIDGE_CONFIG)
        platform.start()
        user = platform.user(self.user)
        self.client = FloydClient(platform.url, user.token)
        self.client.create_project("bench")
        up = upload_code(self.client, self.user, "bench", write_tree(self.base / "code", {"step.py": STEP_PY}))
        snapshot = up.version["id"]
        self.by_hand(snapshot, "warm-up")  # the image's first start is paid by nobody below
        rounds = 1 if self.quick else 3
        ours, theirs, firsts_server, reruns, hand, plain = [], [], [], [], [], []
        for r in range(rounds):
            took, run = self.run_pipeline(snapshot, f"round{r}", no_reuse=True)
            ours.append(took)
            firsts_server.append(recorded(run))
            _, chain = self.run_pipeline(snapshot, f"chain{r}", no_reuse=True, dag=CHAIN)
            hand += self.handovers(chain)
            took_hand, firsts = self.by_hand(snapshot, f"hand{r}")
            theirs.append(took_hand)
            plain += firsts
            again, rerun = self.run_pipeline(snapshot, f"round{r}", no_reuse=False)
            assert {st["state"] for st in rerun["steps"]} == {"reused"}, rerun
            reruns.append(recorded(rerun))
            log(f"round {r}: pipeline {took:.2f}s, by hand {took_hand:.2f}s, rerun {again:.3f}s "
                f"(recorded: first {firsts_server[-1]:.3f}s, rerun {reruns[-1]:.3f}s)")
        common = {"mode": self.mode, "steps": len(self.dag), "rounds": rounds, "image": IMAGE,
                  "max_running_jobs": 4}
        emit(f"pipeline_{len(self.dag)}_steps_vs_by_hand", median(ours), "same jobs submitted one after another",
             median(theirs), goal=0.7, **common)
        emit("pipeline_rerun_unchanged", median(reruns), "the first run (every step run)", median(firsts_server),
             goal=0.05, **common)
        emit("pipeline_step_handover", median(hand), "plain job submit → first line", median(plain), goal=1.2,
             edges=len(hand), **common)

    def cleanup(self) -> None:
        if self.platform is not None:
            self.platform.stop()


def bench(base: Path, quick: bool) -> None:
    if "DOCKER_HOST" not in os.environ and Path("/run/floyd-docker.sock").exists():
        os.environ["DOCKER_HOST"] = "unix:///run/floyd-docker.sock"
    run_then_cleanup(Bench(base, quick))


def main(argv: list[str] | None = None) -> int:
    return cli(bench, __doc__, quick_help="a 6-step pipeline, one round: under a minute",
               keep_help="put the platform under DIR and leave it there", prefix="floyd-bench-pipelines-", argv=argv)


if __name__ == "__main__":
    sys.exit(main())
