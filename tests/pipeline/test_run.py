"""pipeline.run: run_review publishes one pack: its files, the skip, failures, SIGKILL at each stage, the real render."""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

import psutil
import pytest

from pipeline.helpers import (
    AS_OF,
    DETERMINISTIC_FILES,
    PACK_FILES,
    PERIOD,
    TESTS,
    VOLATILE,
    assert_pack_intact,
    broken_notebook_render,
    copy_sample,
    crashing_chromium_render,
    failing_cell_render,
    fake_render,
    renders,
    reports,
    stray_children,
    visible_tree,
    without_volatile,
)
from qmskpi import archive, pipeline, progress
from qmskpi.config import load_config
from qmskpi.errors import ConfigError, PeriodError


def test_run_review_publishes_a_complete_pack(published: tuple[Path, pipeline.RunOutcome]) -> None:
    cfg_file, outcome = published
    root = reports(cfg_file)
    assert outcome.status == "published", outcome.error
    assert outcome.pack_dir == root / PERIOD / "all"
    assert outcome.html_path == outcome.pack_dir / "management-review.html"
    assert outcome.pdf_path == outcome.pack_dir / "management-review.pdf"
    assert {p.name for p in outcome.pack_dir.iterdir()} == PACK_FILES | {"manifest.json"}
    assert (root / PERIOD / "all").is_symlink()
    # The notebook got the staged review inputs, inside the stage, before publishing.
    (seen,) = renders(cfg_file)
    assert seen["review_inputs_in_stage"] is True
    assert seen["restatement_staged"] is False
    assert list((root / ".staging").iterdir()) == []


def test_small_inputs_write_the_exports_beside_the_notebook_with_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small inputs: exports written while the notebook runs; large: before. Same pack."""
    packs: dict[str, dict[str, bytes]] = {}
    orders: dict[str, list[str]] = {}
    for mode in ("small", "large"):
        if mode == "large":
            monkeypatch.setattr(
                "qmskpi.pipeline.run.SMALL_INPUTS_BYTES", 0
            )  # where run_review reads it
        cfg = copy_sample(tmp_path / mode)
        stages: list[str] = []
        out = pipeline.run_review(
            cfg, PERIOD, "all", as_of=AS_OF, renderer=fake_render, on_stage=stages.append
        )
        assert out.status == "published", out.error
        assert out.pack_dir is not None
        packs[mode] = {p.name: p.read_bytes() for p in out.pack_dir.iterdir()}
        orders[mode] = [s for s in stages if s in ("staged", "exported", "compared", "rendered")]
    assert orders["large"] == ["staged", "exported", "compared", "rendered"]
    assert orders["small"] == ["staged", "compared", "exported", "rendered"]
    assert set(packs["small"]) == set(packs["large"]) == PACK_FILES | {"manifest.json"}
    # minutes.xlsx carries the pack's id, the manifest its id and timings
    same = set(PACK_FILES) - {"minutes.xlsx"}
    assert {n for n in same if packs["small"][n] != packs["large"][n]} == set()


def test_manifest_records_inputs_config_versions_timings_and_outputs(
    published: tuple[Path, pipeline.RunOutcome],
) -> None:
    cfg_file, outcome = published
    assert outcome.pack_dir is not None
    m = json.loads((outcome.pack_dir / "manifest.json").read_text())
    cfg = load_config(cfg_file)
    assert m["schema"] == "qmskpi.manifest/1"
    assert (m["period"], m["scope"], m["outcome"]) == (PERIOD, "all", "published")
    assert m["pack_id"] == outcome.pack_id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", m["created_at"])
    assert m["config"] == {"digest": cfg.digest(), "path": str(cfg_file.resolve())}
    assert m["parameters"] == {
        "period": PERIOD,
        "scope": "all",
        "config_path": str(cfg_file.resolve()),
        "review_inputs": "review-inputs.json",
    }
    datasets = [i["dataset"] for i in m["inputs"]]
    assert datasets == sorted(cfg.sources)
    for item in m["inputs"]:
        source = cfg_file.parent / f"{item['dataset']}.csv"
        assert item["origin"] == f"{item['dataset']}.csv"
        assert item["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
        assert item["query"] is None
        data_rows = len(source.read_bytes().splitlines()) - 1
        assert item["rows_in"] <= data_rows  # (a quoted field may span lines)
        assert item["rows_in"] == item["rows_used"] + item["rows_quarantined"]
    assert set(m["versions"]) == {
        "qmskpi",
        "polars",
        "pandas",
        "great-expectations",
        "papermill",
        "nbconvert",
        "plotly",
        "python",
    }
    assert all(m["versions"].values())
    assert {"load", "validate", "compute", "exports", "render", "render.execute"} <= set(
        m["timings"]
    )
    assert set(m["outputs"]) == PACK_FILES
    assert m["missing_outputs"] == {}
    for name, meta in m["outputs"].items():
        data = (outcome.pack_dir / name).read_bytes()
        assert meta == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert m["supersedes"] == []
    assert m["replaces"] is None
    assert m["restatement"] is None
    assert m["inputs_digest"] == archive.inputs_digest(
        [archive.InputRecord(i["dataset"], i["origin"], i["sha256"], 0) for i in m["inputs"]],
        config_digest=cfg.digest(),
        version=m["versions"]["qmskpi"],
        period=PERIOD,
        scope="all",
        as_of=date.fromisoformat(m["as_of"]),
    )


def test_the_kernel_gets_the_review_model_only(
    published: tuple[Path, pipeline.RunOutcome], tmp_path: Path
) -> None:
    """The notebook's review model comes from review-inputs.json alone: no frame, no data file."""
    _, outcome = published
    assert outcome.pack_dir is not None
    inputs = tmp_path / "review-inputs.json"
    inputs.write_bytes((outcome.pack_dir / "review-inputs.json").read_bytes())
    model = pipeline.review_for(tmp_path / "no-such-config.toml", PERIOD, review_inputs=inputs)
    assert model.to_json() == inputs.read_text()
    assert not [p for p in outcome.pack_dir.iterdir() if p.suffix in (".pkl", ".pickle", ".arrow")]


