"""pipeline.processes: the kernel and the browser: retries, no process left behind, no browser, PDF policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psutil
import pytest

from pipeline.helpers import (
    AS_OF,
    LEAKED,
    PACK_FILES,
    PERIOD,
    assert_pack_intact,
    fake_render,
    flaky_kernel_render,
    kernel_children,
    leaking_render,
    printing_then_failing_render,
    renders,
    reports,
    stray_children,
    visible_tree,
)
from qmskpi import archive, contracts, pipeline, progress, render
from qmskpi.config import load_config
from qmskpi.errors import ValidationFailed
from qmskpi.pipeline import processes


def test_no_process_outlives_a_failed_render(cfg_path: Path) -> None:
    out = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=leaking_render)
    assert out.status == "failed"
    assert "Chromium crashed" in str(out.error)
    pid = int((reports(cfg_path) / "leaked.pid").read_text())
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert stray_children() == []
    (proc,) = LEAKED
    assert proc.pid == pid
    proc.wait(timeout=5)  # already reaped by the pipeline: returns at once


def test_validation_failing_after_the_kernel_was_pre_started_leaves_no_kernel(
    cfg_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []

    def failing_validate(*args: Any, **kwargs: Any) -> Any:
        seen.extend(p.pid for p in kernel_children())  # started before validation
        raise ValidationFailed("complaints broke an error rule")

    monkeypatch.setattr(contracts, "validate", failing_validate)
    out = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, pdf=False)
    assert out.status == "failed"
    assert out.error_type == "ValidationFailed"
    assert len(seen) == 1
    assert (
        not psutil.pid_exists(seen[0]) or psutil.Process(seen[0]).status() == psutil.STATUS_ZOMBIE
    )
    assert stray_children() == []


@pytest.mark.notebook
def test_a_pre_started_kernel_that_died_falls_back_to_a_fresh_one(
    cfg_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    validate = contracts.validate

    def validate_and_kill_the_kernel(*args: Any, **kwargs: Any) -> Any:
        for p in kernel_children():
            p.kill()
            p.wait(timeout=10)
        return validate(*args, **kwargs)

    monkeypatch.setattr(contracts, "validate", validate_and_kill_the_kernel)
    out = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, pdf=False)
    assert out.status == "published", out.error
    assert out.html_path is not None
    assert out.html_path.is_file()
    assert stray_children() == []


def test_a_kernel_that_fails_to_start_is_retried_once(cfg_path: Path) -> None:
    out = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=flaky_kernel_render)
    assert out.status == "published", out.error
    assert out.pack_dir is not None
    assert not (out.pack_dir / "kernel-attempt").exists()


def test_a_failing_cell_is_not_retried() -> None:
    cell = render.NotebookCellError(
        "cell 3 raised",
        notebook=Path("x"),
        cell_index=3,
        ename="E",
        evalue="Address already in use",
    )
    start = render.NotebookCellError(
        "management_review.ipynb: the kernel failed to start",
        notebook=Path("x"),
        cell_index=None,
        ename="ZMQError",
        evalue="Address already in use (addr='tcp://127.0.0.1:52311')",
    )
    assert not processes._is_kernel_start_failure(cell)
    assert processes._is_kernel_start_failure(start)
    assert not processes._is_kernel_start_failure(render.RenderError("Chromium crashed"))


@pytest.mark.browser
def test_a_callers_browser_that_cannot_start_fails_before_the_kernel_runs(
    cfg_path: Path, dead_chromium: Path
) -> None:
    pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render)
    before = visible_tree(reports(cfg_path))
    printer = render.PdfPrinter(executable=dead_chromium)
    try:
        out = pipeline.run_review(
            cfg_path, PERIOD, as_of=AS_OF, force=True, browser=printer, renderer=fake_render
        )
    finally:
        printer.close()
    assert out.status == "failed"
    assert "cannot start Chromium" in str(out.error)
    assert len(renders(cfg_path)) == 1  # the render never started
    assert visible_tree(reports(cfg_path)) == before
    assert stray_children() == []


@pytest.fixture
def no_browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No Chromium: QMSKPI_CHROMIUM points at nothing (and is then the only place looked at)."""
    nothing = tmp_path / "no-chromium-here"
    monkeypatch.setenv("QMSKPI_CHROMIUM", str(nothing))
    return nothing


def test_pdf_required_without_a_browser_fails_and_publishes_nothing(
    cfg_path: Path, no_browser: Path
) -> None:
    fresh = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF)  # the real renderer
    assert fresh.status == "failed"
    assert fresh.error_type == "ChromiumNotFoundError"
    error = str(fresh.error)
    assert error.startswith("PDF required but QMSKPI_CHROMIUM=")
    assert str(no_browser) in error
    assert render.install_command() in error
    assert 'pdf = "optional"' in error
    assert "\n" not in error
    root = reports(cfg_path)
    assert visible_tree(root) == {}
    assert list((root / ".packs").iterdir()) == []
    assert list((root / ".staging").iterdir()) == []
    assert stray_children() == []  # it failed before any kernel started


def test_pdf_required_without_a_browser_leaves_the_published_pack(
    cfg_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render)
    assert first.status == "published"
    before = visible_tree(reports(cfg_path))
    monkeypatch.setenv("QMSKPI_CHROMIUM", str(cfg_path.parent / "gone"))
    again = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, force=True, renderer=fake_render)
    assert again.status == "failed"
    assert again.error_type == "ChromiumNotFoundError"
    assert len(renders(cfg_path)) == 1  # the render never started
    assert visible_tree(reports(cfg_path)) == before
    # Unchanged inputs and a pack that has its PDF: nothing to print, nothing fails.
    assert pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF).status == "skipped"


