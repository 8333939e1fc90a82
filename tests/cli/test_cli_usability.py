"""The ``floyd`` command's start-up and its errors: the real CLI against the real platform.

Start-up is checked by what it imports (``PYTHONPROFILEIMPORTTIME``), never by a timing: a short
command must not load requests, rich or yaml, which cost more than everything else it does.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

from floyd.cli.jobs import JOB_COLUMNS
from floyd.cli.tables import render
from tests.support.platform import User, as_json, write_tree

HEAVY = ("requests", "urllib3", "rich", "yaml")


def imported(proc: subprocess.CompletedProcess[str]) -> set[str]:
    """The top-level packages a run imported, from its ``-X importtime`` lines on stderr."""
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def modules(proc: subprocess.CompletedProcess[str]) -> set[str]:
    """Every module a run imported (full dotted names), from its ``-X importtime`` lines."""
    return {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_version_and_status_start_without_heavy_imports(alice: User, tmp_path: Path) -> None:
    env = {"PYTHONPROFILEIMPORTTIME": "1"}
    version = alice.cli("--version", env=env)
    assert "floyd" in version.stdout
    status = alice.cli("status", cwd=tmp_path, env=env)
    assert "No jobs in your projects yet" in status.stdout
    for proc in (version, status):
        assert imported(proc), "no import lines: PYTHONPROFILEIMPORTTIME had no effect"
        assert not imported(proc) & set(HEAVY), imported(proc) & set(HEAVY)
    assert "floyd" in imported(status)  # the command ran: its modules show up


def test_an_unchanged_tree_uploads_again_without_the_upload_machinery(alice: User, tmp_path: Path) -> None:
    """An unchanged tree's answer is its scan and one request: neither requests, rich, nor the
    hashing and sending modules are imported (they were 0.1 s of a 0.36 s answer for 100,000 files)."""
    work = write_tree(tmp_path / "same", {f"d{i}/f{j}.txt": f"{i}-{j}".encode() for i in range(3) for j in range(4)})
    first = as_json(alice.cli("data", "upload", str(work), "-n", "same-tree", "--create", "--json"))
    env = {"PYTHONPROFILEIMPORTTIME": "1"}
    again = alice.cli("data", "upload", str(work), "-n", "same-tree", "--json", env=env)
    said = json.loads(again.stdout)
    assert said["duplicate"] is True and said["id"] == first["id"] and said["sent_files"] == 0
    loaded = modules(again)
    assert "floyd.client.treescan" in loaded, "no import lines: PYTHONPROFILEIMPORTTIME had no effect"
    assert not imported(again) & set(HEAVY), imported(again) & set(HEAVY)
    assert not loaded & {"floyd.client.transfer", "floyd.client.hashing", "floyd.client.spool"}
    worded = alice.cli("data", "upload", str(work), "-n", "same-tree")
    assert "Unchanged: these files are already alice/same-tree:1" in worded.stdout
    (work / "d1" / "f2.txt").write_bytes(b"changed")  # and a change still goes the whole way
    changed = as_json(alice.cli("data", "upload", str(work), "-n", "same-tree", "--json"))
    assert changed["ref"] == "alice/same-tree:2" and changed["sent_files"] == 1


def test_piped_tables_print_whole_names(alice: User, tmp_path: Path) -> None:
    name = "a-dataset-name-long-enough-to-be-cut-in-a-narrow-table"
    work = write_tree(tmp_path / "d", {"x.txt": b"x"})
    alice.cli("data", "init", name, cwd=work)
    alice.cli("data", "upload", "-m", "a message " * 8, cwd=work)
    narrow = {"COLUMNS": "40"}
    listed = alice.cli("data", "list", env=narrow).stdout
    assert f"alice/{name}" in listed and f"alice/{name}:1" in listed and "…" not in listed
    versions = alice.cli("data", "versions", name, env=narrow).stdout
    assert f"alice/{name}:1" in versions and ("a message " * 8).strip() in versions


def test_terminal_tables_shorten_only_free_text() -> None:
    job = "alice/a-project-with-a-long-name/12"
    row = [job, "2026-01-01 00:00:00", "succeeded", "1.0 s", "cpu", "1 CPU · 2.0 GiB", "m" * 60, "loss=0.1"]
    lines = render(JOB_COLUMNS, [row], limit=120)
    assert max(len(line) for line in lines) <= 120
    assert lines[1].startswith(job + " ") and "2026-01-01 00:00:00" in lines[1] and "…" in lines[1]
    whole = render(JOB_COLUMNS, [row], limit=None)
    assert "m" * 60 in whole[1]


def test_upload_to_a_missing_dataset_says_how_to_create_it(alice: User, tmp_path: Path) -> None:
    work = write_tree(tmp_path / "new", {"a.txt": b"a"})
    refused = alice.cli("data", "upload", str(work), "-n", "never-made", check=False)
    line = one_error_line(refused)
    assert "floyd data init never-made" in line and "--create" in line
    assert alice.api("GET", "datasets/alice/never-made").status_code == 404
    made = as_json(alice.cli("data", "upload", str(work), "-n", "never-made", "--create", "--json"))
    assert made["ref"] == "alice/never-made:1"


def test_unquoted_run_command_says_to_quote_it(alice: User, tmp_path: Path) -> None:
    root = write_tree(tmp_path / "proj", {"train.py": b"print(1)\n"})
    alice.cli("init", "quoting", cwd=root)
    proc = alice.cli("run", "python", "train.py", "--epochs", "3", cwd=root, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "No such option" not in proc.stderr
    assert '"python train.py --epochs 3"' in proc.stderr and "-- python train.py --epochs 3" in proc.stderr
    typo = alice.cli("run", "--gpuu", cwd=root, check=False)
    assert "No such option" in typo.stderr  # floyd's own options keep click's message


def test_deploy_with_a_missing_entry_stores_nothing(alice: User, tmp_path: Path) -> None:
    root = write_tree(tmp_path / "svc", {"app.py": b"app = None\n"})
    alice.cli("init", "no-entry", cwd=root)
    proc = alice.cli("deploy", "no-entry-ep", "--entry", "missing.py", cwd=root, check=False)
    assert "missing.py" in one_error_line(proc)
    assert "Created endpoint" not in proc.stdout + proc.stderr
    assert alice.api("GET", "endpoints/alice/no-entry-ep").status_code == 404
    assert not (alice.platform.root / "snapshots" / "alice" / "no-entry").exists()


def test_downloads_keep_the_uploaded_modification_times(alice: User, tmp_path: Path) -> None:
    work = write_tree(tmp_path / "times", {"a.txt": b"a", "sub/b.txt": b"b"})
    os.utime(work / "a.txt", (1_600_000_000, 1_600_000_000))
    os.utime(work / "sub" / "b.txt", (1_500_000_000.5, 1_500_000_000.5))
    alice.cli("data", "init", "times", cwd=work)
    v = as_json(alice.cli("data", "upload", "--json", cwd=work))
    canonical = [{"hash": "sha256:" + hashlib.sha256(data).hexdigest(), "path": p, "size": len(data)}
                 for p, data in (("a.txt", b"a"), ("sub/b.txt", b"b"))]
    assert v["id"] == "sha256:" + hashlib.sha256(
        json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    out = tmp_path / "out"
    out.mkdir()
    alice.cli("data", "get", "times:1/a.txt", "-o", str(out))
    alice.cli("data", "get", "times:1", "-o", str(out / "all"))
    assert (out / "a.txt").stat().st_mtime == 1_600_000_000
    assert (out / "all" / "times-1" / "a.txt").stat().st_mtime == 1_600_000_000
    assert int((out / "all" / "times-1" / "sub" / "b.txt").stat().st_mtime) == 1_500_000_000
    os.utime(work / "a.txt")  # a new time alone is not a new version
    again = as_json(alice.cli("data", "upload", "--json", cwd=work))
    assert again["duplicate"] is True and again["id"] == v["id"]
