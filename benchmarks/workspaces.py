"""Workspace benchmark: what does our spawner add to a workspace's time-to-ready?

Starts two real platforms the way ``make up`` does (tests.support.platform): one with our
WorkspaceSpawner (the product default, host networking), one whose hub_config swaps in
plain ``dockerspawner.DockerSpawner`` with the same image (default bridge network, port
published on 127.0.0.1). Both are started once, up front; the spawners then alternate
round by round so drift on this shared machine lands on both sides.

  workspace_time_to_ready        POST /hub/api/users/<u>/server → a request through the
                                 proxy to /user/<u>/api/status answers 200; our spawner
                                 vs plain DockerSpawner (goal: ratio ≤ 1.1)
  workspace_mount_1gib_vs_10mib  the same, our spawner, with a 1 GiB dataset mounted vs a
                                 10 MiB one (goal: equal within noise, the mount is O(1))

Each spawn is split into phases, so a slow side shows where its time goes: the bridge's
/workspaces/prepare call (timed on its own and from the bridge's access log), POST →
docker create, create → container started (Docker's own timestamps), start → the server
answers /user/<u>/api when asked directly on 127.0.0.1 ("listening", probed every 20 ms
while the POST is in flight), listening → the hub calls it ready, ready → the proxy
answers 200. Listening → hub ready is JupyterHub's readiness poll (exponential backoff
with full jitter, steps up to 5 s): it is the same for both spawners and is most of the
run-to-run noise, so ``listen_ratio`` compares the spawners without it.

Networking: the benchmark and both hubs only ever connect to 127.0.0.0/8. The plain
DockerSpawner's container sits on the default bridge network and must reach the hub API
(token checks, activity), so that platform's hub listens on 0.0.0.0 and its containers
are given the bridge gateway as hub_connect_url; the hub, proxy and services there still
talk over loopback.

One JSON object per measurement on stdout; logs on stderr.

    .venv/bin/python benchmarks/workspaces.py [--quick] [--keep DIR]
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import requests
from common import IMAGE, GiB, MiB, build_image, cli, emit, fmt, log, median, num, run_then_cleanup

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from floyd.client.http import FloydClient  # noqa: E402
from floyd.client.transfer import upload  # noqa: E402
from tests.support.platform import Platform, User  # noqa: E402

OPTIONS: dict[str, Any] = {"environment": "cpu", "project": "bench"}
SPAWN_TIMEOUT = 180.0
PROBE_INTERVAL = 0.02  # proxy polling after the hub says ready: 20 ms resolution

# Plain DockerSpawner, as a site would configure it with no Floyd code at all. The hub's
# API port is only known once Platform.create picked it, hence os.environ.
PLAIN_HUB_CONFIG = """
import os
c.JupyterHub.spawner_class = "dockerspawner.DockerSpawner"
c.DockerSpawner.image = {image!r}
c.DockerSpawner.remove = True
c.DockerSpawner.extra_create_kwargs = {{"user": "1000:100"}}
c.DockerSpawner.use_internal_ip = False
c.DockerSpawner.host_ip = "127.0.0.1"
c.Spawner.options_form = ""
# The container (default bridge network) reaches the hub API through the gateway; the
# hub, proxy and services keep using loopback.
c.JupyterHub.hub_ip = "0.0.0.0"
c.JupyterHub.hub_connect_ip = "127.0.0.1"
c.DockerSpawner.hub_connect_url = "http://{gateway}:" + os.environ["FLOYD_HUB_API_PORT"]
"""


def generate(root: Path, total: int, files: int = 10, chunk: int = 64 * MiB) -> int:
    """``files`` files of random bytes adding up to ``total``: real blocks, not sparse."""
    root.mkdir(parents=True, exist_ok=True)
    each = total // files
    for i in range(files):
        with open(root / f"part{i:02d}.bin", "wb") as fh:
            left = each
            while left:
                n = min(left, chunk)
                fh.write(os.urandom(n))
                left -= n
    return each * files


def docker_time(value: str) -> float:
    """Docker's RFC 3339 nanosecond timestamps as epoch seconds (same host clock as ours)."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", value)
    if not m:
        raise ValueError(f"unexpected docker timestamp {value!r}")
    base, frac, tz = m.groups()
    stamp = datetime.fromisoformat(base + ("+00:00" if tz == "Z" else tz)).timestamp()
    return stamp + (float("0." + frac) if frac else 0.0)


