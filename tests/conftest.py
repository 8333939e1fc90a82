"""Shared fixtures: one real platform per test session (SQLite), users, and log dumps on failure."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import browser, page  # noqa: F401  (fixtures for every test)
from tests.support.docker import docker_client, workspace_image  # noqa: F401  (fixtures for every test)
from tests.support.platform import TEST_BRIDGE_CONFIG, Platform
from tests.support.postgres import PostgresServer


@pytest.fixture(scope="session")
def sqlite_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The embedded default: SQLite under a temporary FLOYD_ROOT."""
    p = Platform.create(tmp_path_factory.mktemp("platform"), bridge_config=TEST_BRIDGE_CONFIG)
    p.start()
    yield p
    p.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_platform(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer) -> Iterator[Platform]:
    """The same platform with the bridge's database on a real PostgreSQL server."""
    p = Platform.create(tmp_path_factory.mktemp("pg-platform"), {"FLOYD_DB_URL": postgres.url})
    p.start()
    yield p
    p.stop()


@pytest.fixture(scope="session")
def platform(sqlite_platform: Platform) -> Platform:
    return sqlite_platform


@pytest.fixture
def alice(platform: Platform):
    return platform.user("alice")


@pytest.fixture
def bob(platform: Platform):
    return platform.user("bob")


@pytest.fixture
def admin(platform: Platform):
    return platform.admin


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    d = tmp_path / "tree"
    d.mkdir()
    return d


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for name in ("platform", "sqlite_platform", "pg_platform"):
            p = item.funcargs.get(name) if hasattr(item, "funcargs") else None
            if isinstance(p, Platform):
                report.sections.append((f"{name} log (tail)", p.log_tail(120)))
