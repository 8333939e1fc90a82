"""Short references as FloydHub had them: ``mnist``, ``mnist:3``, ``alice/mnist:3/train``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from floyd.client.errors import FloydClientError

REF_RE = re.compile(
    r"^(?:(?P<owner>[A-Za-z0-9][A-Za-z0-9._@+-]*)/)?(?P<name>[a-z0-9][a-z0-9._-]*)"
    r"(?::(?P<version>\d+|latest)(?:/(?P<path>.*))?)?$"
)


@dataclass(frozen=True)
class DataRef:
    owner: str
    name: str
    version: str | None = None
    path: str = ""

    def __str__(self) -> str:
        text = f"{self.owner}/{self.name}"
        if self.version:
            text += f":{self.version}"
        if self.path:
            text += f"/{self.path}"
        return text


def parse_data_ref(text: str, me: str) -> DataRef:
    match = REF_RE.match(text.strip())
    if not match:
        raise FloydClientError(
            f"Cannot read dataset reference {text!r}: use NAME, NAME:VERSION, OWNER/NAME:VERSION "
            "or NAME:VERSION/PATH (e.g. mnist:3/train)."
        )
    owner = match.group("owner") or me
    if not owner:
        raise FloydClientError(f"Say whose dataset {text!r} is (OWNER/NAME), or run `floyd login` first.")
    return DataRef(owner, match.group("name"), match.group("version"), (match.group("path") or "").strip("/"))
