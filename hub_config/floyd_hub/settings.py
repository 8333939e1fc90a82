"""All JupyterHub settings of the platform, driven by FLOYD_* environment variables.

Kept out of jupyterhub_config.py so it can be tested and documented in one place
(docs/admin.md lists the variables).
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any

from floyd_hub.lifeline import wrap
from floyd_hub.proxy import proxy_command
from jobs_bridge.executors.docker import docker_available
from jobs_bridge.storage.paths import StorageLayout

BRIDGE_SCOPES = ["read:users", "list:users", "read:users:name"]


def env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def ensure_token(path: Path) -> str:
    """A service token kept under FLOYD_ROOT (mode 0600), so it survives restarts."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


SPAWNERS = {"docker": "floyd_hub.spawner.WorkspaceSpawner", "local": "floyd_hub.spawner.LocalWorkspaceSpawner",
            "swarm": "floyd_hub.swarm_spawner.SwarmWorkspaceSpawner"}


def choose_spawner(choice: str, runtime: str = "") -> str:
    """'docker', 'local', 'swarm' or 'auto': the swarm spawner when the bridge's runtime
    (FLOYD_JOB_EXECUTOR) is swarm, else Docker when an engine answers, else local processes."""
    if choice not in ("auto", *SPAWNERS):
        raise ValueError(f"FLOYD_SPAWNER={choice!r}: use 'auto', 'docker', 'local' or 'swarm'.")
    if choice == "auto":
        choice = "swarm" if runtime == "swarm" else "docker" if docker_available() else "local"
    return SPAWNERS[choice]


