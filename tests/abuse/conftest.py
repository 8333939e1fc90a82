"""One platform for the abuse tests, with small limits so each is reached in a few requests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.platform import Platform

# Failed sign-ins: 3 per address or user, then 30 s (doubling, at most 120 s). Open sign-up, so
# a test makes its own users with passwords without an admin's approval.
HUB_CONFIG = """
c.FloydAuthenticator.open_signup = True
c.LoginBackoff.max_failures = 3
c.LoginBackoff.base_delay = 30
c.LoginBackoff.max_delay = 120
c.LoginBackoff.window = 600
"""

BRIDGE_CONFIG = """
c.KeyBackoff.max_failures = 3
c.KeyBackoff.base_delay = 30
c.KeyBackoff.max_delay = 120
c.EndpointKeyBackoff.max_failures = 5
c.BridgeApp.max_json_bytes = 64 * 1024
c.UploadManager.max_request_bytes = 256 * 1024
c.UploadManager.max_files_per_version = 10
c.RequestLimits.max_query_bytes = 1024
c.RequestLimits.max_followers_per_user = 2
c.RequestLimits.max_followers = 3
"""


@pytest.fixture(scope="session")
def abuse_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    p = Platform.create(tmp_path_factory.mktemp("abuse"), {"FLOYD_JOB_EXECUTOR": "local", "FLOYD_SPAWNER": "local"},
                        bridge_config=BRIDGE_CONFIG, hub_config=HUB_CONFIG)
    p.start()
    yield p
    p.stop()


@pytest.fixture
def platform(abuse_platform: Platform) -> Platform:
    """Overrides the session's shared platform here: these tests lock addresses and users out."""
    return abuse_platform