# -- one spawn -------------------------------------------------------------------------
@dataclass
class Spawn:
    """Seconds from the POST, for one workspace start."""

    hub_ready: float
    proxy_ready: float
    post_status: int
    listening: float | None = None  # the server itself answered /user/<u>/api on 127.0.0.1
    created: float | None = None  # docker's Created, relative to the POST
    started: float | None = None  # docker's State.StartedAt, relative to the POST
    container: str = ""

    def phases(self) -> dict[str, float]:
        """POST → created → started → listening → hub ready → proxy 200, as consecutive slices.

        listening → hub ready is JupyterHub's own readiness poll (exponential backoff with
        full jitter, up to 5 s a step): the same code for both spawners, and most of the noise.
        """
        out: dict[str, float] = {}
        if self.created is not None and self.started is not None:
            out["to_create_s"] = self.created
            out["create_to_start_s"] = self.started - self.created
            if self.listening is not None:
                out["start_to_listen_s"] = self.listening - self.started
        if self.listening is not None:
            out["listen_to_hub_ready_s"] = self.hub_ready - self.listening
        out["hub_to_proxy_s"] = self.proxy_ready - self.hub_ready
        return out


@dataclass
class Side:
    """Everything measured for one configuration, across rounds."""

    label: str
    spawns: list[Spawn] = field(default_factory=list)

    @property
    def proxy(self) -> list[float]:
        return [s.proxy_ready for s in self.spawns]

    @property
    def hub(self) -> list[float]:
        return [s.hub_ready for s in self.spawns]

    @property
    def listen(self) -> list[float]:
        return [s.listening for s in self.spawns if s.listening is not None]

    def phase_medians(self) -> dict[str, float]:
        keys = {k for s in self.spawns for k in s.phases()}
        return {k: round(median(s.phases()[k] for s in self.spawns if k in s.phases()), 3) for k in sorted(keys)}


def wait_hub_ready(platform: Platform, user: User, deadline: float) -> None:
    """Follow the hub's progress event stream until it says ready (or failed)."""
    url = f"{platform.url}hub/api/users/{user.name}/server/progress"
    assert platform.admin
    with requests.get(url, headers=platform.admin.headers, stream=True,
                      timeout=(5, max(deadline - time.monotonic(), 1))) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith(b"data:"):
                continue
            event = json.loads(line[5:])
            if event.get("ready"):
                return
            if event.get("failed"):
                raise RuntimeError(f"spawn of {user.name} failed: {event.get('message')}\n{platform.log_tail(40)}")
            if time.monotonic() > deadline:
                break
    raise RuntimeError(f"{user.name}'s server was not ready in time:\n{platform.log_tail(40)}")


def wait_proxy_ready(platform: Platform, user: User, deadline: float) -> None:
    """Poll /user/<u>/api/status through the proxy with the user's token until 200."""
    url = f"{platform.url}user/{user.name}/api/status"
    last = ""
    while time.monotonic() < deadline:
        try:
            r = requests.get(url, headers=user.headers, timeout=5, allow_redirects=False)
            if r.status_code == 200:
                return
            last = f"{r.status_code} {r.text[:200]}"
        except requests.RequestException as exc:
            last = str(exc)
        time.sleep(PROBE_INTERVAL)
    raise RuntimeError(f"the proxy never answered 200 for {user.name} (last: {last})\n{platform.log_tail(40)}")


