"""Shared test fixtures: paths to the repository, shipped samples and shared real data."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "samples"
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """data/samples: the shipped quickstart slices."""
    return SAMPLES


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data: the real tables (present in CI and development)."""
    if not SHARED_DATA.exists():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA
