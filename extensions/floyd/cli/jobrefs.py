"""Job names on the command line: ``N`` (a job of the project linked here), ``PROJECT/N`` (yours)
or ``OWNER/PROJECT/N``, and the project a directory is linked to (``.floydexpt``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from floyd.cli.context import Session
from floyd.client.errors import FloydClientError
from floyd.client.project_config import find_project_dir

JOB_HELP = "JOB is N (a job of the project linked here), PROJECT/N (yours) or OWNER/PROJECT/N."


@dataclass(frozen=True)
class JobRef:
    owner: str
    project: str
    number: int

    def __str__(self) -> str:
        return f"{self.owner}/{self.project}/{self.number}"

    @property
    def args(self) -> tuple[str, str, int]:
        return self.owner, self.project, self.number


def split_job_ref(text: str) -> tuple[str | None, str | None, int]:
    """``12``, ``mnist-cnn/12``, ``alice/mnist-cnn/12`` (also ``…/output`` and FloydHub's
    ``alice/projects/mnist-cnn/12``) → (owner or None, project or None, number)."""
    parts = [p for p in text.strip().strip("/").split("/") if p]
    if parts and parts[-1] == "output":
        parts.pop()
    if len(parts) == 4 and parts[1] == "projects":
        del parts[1]
    if not 1 <= len(parts) <= 3 or not parts[-1].isdigit() or any(not p for p in parts):
        raise FloydClientError(f"Cannot read job name {text!r}: use N, PROJECT/N or OWNER/PROJECT/N "
                               "(e.g. 12, mnist-cnn/12, alice/mnist-cnn/12).")
    number = int(parts[-1])
    if len(parts) == 3:
        return parts[0], parts[1], number
    if len(parts) == 2:
        return None, parts[0], number
    return None, None, number


def linked_project() -> tuple[Path, str] | None:
    return find_project_dir(Path.cwd())


def resolve_job(s: Session, text: str) -> JobRef:
    owner, project, number = split_job_ref(text)
    if project is None:
        linked = linked_project()
        if linked is None:
            raise FloydClientError(f"{text!r} is short for a job of the project linked to this directory, but there is "
                                   "none: run `floyd init PROJECT` first, or say PROJECT/N.")
        owner, project = linked[1].split("/", 1)
    return JobRef(owner or s.me, project, number)