def test_index_escapes_the_organisation_and_links_the_pack(
    published: tuple[Path, pipeline.RunOutcome],
) -> None:
    cfg_file, _ = published
    page = (reports(cfg_file) / "index.html").read_text()
    assert "<script>" not in page
    assert html.escape('Acme <script>alert("x")</script> & "Co"') in page
    assert 'href="2026-10/all/management-review.html"' in page
    assert 'href="2026-10/all/management-review.pdf"' in page


def test_second_run_is_skipped_and_force_renders_again(cfg_path: Path) -> None:
    first = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render)
    assert first.status == "published"
    again = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render)
    assert again.status == "skipped"
    assert again.pack_id == first.pack_id
    assert len(renders(cfg_path)) == 1
    forced = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, force=True, renderer=fake_render)
    assert forced.status == "published"
    assert forced.pack_id != first.pack_id
    assert len(renders(cfg_path)) == 2
    root = reports(cfg_path)
    # Same KPIs: the old pack is replaced (not kept as superseded) and recorded as such.
    m = json.loads((root / PERIOD / "all" / "manifest.json").read_text())
    assert m["replaces"]["id"] == first.pack_id
    assert m["replaces"]["kpis_changed"] is False
    assert m["supersedes"] == []
    assert [p.name for p in (root / ".packs").iterdir()] == [forced.pack_id]


def test_a_skipped_run_rewrites_an_index_left_behind(cfg_path: Path) -> None:
    first = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render)
    index = reports(cfg_path) / "index.html"
    good = index.read_text()
    assert first.status == "published"
    # A run killed just past the publish rename: the index still shows the replaced pack.
    index.write_text("<html><body>the replaced pack of 2026-11-01</body></html>")
    again = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render)
    assert again.status == "skipped"
    assert index.read_text() == good
    # An index that is already right is left alone (a skip touches nothing).
    before = index.stat().st_mtime_ns
    assert pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render).pack_id
    assert index.stat().st_mtime_ns == before


def test_a_tampered_or_incomplete_pack_is_not_skipped(cfg_path: Path) -> None:
    first = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, pdf=False, renderer=fake_render)
    assert first.status == "published"
    assert first.pdf_path is None
    # Asking for the PDF now: the published pack lacks it.
    with_pdf = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, pdf=True, renderer=fake_render)
    assert with_pdf.status == "published"
    assert with_pdf.pdf_path is not None
    # A file changed behind qmskpi's back.
    assert with_pdf.pack_dir is not None
    target = with_pdf.pack_dir / "kpis.csv"
    target.chmod(0o644)
    target.write_text("kpi,scope,period,value\n")
    repaired = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render)
    assert repaired.status == "published"
    assert repaired.pack_id != with_pdf.pack_id
    # The tampered pack is kept as evidence, not compared with.
    assert repaired.pack_dir is not None
    m = json.loads((repaired.pack_dir / "manifest.json").read_text())
    assert m["restatement"] is None
    (kept,) = m["supersedes"]
    assert kept["id"] == with_pdf.pack_id
    assert kept["reason"] == "failed verification: kpis.csv: sha256 differs from the manifest"
    assert (reports(cfg_path) / ".packs" / str(with_pdf.pack_id)).is_dir()


