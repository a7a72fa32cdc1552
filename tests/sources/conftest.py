"""Fixtures for crawler tests: a real HTTP fixture server on 127.0.0.1 and a fresh store."""

from __future__ import annotations

import pytest

from matlib.store import Store
from tests.fixtures.http_server import FixtureServer


@pytest.fixture
def server():
    """A running fixture server (MP, OQMD, OPTIMADE, QM9 tarball)."""
    with FixtureServer() as srv:
        yield srv


@pytest.fixture
def store(tmp_path) -> Store:
    """An empty store."""
    return Store(tmp_path / "store")
