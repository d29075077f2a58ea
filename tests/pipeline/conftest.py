"""Fixtures shared by the pipeline tests: a private copy of the sample, one pack published."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.helpers import (
    AS_OF,
    PERIOD,
    copy_sample,
    fake_render,
)
from qmskpi import pipeline


@pytest.fixture
def cfg_path(tmp_path: Path) -> Path:
    return copy_sample(tmp_path / "data")


@pytest.fixture
def small_cfg_path(tmp_path: Path) -> Path:
    """Two scopes only ("all" and North): for the tests that render every scope."""
    return copy_sample(tmp_path / "data", sites=("North",))


@pytest.fixture(scope="package")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pipeline.RunOutcome]:
    """One pack published with the fake renderer, shared by read-only tests."""
    cfg = copy_sample(
        tmp_path_factory.mktemp("published") / "data",
        organisation='Acme <script>alert("x")</script> & "Co"',
    )
    outcome = pipeline.run_review(cfg, PERIOD, "all", as_of=AS_OF, renderer=fake_render)
    return cfg, outcome


@pytest.fixture
def dead_chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An executable that crashes like a Chromium that cannot start."""
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\necho 'chromium: Segmentation fault' >&2\nkill -SEGV $$\n")
    fake.chmod(0o755)
    monkeypatch.setenv("QMSKPI_TEST_CHROMIUM", str(fake))
    return fake
