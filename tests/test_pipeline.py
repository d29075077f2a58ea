"""pipeline: run_review, the scheduled run, restatements, fault injection, scheduling examples.

Most tests drive :func:`pipeline.run_review` with the real load / validate /
compute stages on a copy of ``sample_data/`` and a small fake renderer (the
render is not what they test). The tests marked ``notebook`` / ``browser`` use
the real render: one pack per module, plus the failures that need a real
kernel or browser.
"""

from __future__ import annotations

import ast
import csv
import errno
import hashlib
import html
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import psutil
import pytest

from conftest import mounted_tmpfs
from qmskpi import archive, contracts, kpis, pipeline, progress, render, synthetic
from qmskpi.cli import build_parser
from qmskpi.config import load_config
from qmskpi.errors import ConfigError, PeriodError, PublishError, ScopeError, ValidationFailed

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
SAMPLE = ROOT / "sample_data"
EXAMPLES = ROOT / "docs" / "examples"
PERIOD = "2026-10"
AS_OF = date(2026, 11, 5)
PACK_FILES = {
    "minutes.xlsx",
    "kpis.csv",
    "kpis.xlsx",
    "review-inputs.json",
    "quarantine.csv",
    "validation.json",
    "management-review.ipynb",
    "management-review.html",
    "management-review.pdf",
}
REGISTER_FILES = {
    "registers.xlsx",
    "register-review-actions.csv",
    "register-critical-complaints.csv",
    "register-complaint-ageing.csv",
    "register-objective-attainment.csv",
    "register-defect-pareto.csv",
    "register-overdue-capa.csv",
    "register-overdue-findings.csv",
    "register-overdue-actions.csv",
    "register-site-signals.csv",
    "register-findings-by-type.csv",
    "register-supplier-scorecard.csv",
    "register-failed-rules.csv",
    "register-exceptions.csv",
    "register-opportunities.csv",
    "register-complaints-by-category.csv",
}
"""Every row of each bounded table of the sample pack (the pack shows the first rows)."""
PACK_FILES |= REGISTER_FILES
DETERMINISTIC_FILES = (
    "kpis.csv",
    "review-inputs.json",
    "quarantine.csv",
    "validation.json",
    "kpis.xlsx",
    *sorted(REGISTER_FILES),
)
"""Pack files that are byte-identical for identical inputs."""
VOLATILE = {"created_at", "pack_id", "timings", "replaces", "previous_manifest"}
"""Manifest keys that may differ between two runs of the same inputs."""


# =========================================================================== fake renderers
# Module level, so worker processes (jobs=2) and the SIGKILL subprocesses can use them.


def fake_render(
    stage_dir: Path,
    /,
    *,
    parameters: Mapping[str, object],
    title: str,
    pdf: bool,
    timeout_s: int,
    browser: object,
) -> render.RenderResult:
    """Writes a deterministic notebook, HTML and PDF; logs what it saw next to the config."""
    stage_dir = Path(stage_dir)
    review_inputs = Path(str(parameters["review_inputs"]))
    seen = {
        "period": parameters["period"],
        "scope": parameters["scope"],
        "review_inputs_in_stage": review_inputs.parent == stage_dir and review_inputs.is_file(),
        "restatement_staged": (stage_dir / "restatement.json").is_file(),
        "pid": os.getpid(),
    }
    log = Path(str(parameters["config_path"])).parent / "renders.jsonl"
    with log.open("a") as fh:
        fh.write(json.dumps(seen, sort_keys=True) + "\n")
    digest = hashlib.sha256(review_inputs.read_bytes()).hexdigest()
    nb = stage_dir / "management-review.ipynb"
    nb.write_text(json.dumps({"period": parameters["period"], "scope": parameters["scope"]}))
    page = stage_dir / "management-review.html"
    page.write_text(f"<html><title>{html.escape(title)}</title><p>{digest}</p></html>")
    pdf_path = None
    if pdf:
        pdf_path = stage_dir / "management-review.pdf"
        pdf_path.write_bytes(b"%PDF-1.7 fake " + digest.encode())
    return render.RenderResult(nb, page, pdf_path, {"execute": 0.0, "html": 0.0, "pdf": 0.0})


def failing_cell_render(stage_dir: Path, /, **kwargs: Any) -> render.RenderResult:
    """A notebook cell raises after the HTML was half written."""
    (Path(stage_dir) / "management-review.html").write_text("<html><p>half")
    raise render.NotebookCellError(
        "management_review.ipynb: cell 5 raised ZeroDivisionError: division by zero",
        notebook=Path(stage_dir) / "management-review.ipynb",
        cell_index=5,
        ename="ZeroDivisionError",
        evalue="division by zero",
    )


