"""Fixtures of the storage tests: the bridge's schema in a private in-memory SQLite database."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from jobs_bridge.orm import Base


@pytest.fixture
def session() -> Session:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    return Session(engine)
