"""Where the client finds the platform URL and a token.

Order: ``FLOYD_URL``/``FLOYD_TOKEN``; inside a workspace ``JUPYTERHUB_API_TOKEN`` with
``FLOYD_URL`` set by the spawner; else ``~/.config/floyd/config.json`` written by ``floyd login``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class ClientConfig:
    url: str = ""
    token: str = ""
    username: str = ""
    source: str = "none"

    @property
    def api(self) -> str:
        return self.url.rstrip("/") + "/services/floyd/api/v1/"


def config_dir() -> Path:
    if os.environ.get("FLOYD_CONFIG_DIR"):
        return Path(os.environ["FLOYD_CONFIG_DIR"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "floyd"


def cache_dir() -> Path:
    if os.environ.get("FLOYD_CACHE_DIR"):
        return Path(os.environ["FLOYD_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "floyd"


def load_config() -> ClientConfig:
    stored = ClientConfig()
    path = config_dir() / "config.json"
    if path.exists():
        try:
            data = json.loads(path.read_text())
            stored = ClientConfig(url=data.get("url", ""), token=data.get("token", ""),
                                  username=data.get("username", ""), source=str(path))
        except (OSError, ValueError):
            pass
    url = os.environ.get("FLOYD_URL") or stored.url
    token = os.environ.get("FLOYD_TOKEN") or ""
    source = "FLOYD_TOKEN" if token else stored.source
    if not token and os.environ.get("JUPYTERHUB_API_TOKEN") and os.environ.get("FLOYD_URL"):
        token, source = os.environ["JUPYTERHUB_API_TOKEN"], "workspace"
    token = token or stored.token
    username = stored.username if token == stored.token else os.environ.get("JUPYTERHUB_USER", "")
    return ClientConfig(url=url, token=token, username=username, source=source)


def save_config(cfg: ClientConfig) -> Path:
    directory = config_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.json"
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    data = asdict(cfg)
    data.pop("source", None)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)
    return path
