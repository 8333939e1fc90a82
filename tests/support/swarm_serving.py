"""Endpoints on the namespace swarm: a small image that can run a replica, and a node "lost" whole.

A replica runs ``python -m floyd.container.serving``, which needs the floyd package and uvicorn.
floyd/cpu has them but weighs about 1 GB per node engine; this image is floyd/base (191 MB,
already on the nodes) plus those pure-Python packages copied from this checkout's virtualenv,
built on the host's engine with no network and loaded into the nodes like any other image.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from tests.support.platform import REPO
from tests.support.serving import ASGI_LIFESPAN
from tests.support.swarm import HOST_ENGINE, Node, run

BASE = os.environ.get("FLOYD_SWARM_TEST_IMAGE", "floyd/base:bookworm")
SERVE_IMAGE = os.environ.get("FLOYD_SWARM_SERVE_IMAGE", f"floyd/swarm-serve:{os.environ.get('FLOYD_SWARM_KEY', 'x')}")
PACKAGES = ("uvicorn", "h11", "click")  # what floyd.container.serving imports beyond the standard library
SITE = "/usr/local/lib/python3.11/dist-packages"

DOCKERFILE = f"""FROM {BASE}
COPY site/ {SITE}/
RUN ln -sf python3 /usr/bin/python && python -c "import floyd.container.serving, uvicorn"
LABEL org.floyd.packages="uvicorn,h11,click,floyd"
"""

# An ASGI app that says which version and node answered (no framework to import).
WHO_APP = b'''import os, socket
VERSION = open(os.path.join(os.path.dirname(__file__), "version.txt")).read().strip()
async def app(scope, receive, send):
''' + ASGI_LIFESPAN + b'''    body = f"{VERSION} {socket.gethostname()}".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
'''


def who_files(version: str) -> dict[str, bytes]:
    """An endpoint's code: ``GET /`` answers "<version> <node hostname>"."""
    return {"app.py": WHO_APP, "version.txt": f"{version}\n".encode()}


def build_serve_image() -> str:
    """Build SERVE_IMAGE on the host's engine (layers cached: quick when nothing changed)."""
    import uvicorn  # the virtualenv's copies are what goes into the image

    site = Path(uvicorn.__file__).parent.parent
    with tempfile.TemporaryDirectory(prefix="floyd-swarm-serve-") as tmp:
        ctx = Path(tmp)
        (ctx / "Dockerfile").write_text(DOCKERFILE)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules", "labextension", "static")
        shutil.copytree(REPO / "extensions" / "floyd", ctx / "site" / "floyd", ignore=ignore)
        for name in PACKAGES:
            shutil.copytree(site / name, ctx / "site" / name, ignore=ignore)
        run("docker", "-H", HOST_ENGINE, "build", "-q", "-t", SERVE_IMAGE, str(ctx), timeout=600)
    return SERVE_IMAGE


def lose_node(node: Node) -> None:
    """The node as a machine that died: its engine killed and every process of its containers
    (they would otherwise go on answering, as containers outlive a killed dockerd)."""
    node.kill(signal.SIGKILL)
    group = f"{node.swarm.prefix}-{node.name}"  # dockerd's --cgroup-parent (cgroup v1: under each controller)
    for procs in [*Path("/sys/fs/cgroup").glob(f"*/{group}/**/cgroup.procs"),
                  *Path("/sys/fs/cgroup").glob(f"{group}/**/cgroup.procs")]:
        for pid in procs.read_text().split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass


if __name__ == "__main__":
    print(build_serve_image(), file=sys.stdout)