def enospc_render(stage_dir: Path, /, **kwargs: Any) -> render.RenderResult:
    """The disk fills up while the PDF is written."""
    pdf = Path(stage_dir) / "management-review.pdf"
    with pdf.open("wb") as fh:
        fh.write(b"%PDF-1.7 half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(pdf))


def flaky_kernel_render(stage_dir: Path, /, **kwargs: Any) -> render.RenderResult:
    """The first kernel fails to start (a socket clash); the retry works."""
    marker = Path(stage_dir) / "kernel-attempt"
    if not marker.exists():
        marker.write_text("1")
        raise render.NotebookCellError(
            "management_review.ipynb: cell None failed: RuntimeError: "
            "Kernel died before replying to kernel_info",
            notebook=Path(stage_dir) / "management-review.ipynb",
            cell_index=None,
            ename="RuntimeError",
            evalue="Kernel died before replying to kernel_info",
        )
    marker.unlink()
    return fake_render(stage_dir, **kwargs)


LEAKED: list[subprocess.Popen[bytes]] = []


def leaking_render(stage_dir: Path, /, **kwargs: Any) -> render.RenderResult:
    """Starts a process (as a kernel or browser would) and fails without stopping it."""
    proc = subprocess.Popen(["sleep", "300"])
    LEAKED.append(proc)
    (Path(stage_dir).parent.parent / "leaked.pid").write_text(str(proc.pid))
    raise render.RenderError("Chromium crashed while printing")


def killing_render(stage_dir: Path, /, **kwargs: Any) -> render.RenderResult:
    """SIGKILLed in the middle of writing the HTML."""
    with (Path(stage_dir) / "management-review.html").open("w") as fh:
        fh.write("<html><p>half")
        fh.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def crashing_chromium_render(stage_dir: Path, /, **kwargs: Any) -> render.RenderResult:
    """The real render with a Chromium that dies as it starts (after the notebook ran)."""
    printer = render.PdfPrinter(executable=Path(os.environ["QMSKPI_TEST_CHROMIUM"]))
    try:
        return render.render_pack(Path(stage_dir), **{**kwargs, "browser": printer})
    finally:
        printer.close()


def printing_then_failing_render(stage_dir: Path, /, **kwargs: Any) -> render.RenderResult:
    """Uses the caller's browser, then fails."""
    printer = kwargs["browser"]
    assert printer is not None
    assert printer.browser.is_connected()
    raise render.RenderError("failed after printing")


def broken_notebook_render(stage_dir: Path, /, **kwargs: Any) -> render.RenderResult:
    """The real render, with review inputs that make the notebook's first data cell raise."""
    params = dict(kwargs.pop("parameters"))
    params["review_inputs"] = str(Path(stage_dir) / "no-such-review-inputs.json")
    return render.render_pack(Path(stage_dir), parameters=params, **kwargs)


# =========================================================================== helpers


def copy_sample(
    dest: Path, *, sites: tuple[str, ...] | None = None, organisation: str = ""
) -> Path:
    """A private copy of sample_data/ (optionally fewer sites / another name); returns the config."""
    shutil.copytree(SAMPLE, dest, ignore=shutil.ignore_patterns("reports"))
    cfg = dest / "qmskpi.toml"
    text = cfg.read_text()
    if sites is not None:
        text = re.sub(r"(?m)^sites = .*$", f"sites = {json.dumps(list(sites))}", text)
    if organisation:
        text = re.sub(r"(?m)^name = .*$", f"name = {json.dumps(organisation)}", text)
    cfg.write_text(text)
    return cfg


def reports(cfg_path: Path) -> Path:
    return cfg_path.parent / "reports"


def visible_tree(root: Path) -> dict[str, str]:
    """What a reader sees: every non-hidden path (links followed) -> sha256."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith("."):
                p = Path(dirpath, name)
                out[str(p.relative_to(root))] = archive.sha256_file(p)
    return out


def renders(cfg_path: Path) -> list[dict[str, Any]]:
    log = cfg_path.parent / "renders.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def stray_children() -> list[psutil.Process]:
    """Descendants of this test process still running.

    Zombies are excluded, and so is multiprocessing's resource tracker, which a
    process pool starts once and which lives as long as this process does.
    """
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            if "multiprocessing.resource_tracker" in " ".join(p.cmdline()):
                continue
            out.append(p)
        except psutil.NoSuchProcess:
            continue
    return out


def without_volatile(manifest: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in manifest.items() if k not in VOLATILE}
    if "outputs" in out:  # the minutes template carries the pack id, so it differs per run
        out["outputs"] = {k: v for k, v in out["outputs"].items() if k != "minutes.xlsx"}
    return out


def assert_pack_intact(pack: archive.Pack | None) -> None:
    assert pack is not None
    assert pack.verify() == []


# =========================================================================== fixtures


@pytest.fixture
def cfg_path(tmp_path: Path) -> Path:
    return copy_sample(tmp_path / "data")


@pytest.fixture
def small_cfg_path(tmp_path: Path) -> Path:
    """Two scopes only ("all" and North): for the tests that render every scope."""
    return copy_sample(tmp_path / "data", sites=("North",))


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pipeline.RunOutcome]:
    """One pack published with the fake renderer, shared by read-only tests."""
    cfg = copy_sample(
        tmp_path_factory.mktemp("published") / "data",
        organisation='Acme <script>alert("x")</script> & "Co"',
    )
    outcome = pipeline.run_review(cfg, PERIOD, "all", as_of=AS_OF, renderer=fake_render)
    return cfg, outcome


# =========================================================================== one pack


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
            monkeypatch.setattr(pipeline, "SMALL_INPUTS_BYTES", 0)
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


def test_a_sql_source_is_recorded_with_its_database_and_query(tmp_path: Path) -> None:
    import sqlite3

    cfg_file = copy_sample(tmp_path / "data")
    complaints = pl.read_csv(cfg_file.parent / "complaints.csv", infer_schema=False)
    with sqlite3.connect(cfg_file.parent / "qms.db") as db:
        db.execute(f"CREATE TABLE complaints ({', '.join(complaints.columns)})")
        db.executemany(
            f"INSERT INTO complaints VALUES ({', '.join('?' * complaints.width)})",
            complaints.rows(),
        )
    db.close()
    query = "SELECT * FROM complaints WHERE received_date <= :period_end"
    text = cfg_file.read_text()
    text = re.sub(
        r'(?ms)^\[sources\.complaints\]\npath = "complaints.csv"\nformat = "csv"\n',
        f'[databases.qms]\nurl = "sqlite:///qms.db"\n\n'
        f'[sources.complaints]\ndatabase = "qms"\nquery = {json.dumps(query)}\n',
        text,
    )
    assert "sqlite:///qms.db" in text
    cfg_file.write_text(text)
    out = pipeline.run_review(cfg_file, PERIOD, as_of=AS_OF, renderer=fake_render)
    assert out.status == "published", out.error
    assert out.pack_dir is not None
    m = json.loads((out.pack_dir / "manifest.json").read_text())
    (item,) = [i for i in m["inputs"] if i["dataset"] == "complaints"]
    assert item["origin"] == "sql:qms"
    assert item["query"] == query
    assert item["files"] == []
    assert re.fullmatch(r"[0-9a-f]{64}", item["sha256"])
    assert item["rows_in"] == complaints.height


def test_exports_are_the_tables_the_pack_shows(published: tuple[Path, pipeline.RunOutcome]) -> None:
    _, outcome = published
    assert outcome.pack_dir is not None
    kpis = pl.read_csv(outcome.pack_dir / "kpis.csv")
    assert kpis.columns[:8] == [
        "kpi",
        "scope",
        "period",
        "value",
        "numerator",
        "denominator",
        "unit",
        "sound",
    ]
    assert set(kpis["period"]) == {PERIOD}
    assert {"all", "North", "South", "East"} <= set(kpis["scope"])
    review = json.loads((outcome.pack_dir / "review-inputs.json").read_text())
    assert review["meta"]["period"] == PERIOD
    validation = json.loads((outcome.pack_dir / "validation.json").read_text())
    assert validation
    assert (outcome.pack_dir / "quarantine.csv").read_text().startswith("dataset")


def test_registers_hold_every_row_the_pack_leaves_out(
    published: tuple[Path, pipeline.RunOutcome],
) -> None:
    import openpyxl

    _, outcome = published
    assert outcome.pack_dir is not None
    model = json.loads((outcome.pack_dir / "review-inputs.json").read_text())
    wb = openpyxl.load_workbook(outcome.pack_dir / "registers.xlsx", read_only=True)
    bounded = [t for t in model["tables"] if t["register"]]
    assert wb.sheetnames == [t["register"] for t in bounded] + ["Exceptions", "Opportunities"]
    assert len(list(wb["Exceptions"].iter_rows())) - 1 == len(model["exceptions"])
    assert len(list(wb["Opportunities"].iter_rows())) - 1 == len(model["opportunities"])
    for t in bounded:
        csv = pl.read_csv(outcome.pack_dir / f"register-{t['id'].replace('_', '-')}.csv")
        sheet = list(wb[t["register"]].iter_rows(values_only=True))
        assert len(sheet) - 1 == csv.height, t["id"]
        if t["id"] != "site_signals":  # bounded by sites, not rows
            assert csv.height == len(t["rows"]) + t["more"], t["id"]
            assert csv.columns == [c["id"] for c in t["columns"]], t["id"]
    crit = next(t for t in bounded if t["id"] == "critical_complaints")
    assert crit["more"] > 0  # the sample has more than a page of them
    assert len(crit["rows"]) == 10  # the default [review] max_rows
    wb.close()


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


def test_registers_are_formula_safe(tmp_path: Path) -> None:
    prepared = pipeline.prepare(copy_sample(tmp_path / "data"), PERIOD, "all", as_of=AS_OF)
    evil = {
        tid: frame.with_columns(pl.lit('=HYPERLINK("http://x","y")').alias(frame.columns[0]))
        for tid, frame in prepared.registers.items()
    }
    arch = archive.Archive(tmp_path / "reports")
    with arch.stage(PERIOD, "all") as st:
        names = pipeline.write_registers(replace(prepared, registers=evil), st)
        assert set(names) == REGISTER_FILES
        for name in names:
            if name.endswith(".csv") and name not in (
                "register-exceptions.csv",
                "register-opportunities.csv",
            ):
                first = pl.read_csv(st.file(name))[:, 0].to_list()
                assert all(v.startswith("'=") for v in first), name
        import openpyxl

        wb = openpyxl.load_workbook(st.file("registers.xlsx"))
        for ws in wb.worksheets[:-2]:  # the two lists from the model come last
            for (cell,) in ws.iter_rows(min_row=2, max_col=1):
                assert cell.data_type != "f"
                assert str(cell.value).startswith("'=")


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


# =========================================================================== restatement


def drop_one_complaint(cfg_file: Path, *, month: str, site: str) -> str:
    """Delete one complaint received in ``month`` at ``site``; return its id."""
    path = cfg_file.parent / "complaints.csv"
    frame = pl.read_csv(path, infer_schema=False)
    victim = frame.filter(
        pl.col("received_date").str.starts_with(month) & (pl.col("site") == site)
    )["complaint_id"][0]
    frame.filter(pl.col("complaint_id") != victim).write_csv(path)
    return str(victim)


def received(cfg_file: Path, month: str, site: str | None = None) -> int:
    """complaints_received counted straight from the CSV (the KPI's definition)."""
    frame = pl.read_csv(cfg_file.parent / "complaints.csv", infer_schema=False)
    frame = frame.filter(pl.col("received_date").str.starts_with(month))
    if site is not None:
        frame = frame.filter(pl.col("site") == site)
    return frame.height


def test_restatement_keeps_the_approved_pack_and_lists_each_changed_kpi(cfg_path: Path) -> None:
    root = reports(cfg_path)
    before_all, before_north = received(cfg_path, PERIOD), received(cfg_path, PERIOD, "North")
    approved = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render)
    assert approved.status == "published"
    old_manifest = json.loads((root / PERIOD / "all" / "manifest.json").read_text())
    old_sha = {i["dataset"]: i["sha256"] for i in old_manifest["inputs"]}

    drop_one_complaint(cfg_path, month=PERIOD, site="North")
    restated = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render)

    assert restated.status == "restated", restated.error
    assert restated.restated_kpis > 0
    assert restated.pack_dir is not None
    assert os.readlink(root / PERIOD / "all") == f"../.packs/{restated.pack_id}"
    # The approved pack is kept, intact, as superseded.
    old = archive.Archive(root).pack(str(approved.pack_id))
    assert_pack_intact(old)
    m = json.loads((restated.pack_dir / "manifest.json").read_text())
    assert m["outcome"] == "restated"
    assert m["supersedes"] == [
        {"id": approved.pack_id, "created_at": old_manifest["created_at"], "reason": "restatement"}
    ]
    assert m["restatement"]["changed_kpis"] == restated.restated_kpis
    new_sha = hashlib.sha256((cfg_path.parent / "complaints.csv").read_bytes()).hexdigest()
    assert m["restatement"]["changed_inputs"] == [
        {
            "dataset": "complaints",
            "old_sha256": old_sha["complaints"],
            "new_sha256": new_sha,
            "old_rows_in": next(
                i["rows_in"] for i in old_manifest["inputs"] if i["dataset"] == "complaints"
            ),
            "new_rows_in": next(i["rows_in"] for i in m["inputs"] if i["dataset"] == "complaints"),
        }
    ]
    assert m["restatement"]["config_changed"] is False
    # restatement.csv: each changed KPI with old and new values, worked out from the CSV.
    table = pl.read_csv(restated.pack_dir / "restatement.csv")
    assert table.columns == [
        *archive.RESTATEMENT_COLUMNS,
        "definition_changed",
        "superseded_pack",
        "superseded_created_at",
        "changed_inputs",
    ]
    rows = {
        (r["kpi"], r["scope"]): r
        for r in table.filter(pl.col("kpi") == "complaints_received").to_dicts()
    }
    assert rows[("complaints_received", "all")]["old_value"] == before_all
    assert rows[("complaints_received", "all")]["new_value"] == before_all - 1
    assert rows[("complaints_received", "North")]["old_value"] == before_north
    assert rows[("complaints_received", "North")]["new_value"] == before_north - 1
    assert ("complaints_received", "South") not in rows
    assert set(table["superseded_pack"]) == {approved.pack_id}
    assert set(table["changed_inputs"]) == {"complaints"}
    assert set(table["definition_changed"]) == {False}  # same qmskpi, same definitions
    # Every listed row really differs between the two kpis.csv.
    diff = archive.compare_kpis(old.file("kpis.csv"), restated.pack_dir / "kpis.csv")
    assert diff.height == table.height == restated.restated_kpis
    detail = json.loads((restated.pack_dir / "restatement.json").read_text())
    assert detail["superseded"]["id"] == approved.pack_id
    assert len(detail["kpis"]) == table.height
    # Staged before the notebook ran, so the pack can show it.
    assert renders(cfg_path)[-1]["restatement_staged"] is True
    assert pipeline.restatement_for(restated.pack_dir / "review-inputs.json") == detail
    assert pipeline.restatement_for(old.file("review-inputs.json")) is None
    assert pipeline.restatement_for("") is None
    # The index lists the superseded pack with its links.
    page = (root / "index.html").read_text()
    assert f".packs/{approved.pack_id}/management-review.html" in page
    assert "restated" in page

    # A later run with the same KPIs (forced) carries the restatement and the superseded pack on.
    restatement_csv = (restated.pack_dir / "restatement.csv").read_bytes()
    later = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, force=True, renderer=fake_render)
    assert later.status == "published"
    assert later.pack_dir is not None
    m3 = json.loads((later.pack_dir / "manifest.json").read_text())
    assert m3["supersedes"] == m["supersedes"]
    assert m3["restatement"]["carried_from"] == restated.pack_id
    assert (later.pack_dir / "restatement.csv").read_bytes() == restatement_csv
    assert not (root / ".packs" / str(restated.pack_id)).exists()  # replaced
    assert_pack_intact(archive.Archive(root).pack(str(approved.pack_id)))  # still kept
    assert archive.Archive(root).clean_stale() == []


