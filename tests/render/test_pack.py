"""render.pack: render_pack (the three files, its own browser, no Chromium), the shipped notebooks, the real pack.

Real kernel, real nbconvert, real Chromium; the real pack runs the shipped notebook on the sample data.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
from pathlib import Path

import nbformat
import pytest

from browser import (
    mark_chart_edges,
    offline_page,
    overflowing_charts,
    overflowing_tables,
    pdf_pages_text,
    split_charts,
)
from qmskpi import render
from qmskpi.errors import RenderError
from render.helpers import (
    ROOT,
    Pack,
    browser_main_processes,
    fetched_urls,
    kernel_processes,
    make_notebook,
    stray_chromium,
)


@pytest.mark.notebook
@pytest.mark.browser
def test_render_pack_writes_the_three_files_and_times_each_step(pack: Pack) -> None:
    stage = pack.work / "stage"
    assert pack.executed == stage / "management-review.ipynb"
    assert pack.html == stage / "management-review.html"
    assert pack.pdf == stage / "management-review.pdf"
    assert all(p.stat().st_size > 0 for p in (pack.executed, pack.html, pack.pdf))
    assert set(pack.result.timings) == {"execute", "html", "pdf"}
    assert all(s > 0 for s in pack.result.timings.values())
    assert sorted(p.name for p in stage.iterdir()) == [
        "management-review.html",
        "management-review.ipynb",
        "management-review.pdf",
    ]


def test_packaged_notebook_unknown_name_lists_the_available() -> None:
    with pytest.raises(RenderError, match="no packaged notebook 'nope'"):
        render.packaged_notebook("nope")


@pytest.mark.notebook
@pytest.mark.browser
def test_render_pack_without_a_browser_starts_and_closes_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, printer: render.PdfPrinter
) -> None:
    """Chromium launches in a thread of its own while the kernel runs, and is gone afterwards."""
    source = make_notebook(
        tmp_path / "tiny.ipynb", ("md", "# Tiny pack"), ("code", "print(40 + 2)")
    )
    monkeypatch.setattr("qmskpi.render.pack.packaged_notebook", lambda name: source)
    printer.start()
    before = browser_main_processes()
    result = render.render_pack(
        tmp_path / "stage", notebook="tiny", parameters={}, title="Tiny", timeout_s=60
    )
    assert result.pdf_path is not None
    assert "Tiny pack" in " ".join(pdf_pages_text(result.pdf_path))
    assert set(result.timings) == {"execute", "html", "pdf"}
    assert browser_main_processes() == before
    assert stray_chromium(before) == []
    assert kernel_processes() == []


def test_render_pack_without_chromium_fails_before_the_kernel_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QMSKPI_CHROMIUM", str(tmp_path / "nothing-here"))
    with pytest.raises(render.ChromiumNotFoundError, match="is not an executable file"):
        render.render_pack(tmp_path / "stage", parameters={}, title="t", timeout_s=60)
    assert not (tmp_path / "stage" / "management-review.ipynb").exists()
    assert kernel_processes() == []


REAL_NOTEBOOK = ROOT / "notebooks" / "management_review.ipynb"
SAMPLE_CONFIG = ROOT / "sample_data" / "qmskpi.toml"


def _real_pack_ready() -> bool:
    if not (REAL_NOTEBOOK.is_file() and SAMPLE_CONFIG.is_file()):
        return False
    try:
        from qmskpi import pipeline
    except ImportError:
        return False
    return hasattr(pipeline, "review_for") and hasattr(pipeline, "prepare")


@pytest.fixture(scope="module")
def real_pack(tmp_path_factory: pytest.TempPathFactory, printer: render.PdfPrinter) -> Pack:
    """The packaged management_review notebook on the sample data, as a scheduled run renders it."""
    if not _real_pack_ready():
        pytest.skip("management_review.ipynb, sample_data or pipeline.review_for not there yet")
    from qmskpi import pipeline

    work = tmp_path_factory.mktemp("real")
    stage = work / "stage"
    stage.mkdir()
    prepared = pipeline.prepare(SAMPLE_CONFIG, "2026-10", "all")
    result = _render_sample(stage, prepared.review.to_json(), printer)
    assert result.pdf_path is not None
    return Pack(
        REAL_NOTEBOOK, result.notebook_path, result.html_path, result.pdf_path, work, result
    )


def _render_sample(
    stage: Path, review_inputs: str, printer: render.PdfPrinter
) -> render.RenderResult:
    """Render the packaged notebook for the sample, 2026-10, from this review-inputs.json text."""
    inputs = stage / "review-inputs.json"
    inputs.write_text(review_inputs, encoding="utf-8")
    return render.render_pack(
        stage,
        parameters={
            "period": "2026-10",
            "scope": "all",
            "config_path": str(SAMPLE_CONFIG),
            "review_inputs": str(inputs),
        },
        title="Acme Components Ltd — management review inputs 2026-10 (all)",
        timeout_s=300,
        browser=printer,
    )


def _input_sections() -> list[tuple[str, str]]:
    from qmskpi import review

    return [(e.ref, e.title) for e in review.ISO9001_2015.entries if e.role == "input"]


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.browser
def test_real_pack_html_is_offline_with_plotlyjs_once(real_pack: Pack) -> None:
    text = real_pack.html.read_text(encoding="utf-8")
    assert fetched_urls(text) == []
    assert text.count("plotly.js v") == 1
    assert re.search(r"<script[^>]*\bsrc=", text) is None
    body = text[text.index("<body") :]
    assert "from qmskpi import" not in body  # no code


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.browser
def test_real_pack_in_a_real_browser(real_pack: Pack, printer: render.PdfPrinter) -> None:
    """No console/page error, no request at all beyond the file, every chart drawn, every 9.3.2 heading."""
    figures = real_pack.html.read_text(encoding="utf-8").count('class="plotly-graph-div"')
    with offline_page(printer.browser, real_pack.html, timeout_s=60) as (page, report):
        headings = [
            " ".join(h.split())
            for h in page.eval_on_selector_all("h1, h2, h3", "els => els.map(e => e.innerText)")
        ]
    assert report.problems() == []
    assert figures > 10
    assert report.charts_expected == figures
    assert report.charts_drawn == figures
    for ref, title in _input_sections():
        assert any(h.startswith(f"{ref} {title}") for h in headings), (ref, title, headings)


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.browser
def test_real_pack_pdf_has_every_section_and_no_chart_cut(
    real_pack: Pack, printer: render.PdfPrinter, tmp_path: Path
) -> None:
    """Every 9.3.2 heading is in the PDF text; every chart's top and bottom edge print on one page."""
    pages = pdf_pages_text(real_pack.pdf)
    text = " ".join(" ".join(pages).split())
    for ref, title in _input_sections():
        assert f"{ref} {title}" in text, (ref, title)
    assert f"Page {len(pages)} of {len(pages)}" in text

    marked = tmp_path / "marked.pdf"
    with printer.page() as page:
        render.open_for_print(page, real_pack.html, timeout_s=60)
        count = mark_chart_edges(page)
        wide = overflowing_charts(page)
        wide_tables = overflowing_tables(page)
        render.print_loaded_page(page, marked, title="t")
    assert count == real_pack.html.read_text(encoding="utf-8").count('class="plotly-graph-div"')
    assert wide == []
    assert wide_tables == []
    assert split_charts(pdf_pages_text(marked), count) == {}


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.browser
def test_a_provisional_clause_map_is_labelled_on_the_cover_and_every_printed_page(
    tmp_path: Path, printer: render.PdfPrinter
) -> None:
    """[review] standard = "ISO 9001:2026": the packaged notebook, rendered for real, says
    "provisional" on the cover and in the footer of each page of the PDF."""
    if not _real_pack_ready():
        pytest.skip("management_review.ipynb, sample_data or pipeline.review_for not there yet")
    from qmskpi import config, pipeline

    cfg = config.load_config(SAMPLE_CONFIG)
    cfg = dataclasses.replace(cfg, review=dataclasses.replace(cfg.review, standard="ISO 9001:2026"))
    prepared = pipeline.prepare(cfg, "2026-10", "all")
    assert prepared.review.meta.clause_map_provisional
    result = _render_sample(tmp_path, prepared.review.to_json(), printer)
    label = "PROVISIONAL clause map: ISO 9001:2026 clause 9.3 Management review (provisional)"
    assert label in html.unescape(result.html_path.read_text(encoding="utf-8"))
    assert result.pdf_path is not None
    pages = [" ".join(p.split()) for p in pdf_pages_text(result.pdf_path)]
    assert len(pages) > 5
    on_pages = [i + 1 for i, text in enumerate(pages) if label in text]
    # the cover shows it twice (notice and footer); every other page once, in the footer
    assert on_pages == list(range(1, len(pages) + 1))
    assert pages[0].count(label) == 2


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.browser
def test_real_pack_holds_plotlyjs_once_and_a_small_truthful_notebook(real_pack: Pack) -> None:
    """plotly.js (~4.8 MB) is in the HTML once; the executed notebook says where it went."""
    text = real_pack.html.read_text(encoding="utf-8")
    assert text.count("plotly.js v") == 1
    raw = real_pack.executed.read_text(encoding="utf-8")
    # only the note that replaced it names plotly.js, with the version that ran
    assert raw.count("plotly.js v") == 1
    assert f"plotly.js v{_plotly_version(text)} ran here" in raw
    assert real_pack.executed.stat().st_size < 1_500_000
    nb = nbformat.read(str(real_pack.executed), as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    # every chart's own output is still there, as it ran
    assert sum(
        str(o.get("data", {}).get("text/html", "")).count("Plotly.newPlot") for o in outputs
    ) == (text.count("Plotly.newPlot"))
    assert all(o.get("output_type") != "error" for o in outputs)


def _plotly_version(text: str) -> str:
    found = re.search(r"plotly\.js v([0-9.]+)", text)
    assert found is not None
    return found.group(1)


def _synthetic_pack(
    work: Path, printer: render.PdfPrinter, *, sites: int, scale: float, pdf: bool
) -> render.RenderResult:
    """A pack of generated data (13 months ending 2026-10), rendered as a scheduled run does."""
    from qmskpi import pipeline, synthetic

    data = work / "data"
    synthetic.sample(data, synthetic.SyntheticSpec(sites=sites, months=13, scale=scale))
    prepared = pipeline.prepare(data / "qmskpi.toml", "2026-10", "all")
    stage = work / "stage"
    stage.mkdir()
    inputs = stage / "review-inputs.json"
    inputs.write_text(prepared.review.to_json(), encoding="utf-8")
    return render.render_pack(
        stage,
        parameters={
            "period": "2026-10",
            "scope": "all",
            "config_path": str(data / "qmskpi.toml"),
            "review_inputs": str(inputs),
        },
        title="t",
        timeout_s=300,
        pdf=pdf,
        browser=printer,
    )


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.browser
@pytest.mark.parametrize("sites", [3, 12, 50])
def test_every_table_and_chart_fits_a4_width(
    sites: int, printer: render.PdfPrinter, tmp_path: Path
) -> None:
    """Per-site tables and charts stay inside the printable width of A4 for 3, 12 and 50 sites."""
    result = _synthetic_pack(tmp_path, printer, sites=sites, scale=0.1, pdf=False)
    text = result.html_path.read_text(encoding="utf-8")
    with printer.page() as page:
        render.open_for_print(page, result.html_path, timeout_s=60)
        width = page.evaluate("() => document.documentElement.clientWidth")
        tables = page.evaluate("() => document.querySelectorAll('table').length")
        charts = page.evaluate("() => document.querySelectorAll('.js-plotly-plot').length")
        wide_tables = overflowing_tables(page)
        wide_charts = overflowing_charts(page)
    assert width == render.PRINT_WIDTH_PX
    assert tables > 10
    assert charts == text.count('class="plotly-graph-div"') > 5
    assert wide_tables == []
    assert wide_charts == []
    if sites > 4:  # worst and best site instead of a column per site
        assert "Worst site" in text
    if sites > 8:
        assert f"and {sites - 8} more" in text  # site signals: the other sites' columns


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.browser
def test_page_count_does_not_grow_with_rows(printer: render.PdfPrinter, tmp_path: Path) -> None:
    """3 times the rows (complaints, inspections, receipts ...): the same pack length.

    Below ``max_rows`` a list grows with the data; from scale 4 (13 months, 3 sites)
    every list of the pack is at its bound, and the pack stops growing.
    """
    pages = {}
    more = {}
    for scale in (4.0, 12.0):
        work = tmp_path / f"scale-{scale}"
        work.mkdir()
        result = _synthetic_pack(work, printer, sites=3, scale=scale, pdf=True)
        assert result.pdf_path is not None
        pages[scale] = len(pdf_pages_text(result.pdf_path))
        model = json.loads((work / "stage" / "review-inputs.json").read_text())
        crit = next(t for t in model["tables"] if t["id"] == "critical_complaints")
        more[scale] = crit["more"]
        assert len(crit["rows"]) <= 10
    # the larger data has pages of critical complaints the pack does not print ...
    assert more[12.0] > 300
    assert more[12.0] > 2 * more[4.0]
    # ... and the pack is as long (a line of wrapped text may differ)
    assert pages[12.0] <= pages[4.0] + 1, pages
