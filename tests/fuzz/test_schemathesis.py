"""Issue 17, point 2: the OpenAPI document and the bridge agree, as schemathesis sees them.

Schemathesis (every check it has: server errors, status codes, content types, headers, response
schemas, negative data refused, positive data accepted, missing auth refused, unsupported
methods, use after free, resource availability…) runs over the whole served document through
the public URL (the proxy), once with an ordinary user's token and once with none, in the bounded
profile of tests/support/fuzz.py: a few examples per operation and a fixed seed, so two runs send
the same requests. ``make fuzz`` runs the long profile.

The fuzzing user is one of its own ("fuzz"), not alice: the run creates projects, datasets and
endpoints with generated names, and later tests count alice's. GPUs its workspace requests
leased are given back after each run.
"""

from __future__ import annotations

import pytest

from tests.support.fuzz import BOUNDED, release_gpus, run_schemathesis
from tests.support.platform import Platform


@pytest.mark.parametrize("with_token", [True, False], ids=["user-token", "no-token"])
def test_schemathesis_finds_nothing(platform: Platform, with_token: bool, tmp_path) -> None:
    fuzz = platform.user("fuzz")
    label = "user token" if with_token else "no token"
    try:
        report = run_schemathesis(platform, fuzz.token if with_token else None, BOUNDED, label, tmp_path)
    finally:
        release_gpus(fuzz)
    print(report.summary())
    assert report.report["operations"]["tested"] == report.report["operations"]["total"], report.summary()
    assert report.clean, f"{report.summary()}\n\n{report.failure_details()}"
