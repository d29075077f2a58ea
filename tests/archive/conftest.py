"""Fixtures shared by the archive tests: an empty reports folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from qmskpi.archive import Archive


@pytest.fixture
def arch(tmp_path: Path) -> Archive:
    return Archive(tmp_path / "reports")