def test_identical_inputs_give_byte_identical_tables_and_manifests(cfg_path: Path) -> None:
    first = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render)
    assert first.pack_dir is not None
    keep = {name: (first.pack_dir / name).read_bytes() for name in (*PACK_FILES, "manifest.json")}
    second = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, force=True, renderer=fake_render)
    assert second.pack_dir is not None
    for name in DETERMINISTIC_FILES:
        assert (second.pack_dir / name).read_bytes() == keep[name], name
    m1 = json.loads(keep["manifest.json"])
    m2 = json.loads((second.pack_dir / "manifest.json").read_text())
    assert m1["created_at"] <= m2["created_at"]
    assert without_volatile(m1) == without_volatile(m2)
    assert set(m1["timings"]) == set(m2["timings"])


def test_failing_notebook_cell_leaves_the_published_pack(cfg_path: Path) -> None:
    old = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render)
    root = reports(cfg_path)
    before = visible_tree(root)
    out = pipeline.run_review(
        cfg_path, PERIOD, as_of=AS_OF, force=True, renderer=failing_cell_render
    )
    assert out.status == "failed"
    assert out.error_type == "NotebookCellError"
    assert "cell 5 raised ZeroDivisionError" in str(out.error)
    assert visible_tree(root) == before
    assert_pack_intact(archive.Archive(root).current(PERIOD, "all"))
    assert archive.Archive(root).current(PERIOD, "all").id == old.pack_id  # type: ignore[union-attr]
    assert list((root / ".staging").iterdir()) == []
    assert pipeline.exit_code([old, out]) == pipeline.EXIT_FAILED


def test_a_concurrent_run_of_the_same_pack_fails_fast(cfg_path: Path) -> None:
    root = reports(cfg_path)
    arch = archive.Archive(root)
    with arch.pack_lock(PERIOD, "all"):
        out = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render)
    assert out.status == "failed"
    assert out.error_type == "PublishError"
    assert f"pid {os.getpid()}" in str(out.error)
    assert pipeline.exit_code([out]) == pipeline.EXIT_FAILED


def test_bad_arguments_are_usage_errors(cfg_path: Path) -> None:
    with pytest.raises(PeriodError):
        pipeline.run_review(cfg_path, "2026-13", renderer=fake_render)
    with pytest.raises(ConfigError, match="unknown scope"):
        pipeline.run_review(cfg_path, PERIOD, "../../etc", renderer=fake_render)
    with pytest.raises(ConfigError, match="unknown scope"):
        pipeline.run_review(cfg_path, PERIOD, "Nowhere", renderer=fake_render)
    with pytest.raises(PeriodError, match="is a quarter"):
        pipeline.run_scheduled(cfg_path, as_of=AS_OF, since="2026-Q2", renderer=fake_render)
    with pytest.raises(PeriodError, match="after the last complete"):
        pipeline.run_scheduled(cfg_path, as_of=AS_OF, since="2026-11", renderer=fake_render)
    with pytest.raises(ConfigError, match="jobs"):
        pipeline.run_scheduled(cfg_path, as_of=AS_OF, jobs=0, renderer=fake_render)
    assert not (reports(cfg_path) / PERIOD).exists()


def test_a_run_reports_its_stages_in_order(cfg_path: Path) -> None:
    seen: list[progress.Event] = []
    with progress.listening(seen.append):
        out = pipeline.run_review(cfg_path, PERIOD, "all", as_of=AS_OF, renderer=fake_render)
    assert out.status == "published"
    stages = [e.stage for e in seen]
    # fake_render emits no render steps; the stages of the run itself, each once, in order:
    assert list(dict.fromkeys(stages)) == ["load", "validate", "compute", "publish", "done"]
    loads = [e for e in seen if e.stage == "load"]
    configured = load_config(cfg_path).sources
    assert [e.detail for e in loads[1:-1]] == list(configured)  # one event per dataset
    assert out.pack_dir is not None
    rows_in = json.loads((out.pack_dir / "manifest.json").read_text())["inputs"]
    assert loads[-1].rows == sum(i["rows_in"] for i in rows_in)
    assert seen[0].period == PERIOD
    assert seen[0].scope == "all"
    assert seen[-1].detail == "published"


