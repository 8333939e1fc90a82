"""Schemathesis against a real platform: its CLI run as a subprocess, its JSON report read back.

The CLI is what schemathesis keeps stable across releases (options, phases, reports); the
settings both profiles share are in ``tests/fuzz/schemathesis.toml``, the hooks (tar bodies,
request counts) in ``tests/fuzz/hooks.py``. ``python -m tests.support.fuzz`` is ``make fuzz``:
it starts a platform of its own and runs the long profile with a user's token and with none.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.platform import REPO, TEST_BRIDGE_CONFIG, VENV_BIN, Platform, User

CONFIG = REPO / "tests" / "fuzz" / "schemathesis.toml"
ALL_PHASES = "examples,coverage,fuzzing,stateful"


@dataclass(frozen=True)
class Profile:
    """How much to generate: a seed makes a run repeat exactly."""

    name: str
    max_examples: int
    phases: str = ALL_PHASES
    seed: int = 20240917


BOUNDED = Profile("bounded", max_examples=4)
LONG = Profile("long", max_examples=60)


@dataclass
class FuzzReport:
    """What one run found: schemathesis's JSON report plus the requests the hooks counted."""

    label: str
    report: dict
    statuses: Counter[str] = field(default_factory=Counter)
    output: str = ""
    seconds: float = 0.0

    @property
    def failures(self) -> dict[str, int]:
        """Unique failures by check, e.g. ``{"ST103 Undocumented status code": 12}``."""
        return {f"{f['code']} {f['title']}": f["count"] for f in self.report.get("failures", [])}

    @property
    def errors(self) -> dict[str, int]:
        return {e["title"]: e["count"] for e in self.report.get("errors", [])}

    @property
    def clean(self) -> bool:
        return not self.failures and not self.errors and self.report.get("complete", False)

    def summary(self) -> str:
        ops = self.report.get("operations", {})
        cases = self.report.get("test_cases", {})
        phases = ", ".join(f"{k} {v['status']}" for k, v in self.report.get("phases", {}).items())
        lines = [
            f"{self.label}: {ops.get('tested', 0)}/{ops.get('total', 0)} operations, "
            f"{cases.get('generated', 0)} test cases, {sum(self.statuses.values())} requests "
            f"({', '.join(f'{s}: {n}' for s, n in sorted(self.statuses.items()))}), {self.seconds:.0f} s",
            f"  phases: {phases}",
            f"  failures: {sum(self.failures.values())}" + "".join(f"\n    {k}: {n}" for k, n in self.failures.items()),
        ]
        if self.errors:
            lines.append("  errors:" + "".join(f"\n    {k}: {n}" for k, n in self.errors.items()))
        return "\n".join(lines)

    def failure_details(self, limit: int = 20000) -> str:
        """The CLI's own failure section (reproducing curl lines included), for a failing test."""
        start = self.output.find("=== FAILURES ===")
        text = self.output[start:] if start >= 0 else self.output
        return text[:limit]


def run_schemathesis(platform: Platform, token: str | None, profile: Profile, label: str,
                     workdir: Path, timeout: float = 1500) -> FuzzReport:
    """One schemathesis run over the whole document, through the public URL (the proxy)."""
    workdir.mkdir(parents=True, exist_ok=True)
    counts = workdir / f"{label}-counts.json"
    report_path = workdir / f"{label}-report.json"
    cmd = [str(VENV_BIN / "schemathesis"), "--config-file", str(CONFIG), "run",
           platform.api_url + "openapi.json", "--checks", "all", "--mode", "all",
           "--max-examples", str(profile.max_examples), "--seed", str(profile.seed),
           "--phases", profile.phases, "--report", "json", "--report-json-path", str(report_path),
           "--no-color"]
    if token:
        cmd += ["--header", f"Authorization: token {token}"]
    env = {**platform.env, "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks", "FLOYD_FUZZ_COUNTS": str(counts),
           "COLUMNS": "160"}
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - t0
    if not report_path.exists():
        raise RuntimeError(f"schemathesis wrote no report (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    statuses = Counter(json.loads(counts.read_text())) if counts.exists() else Counter()
    return FuzzReport(label, json.loads(report_path.read_text()), statuses, proc.stdout + proc.stderr, seconds)


def release_gpus(user: User) -> list[str]:
    """Give back the GPUs the fuzzer's workspace requests leased (POST /workspaces/prepare with a
    GPU environment is schema-valid), so later tests on the same platform find them free."""
    released: list[str] = []
    for lease in user.api("GET", "gpus").json()["items"]:
        holder = lease.get("holder") or ""
        if lease.get("owner") == user.name and holder.startswith(f"workspace:{user.name}/"):
            server = holder.split("/", 1)[1]
            r = user.api("POST", "workspaces/release", json={"server_name": server})
            released += r.json()["released"]
    return released


def main(argv: list[str] | None = None) -> int:
    """``make fuzz``: the long profile on a platform of its own, with a user's token and with none."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--max-examples", type=int, default=LONG.max_examples)
    parser.add_argument("--seed", type=int, default=LONG.seed)
    args = parser.parse_args(argv)
    profile = Profile("long", args.max_examples, seed=args.seed)
    base = Path(tempfile.mkdtemp(prefix="floyd-fuzz-"))
    platform = Platform.create(base, bridge_config=TEST_BRIDGE_CONFIG)
    platform.start()
    try:
        user = platform.user("fuzz")
        reports = [run_schemathesis(platform, token, profile, label, base / "reports")
                   for label, token in (("user token", user.token), ("no token", None))]
    finally:
        platform.stop()
    for report in reports:
        print(report.summary())
        if not report.clean:
            print(report.failure_details(), file=sys.stderr)
    print(f"reports and platform log under {base}")
    return 0 if all(r.clean for r in reports) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
