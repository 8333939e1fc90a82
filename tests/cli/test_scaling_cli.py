"""``floyd deploy --min/--max-replicas``, ``floyd endpoint scale | traffic | promote | rollback |
limits``: the real ``floyd`` command against the real platform, replicas in real containers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.platform import Platform, User, as_json, write_tree

pytestmark = pytest.mark.usefixtures("workspace_image")

APP = b'''import os
from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/hello")
def hello():
    return jsonify(version=os.environ.get("FLOYD_ENDPOINT_VERSION"), text=open("note.txt").read())
'''


@pytest.fixture
def dora(platform: Platform) -> User:
    return platform.user("dora-cli")


def test_scale_traffic_promote_rollback_and_limits(dora: User, tmp_path: Path) -> None:
    root = write_tree(tmp_path / "scaled-code", {"app.py": APP, "note.txt": b"one"})
    dora.cli("init", "scaled-code", cwd=root)
    out = dora.cli("deploy", "scaled", "--min-replicas", "1", "--max-replicas", "2", "--target-in-flight", "3",
                   cwd=root)
    assert "Ready" in out.stdout, out.stdout
    ep = as_json(dora.cli("endpoint", "scale", "scaled", "--max-replicas", "3", "--down-window", "5", "--json"))
    assert ep["autoscaling"]["max_replicas"] == 3 and ep["autoscaling"]["target_in_flight"] == 3
    assert "1–3 replicas at 3 request(s) in flight" in dora.cli("endpoint", "scale", "scaled").stdout

    assert "v1=100%" in dora.cli("endpoint", "traffic", "scaled", "v1=100").stdout
    (root / "note.txt").write_bytes(b"two")
    dora.cli("deploy", "scaled", cwd=root)
    ep = as_json(dora.cli("endpoint", "traffic", "scaled", "v2=10", "v1=90", "--auto-rollback", "20", "--json"))
    assert ep["traffic"] == {"2": 10, "1": 90} and ep["rollback_error_rate"] == 0.2
    status = dora.cli("endpoint", "status", "scaled").stdout
    assert "Traffic split: v2=10% v1=90%" in status and "Autoscaling: 1–3 replicas" in status, status
    bad = dora.cli("endpoint", "traffic", "scaled", "v2=10", "v7=90", check=False)
    assert bad.returncode == 4 and "has no version 7" in bad.stderr and "Traceback" not in bad.stderr
    bad = dora.cli("endpoint", "traffic", "scaled", "banana", check=False)
    assert bad.returncode != 0 and "VERSION=PERCENT" in bad.stderr

    rolled = dora.cli("endpoint", "rollback", "scaled")
    assert "none (the newest ready version takes it all)" in rolled.stdout
    none_left = dora.cli("endpoint", "rollback", "scaled", check=False)
    assert none_left.returncode == 4 and "no traffic split" in none_left.stderr
    assert "takes all traffic" in dora.cli("endpoint", "promote", "scaled", "v1").stdout

    ep = as_json(dora.cli("endpoint", "limits", "scaled", "--max-body", "1000", "--timeout", "5", "--rate", "10",
                          "--json"))
    assert ep["limits"] == {"max_body_bytes": 1000, "request_timeout": 5, "rate_limit": 10}
    ep = as_json(dora.cli("endpoint", "limits", "scaled", "--reset", "--json"))
    assert ep["limits"] == {"max_body_bytes": None, "request_timeout": None, "rate_limit": None}
    assert "autoscaling off" in dora.cli("endpoint", "scale", "scaled", "--off").stdout