KILL_AT = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    from pipeline.helpers import fake_render, killing_render
    from qmskpi import pipeline
    from datetime import date
    cfg, step = sys.argv[1], sys.argv[2]
    def hook(name):
        if name == step:
            os.kill(os.getpid(), signal.SIGKILL)
    out = pipeline.run_review(
        cfg, "2026-10", "all", as_of=date(2026, 11, 5), force=True,
        renderer=killing_render if step == "rendering" else fake_render, on_stage=hook,
    )
    print(out.status, out.error)
    """
).format(tests=str(TESTS))


KILL_STEPS = [s for s in pipeline.STAGES if s != "published"] + ["rendering"]


@pytest.fixture(scope="module")
def killed_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A published pack that runs killed at each step try to replace."""
    cfg = copy_sample(tmp_path_factory.mktemp("killed") / "data")
    first = pipeline.run_review(cfg, PERIOD, as_of=AS_OF, renderer=fake_render)
    assert first.status == "published"
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize("step", KILL_STEPS)
def test_sigkill_at_each_stage_leaves_a_complete_pack_visible(killed_runs: Path, step: str) -> None:
    root = reports(killed_runs)
    arch = archive.Archive(root)
    old = arch.current(PERIOD, "all")
    assert_pack_intact(old)
    before = visible_tree(root)
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AT, str(killed_runs), step],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    now = arch.current(PERIOD, "all")
    assert_pack_intact(now)
    assert now is not None
    assert old is not None
    if step == "flipped":
        # Killed after the link flip: the new, complete pack is what readers see.
        assert now.id != old.id
    else:
        assert now.id == old.id
        assert visible_tree(root) == before
    assert (root / "index.html").is_file()
    # Nothing half-written anywhere a reader looks.
    for path in root.rglob("*"):
        if not any(part.startswith(".") for part in path.relative_to(root).parts):
            assert ".tmp" not in path.name
    # The next run cleans what the killed one left.
    arch.clean_stale()
    assert list((root / ".staging").iterdir()) == []
    assert {p.name for p in (root / ".packs").iterdir()} == {now.id}
    assert stray_children() == []


@pytest.mark.slow
def test_the_next_run_after_a_kill_cleans_stale_staging(cfg_path: Path) -> None:
    pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render)
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AT, str(cfg_path), "exported"], capture_output=True, timeout=240
    )
    assert proc.returncode == -signal.SIGKILL
    root = reports(cfg_path)
    assert len(list((root / ".staging").iterdir())) == 1  # the killed run's
    out = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, force=True, renderer=fake_render)
    assert out.status == "published"
    assert list((root / ".staging").iterdir()) == []


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pipeline.RunOutcome]:
    """One pack rendered for real (kernel, nbconvert, Chromium) from the sample data."""
    cfg = copy_sample(tmp_path_factory.mktemp("real") / "data")
    outcome = pipeline.run_review(cfg, PERIOD, "all", as_of=AS_OF)
    return cfg, outcome


@pytest.mark.notebook
@pytest.mark.browser
def test_real_pack_end_to_end(real: tuple[Path, pipeline.RunOutcome]) -> None:
    cfg_file, outcome = real
    assert outcome.status == "published", outcome.error
    assert outcome.pack_dir is not None
    assert {p.name for p in outcome.pack_dir.iterdir()} == PACK_FILES | {"manifest.json"}
    assert_pack_intact(archive.Archive(reports(cfg_file)).current(PERIOD, "all"))
    assert (outcome.pack_dir / "management-review.pdf").read_bytes().startswith(b"%PDF")
    page = (outcome.pack_dir / "management-review.html").read_text()
    assert "Acme Components Ltd" in page
    m = json.loads((outcome.pack_dir / "manifest.json").read_text())
    assert {"render.execute", "render.html", "render.pdf"} <= set(m["timings"])
    # The kernel got the staged review inputs (papermill's injected parameters).
    nb = json.loads((outcome.pack_dir / "management-review.ipynb").read_text())
    injected = "".join(
        "".join(c["source"])
        for c in nb["cells"]
        if "injected-parameters" in c["metadata"].get("tags", [])
    )
    assert "/.staging/2026-10--all--" in injected
    assert "review-inputs.json" in injected
    assert stray_children() == []