def configure(c: Any) -> None:
    """Every setting, in the order JupyterHub needs them; FLOYD_ROOT/jupyterhub_config_local.py
    runs before the scopes every user needs, which it may not take away."""
    root = Path(env("FLOYD_ROOT", "var")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    hub_port = int(env("FLOYD_HUB_PORT", "8000"))
    bridge_port = int(env("FLOYD_BRIDGE_PORT", "8001"))
    configure_addresses(c, hub_port)
    configure_databases(c, root)
    configure_authenticator(c, root)
    configure_spawner(c, root, hub_port, bridge_port)
    configure_services(c, root, bridge_port)
    configure_roles(c)
    apply_local_overrides(c, root)
    configure_user_scopes(c)


def configure_addresses(c: Any, hub_port: int) -> None:
    """Where the hub, its API and the proxy's API listen."""
    c.JupyterHub.ip = env("FLOYD_HUB_IP", "127.0.0.1")
    c.JupyterHub.port = hub_port
    # docker-compose: the hub API listens on the compose network and workspaces reach it by name.
    c.JupyterHub.hub_ip = env("FLOYD_HUB_API_IP", "127.0.0.1")
    if os.environ.get("FLOYD_HUB_CONNECT_IP"):
        c.JupyterHub.hub_connect_ip = os.environ["FLOYD_HUB_CONNECT_IP"]
    c.JupyterHub.hub_port = int(env("FLOYD_HUB_API_PORT", "8081"))
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{env('FLOYD_PROXY_API_PORT', '8002')}"
    # This runs in the hub's process: the proxy dies with it (JupyterHub's pid file stops a stale one).
    c.ConfigurableHTTPProxy.command = wrap(proxy_command(), os.getpid())


def configure_databases(c: Any, root: Path) -> None:
    """The hub's database and the files it keeps (secrets, pid files) under FLOYD_ROOT."""
    c.JupyterHub.db_url = env("FLOYD_HUB_DB_URL", f"sqlite:///{root / 'jupyterhub.sqlite'}")
    c.JupyterHub.cookie_secret_file = str(root / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(root / "jupyterhub.pid")
    c.ConfigurableHTTPProxy.pid_file = str(root / "jupyterhub-proxy.pid")


def configure_authenticator(c: Any, root: Path) -> None:
    """Sign-up with admin approval; the first admin's password comes from a file."""
    c.JupyterHub.authenticator_class = "floyd_hub.auth.FloydAuthenticator"
    c.Authenticator.admin_users = {env("FLOYD_ADMIN_USER", "admin")}
    c.FloydAuthenticator.admin_password_file = str(root / "admin-password")
    c.FloydAuthenticator.open_signup = False
    # NativeAuthenticator already refuses users an admin has not approved.
    c.Authenticator.allow_all = True
    c.FloydAuthenticator.minimum_password_length = 8


def configure_spawner(c: Any, root: Path, hub_port: int, bridge_port: int) -> None:
    """Workspaces: Docker containers when an engine answers, local processes otherwise."""
    c.JupyterHub.spawner_class = choose_spawner(env("FLOYD_SPAWNER", "auto"), env("FLOYD_JOB_EXECUTOR", ""))
    c.JupyterHub.allow_named_servers = True
    c.JupyterHub.named_server_limit_per_user = int(env("FLOYD_NAMED_SERVER_LIMIT", "5"))
    c.Spawner.default_url = "/lab/tree/code"
    c.Spawner.start_timeout = int(env("FLOYD_SPAWN_TIMEOUT", "120"))
    c.Spawner.http_timeout = int(env("FLOYD_SPAWN_TIMEOUT", "120"))
    c.FloydSpawnerMixin.floyd_root = str(root)
    c.FloydSpawnerMixin.bridge_token_file = str(StorageLayout(root).secret_file("spawner-token"))
    c.FloydSpawnerMixin.floyd_url = env("FLOYD_PUBLIC_URL", f"http://127.0.0.1:{hub_port}/")
    c.FloydSpawnerMixin.bridge_api_url = f"http://127.0.0.1:{bridge_port}/services/floyd/api/v1/"
    # Host networking with a free port per workspace on one machine; a named Docker network
    # (FLOYD_DOCKER_NETWORK) in docker-compose, where the hub reaches workspaces by address.
    c.WorkspaceSpawner.network_name = env("FLOYD_DOCKER_NETWORK", "host")
    # Several machines: workspaces are services created through the manager the bridge uses.
    if os.environ.get("FLOYD_SWARM_MANAGER"):
        c.SwarmWorkspaceSpawner.manager_url = os.environ["FLOYD_SWARM_MANAGER"]


def configure_services(c: Any, root: Path, bridge_port: int) -> None:
    """The bridge (a managed service), the spawner's identity towards it, and the idle culler.

    Both processes die with the hub (this runs in its process) and stop an orphan of theirs
    that a crash left running (floyd_hub.lifeline, pid files under FLOYD_ROOT)."""
    hub = os.getpid()
    environment = {k: v for k, v in os.environ.items() if k.startswith(("FLOYD_", "DOCKER_", "PYTHONMALLOC", "MALLOC_"))}
    environment["FLOYD_ROOT"] = str(root)
    # glibc's allocator rather than pymalloc: after a 100,000-file upload the bridge's malloc_trim
    # hands the freed heap back (+6 MiB where pymalloc's scattered arenas kept +32; docs/architecture.md).
    # An admin's own PYTHONMALLOC (in the hub's environment) wins.
    environment.setdefault("PYTHONMALLOC", "malloc")
    # Two glibc arenas, not eight a core: the bridge's thread pools each took an arena of their own,
    # and a 100,000-file upload left +38–57 MiB scattered over them in one run of three (+10–12
    # with two arenas, each run). An admin's own MALLOC_ARENA_MAX wins.
    environment.setdefault("MALLOC_ARENA_MAX", "2")
    c.JupyterHub.services = [
        {
            "name": "floyd",
            "url": f"http://127.0.0.1:{bridge_port}",
            "command": wrap([sys.executable, "-m", "jobs_bridge"], hub, root / "jupyterhub-service-floyd.pid"),
            "environment": environment,
            "cwd": str(root),
            "oauth_no_confirm": True,
            "display": True,
            "info": {"description": "Projects, datasets, jobs and endpoints"},
        },
        # The spawner's own identity towards the bridge (it never opens the bridge's database).
        {"name": "floyd-spawner", "api_token": ensure_token(StorageLayout(root).secret_file("spawner-token"))},
        # Stops idle workspaces (and so frees their GPUs); never touches jobs.
        {"name": "idle-culler", "command": wrap([
            sys.executable, "-m", "jupyterhub_idle_culler",
            f"--timeout={int(env('FLOYD_CULL_TIMEOUT', '3600'))}",
            f"--cull-every={int(env('FLOYD_CULL_EVERY', '300'))}",
        ], hub, root / "jupyterhub-service-idle-culler.pid")},
    ]
    # Restart the bridge within seconds if it dies (JupyterHub's default poll is 30 s).
    c["_ServiceSpawner"] = {"poll_interval": int(env("FLOYD_SERVICE_POLL_SECONDS", "3"))}


def configure_roles(c: Any) -> None:
    """The least each service needs from the hub."""
    c.JupyterHub.load_roles = [
        {"name": "floyd-bridge", "scopes": BRIDGE_SCOPES, "services": ["floyd"]},
        {"name": "floyd-spawner", "scopes": ["access:services!service=floyd"], "services": ["floyd-spawner"]},
        {"name": "idle-culler", "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
         "services": ["idle-culler"]},
    ]


def apply_local_overrides(c: Any, root: Path) -> None:
    """Site overrides that survive upgrades of this repository: FLOYD_ROOT/jupyterhub_config_local.py."""
    local = root / "jupyterhub_config_local.py"
    if local.exists():
        exec(compile(local.read_text(), str(local), "exec"), {"c": c})


def configure_user_scopes(c: Any) -> None:
    """Every user (and the tokens of their workspaces) may call the bridge."""
    c.JupyterHub.extra_user_scopes = {"access:services!service=floyd"}
    c.Spawner.server_token_scopes = [
        "users:activity!user",
        "access:servers!server",
        "access:services!service=floyd",
    ]
