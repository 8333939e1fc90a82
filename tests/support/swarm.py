"""A real multi-node Docker Swarm on this one machine, for tests and benchmarks.

Each node is a Docker engine of its own (data root, exec root, socket, pidfile, cgroup parent,
``--bip``) in a network namespace of its own (``nsenter --net``, not ``ip netns exec``, which
remounts /sys and hides the cgroup v1 tree dockerd needs) and a UTS namespace (hostname
``nodeN``, so placement can tell nodes apart). The namespaces hang on one bridge with 10.x
addresses and no default route: nothing leaves the swarm's /24. Images come from the host's
engine by ``docker save`` (read only, cached by image id) and ``docker load`` on every node, so
no registry is needed. Swarm's routing mesh needs IPVS, which this kernel lacks: work is reached
at node address and port (host networking), as the platform does anyway.

The nodes share the host's mount namespace, so FLOYD_ROOT is "one shared filesystem" at the same
path on every node, as NFS gives on real machines. The host's own engine is never touched
except to read images. ``python -m tests.support.swarm up|down`` (scripts/swarm.sh) does the
same by hand.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HOST_ENGINE = os.environ.get("FLOYD_SWARM_IMAGES_FROM", "unix:///run/floyd-docker.sock")
IMAGE_CACHE = Path(os.environ.get("FLOYD_SWARM_IMAGE_CACHE", "/var/tmp/floyd-swarm-images"))
COMMENT = "floyd-swarm"


def run(*argv: str, check: bool = True, timeout: float = 300, **kwargs: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, **kwargs)  # type: ignore[call-overload]  # kwargs are subprocess.run's
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def pid_alive(pid: int) -> bool:
    """Running and not a zombie (a killed dockerd whose parent is gone may linger as one)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return not any(line.startswith("State:") and "Z" in line for line in status.splitlines())


@dataclass
class Node:
    index: int
    swarm: NamespaceSwarm
    generic_resources: list[str] = field(default_factory=list)  # e.g. ["NVIDIA-GPU=GPU-uuid1"]
    hide: list[str] = field(default_factory=list)  # paths this node does not see (a tmpfs over them)

    @property
    def name(self) -> str:
        return f"node{self.index}"

    @property
    def netns(self) -> str:
        return f"{self.swarm.prefix}-{self.name}"

    @property
    def address(self) -> str:
        return f"{self.swarm.subnet}.{self.index}"

    @property
    def sock(self) -> Path:
        return self.swarm.run_dir / f"{self.name}.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.sock}"

    @property
    def pidfile(self) -> Path:
        return self.swarm.run_dir / f"{self.name}.pid"

    @property
    def log(self) -> Path:
        return self.swarm.state_dir / "logs" / f"{self.name}.log"

    def docker(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return run("docker", "-H", self.url, *args, check=check, timeout=timeout)

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def start(self) -> None:
        """dockerd in the node's namespaces. DOCKER_SERVICE_PREFER_OFFLINE_IMAGE: a task start
        does not try a registry first (there is none to reach)."""
        s = self.swarm
        flags = [
            f"--config-file={s.state_dir / 'empty.json'}", f"--data-root={s.data_dir / self.name}",
            f"--exec-root={s.run_dir / self.name}", f"--host={self.url}", f"--pidfile={self.pidfile}",
            f"--bip={s.bip_base}.{16 * self.index + 1}/28",
            f"--default-address-pool=base=10.{215 + self.index}.{s.key}.0/24,size=28",
            f"--cgroup-parent=/{s.prefix}-{self.name}", "--shutdown-timeout=3",
            *(f"--node-generic-resource={r}" for r in self.generic_resources),
        ]
        hide = "".join(f"mount -t tmpfs hidden '{p}'; " for p in self.hide)
        script = f"hostname {self.name}; {hide}exec dockerd " + " ".join(f"'{f}'" for f in flags)
        mount_ns = ["--mount", "--propagation", "private"] if self.hide else []
        self.log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "DOCKER_SERVICE_PREFER_OFFLINE_IMAGE": "1"}
        with open(self.log, "ab") as log:
            subprocess.Popen(["nsenter", f"--net=/run/netns/{self.netns}", "unshare", "--uts", *mount_ns, "sh", "-c",
                              script],
                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                             start_new_session=True)

    def wait_up(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.docker("info", "--format", "{{.ID}}", check=False, timeout=10).returncode == 0:
                    return
            except subprocess.TimeoutExpired:  # a restarted engine first stops what its killed self left
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.name}'s engine did not answer in {timeout} s; see {self.log}")

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 60) -> None:
        """Signal this node's dockerd (by its own pidfile only) and wait until it is gone."""
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)