def container_pattern(user: str) -> str:
    """Docker name filter for the user's default server under either spawner: plain
    DockerSpawner's jupyter-<u>, ours floyd-<platform id>-<u>-- (the user name is unique to
    this run)."""
    return f"^/[a-z]+(-[0-9a-f]+)?-{re.escape(user)}(--)?$"


def container_port(attrs: dict[str, Any]) -> int | None:
    """Where the server listens on 127.0.0.1: the published port (bridge network) or, with
    host networking, the port the spawner put in JUPYTERHUB_SERVICE_URL."""
    for bindings in (attrs.get("NetworkSettings", {}).get("Ports") or {}).values():
        for b in bindings or []:
            if b.get("HostIp") in ("127.0.0.1", "0.0.0.0", "") and b.get("HostPort"):
                return int(b["HostPort"])
    if attrs.get("HostConfig", {}).get("NetworkMode") == "host":
        for item in attrs.get("Config", {}).get("Env") or []:
            if item.startswith("JUPYTERHUB_SERVICE_URL="):
                m = re.search(r":(\d+)/", item)
                return int(m.group(1)) if m else None
    return None


def wait_listening(dc: docker.DockerClient, user: User, post: Future[requests.Response], t0: float,
                   deadline: float) -> float | None:
    """While the POST is in flight: find the container by name and poll the server directly.

    Gives the moment the workspace could answer, before JupyterHub's backoff notices. None
    when the POST ends first (a failed spawn, or ready before we found it).
    """
    pattern = container_pattern(user.name)
    port: int | None = None
    while time.monotonic() < deadline:
        if port is None:
            found = dc.api.containers(all=True, filters={"name": pattern})
            if found:
                try:
                    port = container_port(dc.api.inspect_container(found[0]["Id"]))
                except docker.errors.NotFound:
                    port = None
        if port is not None:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/user/{user.name}/api", timeout=2)
                if r.status_code == 200:
                    return time.perf_counter() - t0
            except requests.RequestException:
                pass
        if post.done() and (post.exception() is not None or post.result().status_code != 202):
            return None  # 202: still starting after slow_spawn_timeout, keep probing
        time.sleep(PROBE_INTERVAL)
    return None


def server_model(platform: Platform, user: User) -> dict[str, Any]:
    return platform.hub_api("GET", f"users/{user.name}").json().get("servers", {}).get("") or {}


def spawn(platform: Platform, user: User, options: dict[str, Any], dc: docker.DockerClient) -> Spawn:
    """Start the user's default server through the Hub API and time it to ready."""
    assert platform.admin
    wall0 = time.time()
    t0 = time.perf_counter()
    deadline = time.monotonic() + SPAWN_TIMEOUT
    with ThreadPoolExecutor(1) as pool:
        post = pool.submit(requests.post, f"{platform.url}hub/api/users/{user.name}/server", json=options,
                           headers=platform.admin.headers, timeout=SPAWN_TIMEOUT)
        listening = wait_listening(dc, user, post, t0, deadline)
        r = post.result()
    if r.status_code == 202:  # the hub answers 201 only when ready within slow_spawn_timeout
        wait_hub_ready(platform, user, deadline)
    elif r.status_code != 201:
        raise RuntimeError(f"POST server for {user.name}: {r.status_code} {r.text}\n{platform.log_tail(40)}")
    hub = time.perf_counter() - t0
    wait_proxy_ready(platform, user, deadline)
    proxy = time.perf_counter() - t0
    out = Spawn(hub, proxy, r.status_code, listening)
    # The container id is in the spawner's state (admin:server_state); Docker says when it
    # was created and started.
    cid = (server_model(platform, user).get("state") or {}).get("object_id")
    if cid:
        try:
            attrs = dc.api.inspect_container(cid)
            out.container = cid
            out.created = docker_time(attrs["Created"]) - wall0
            out.started = docker_time(attrs["State"]["StartedAt"]) - wall0
        except (docker.errors.APIError, ValueError) as exc:
            log(f"could not inspect container {cid}: {exc}")
    return out


