"""What a job's container runs: install floyd_requirements.txt (cached by its hash, so the
next job with the same file installs nothing), then the command or the notebook.

``python -m floyd.container.job_entry --command "python train.py"``
``python -m floyd.container.job_entry --notebook train.ipynb --params-json '{"lr": "0.01"}'``
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path


def say(message: str) -> None:
    print(f"[floyd] {message}", flush=True)


def install_requirements(code: Path, cache_root: Path) -> dict[str, str]:
    """Environment additions that make the cached requirements importable."""
    req = code / "floyd_requirements.txt"
    if not req.is_file():
        return {}
    digest = hashlib.sha256(req.read_bytes()).hexdigest()
    target = cache_root / digest
    if (target / ".floyd-complete").exists():
        say(f"floyd_requirements.txt: already installed (cache {digest[:12]})")
    else:
        say(f"floyd_requirements.txt: installing (cache {digest[:12]})")
        tmp = cache_root / f".{digest}.{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check",
                               "--no-input", "--target", str(tmp), "-r", str(req)])
        if proc.returncode:
            shutil.rmtree(tmp, ignore_errors=True)
            say("installing floyd_requirements.txt failed (see above)")
            sys.exit(proc.returncode)
        (tmp / ".floyd-complete").write_text(digest)
        try:
            os.rename(tmp, target)
        except OSError:  # another job installed the same file meanwhile: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
    path = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": f"{target}{os.pathsep}{path}" if path else str(target),
            "PATH": f"{target / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="floyd.container.job_entry")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--command")
    what.add_argument("--notebook")
    parser.add_argument("--params-json", default="{}")
    args = parser.parse_args(argv)
    code = Path(os.environ.get("FLOYD_CODE", "/floyd/code"))
    cache = Path(os.environ.get("FLOYD_PIP_CACHE", "/floyd/cache/pip"))
    env = dict(os.environ)
    if cache.is_dir():
        env.update(install_requirements(code, cache))
    os.chdir(code)
    sys.stdout.flush()
    if args.command:
        os.execvpe("sh", ["sh", "-c", args.command], env)
    os.execvpe(sys.executable, [sys.executable, "-m", "floyd.container.notebook_runner", args.notebook,
                                "--params-json", args.params_json], env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
