"""Jobs and endpoint replicas as local processes where no Docker engine answers: the contract's
mounts become a tree of links (``run/code``, ``run/output``, ``run/input/<name>``…) that FLOYD_CODE,
FLOYD_INPUT and FLOYD_OUTPUT point at (contract.link_tree / local_env); output goes to a file the
bridge tails and a small shell wrapper writes the exit code, so a restarted bridge finds both again."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from traitlets import Dict, Unicode

from jobs_bridge.executors.base import Executor, ExecutorError, Found, FoundReplica, LineSplitter, RunSpec
from jobs_bridge.executors.contract import CODE, link_tree, local_env

POLL = 0.05
# The names of the bridge's variables that local jobs and replicas may inherit (the app reads them).
SAFE_ENV = {"PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "HOME", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT",
            "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
            "http_proxy", "https_proxy", "no_proxy"}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as ended
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


class LocalExecutor(Executor):
    name = "local"

    inherited_env = Dict(
        value_trait=Unicode(), config=True,
        help="""Variables every local job and replica starts with, before the contract's own
        (FLOYD_*): PATH, locale, CA bundles, proxies, pip's index. The app fills it with the
        variables of its own environment whose names are in SAFE_ENV, unless the config sets it.
        Never put the bridge's tokens here: a job gets only its own job token.""",
    )

    def __init__(self, root: Path, instance: str = "", **kwargs: object) -> None:
        super().__init__(root, instance, **kwargs)
        self._last_ticks: dict[int, tuple[float, int]] = {}

    def start(self, spec: RunSpec) -> str:
        run = Path(spec.workdir) / "run"
        run.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(run / "input", ignore_errors=True)  # no input of an earlier attempt stays linked
        link_tree(spec, run)  # run/code, run/output, run/cache/pip, run/input/<name>
        # FLOYD_CODE/OUTPUT/PIP_CACHE name the real directories, not their links: the process runs
        # in its code directory, and os.getcwd() (which resolves links) must agree with FLOYD_CODE.
        # FLOYD_INPUT is run/input, the directory of input links.
        sources = {target: source for target, (source, _read_only) in spec.mount_table().items()}
        # A clean environment: never the bridge's own (its Hub service token must not reach jobs).
        env = dict(self.inherited_env)
        env.update(local_env(spec, sources, run))
        # `python` in a command means the platform's Python (with the data-science stack), as in the image.
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", os.defpath)
        env["PYTHONUNBUFFERED"] = "1"
        argv = [sys.executable if a == "python" else a for a in spec.argv]
        exit_file = run / "exit_code"
        exit_file.unlink(missing_ok=True)
        done = shlex.quote(str(exit_file))
        script = f"{shlex.join(argv)}; echo $? > {done}.tmp; mv {done}.tmp {done}"
        with open(run / "output.log", "ab") as out:
            proc = subprocess.Popen(["sh", "-c", script], stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=sources[CODE], env=env, start_new_session=True)
        (run / "job.json").write_text(json.dumps({"job_id": spec.job_id, "pid": proc.pid, "kind": spec.kind,
                                                  "name": spec.name}))
        return str(proc.pid)

    def _files(self, workdir: str) -> tuple[Path, Path]:
        run = Path(workdir) / "run"
        return run / "output.log", run / "exit_code"

    def stream_logs(self, handle: str, spec_workdir: str, skip_lines: int, emit: Callable[[list[str]], None],
                    stopped: Callable[[], bool]) -> None:
        log_file, exit_file = self._files(spec_workdir)
        lines = LineSplitter(skip_lines)
        with open(log_file, "rb") as f:
            while True:
                chunk = f.read(1 << 20)
                if chunk:
                    out = lines.feed(chunk)
                    if out:
                        emit(out)
                    continue
                if stopped():
                    return
                if exit_file.exists() or not _alive(int(handle)):
                    rest = f.read()
                    if rest:
                        out = lines.feed(rest)
                        if out:
                            emit(out)
                        continue
                    out = lines.close()
                    if out:
                        emit(out)
                    return
                time.sleep(POLL)

    def wait(self, handle: str, spec_workdir: str) -> int:
        _, exit_file = self._files(spec_workdir)
        pid = int(handle)
        while not exit_file.exists():
            if not _alive(pid):
                time.sleep(0.2)
                if not exit_file.exists():
                    return -1
            time.sleep(POLL)
        try:
            return int(exit_file.read_text().strip() or -1)
        except ValueError:
            return -1

    def stop(self, handle: str, spec_workdir: str, grace: float = 10) -> None:
        pid = int(handle)
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def find(self) -> Iterator[Found]:
        for job_json in self.layout.jobs.glob("*/*/*/run/job.json"):
            try:
                info = json.loads(job_json.read_text())
            except (OSError, ValueError):
                continue
            exit_file = job_json.parent / "exit_code"
            running = not exit_file.exists() and _alive(int(info["pid"]))
            code = None
            if exit_file.exists():
                try:
                    code = int(exit_file.read_text().strip())
                except ValueError:
                    code = -1
            yield Found(int(info["job_id"]), str(info["pid"]), running, code)

    def find_replicas(self) -> Iterator[FoundReplica]:
        for job_json in self.layout.endpoints.glob("*/*/v*/r*/run/job.json"):
            try:
                info = json.loads(job_json.read_text())
            except (OSError, ValueError):
                continue
            if info.get("kind") != "replica":
                continue
            running = not (job_json.parent / "exit_code").exists() and _alive(int(info["pid"]))
            index = int(info["name"].split("/")[3].lstrip("r"))
            yield FoundReplica(int(info["job_id"]), index, str(info["pid"]), running)

    def system_stats(self, handle: str) -> dict[str, float]:
        """CPU percent since the last sample and resident memory, from /proc (the job's process group)."""
        pid = int(handle)
        ticks = os.sysconf("SC_CLK_TCK")
        page = os.sysconf("SC_PAGE_SIZE")
        total_ticks = 0
        rss = 0
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) != pid:  # field 5 (pgrp) after the command name
                continue
            total_ticks += int(fields[11]) + int(fields[12])  # utime + stime
            rss += int(fields[21]) * page
        now = time.monotonic()
        last = self._last_ticks.get(pid)
        self._last_ticks[pid] = (now, total_ticks)
        out = {"system/memory_bytes": float(rss)}
        if last and now > last[0]:
            out["system/cpu_percent"] = 100.0 * (total_ticks - last[1]) / ticks / (now - last[0])
        return out

    def image_id(self, image: str) -> str:
        return f"local:{sys.executable}"

    def image_packages(self, image: str) -> list[str]:
        out = subprocess.run([sys.executable, "-m", "pip", "list", "--format=freeze"], capture_output=True,
                             text=True, timeout=120)
        if out.returncode:
            raise ExecutorError("pip list failed in the local environment")
        return sorted(line for line in out.stdout.splitlines() if "==" in line)