def stop(platform: Platform, user: User, dc: docker.DockerClient, container: str, timeout: float = 90) -> None:
    """Stop the server and wait until the hub forgot it and its container is gone."""
    platform.hub_api("DELETE", f"users/{user.name}/server")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = platform.hub_api("GET", f"users/{user.name}").json()
        if "" not in model.get("servers", {}) and model.get("pending") is None:
            break
        time.sleep(0.2)
    else:
        raise RuntimeError(f"{user.name}'s server did not stop:\n{platform.log_tail(40)}")
    while container and time.monotonic() < deadline:
        try:
            dc.api.inspect_container(container)
        except docker.errors.NotFound:
            return
        time.sleep(0.2)
    if container:
        raise RuntimeError(f"container {container[:12]} of {user.name} is still there")


# -- diagnostics -----------------------------------------------------------------------
def time_prepare(platform: Platform, user: User, options: dict[str, Any], repeats: int = 5) -> float:
    """The bridge's /workspaces/prepare as the spawner calls it (directly, not via the proxy)."""
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        # the query string keeps these out of logged_prepare_ms (tornado logs the URI with it)
        r = requests.post(platform.bridge_direct + "workspaces/prepare?from=bench", json=options,
                          headers=user.headers, timeout=60)
        runs.append(time.perf_counter() - t0)
        r.raise_for_status()
    return median(runs)


def hub_start_times(platform: Platform, name: str) -> list[float]:
    """JupyterHub's own 'User X took N seconds to start' lines from the platform log."""
    if not platform.log_path or not platform.log_path.exists():
        return []
    pattern = re.compile(rf"User {re.escape(name)} took ([0-9.]+) seconds to start")
    return [float(m.group(1)) for m in pattern.finditer(platform.log_path.read_text(errors="replace"))]


def logged_prepare_ms(platform: Platform) -> list[float]:
    """The bridge's access-log times of the spawner's /workspaces/prepare calls."""
    if not platform.log_path or not platform.log_path.exists():
        return []
    pattern = re.compile(r"200 POST /services/floyd/api/v1/workspaces/prepare \(127\.0\.0\.1\) ([0-9.]+)ms")
    return [float(m.group(1)) for m in pattern.finditer(platform.log_path.read_text(errors="replace"))]


