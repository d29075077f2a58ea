"""Shared test set-up: UTC, no GX analytics, paths to the sample data."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def mounted_tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A real small tmpfs at ``where`` (a full disk on demand); skips the test unless root."""
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