def test_restatement_names_the_measures_whose_definition_changed(
    cfg_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A release that revises a definition: the restated figures say which definitions moved."""
    approved = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render)
    assert approved.status == "published"
    spec = kpis.REGISTRY["complaints_received"]
    revised = "Number of complaints received in the period, duplicates of one event counted once."
    monkeypatch.setitem(kpis.REGISTRY, "complaints_received", replace(spec, definition=revised))
    drop_one_complaint(cfg_path, month=PERIOD, site="North")
    restated = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render)
    assert restated.status == "restated", restated.error
    assert restated.pack_dir is not None
    detail = json.loads((restated.pack_dir / "restatement.json").read_text())
    assert detail["qmskpi_changed"] is False  # the version did not move; the text did
    assert detail["definitions_changed"] == [
        {
            "kpi": "complaints_received",
            "old_definition": " ".join(spec.definition.split()),
            "new_definition": revised,
        }
    ]
    table = pl.read_csv(restated.pack_dir / "restatement.csv")
    flagged = set(table.filter(pl.col("definition_changed"))["kpi"])
    assert flagged == {"complaints_received"}
    assert table.filter(~pl.col("definition_changed")).height > 0  # other moved figures: data
    m = json.loads((restated.pack_dir / "manifest.json").read_text())
    assert m["restatement"]["definitions_changed"] == ["complaints_received"]


# =========================================================================== failures


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


def kernel_children() -> list[psutil.Process]:
    out = []
    for p in stray_children():
        try:
            if "ipykernel" in " ".join(p.cmdline()):
                out.append(p)
        except psutil.NoSuchProcess:
            continue
    return out


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
    assert not pipeline._is_kernel_start_failure(cell)
    assert pipeline._is_kernel_start_failure(start)
    assert not pipeline._is_kernel_start_failure(render.RenderError("Chromium crashed"))


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


def test_cli_maps_usage_errors_to_exit_code_2(cfg_path: Path) -> None:
    from qmskpi.cli import main

    assert main(["render", "--config", str(cfg_path), "--period", "2026-13"]) == 2
    assert main(["run", "--config", str(cfg_path), "--since", "2026-Q1"]) == 2


# --------------------------------------------------------------------------- SIGKILL at each stage

KILL_AT = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    from test_pipeline import fake_render, killing_render
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


# =========================================================================== scheduled run


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


def test_duplicates_are_named_in_quarantine_csv_and_counted_in_validation_json(
    cfg_path: Path,
) -> None:
    complaints = cfg_path.parent / "complaints.csv"
    lines = complaints.read_text(encoding="utf-8").splitlines()
    complaints.write_text("\n".join([*lines, lines[1]]) + "\n", encoding="utf-8")
    out = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render)
    assert out.status == "published"
    assert pipeline.exit_code([out]) == 0  # a duplicate is excluded, not an error
    assert out.pack_dir is not None
    with (out.pack_dir / "quarantine.csv").open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["rule"] == "duplicate"]
    assert [(r["dataset"], r["file"], r["source_row"], r["severity"]) for r in rows] == [
        ("complaints", "complaints.csv", str(len(lines) + 1), "excluded")
    ]
    assert "row 2 of complaints.csv" in rows[0]["message"]
    report = json.loads((out.pack_dir / "validation.json").read_text(encoding="utf-8"))
    ledger = report["datasets"]["complaints"]
    assert (ledger["rows_in"], ledger["rows_excluded"], ledger["excluded_by"]) == (
        len(lines),
        1,
        {"duplicate": 1},
    )
    assert ledger["rows_in"] == ledger["rows_used"] + ledger["rows_quarantined"] + 1


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


def test_plan_last_complete_period_and_catch_up(small_cfg_path: Path) -> None:
    cfg = load_config(small_cfg_path)
    plan = pipeline.plan_periods(cfg, as_of=date(2026, 11, 1))
    assert {s: [p.label for p in ps] for s, ps in plan.items()} == {
        "all": ["2026-10"],
        "North": ["2026-10"],
    }
    assert [p.label for p in pipeline.plan_periods(cfg, as_of=date(2026, 10, 31))["all"]] == [
        "2026-09"
    ]
    since = pipeline.plan_periods(cfg, as_of=AS_OF, since="2026-08")
    assert [p.label for p in since["North"]] == ["2026-08", "2026-09", "2026-10"]


def test_scheduled_run_catches_up_missed_months_in_order_then_skips(
    small_cfg_path: Path,
) -> None:
    outcomes = pipeline.run_scheduled(
        small_cfg_path, as_of=AS_OF, since="2026-08", renderer=fake_render
    )
    assert [(o.period, o.scope, o.status) for o in outcomes] == [
        ("2026-08", "all", "published"),
        ("2026-08", "North", "published"),
        ("2026-09", "all", "published"),
        ("2026-09", "North", "published"),
        ("2026-10", "all", "published"),
        ("2026-10", "North", "published"),
    ]
    assert [(r["period"], r["scope"]) for r in renders(small_cfg_path)] == [
        (o.period, o.scope) for o in outcomes
    ]
    root = reports(small_cfg_path)
    for o in outcomes:
        assert_pack_intact(archive.Archive(root).current(o.period, archive.scope_slug(o.scope)))
    # every pack is published; the config lists only North, so the rows of the other
    # sites break site_known (an error rule): exit 4, figures struck out, not a failure
    assert pipeline.exit_code(outcomes) == pipeline.EXIT_RULES
    assert all(o.unsound_datasets for o in outcomes)
    page = (root / "index.html").read_text()
    for month in ("2026-08", "2026-09", "2026-10"):
        assert f'href="{month}/north/management-review.html"' in page
    # Next day: nothing changed, everything skipped, nothing rendered.
    again = pipeline.run_scheduled(small_cfg_path, as_of=AS_OF, renderer=fake_render)
    assert [(o.period, o.status) for o in again] == [("2026-10", "skipped")] * 2
    assert len(renders(small_cfg_path)) == 6


def test_scheduled_run_catches_up_from_the_newest_published_pack(small_cfg_path: Path) -> None:
    first = pipeline.run_review(small_cfg_path, "2026-08", "all", renderer=fake_render)
    assert first.status == "published"
    outcomes = pipeline.run_scheduled(small_cfg_path, as_of=AS_OF, renderer=fake_render)
    assert [(o.period, o.scope) for o in outcomes] == [
        ("2026-09", "all"),
        ("2026-10", "all"),
        ("2026-10", "North"),
    ]


def test_scheduled_run_checks_scopes_and_executor_before_rendering(small_cfg_path: Path) -> None:
    def run(**kwargs: Any) -> list[pipeline.RunOutcome]:
        return pipeline.run_scheduled(small_cfg_path, as_of=AS_OF, renderer=fake_render, **kwargs)

    with pytest.raises(ScopeError, match="did you mean 'North'"):
        run(scopes=["Nort"])
    with pytest.raises(ConfigError, match="executor 'dask'"):
        run(scheduler="tcp://127.0.0.1:8786")
    with pytest.raises(ConfigError, match="its workers decide"):
        run(executor="dask", scheduler="tcp://127.0.0.1:8786", jobs=2)
    with pytest.raises(ConfigError, match="must be one of local, dask"):
        run(executor="spark")
    assert renders(small_cfg_path) == []
    assert not (reports(small_cfg_path) / PERIOD).exists()


@pytest.mark.slow
def test_parallel_scopes_render_every_scope_in_worker_processes(small_cfg_path: Path) -> None:
    outcomes = pipeline.run_scheduled(small_cfg_path, as_of=AS_OF, jobs=2, renderer=fake_render)
    assert sorted((o.scope, o.status) for o in outcomes) == [
        ("North", "published"),
        ("all", "published"),
    ]
    root = reports(small_cfg_path)
    for o in outcomes:
        pack = archive.Archive(root).current(PERIOD, archive.scope_slug(o.scope))
        assert_pack_intact(pack)
        assert pack is not None
        assert pack.scope == o.scope
        kpis = pl.read_csv(pack.file("kpis.csv"))
        assert set(kpis["scope"]) == ({"all", "North"} if o.scope == "all" else {"North"})
    pids = {r["pid"] for r in renders(small_cfg_path)}
    assert os.getpid() not in pids
    assert stray_children() == []


# --------------------------------------------------------------------------- notifications


def test_notify_command_gets_the_summary_on_stdin_and_no_data_in_argv(tmp_path: Path) -> None:
    sink = tmp_path / "summary.json"
    argv_file = tmp_path / "argv.json"
    script = tmp_path / "alert.py"
    script.write_text(
        "import json, sys\n"
        f"open({str(sink)!r}, 'w').write(sys.stdin.read())\n"
        f"json.dump(sys.argv[1:], open({str(argv_file)!r}, 'w'))\n"
    )
    evil = pipeline.RunOutcome(
        "2026-10", "North", "failed", error="$(touch /tmp/pwned); `id`", error_type="RenderError"
    )
    ok = pipeline.RunOutcome("2026-10", "all", "published")
    assert pipeline.notify_failure(
        [sys.executable, str(script), "--channel", "quality"], [ok, evil], organisation="Acme"
    )
    summary = json.loads(sink.read_text())
    assert summary["event"] == "qmskpi.run.failed"
    assert summary["exit_code"] == 1
    assert summary["organisation"] == "Acme"
    assert [f["scope"] for f in summary["failed"]] == ["North"]
    assert summary["failed"][0]["error"] == "$(touch /tmp/pwned); `id`"
    assert len(summary["outcomes"]) == 2
    assert json.loads(argv_file.read_text()) == ["--channel", "quality"]
    # A string command is split like a shell would, but run without one.
    line = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} --channel 'a b'"
    assert pipeline.notify_failure(line, [evil])
    assert json.loads(argv_file.read_text()) == ["--channel", "a b"]
    assert not Path("/tmp/pwned").exists()


def test_notify_failure_is_logged_not_raised(tmp_path: Path) -> None:
    failed = [pipeline.RunOutcome("2026-10", "all", "failed", error="x", error_type="E")]
    assert pipeline.notify_failure([str(tmp_path / "missing-command")], failed) is False
    assert pipeline.notify_failure(["false"], failed) is False
    assert pipeline.notify_failure("http://127.0.0.1:9/unreachable", failed, timeout_s=2) is False


def test_scheduled_run_posts_failures_to_a_webhook(
    small_cfg_path: Path, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook
    outcomes = pipeline.run_scheduled(
        small_cfg_path, as_of=AS_OF, renderer=failing_cell_render, notify=url
    )
    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert pipeline.exit_code(outcomes) == 1
    (post,) = received
    assert post["path"] == "/hooks/qmskpi"
    assert post["content_type"] == "application/json"
    assert post["body"]["exit_code"] == 1
    assert [f["scope"] for f in post["body"]["failed"]] == ["all", "North"]
    assert "ZeroDivisionError" in post["body"]["failed"][0]["error"]
    # No notification when everything succeeds.
    ok = pipeline.run_scheduled(small_cfg_path, as_of=AS_OF, renderer=fake_render, notify=url)
    assert all(o.status == "published" for o in ok)
    assert pipeline.exit_code(ok) == pipeline.EXIT_RULES  # only North is listed: site_known fails
    assert len(received) == 1


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


# =========================================================================== scheduling examples


def cli_accepts(argv: list[str]) -> None:
    """The qmskpi part of a scheduler's command line parses with the real CLI parser."""
    assert Path(argv[0]).name == "qmskpi", argv
    args = build_parser().parse_args(argv[1:])
    assert args.command == "run"


def test_crontab_example_calls_qmskpi_run() -> None:
    lines = [
        ln
        for ln in (EXAMPLES / "crontab").read_text().splitlines()
        if ln.strip() and not ln.startswith("#") and "=" not in ln.split()[0]
    ]
    (entry,) = lines
    fields = entry.split(None, 5)
    minute, hour, dom, month, dow, command = fields
    assert (minute, hour, dom, month, dow) == ("15", "6", "2", "*", "*")
    qmskpi_part = command.split("&&", 1)[1].split(">>", 1)[0]
    cli_accepts(shlex.split(qmskpi_part))


def test_systemd_units_verify(tmp_path: Path) -> None:
    service = (EXAMPLES / "qmskpi-run.service").read_text()
    timer = (EXAMPLES / "qmskpi-run.timer").read_text()
    exec_start = next(ln for ln in service.splitlines() if ln.startswith("ExecStart="))
    cli_accepts(shlex.split(exec_start.removeprefix("ExecStart=")))
    assert "Type=oneshot" in service
    assert "Persistent=true" in timer
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed")
    # verify checks that ExecStart exists: point it at this venv's qmskpi.
    qmskpi_bin = Path(sys.executable).with_name("qmskpi")
    (tmp_path / "qmskpi-run.service").write_text(
        service.replace("/srv/qmskpi/.venv/bin/qmskpi", str(qmskpi_bin))
    )
    (tmp_path / "qmskpi-run.timer").write_text(timer)
    done = subprocess.run(
        [tool, "verify", str(tmp_path / "qmskpi-run.service"), str(tmp_path / "qmskpi-run.timer")],
        capture_output=True,
        text=True,
    )
    problems = [
        ln
        for ln in (done.stdout + done.stderr).splitlines()
        if "qmskpi-run" in ln and "Documentation" not in ln
    ]
    assert done.returncode == 0, done.stdout + done.stderr
    assert problems == []
    calendar = re.search(r"(?m)^OnCalendar=(.+)$", timer)
    assert calendar is not None
    check = subprocess.run([tool, "calendar", calendar.group(1)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_airflow_dag_maps_one_qmskpi_run_task_over_the_scopes(tmp_path: Path) -> None:
    source = (EXAMPLES / "airflow_qmskpi_dag.py").read_text()
    tree = ast.parse(source)
    # The listing task, run as written against a home with the sample config and this venv.
    (lister,) = [
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "qmskpi_scopes"
    ]
    lister.decorator_list = []
    home = tmp_path / "home"
    cfg = copy_sample(home)
    (home / ".venv" / "bin").mkdir(parents=True)
    (home / ".venv" / "bin" / "qmskpi").symlink_to(Path(sys.executable).parent / "qmskpi")
    namespace: dict[str, Any] = {"json": json, "subprocess": subprocess, "ENV": {"TZ": "UTC"}}
    exec(compile(ast.Module([lister], []), "dag", "exec"), namespace)
    envs = namespace["qmskpi_scopes"](str(home))
    scopes = [e["QMSKPI_SCOPE"] for e in envs]
    assert scopes == ["all", *load_config(cfg).sites] == ["all", "North", "South", "East"]
    # The mapped task: BashOperator.partial(...).expand(env=<one env per scope>).
    (expand,) = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "expand"
    ]
    partial = expand.func.value  # type: ignore[attr-defined]
    assert isinstance(partial, ast.Call)
    assert ast.unparse(partial.func) == "BashOperator.partial"
    assert [k.arg for k in expand.keywords] == ["env"]
    kwargs = {k.arg: k.value for k in partial.keywords}
    command = "".join(ast.literal_eval(kwargs["bash_command"]))
    for env in envs:
        rendered = (
            command.replace("{{ params.home }}", "/srv/qmskpi")
            .replace("{{ data_interval_end | ds }}", "2026-11-02")
            .replace("$QMSKPI_SCOPE", env["QMSKPI_SCOPE"])
        )
        assert "{{" not in rendered
        argv = shlex.split(rendered)
        cli_accepts(argv)
        args = build_parser().parse_args(argv[1:])
        assert args.scope == [env["QMSKPI_SCOPE"]]
        assert args.as_of == date(2026, 11, 2)


def test_jupyter_scheduler_notebook_is_a_thin_view_over_the_pipeline() -> None:
    nb = json.loads((EXAMPLES / "scheduled_run.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] for c in code)
    params = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1
    names: dict[str, Any] = {}
    exec("".join(params[0]["source"]), {}, names)  # literals only
    assert set(names) == {"config_path", "since", "force", "jobs"}
    calls = set()
    for cell in code:
        tree = ast.parse("".join(cell["source"]))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                mods = (
                    [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                )
                assert mods == ["qmskpi"]
            assert not isinstance(node, ast.FunctionDef | ast.For | ast.While)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
                calls.add(node.attr)
    assert {"run_scheduled", "outcomes_frame", "require_success"} <= calls
    for name in calls:
        assert hasattr(pipeline, name)


# =========================================================================== the real render


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


@pytest.fixture
def dead_chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An executable that crashes like a Chromium that cannot start."""
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\necho 'chromium: Segmentation fault' >&2\nkill -SEGV $$\n")
    fake.chmod(0o755)
    monkeypatch.setenv("QMSKPI_TEST_CHROMIUM", str(fake))
    return fake


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


# =========================================================================== no browser


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


def test_a_mapping_constant_is_not_measured_in_kpis_and_the_review(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data, ignore=shutil.ignore_patterns("reports"))
    config = data / "qmskpi.toml"
    text = config.read_text(encoding="utf-8")
    mapped = 'date_formats = { promised_date = "%Y-%m-%d", received_date = "%Y-%m-%d" }\n'
    assert mapped in text
    # The export has no rejected quantity: the mapping sets it to 0 for every receipt.
    config.write_text(
        text.replace(
            mapped, mapped + 'ignore_columns = ["qty_rejected"]\nconstants = { qty_rejected = 0 }\n'
        ),
        encoding="utf-8",
    )
    prepared = pipeline.prepare(config, PERIOD, as_of=AS_OF)
    row = prepared.kpis.filter((pl.col("kpi") == "supplier_ppm") & (pl.col("scope") == "all"))
    assert row.select("value", "sound", "note").rows() == [
        (0.0, False, "not measured: qty_rejected is a mapping constant")
    ]
    otd = prepared.kpis.filter((pl.col("kpi") == "supplier_otd_share") & (pl.col("scope") == "all"))
    assert otd["sound"].to_list() == [True]
    tile = next(t for t in prepared.review.tiles if t.kpi == "supplier_ppm")  # a pack tile
    assert (tile.sound, tile.note) == (False, "not measured: qty_rejected is a mapping constant")
    values = {v.kpi: v for v in prepared.review.kpis if v.scope == "all"}
    assert not values["supplier_ppm"].sound


# =========================================================================== backfill (--as-of)

_RECORD_DATE = {
    "shipments": "month",
    "suppliers": "last_evaluation_date",
    "complaints": "received_date",
    "capa": "opened_date",
    "receipts": "received_date",
    "inspections": "inspection_date",
    "objective_results": "month",
    "audit_findings": "audit_date",
    "review_actions": "review_date",
    "surveys": "response_date",
}


def _cut_at(src: Path, dst: Path, as_of: date, spec: synthetic.SyntheticSpec) -> None:
    """The export as it stood on ``as_of``, cut by hand: later records absent, later closures open."""
    frames: dict[str, pl.DataFrame] = {}
    for path in sorted(src.glob("*.csv")):
        f = pl.read_csv(path, try_parse_dates=True, infer_schema_length=None)
        rec = _RECORD_DATE.get(path.stem)
        if rec is not None:
            day = pl.col(rec)
            if f.schema[rec] == pl.String:  # a month, YYYY-MM: dated on its first day
                day = (day + "-01").str.to_date()
            f = f.filter(day.is_null() | (day <= as_of))
        if "closed_date" in f.columns:
            late = pl.col("closed_date") > as_of
            f = f.with_columns(
                pl.when(late).then(pl.lit("open")).otherwise(pl.col("status")).alias("status"),
                *(
                    [pl.when(late).then(False).otherwise(pl.col(c)).alias(c)]
                    if (c := "effectiveness_verified") in f.columns
                    else []
                ),
                pl.when(late).then(None).otherwise(pl.col("closed_date")).alias("closed_date"),
            )
        frames[path.stem] = f
    synthetic.write(frames, dst, spec=spec)


def test_backfill_leaves_out_rows_after_as_of_like_an_export_cut_then(tmp_path: Path) -> None:
    # An export that already holds November; the October pack restated as of 2 November.
    spec = synthetic.SyntheticSpec(sites=1, months=14, end_month="2026-11")
    synthetic.sample(tmp_path / "nov", spec)
    as_of = date(2026, 11, 2)
    _cut_at(tmp_path / "nov", tmp_path / "cut", as_of, spec)

    late = pipeline.prepare(tmp_path / "nov" / "qmskpi.toml", "2026-10", as_of=as_of)
    cut = pipeline.prepare(tmp_path / "cut" / "qmskpi.toml", "2026-10", as_of=as_of)

    v = late.validation
    assert v.unsound_datasets == frozenset()
    assert v.quarantine.filter(pl.col("rule").str.ends_with("_not_future")).height == 0
    for name, dv in v.datasets.items():
        assert dv.rows_in == dv.rows_used + dv.rows_quarantined + dv.rows_excluded, name
        assert dv.rows_used == cut.validation.datasets[name].rows_used, name
    # November's complaints were read and left out, not quarantined.
    complaints = pl.read_csv(tmp_path / "nov" / "complaints.csv", try_parse_dates=True)
    expected = complaints.filter(pl.col("received_date") > as_of).height
    assert expected > 0
    assert v.datasets["complaints"].excluded_by == {"after_as_of": expected}
    assert cut.validation.datasets["complaints"].rows_excluded == 0
    # The KPIs are those of the export cut on as_of.
    assert late.kpis["sound"].all()
    assert late.kpis.equals(cut.kpis)
    ledger = late.review.table("ledger")
    assert ledger is not None
    excluded = dict(zip(ledger.column("dataset"), ledger.column("rows_excluded"), strict=True))
    assert excluded["complaints"] == f"{expected} after_as_of"


def test_as_of_is_part_of_the_inputs_digest() -> None:
    rec = archive.InputRecord("complaints", "x.csv", "ab" * 32, 10)
    base = {"config_digest": "c", "version": "1", "period": "2026-10", "scope": "all"}
    now = archive.inputs_digest([rec], **base)
    assert archive.inputs_digest([rec], **base, as_of=None) == now
    backfill = archive.inputs_digest([rec], **base, as_of=date(2026, 11, 2))
    assert backfill != now
    assert backfill != archive.inputs_digest([rec], **base, as_of=date(2026, 11, 3))


@pytest.mark.notebook
@pytest.mark.browser
@pytest.mark.timeout(900)
def test_jupyter_scheduler_notebook_renders_with_force_and_one_job(tmp_path: Path) -> None:
    """The recipe as jupyter-scheduler runs it: papermill, a kernel with a running asyncio loop."""
    import papermill

    cfg = copy_sample(tmp_path / "data", sites=("North",))
    cfg.write_text(cfg.read_text().replace("[review]\n", "[review]\nas_of = 2026-11-05\n", 1))
    out = tmp_path / "scheduled_run.ipynb"
    papermill.execute_notebook(
        str(EXAMPLES / "scheduled_run.ipynb"),
        str(out),
        parameters={"config_path": str(cfg), "force": True, "jobs": 1},
        kernel_name="python3",
        cwd=str(tmp_path),
        execution_timeout=600,
        progress_bar=False,
        log_output=False,
    )  # raises PapermillExecutionError when require_success raises
    for scope in ("all", "north"):
        pack = reports(cfg) / "2026-10" / scope
        assert (pack / "management-review.pdf").read_bytes().startswith(b"%PDF-"), scope
        assert (pack / "management-review.html").is_file()


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


def test_a_scheduled_run_counts_its_packs(small_cfg_path: Path) -> None:
    seen: list[progress.Event] = []
    with progress.listening(seen.append):
        outcomes = pipeline.run_scheduled(
            small_cfg_path, as_of=AS_OF, since="2026-09", renderer=fake_render
        )
    packs = [(e.period, e.scope, e.index, e.total) for e in seen if e.stage == "pack"]
    # 2 periods x 2 scopes, oldest period first, the whole organisation first
    assert packs == [
        ("2026-09", "all", 1, 4),
        ("2026-09", "North", 2, 4),
        ("2026-10", "all", 3, 4),
        ("2026-10", "North", 4, 4),
    ]
    assert [o.status for o in outcomes] == ["published"] * 4


# =========================================================================== analysts: reuse, display

EVIL_ORG = "<script>alert(1)</script> & Co"


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[pipeline.Prepared, Path]:
    """The sample review of a hostile-named organisation, prepared once and saved."""
    base = tmp_path_factory.mktemp("saved")
    cfg = copy_sample(base / "data", organisation=EVIL_ORG)
    folder = base / "prepared"
    prepared = pipeline.prepare(cfg, PERIOD, "all", as_of=AS_OF, save_to=folder)
    return prepared, folder


def test_prepared_repr_is_short_and_its_html_escapes_the_organisation(
    saved: tuple[pipeline.Prepared, Path],
) -> None:
    prepared, _ = saved
    v = prepared.validation
    text = repr(prepared)
    assert len(text) < 300
    assert text.startswith(f"<Prepared {PERIOD} 'all' of {EVIL_ORG!r}: 14 datasets (0 unsound), ")
    sound = prepared.kpis.filter(pl.col("sound")).height
    assert f"{prepared.kpis.height:,} KPI rows ({sound:,} sound)" in text
    assert f"{len(prepared.review.trends)} trends" in text
    page = prepared._repr_html_()
    assert len(page) < 3_000
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in page
    rows_in = sum(d.rows_in for d in v.datasets.values())
    assert f"{rows_in:,} in" in page


def test_a_saved_prepared_review_is_reused_without_loading_or_validating(
    saved: tuple[pipeline.Prepared, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    prepared, folder = saved

    def must_not_run(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("reloaded instead of reusing the saved review")

    monkeypatch.setattr(pipeline, "load_inputs", must_not_run)
    monkeypatch.setattr(pipeline.contracts, "validate", must_not_run)
    again = pipeline.prepared_for("", PERIOD, "all", prepared_path=folder)
    assert again.config == prepared.config
    assert again.review == prepared.review
    assert again.kpis.equals(prepared.kpis)
    assert again.validation.to_json() == prepared.validation.to_json()
    assert again.validation.clean.keys() == prepared.validation.clean.keys()
    for name, frame in prepared.validation.clean.items():
        assert again.validation.clean[name].equals(frame), name
    assert again.loaded.keys() == prepared.loaded.keys()
    meta = json.loads((folder / pipeline.PREPARED_META).read_text())
    assert meta["period"] == PERIOD
    assert meta["scope"] == "all"
    assert meta["as_of"] == "2026-11-05"
    assert {r["dataset"] for r in meta["inputs"]} == set(prepared.loaded)


def test_a_saved_prepared_review_refuses_another_period_scope_or_stale_inputs(
    saved: tuple[pipeline.Prepared, Path],
) -> None:
    prepared, folder = saved
    with pytest.raises(
        pipeline.PreparedError, match="prepared for period '2026-10', not '2026-09'"
    ):
        pipeline.load_prepared(folder, period="2026-09")
    site = prepared.config.sites[0]
    with pytest.raises(pipeline.PreparedError, match=f"prepared for scope 'all', not '{site}'"):
        pipeline.load_prepared(folder, scope=site)
    assert prepared.config.path is not None
    complaints = prepared.config.path.parent / "complaints.csv"
    original = complaints.read_bytes()
    try:
        complaints.write_bytes(original + original.splitlines(keepends=True)[-1])
        with pytest.raises(pipeline.PreparedError, match=f"stale: {complaints} changed"):
            pipeline.load_prepared(folder)
    finally:
        complaints.write_bytes(original)
    other = copy_sample(folder.parent / "other", organisation="Someone Else")
    with pytest.raises(pipeline.PreparedError, match="not the config it was prepared with"):
        pipeline.load_prepared(folder, config=other)
    again = pipeline.load_prepared(folder, period=PERIOD, scope="all")
    assert again.review == prepared.review
    assert again.as_of == prepared.as_of == AS_OF  # notebooks pass it on: the pack's figures


def test_a_saved_prepared_review_runs_no_foreign_code(
    saved: tuple[pipeline.Prepared, Path], tmp_path: Path
) -> None:
    import pickle

    _, folder = saved
    copy = tmp_path / "prepared"
    shutil.copytree(folder, copy)
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {shlex.quote(str(marker))}",))

    blob = pickle.dumps({"x": Payload()})
    (copy / pipeline.PREPARED_DATA).write_bytes(blob)
    with pytest.raises(pipeline.PreparedError, match=r"does not match prepared\.json"):
        pipeline.load_prepared(copy)
    meta = json.loads((copy / pipeline.PREPARED_META).read_text())
    meta["data_sha256"] = hashlib.sha256(blob).hexdigest()  # a forger who also edits the meta
    (copy / pipeline.PREPARED_META).write_text(json.dumps(meta))
    with pytest.raises(pipeline.PreparedError, match=r"refuses to load posix\.system"):
        pipeline.load_prepared(copy)
    assert not marker.exists()