@pytest.mark.notebook
@pytest.mark.browser
def test_real_pack_is_skipped_then_reproduced_byte_identically(
    real: tuple[Path, pipeline.RunOutcome],
) -> None:
    cfg_file, first = real
    assert first.pack_dir is not None
    skipped = pipeline.run_review(cfg_file, PERIOD, "all", as_of=AS_OF)
    assert skipped.status == "skipped"
    assert skipped.pack_id == first.pack_id
    old = {p.name: p.read_bytes() for p in first.pack_dir.iterdir()}
    again = pipeline.run_review(cfg_file, PERIOD, "all", as_of=AS_OF, force=True)
    assert again.status == "published", again.error
    assert again.pack_dir is not None
    for name in DETERMINISTIC_FILES:
        assert (again.pack_dir / name).read_bytes() == old[name], name
    m1 = json.loads(old["manifest.json"])
    m2 = json.loads((again.pack_dir / "manifest.json").read_text())
    differing = {k for k in set(m1) | set(m2) if k not in VOLATILE and m1.get(k) != m2.get(k)}
    assert differing <= {"outputs"}
    changed_outputs = {
        name for name in m1["outputs"] if m1["outputs"][name] != m2["outputs"].get(name)
    }
    # Only the executed notebook (run times, staging path), the PDF (creation date) and the
    # minutes template (the pack id) vary; the HTML is byte-identical.
    assert changed_outputs <= {"management-review.ipynb", "management-review.pdf", "minutes.xlsx"}
    assert (again.pack_dir / "management-review.html").read_bytes() == old["management-review.html"]


@pytest.mark.notebook
def test_real_failing_notebook_cell_leaves_the_pack_and_no_kernel(
    real: tuple[Path, pipeline.RunOutcome],
) -> None:
    cfg_file, _ = real
    root = reports(cfg_file)
    before = visible_tree(root)
    out = pipeline.run_review(
        cfg_file, PERIOD, "all", as_of=AS_OF, force=True, renderer=broken_notebook_render
    )
    assert out.status == "failed"
    assert out.error_type == "NotebookCellError", out.error
    assert visible_tree(root) == before
    assert list((root / ".staging").iterdir()) == []
    assert stray_children() == []


@pytest.mark.notebook
@pytest.mark.browser
def test_real_chromium_crash_leaves_the_pack_and_no_process(
    real: tuple[Path, pipeline.RunOutcome], dead_chromium: Path
) -> None:
    cfg_file, _ = real
    root = reports(cfg_file)
    before = visible_tree(root)
    out = pipeline.run_review(
        cfg_file, PERIOD, "all", as_of=AS_OF, force=True, renderer=crashing_chromium_render
    )
    assert out.status == "failed"
    assert out.error_type == "RenderError", out.error
    assert "cannot start Chromium" in str(out.error)
    assert visible_tree(root) == before
    assert list((root / ".staging").iterdir()) == []
    assert stray_children() == []


REAL_KILL = textwrap.dedent(
    """
    import sys
    from datetime import date
    from qmskpi import pipeline
    out = pipeline.run_review(sys.argv[1], "2026-10", "all", as_of=date(2026, 11, 5), force=True)
    print(out.status, out.error)
    """
)


@pytest.mark.notebook
@pytest.mark.parametrize("phase", ["validate", "render"])
def test_real_sigkill_during_render_leaves_no_kernel_and_the_pack(
    real: tuple[Path, pipeline.RunOutcome], phase: str
) -> None:
    """Killed while the pre-started kernel waits (validate) or runs the notebook (render)."""
    cfg_file, _ = real
    root = reports(cfg_file)
    before = visible_tree(root)
    proc = subprocess.Popen([sys.executable, "-c", REAL_KILL, str(cfg_file)])
    runner = psutil.Process(proc.pid)
    kernel: psutil.Process | None = None

    def staged() -> bool:  # the notebook runs once the staged review inputs exist
        return any((root / ".staging").glob("*/review-inputs.json"))

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        for child in runner.children(recursive=True):
            try:
                if "ipykernel" in " ".join(child.cmdline()):
                    kernel = child
            except psutil.NoSuchProcess:
                continue
        if kernel is not None and (phase == "validate" or staged()):
            break
        time.sleep(0.05)
    assert kernel is not None, "the kernel never started"
    assert staged() == (phase == "render"), phase
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _, alive = psutil.wait_procs([kernel], timeout=15)
    assert alive == [], "the kernel outlived the killed run"
    assert visible_tree(root) == before
    removed = archive.Archive(root).clean_stale()
    if phase == "render":
        assert [r for r in removed if r.startswith(".staging/")], removed
    assert list((root / ".staging").iterdir()) == []
