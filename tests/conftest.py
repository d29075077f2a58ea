"""Shared test set-up: UTC, no GX analytics, paths to the sample data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["TZ"] = "UTC"
os.environ["GX_ANALYTICS_ENABLED"] = "False"

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DATA = ROOT / "sample_data"
SAMPLE_CONFIG = SAMPLE_DATA / "qmskpi.toml"


@pytest.fixture
def sample_config_path() -> Path:
    """The committed sample configuration (3 sites x 36 months ending 2026-10)."""
    return SAMPLE_CONFIG