class NamespaceSwarm:
    """``nodes`` engines joined into one Swarm; node 1 is the manager. ``key`` (1-250) keeps
    two swarms on one machine apart: bridge, namespaces, addresses and directories carry it.
    ``family`` and ``net`` keep two kinds of swarm of one checkout apart (the compose test's
    one node, "fco"/212, runs beside the swarm tests' nodes, "fsw"/213)."""

    def __init__(self, nodes: int = 3, key: int | None = None,
                 generic_resources: Mapping[int, Sequence[str]] | None = None,
                 labels: Mapping[int, Mapping[str, str]] | None = None, family: str = "fsw", net: int = 213) -> None:
        # FLOYD_SWARM_KEY: parallel checkouts on one machine each pick their own
        env_key = os.environ.get("FLOYD_SWARM_KEY")
        self.key = key if key is not None else int(env_key) if env_key else 200 + os.getpid() % 50
        self.prefix = f"{family}{self.key}"
        self.subnet = f"10.{net}.{self.key}"
        # docker0 of node N: 10.214.<key>.<16N+1>/28; its networks: 10.<215+N>.<key>.0/24; overlays: 10.225.<key>.0/24
        self.bip_base = f"10.214.{self.key}"
        self.pool_base = f"10.225.{self.key}"
        self.bridge = f"br-{self.prefix}"
        self.state_dir = Path(f"/tmp/{self.prefix}")
        self.run_dir = Path(f"/run/{self.prefix}")
        self.data_dir = Path(f"/var/lib/{self.prefix}")
        # FLOYD_SWARM_TMPFS=0 keeps the data roots on disk (slow to remove on a disk mounted with discard).
        size = os.environ.get("FLOYD_SWARM_TMPFS", "6g")
        self.tmpfs_size = "" if size == "0" else size
        res = generic_resources or {}
        self.nodes = [Node(i, self, list(res.get(i, []))) for i in range(1, nodes + 1)]
        self.labels = {i: dict(v) for i, v in (labels or {}).items()}
        self.loaded: list[str] = []  # image tars every node has

    @property
    def manager(self) -> Node:
        return self.nodes[0]

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    # -- up --------------------------------------------------------------------------------------
    def up(self, images: Sequence[str] = ()) -> NamespaceSwarm:
        if os.geteuid() != 0:
            raise RuntimeError("a namespace swarm needs root (network namespaces, dockerd)")
        self.down()  # what a killed run left behind
        for d in (self.state_dir, self.run_dir, self.data_dir):
            d.mkdir(parents=True, exist_ok=True)
        if self.tmpfs_size:  # engines' data in memory: removing it is an unmount, not minutes of rm -rf
            run("mount", "-t", "tmpfs", "-o", f"size={self.tmpfs_size},mode=0711", f"{self.prefix}-data",
                str(self.data_dir))
        (self.state_dir / "empty.json").write_text("{}")
        self._network()
        for n in self.nodes:
            n.start()
        for n in self.nodes:
            n.wait_up()
        self._join()
        self.load_images(images)
        return self

    def _network(self) -> None:
        run("ip", "link", "add", self.bridge, "type", "bridge")
        run("ip", "addr", "add", f"{self.subnet}.254/24", "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        # The host's FORWARD policy is DROP (its own dockerd) and br_netfilter is on.
        run("iptables", "-I", "FORWARD", "1", "-i", self.bridge, "-o", self.bridge, "-m", "comment",
            "--comment", COMMENT, "-j", "ACCEPT")
        for n in self.nodes:
            self._node_network(n)

    def _node_network(self, n: Node) -> None:
        veth = f"{self.prefix}-v{n.index}"
        run("ip", "netns", "add", n.netns)
        run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", n.netns)
        run("ip", "link", "set", veth, "master", self.bridge, "up")
        run("ip", "-n", n.netns, "addr", "add", f"{n.address}/24", "dev", "eth0")
        run("ip", "-n", n.netns, "link", "set", "lo", "up")
        run("ip", "-n", n.netns, "link", "set", "eth0", "up")  # no default route, on purpose

    def _join(self) -> None:
        m = self.manager
        m.docker("swarm", "init", "--advertise-addr", m.address, "--listen-addr", f"{m.address}:2377",
                 "--default-addr-pool", f"{self.pool_base}.0/24", "--default-addr-pool-mask-length", "28",
                 "--dispatcher-heartbeat", "1s")
        token = m.docker("swarm", "join-token", "-q", "worker").stdout.strip()
        for n in self.nodes[1:]:
            self.join(n, token)
        self.wait_ready()
        for index, labels in self.labels.items():
            args = [a for k, v in labels.items() for a in ("--label-add", f"{k}={v}")]
            m.docker("node", "update", *args, f"node{index}")

    def join(self, node: Node, token: str = "") -> None:
        token = token or self.manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
        node.docker("swarm", "join", "--advertise-addr", node.address, "--listen-addr", f"{node.address}:2377",
                    "--token", token, f"{self.manager.address}:2377")

    def node_states(self) -> dict[str, str]:
        out = self.manager.docker("node", "ls", "--format", "{{.Hostname}} {{.Status}}", check=False, timeout=20)
        return dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)

    def wait_ready(self, names: Sequence[str] | None = None, state: str = "Ready", timeout: float = 60) -> None:
        names = names or [n.name for n in self.nodes]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = self.node_states()
            if all(states.get(n) == state for n in names):
                return
            time.sleep(0.3)
        raise RuntimeError(f"nodes {names} not {state} in {timeout} s: {self.node_states()}")

    def add_node(self, hide: Sequence[str] = ()) -> Node:
        """A new node joins the running swarm (with the images loaded so far); ``hide``: paths
        its engine does not see, as a machine that lacks the shared mount."""
        node = Node(len(self.nodes) + 1, self, hide=list(hide))
        self.nodes.append(node)
        self._node_network(node)
        node.start()
        node.wait_up()
        for tar in self.loaded:
            node.docker("load", "-q", "-i", tar, timeout=600)
        self.join(node)
        self.wait_ready([node.name])
        return node

    def remove_node(self, node: Node) -> None:
        """The node's engine stopped and the node removed from the swarm (its namespace stays until down)."""
        node.kill(signal.SIGTERM)
        node.kill(signal.SIGKILL)
        self.manager.docker("node", "rm", "--force", node.name, check=False)

    def restart_node(self, node: Node) -> None:
        """Start a killed node's engine again; it rejoins the swarm by itself."""
        node.start()
        node.wait_up()
        self.wait_ready([node.name])

    # -- images ----------------------------------------------------------------------------------
    def load_images(self, images: Sequence[str]) -> None:
        tars = [str(self.image_tar(image)) for image in images]
        self.loaded += tars
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda n: [n.docker("load", "-q", "-i", t, timeout=600) for t in tars], self.nodes))

    @staticmethod
    def image_tar(image: str) -> Path:
        """``docker save`` of ``image`` from the host's engine, once per image id and name (a tar
        holds the names it was saved under: the same id saved as another tag would load as that)."""
        image_id = run("docker", "-H", HOST_ENGINE, "image", "inspect", "--format", "{{.Id}}", image).stdout.strip()
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", image)
        tar = IMAGE_CACHE / f"{image_id.replace(':', '-')}-{name}.tar"
        if not tar.exists():
            IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
            part = tar.with_suffix(f".{os.getpid()}.part")
            run("docker", "-H", HOST_ENGINE, "save", "-o", str(part), image, timeout=600)
            part.rename(tar)
        return tar

    # -- down ------------------------------------------------------------------------------------
    def down(self) -> None:
        """Remove everything ``up`` made (also after a crash): engines, mounts, namespaces,
        cgroups, the bridge and its firewall rule, the directories."""
        def stop(n: Node) -> None:
            ids = n.docker("ps", "-q", check=False, timeout=20).stdout.split() if n.pid() else []
            if ids:
                n.docker("kill", *ids, check=False, timeout=30)
            n.kill(signal.SIGTERM)
            n.kill(signal.SIGKILL)

        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(stop, self.nodes))
        self._unmount()
        for n in self.nodes:
            run("ip", "netns", "del", n.netns, check=False)
            for cg in Path("/sys/fs/cgroup").glob(f"*/{self.prefix}-{n.name}"):
                for d in sorted(cg.rglob("*"), key=lambda p: len(p.parts), reverse=True) + [cg]:
                    if d.is_dir():
                        try:
                            d.rmdir()
                        except OSError:
                            pass
        run("ip", "link", "del", self.bridge, check=False)
        while run("iptables", "-D", "FORWARD", "-i", self.bridge, "-o", self.bridge, "-m", "comment",
                  "--comment", COMMENT, "-j", "ACCEPT", check=False).returncode == 0:
            pass
        for d in (self.data_dir, self.run_dir, self.state_dir):
            shutil.rmtree(d, ignore_errors=True)

    def _unmount(self) -> None:
        ours = (str(self.data_dir), str(self.run_dir))
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for target in sorted((m for m in mounts if m.startswith(ours)), reverse=True):
            run("umount", "-l", target, check=False)

    def dump_logs(self, lines: int = 40) -> str:
        """The tail of every node's dockerd log, for a failing test's report."""
        out = []
        for n in self.nodes:
            text = n.log.read_text(errors="replace").splitlines()[-lines:] if n.log.exists() else []
            out.append(f"--- {n.name} ---\n" + "\n".join(text))
        return "\n".join(out)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)


def main(argv: Sequence[str]) -> int:
    """``up [IMAGE...]`` leaves a 3-node swarm running (key 201); ``down`` removes it."""
    swarm = NamespaceSwarm(3, key=int(os.environ.get("FLOYD_SWARM_KEY", "201")),
                           generic_resources={2: ["NVIDIA-GPU=GPU-uuid1"]}, labels={2: {"gpu": "a100"}})
    if argv[:1] == ["down"]:
        swarm.down()
        return 0
    t0 = time.monotonic()
    swarm.up(list(argv[1:]))
    print(json.dumps({"manager": swarm.manager.url, "nodes": swarm.node_states(),
                      "seconds": round(time.monotonic() - t0, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