# -- the benchmark ---------------------------------------------------------------------
class Bench:
    """Both platforms, their users and the containers started, so cleanup finds them all."""

    def __init__(self, base: Path, quick: bool) -> None:
        self.base = base
        self.quick = quick
        self.dc = docker.from_env(timeout=120)
        self.platforms: list[Platform] = []
        self.running: list[tuple[Platform, User, str]] = []
        self.containers: set[str] = set()
        self.user_name = ""

    def measure(self, platform: Platform, user: User, options: dict[str, Any], side: Side) -> Spawn:
        """One timed spawn, then stop it and wait until it is gone."""
        self.running.append((platform, user, ""))
        s = spawn(platform, user, options, self.dc)
        if s.container:
            self.containers.add(s.container)
            self.running[-1] = (platform, user, s.container)
        side.spawns.append(s)
        heard = "   -  " if s.listening is None else f"{s.listening:6.2f}s"
        log(f"  {side.label:<20} listening {heard}  hub ready {s.hub_ready:6.2f}s  proxy 200 {s.proxy_ready:6.2f}s  "
            f"{ {k: round(v, 2) for k, v in s.phases().items()} }")
        self.check(platform, user, options)
        stop(platform, user, self.dc, s.container)
        self.running.pop()
        return s

    def check(self, platform: Platform, user: User, options: dict[str, Any]) -> None:
        """Outside the timing: a mounted dataset is really there, seen through the proxy."""
        for ds in options.get("datasets", []):
            url = f"{platform.url}user/{user.name}/api/contents/input/{ds['mount']}"
            r = requests.get(url, headers=user.headers, params={"content": 1}, timeout=30)
            names = sorted(item["name"] for item in r.json().get("content") or []) if r.ok else []
            if not names:
                log(f"WARNING: /floyd/input/{ds['mount']} looks empty or unreadable: {r.status_code} {r.text[:200]}")

    def start_platforms(self, gateway: str) -> tuple[Platform, Platform]:
        ours = Platform.create(self.base / "ours")
        plain = Platform.create(self.base / "plain", hub_config=PLAIN_HUB_CONFIG.format(image=IMAGE, gateway=gateway))
        self.platforms += [ours, plain]
        t = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            for f in [pool.submit(ours.start), pool.submit(plain.start)]:
                f.result()
        log(f"platforms up in {time.perf_counter() - t:.1f}s: ours {ours.url} (FLOYD_ROOT={ours.root}), "
            f"plain DockerSpawner {plain.url}")
        return ours, plain

    def run(self) -> None:
        quick = self.quick
        rounds = 1 if quick else 5
        big_bytes = 100 * MiB if quick else GiB
        mode = "quick" if quick else "full"

        t = time.perf_counter()
        said = build_image()
        image = self.dc.images.get(IMAGE)
        image_mb = round(image.attrs["Size"] / 1e6, 1)
        log(f"image {IMAGE} {image.short_id} {image_mb} MB ready in {time.perf_counter() - t:.1f}s ({said})")
        gateway = self.dc.networks.get("bridge").attrs["IPAM"]["Config"][0]["Gateway"]

        data = self.base / "data"
        t = time.perf_counter()
        small_n = generate(data / "small", 10 * MiB)
        big_n = generate(data / "big", big_bytes)
        log(f"generated {big_n / MiB:.0f} MiB + {small_n / MiB:.0f} MiB in {time.perf_counter() - t:.1f}s")

        ours, plain = self.start_platforms(gateway)
        name = self.user_name = f"wsbench{os.getpid()}"  # letters and digits: no escaping in container names
        user, plain_user = ours.user(name), plain.user(name)

        client = FloydClient(ours.url, user.token)
        t = time.perf_counter()
        for ds, root in (("big", data / "big"), ("small", data / "small")):
            client.create_dataset(ds)
            upload(client, name, ds, root, "bench")
        log(f"uploaded both datasets in {time.perf_counter() - t:.1f}s")
        with_big = {**OPTIONS, "datasets": [{"ref": f"{name}/big:1", "mount": "big"}]}
        with_small = {**OPTIONS, "datasets": [{"ref": f"{name}/small:1", "mount": "small"}]}

        # Warm-up, untimed (full mode): the first container of an image pays for page cache
        # and layer setup that later ones do not, and it would land on whichever side went
        # first. --quick skips it to stay under a minute.
        if not quick:
            log("warm-up spawn on each platform (not counted)")
            self.measure(ours, user, OPTIONS, Side("warm-up ours"))
            self.measure(plain, plain_user, OPTIONS, Side("warm-up plain"))

        # (a) ours vs plain DockerSpawner, alternating which goes first.
        ws, dsp = Side("WorkspaceSpawner"), Side("plain DockerSpawner")
        for i in range(rounds):
            log(f"round {i + 1}/{rounds}: time to ready")
            order = [(ours, user, ws), (plain, plain_user, dsp)]
            for platform, u, side in order if i % 2 == 0 else reversed(order):
                self.measure(platform, u, OPTIONS, side)
        prepare_s = time_prepare(ours, user, OPTIONS)
        spawner_prepare_ms = logged_prepare_ms(ours)
        log(f"bridge /workspaces/prepare alone: {prepare_s * 1000:.1f} ms (median of 5); "
            f"as the spawner called it: {spawner_prepare_ms} ms (bridge access log)")

        emit("workspace_time_to_ready", median(ws.proxy), "plain dockerspawner.DockerSpawner, same image, "
             "bridge network (port published on 127.0.0.1)", median(dsp.proxy), goal=1.1,
             runs=fmt(ws.proxy), baseline_runs=fmt(dsp.proxy),
             hub_ready_s=round(median(ws.hub), 3), baseline_hub_ready_s=round(median(dsp.hub), 3),
             hub_ready_ratio=round(median(ws.hub) / median(dsp.hub), 4),
             hub_ready_runs=fmt(ws.hub), baseline_hub_ready_runs=fmt(dsp.hub),
             listen_s=num(median(ws.listen)), baseline_listen_s=num(median(dsp.listen)),
             listen_ratio=num(median(ws.listen) / median(dsp.listen), 4),
             listen_runs=fmt(ws.listen), baseline_listen_runs=fmt(dsp.listen),
             phases=ws.phase_medians(), baseline_phases=dsp.phase_medians(),
             bridge_prepare_s=round(prepare_s, 4),
             bridge_prepare_logged_ms=round(median(spawner_prepare_ms), 2), image=IMAGE, image_mb=image_mb,
             hub_logged_start_s=fmt(hub_start_times(ours, name)),
             baseline_hub_logged_start_s=fmt(hub_start_times(plain, name)),
             rounds=rounds, warmup=not quick, mode=mode)

        # (b) 1 GiB (quick: 100 MiB) vs 10 MiB mounted, our spawner, alternating.
        big, small = Side(f"{big_bytes // MiB} MiB mounted"), Side("10 MiB mounted")
        for i in range(rounds):
            log(f"round {i + 1}/{rounds}: dataset mount")
            order = [(with_big, big), (with_small, small)]
            for options, side in order if i % 2 == 0 else reversed(order):
                self.measure(ours, user, options, side)
        # run-to-run noise of the baseline side: "equal within noise" is judged against it
        noise = statistics.pstdev(small.proxy) / median(small.proxy) if len(small.proxy) > 1 else None
        label = "workspace_mount_1gib_vs_10mib"
        emit(label, median(big.proxy), "the same spawn with a 10 MiB dataset mounted",
             median(small.proxy), goal=1.1, runs=fmt(big.proxy), baseline_runs=fmt(small.proxy),
             hub_ready_s=round(median(big.hub), 3), baseline_hub_ready_s=round(median(small.hub), 3),
             listen_s=num(median(big.listen)), baseline_listen_s=num(median(small.listen)),
             listen_ratio=num(median(big.listen) / median(small.listen), 4),
             listen_runs=fmt(big.listen), baseline_listen_runs=fmt(small.listen),
             phases=big.phase_medians(), baseline_phases=small.phase_medians(),
             noise_rel_stdev=None if noise is None else round(noise, 4), dataset_bytes=big_n, baseline_dataset_bytes=small_n,
             dataset_files=10, rounds=rounds, warmup=not quick, mode=mode)

    def cleanup(self) -> None:
        """Stop what is still running, then the platforms, then any container left behind."""
        for platform, user, container in reversed(self.running):
            try:
                stop(platform, user, self.dc, container, timeout=30)
            except Exception as exc:  # best effort: the platform stop follows
                log(f"could not stop {user.name}'s server cleanly: {exc}")
        for platform in self.platforms:
            log(f"stopping the platform at {platform.url}")
            platform.stop()
        # A spawn interrupted before its id was read: find it by its name, unique to this run.
        if self.user_name:
            for container in self.dc.containers.list(all=True, filters={"name": container_pattern(self.user_name)}):
                self.containers.add(container.id)
        for cid in self.containers:
            try:
                self.dc.api.remove_container(cid, force=True)
                log(f"removed leftover container {cid[:12]}")
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                log(f"could not remove container {cid[:12]}: {exc}")
        self.dc.close()


def bench(base: Path, quick: bool) -> None:
    run_then_cleanup(Bench(base, quick))


def main(argv: list[str] | None = None) -> int:
    return cli(bench, __doc__, quick_help="100 MiB instead of 1 GiB, 1 round instead of 5, no warm-up",
               keep_help="put data and both platforms under DIR and leave them there",
               prefix="floyd-bench-ws-", argv=argv)


if __name__ == "__main__":
    sys.exit(main())
