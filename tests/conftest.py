"""Shared test fixtures: paths to the repository, shipped samples and the real test-data slices."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures import TEST_DATA

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "samples"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """data/samples: the shipped quickstart slices."""
    return SAMPLES


@pytest.fixture(scope="session")
def real_data() -> Path:
    """tests/fixtures/data: small real slices of the public tables, shipped in the repository."""
    return TEST_DATA
