"""The real ``floyd`` command against the real platform."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.platform import VENV_BIN, Platform, User, as_json, write_tree


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout


def test_login_with_password_stores_token_0600(platform: Platform, tmp_path: Path) -> None:
    password = (platform.root / "admin-password").read_text().strip()
    cfg = tmp_path / "cfg"
    env = {"FLOYD_CONFIG_DIR": str(cfg)}
    proc = platform.cli(None, "login", platform.url, "-u", "admin", "--password-stdin", input=password + "\n", env=env)
    assert "Logged in" in proc.stdout and "admin" in proc.stdout
    config = cfg / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert json.loads(config.read_text())["username"] == "admin"
    who = platform.cli(None, "whoami", "--json", env=env)
    assert as_json(who)["name"] == "admin" and as_json(who)["admin"] is True


def test_login_errors_are_one_line(platform: Platform, tmp_path: Path) -> None:
    env = {"FLOYD_CONFIG_DIR": str(tmp_path / "cfg")}
    bad = platform.cli(None, "login", platform.url, "-u", "admin", "--password-stdin", input="wrong\n",
                       env=env, check=False)
    assert bad.returncode != 0 and "Wrong user name or password" in bad.stderr
    no_traceback(bad)
    nobody = platform.cli(None, "data", "list", env=env, check=False)
    assert nobody.returncode == 3 and "floyd login" in nobody.stderr
    unreachable = platform.cli(None, "login", "http://127.0.0.1:9", "--token", "x", env=env, check=False)
    assert unreachable.returncode == 3 and "Cannot reach" in unreachable.stderr
    no_traceback(unreachable)


def test_projects(alice: User) -> None:
    alice.cli("project", "create", "mnist-cnn", "-d", "digits")
    listed = as_json(alice.cli("project", "list", "--json"))
    assert "alice/mnist-cnn" in [p["full_name"] for p in listed]
    assert (alice.platform.root / "projects" / "alice" / "mnist-cnn").is_dir()
    dup = alice.cli("project", "create", "mnist-cnn", check=False)
    assert dup.returncode == 4 and "already have a project" in dup.stderr
    bad = alice.cli("project", "create", "Bad Name", check=False)
    assert bad.returncode == 4 and "Invalid project name" in bad.stderr
    alice.cli("project", "delete", "mnist-cnn", "--yes")
    assert not (alice.platform.root / "projects" / "alice" / "mnist-cnn").exists()


def test_data_lifecycle_with_short_names(alice: User, bob: User, tmp_path: Path) -> None:
    work = write_tree(tmp_path / "digits", {"train/0.png": b"zero", "train/1.png": b"one", "labels.csv": b"0,1\n"})
    alice.cli("data", "init", "digits", cwd=work)
    assert json.loads((work / ".floyddata").read_text()) == {"dataset": "alice/digits"}
    first = as_json(alice.cli("data", "upload", "-m", "first", "--json", cwd=work))
    assert first["ref"] == "alice/digits:1" and first["file_count"] == 3  # .floyddata is not uploaded
    same = alice.cli("data", "upload", cwd=work)
    assert "Unchanged" in same.stdout and "alice/digits:1" in same.stdout
    (work / "train" / "2.png").write_bytes(b"two")
    second = alice.cli("data", "upload", "-m", "second", cwd=work)
    assert "alice/digits:2" in second.stdout

    versions = as_json(alice.cli("data", "versions", "digits", "--json"))
    assert [(v["number"], v["message"]) for v in versions] == [(1, "first"), (2, "second")]
    table = alice.cli("data", "versions", "digits").stdout
    assert "alice/digits:2" in table and "second" in table

    ls = as_json(alice.cli("data", "ls", "digits:2", "train", "--json"))
    assert [f["path"] for f in ls["files"]] == ["train/0.png", "train/1.png", "train/2.png"]
    ls_full = as_json(alice.cli("data", "ls", "alice/digits:1", "--json"))
    assert {f["path"] for f in ls_full["files"]} == {"labels.csv", "train"}

    out = tmp_path / "out"
    out.mkdir()
    alice.cli("data", "get", "digits:2/train/2.png", "-o", str(out))
    assert (out / "2.png").read_bytes() == b"two"
    alice.cli("data", "get", "digits:1/train", "-o", str(out / "dir"))
    assert sorted(p.name for p in (out / "dir" / "train").iterdir()) == ["0.png", "1.png"]
    alice.cli("data", "get", "digits:2", "-o", str(out / "all"))
    assert (out / "all" / "digits-2" / "labels.csv").read_bytes() == b"0,1\n"

    diff = as_json(alice.cli("data", "diff", "digits:1", "digits:2", "--json"))
    assert diff["added"] == ["train/2.png"] and diff["removed"] == [] and diff["changed"] == []
    assert "+ train/2.png" in alice.cli("data", "diff", "digits:1", "digits:2").stdout

    listed = as_json(alice.cli("data", "list", "--json"))
    assert "alice/digits" in [d["full_name"] for d in listed]

    # bob cannot see it until alice shares it; then alice/digits:2 works for him.
    hidden = bob.cli("data", "ls", "alice/digits:2", check=False)
    assert hidden.returncode == 4 and "not found" in hidden.stderr
    alice.cli("data", "share", "digits", "--public")
    assert as_json(bob.cli("data", "ls", "alice/digits:2", "--json"))["version"]["ref"] == "alice/digits:2"

    alice.cli("data", "delete", "digits:1", "--yes")
    assert [v["number"] for v in as_json(alice.cli("data", "versions", "digits", "--json"))] == [2]


def test_cli_errors_are_actionable(alice: User, tmp_path: Path) -> None:
    cases = [
        (("data", "ls", "nope:1"), "Dataset alice/nope not found"),
        (("data", "get", "Bad..Ref"), "Cannot read dataset reference"),
        (("data", "delete", "nope", "--yes"), "Say which version"),
        (("data", "upload", str(tmp_path)), "floyd data init"),
        (("data", "diff", "a:1", "b:2"), "same dataset"),
    ]
    for args, words in cases:
        proc = alice.cli(*args, check=False)
        assert proc.returncode != 0, args
        assert words in proc.stderr, (args, proc.stderr)
        no_traceback(proc)


def _settled_part_size(uploads: Path) -> int:
    """The part file's size once the bridge has written what reached it before the cut (the
    last gathered chunk may still be on its way to the disk when the client has exited)."""
    size, since = -1, time.monotonic()
    while time.monotonic() - since < 0.5:
        now = max(p.stat().st_size for p in uploads.glob("*/*.part"))
        if now != size:
            size, since = now, time.monotonic()
        time.sleep(0.05)
    return size


def test_upload_interrupted_then_resumed(alice: User, tmp_path: Path) -> None:
    platform = alice.platform
    work = tmp_path / "huge"
    work.mkdir()
    with open(work / "big.bin", "wb") as f:
        for _ in range(96):
            f.write(os.urandom(4 << 20))
    alice.cli("data", "init", "huge", cwd=work)
    home = platform.workdir / "home" / "alice"
    env = {k: v for k, v in platform.env.items() if not k.startswith(("FLOYD_", "JUPYTERHUB_"))}
    env.update({"FLOYD_CONFIG_DIR": str(home / "config"), "FLOYD_CACHE_DIR": str(home / "cache"),
                "FLOYD_URL": platform.url, "FLOYD_TOKEN": alice.token})
    proc = subprocess.Popen([str(VENV_BIN / "floyd"), "data", "upload"], cwd=work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    uploads = platform.root / "tmp" / "uploads"
    deadline = time.monotonic() + 60
    interrupted = False
    while time.monotonic() < deadline and proc.poll() is None:
        parts = list(uploads.glob("*/*.part"))
        if parts and parts[0].stat().st_size > (16 << 20):
            proc.send_signal(signal.SIGINT)
            interrupted = True
            break
        time.sleep(0.005)
    out, err = proc.communicate(60)
    if not interrupted:
        pytest.fail(f"upload finished before it could be interrupted: {out} {err}")
    assert proc.returncode == 130 and "run the same command again" in err.lower()
    assert "Traceback" not in err
    held = _settled_part_size(uploads)
    resumed = alice.cli("data", "upload", "--json", cwd=work)
    result = as_json(resumed)
    assert result["ref"] == "alice/huge:1"
    assert result["sent_bytes"] == (96 << 22) - held  # only the rest travelled