@pytest.mark.notebook
def test_pdf_optional_without_a_browser_publishes_the_rest_and_says_why(
    cfg_path: Path, no_browser: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, pdf="optional")  # real render
    assert out.status == "published", out.error
    assert out.pack_dir is not None
    assert {p.name for p in out.pack_dir.iterdir()} == (
        PACK_FILES - {"management-review.pdf"} | {"manifest.json"}
    )
    assert out.pdf_path is None
    assert out.html_path is not None
    assert "Acme Components Ltd" in out.html_path.read_text()
    reason = f"QMSKPI_CHROMIUM={no_browser} is not an executable file"
    assert out.pdf_skipped is not None
    assert out.pdf_skipped.startswith(reason)
    assert render.install_command() in out.pdf_skipped
    m = json.loads((out.pack_dir / "manifest.json").read_text())
    assert m["missing_outputs"] == {"management-review.pdf": out.pdf_skipped}
    assert "management-review.pdf" not in m["outputs"]
    assert_pack_intact(archive.Archive(reports(cfg_path)).current(PERIOD, "all"))
    index = (reports(cfg_path) / "index.html").read_text()
    assert 'href="2026-10/all/management-review.html"' in index
    assert "management-review.pdf" not in index
    assert stray_children() == []
    # Still no browser: the pack is as good as it gets, the next run skips it.
    assert pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, pdf="optional").status == "skipped"
    # A browser now (the fake renderer stands in for it): the next run adds the PDF.
    monkeypatch.delenv("QMSKPI_CHROMIUM")
    if render.find_chromium() is None:
        pytest.skip("no Chromium on this machine for the second half")
    later = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, pdf="optional", renderer=fake_render)
    assert later.status == "published", later.error
    assert later.pdf_path is not None
    assert later.pdf_skipped is None


def test_pdf_off_records_why_the_pack_has_none(cfg_path: Path) -> None:
    text = cfg_path.read_text()
    cfg_path.write_text(text.replace("[outputs]\n", '[outputs]\npdf = "off"\n'))
    assert load_config(cfg_path).outputs.pdf == "off"
    out = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render)
    assert out.status == "published", out.error
    assert out.pdf_path is None
    assert out.pdf_skipped is None  # asked for no PDF: nothing to warn about
    assert out.pack_dir is not None
    m = json.loads((out.pack_dir / "manifest.json").read_text())
    assert m["missing_outputs"] == {
        "management-review.pdf": 'not asked for (outputs.pdf = "off" or --no-pdf)'
    }


@pytest.mark.browser
def test_a_callers_browser_survives_a_failed_run(cfg_path: Path) -> None:
    """The clean-up after a failure stops what the run started, not the caller's browser."""
    printer = render.PdfPrinter()  # not started yet: the run starts it
    try:
        out = pipeline.run_review(
            cfg_path, PERIOD, as_of=AS_OF, browser=printer, renderer=printing_then_failing_render
        )
        assert out.status == "failed"
        assert "after printing" in str(out.error)
        assert printer.browser.is_connected()
        with printer.page() as page:
            assert page.evaluate("1 + 1") == 2
    finally:
        printer.close()
    assert stray_children() == []


@pytest.mark.notebook
@pytest.mark.timeout(600)
def test_browser_timeout_s_bounds_a_chromium_that_hangs_at_launch(
    cfg_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hang = tmp_path / "chromium"
    hang.write_text(
        '#!/bin/sh\ncase "$*" in *--version*) echo "Chromium 120.0.0.0"; exit 0;; esac\nsleep 60\n'
    )
    hang.chmod(0o755)
    monkeypatch.setenv("QMSKPI_CHROMIUM", str(hang))
    text = cfg_path.read_text()
    cfg_path.write_text(text.replace("[outputs]\n", "[outputs]\nbrowser_timeout_s = 3\n", 1))
    out = pipeline.run_review(cfg_path, PERIOD, "all", as_of=AS_OF)
    assert out.status == "failed"
    assert out.error is not None
    assert "3000ms" in out.error  # [outputs] browser_timeout_s, not the fixed 60 s
    assert "\n" not in out.error  # one line; playwright's call log goes to the log
    assert "cannot start Chromium" in out.error


@pytest.mark.notebook
def test_a_chromium_that_dies_at_launch_fails_the_run_before_the_notebook(
    cfg_path: Path, dead_chromium: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default renderer launches Chromium beside validation and waits for it before the kernel runs."""
    dead = dead_chromium
    monkeypatch.setenv("QMSKPI_CHROMIUM", str(dead))
    pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render)
    before = visible_tree(reports(cfg_path))
    seen: list[progress.Event] = []
    with progress.listening(seen.append):
        out = pipeline.run_review(cfg_path, PERIOD, "all", as_of=AS_OF, force=True)
    assert out.status == "failed"
    assert out.error is not None
    assert out.error.startswith(f"cannot start Chromium {dead}:"), out.error
    assert "\n" not in out.error
    stages = [e.stage for e in seen]
    assert "browser" in stages
    assert "notebook" not in stages  # the kernel never ran the notebook
    assert stages[-1] == "done"
    assert seen[-1].detail == "failed"
    assert visible_tree(reports(cfg_path)) == before
    assert stray_children() == []
