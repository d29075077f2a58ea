"""pipeline.outcomes: what a run reports (exit codes, a full disk, require_success, outcomes_frame)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import mounted_tmpfs
from pipeline.helpers import (
    AS_OF,
    PERIOD,
    assert_pack_intact,
    enospc_render,
    fake_render,
    reports,
    visible_tree,
)
from qmskpi import archive, pipeline, render
from qmskpi.config import load_config
from qmskpi.errors import PublishError


def test_exit_codes() -> None:
    ok = pipeline.RunOutcome("2026-10", "all", "published")
    skipped = pipeline.RunOutcome("2026-10", "North", "skipped")
    restated = pipeline.RunOutcome("2026-10", "South", "restated")
    failed = pipeline.RunOutcome("2026-10", "East", "failed", error="x", error_type="RenderError")
    config = pipeline.RunOutcome("2026-10", "East", "failed", error="x", error_type="ConfigError")
    assert pipeline.exit_code([]) == 0
    assert pipeline.exit_code([ok, skipped, restated]) == 0
    assert pipeline.exit_code([ok, failed]) == 1
    assert pipeline.exit_code([ok, failed, config]) == 3
    usage = pipeline.RunOutcome("2026-10", "X", "failed", error="x", error_type="PeriodError")
    assert pipeline.exit_code([ok, failed, config, usage]) == 2
    # an error rule failed: rows set aside (the dataset may still be sound) ...
    rules = pipeline.RunOutcome("2026-10", "all", "published", failed_datasets=("receipts",))
    assert pipeline.exit_code([ok, rules]) == 4
    # ... or so many that its KPIs are struck out
    unsound = pipeline.RunOutcome(
        "2026-10",
        "all",
        "published",
        unsound_datasets=("receipts",),
        failed_datasets=("receipts",),
    )
    empty = pipeline.RunOutcome("2026-10", "North", "skipped", empty_datasets=("complaints",))
    assert pipeline.exit_code([ok, unsound]) == 4
    assert pipeline.exit_code([ok, unsound, empty]) == 5
    assert pipeline.exit_code([unsound, empty, failed]) == 1


def test_cli_maps_usage_errors_to_exit_code_2(cfg_path: Path) -> None:
    from qmskpi.cli import main

    assert main(["render", "--config", str(cfg_path), "--period", "2026-13"]) == 2
    assert main(["run", "--config", str(cfg_path), "--since", "2026-Q1"]) == 2


def test_a_dataset_with_no_usable_rows_publishes_and_exits_5(cfg_path: Path) -> None:
    complaints = cfg_path.parent / "complaints.csv"
    complaints.write_text(complaints.read_text(encoding="utf-8").splitlines()[0] + "\n")
    out = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render)
    assert out.status == "published"
    assert out.empty_datasets == ("complaints",)
    assert pipeline.exit_code([out]) == 5
    assert out.pack_dir is not None
    model = json.loads((out.pack_dir / "review-inputs.json").read_text(encoding="utf-8"))
    first = model["exceptions"][0]
    assert (first["kind"], first["rank"]) == ("unsound", 0)
    assert first["text"].startswith("Customer complaints (complaints): NO USABLE ROWS.")
    again = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render)
    assert again.status == "skipped"
    assert again.empty_datasets == ("complaints",)  # read back from the pack's validation.json
    assert pipeline.exit_code([again]) == 5


def test_full_disk_simulated_leaves_the_published_pack(cfg_path: Path) -> None:
    pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render)
    root = reports(cfg_path)
    before = visible_tree(root)
    out = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, force=True, renderer=enospc_render)
    assert out.status == "failed"
    assert out.error_type == "DiskFullError"
    # One line naming the reports folder the staged file was in, not the staging folder.
    assert out.error == (
        f"no space left: {root.resolve()} is full; free some space there and run again "
        "(nothing was published; details in the log)"
    )
    assert pipeline.exit_code([out]) == pipeline.EXIT_FAILED
    assert visible_tree(root) == before
    assert list((root / ".staging").iterdir()) == []


@pytest.fixture
def tiny_reports(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs for the reports folder (root only)."""
    with mounted_tmpfs(tmp_path / "tiny", "3m") as mnt:
        yield mnt


def big_pdf_render(stage_dir: Path, /, **kwargs: Any) -> render.RenderResult:
    """fake_render plus a 1.6 MB PDF: one pack fits on the tiny disk, two do not."""
    result = fake_render(stage_dir, **kwargs)
    assert result.pdf_path is not None
    with result.pdf_path.open("ab") as fh:
        fh.write(os.urandom(1_600_000))
    return result


def test_real_full_disk_leaves_the_published_pack(cfg_path: Path, tiny_reports: Path) -> None:
    cfg = load_config(cfg_path).with_reports_dir(tiny_reports / "reports")
    first = pipeline.run_review(cfg, PERIOD, as_of=AS_OF, renderer=big_pdf_render)
    assert first.status == "published", first.error
    before = visible_tree(tiny_reports / "reports")
    out = pipeline.run_review(cfg, PERIOD, as_of=AS_OF, force=True, renderer=big_pdf_render)
    assert out.status == "failed"
    assert out.error_type == "DiskFullError"
    assert f"no space left: {(tiny_reports / 'reports').resolve()} is full;" in str(out.error)
    assert visible_tree(tiny_reports / "reports") == before
    assert_pack_intact(archive.Archive(tiny_reports / "reports").current(PERIOD, "all"))
    assert list((tiny_reports / "reports" / ".staging").iterdir()) == []


def test_require_success_and_outcomes_frame() -> None:
    ok = pipeline.RunOutcome("2026-10", "all", "published", pack_id="p")
    bad = pipeline.RunOutcome("2026-10", "North", "failed", error="boom", error_type="E")
    assert pipeline.require_success([ok]) == [ok]
    with pytest.raises(PublishError, match=r"1 of 2 pack\(s\) failed: 2026-10/North: boom"):
        pipeline.require_success([ok, bad])
    frame = pipeline.outcomes_frame([ok, bad])
    assert frame["status"].to_list() == ["published", "failed"]
    assert frame.columns == [
        "period",
        "scope",
        "status",
        "pack_id",
        "restated_kpis",
        "seconds",
        "error",
    ]
