"""render.pdf: printing in a real Chromium, offline, A4, charts drawn, no chart cut, no browser left.

Real Chromium, one for the package (conftest.py).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import psutil
import pytest

from browser import (
    mark_chart_edges,
    offline_page,
    overflowing_charts,
    pdf_pages_text,
    split_charts,
)
from qmskpi import render
from render.helpers import N_CHARTS, TITLE, XSS, Pack, browser_main_processes, stray_chromium


@pytest.mark.browser
def test_harness_sees_scripts_that_run_and_requests_that_leave(
    tmp_path: Path, printer: render.PdfPrinter
) -> None:
    """The browser checks below would fail on a page that runs injected code or goes online."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><body><script>alert('ran')</script>"
        '<img src="https://example.invalid/x.png"><script>console.error("oops")</script>'
        "<script>undefinedFunction()</script></body></html>"
    )
    with offline_page(printer.browser, bad, wait_for_charts=False) as (_, report):
        pass
    assert report.dialogs == ["alert: ran"]
    assert report.blocked_requests == ["https://example.invalid/x.png"]
    assert len(report.failed_requests) == 1
    assert sorted(report.console_errors) == ["Failed to load resource: net::ERR_FAILED", "oops"]
    assert len(report.page_errors) == 1


@pytest.mark.notebook
@pytest.mark.browser
def test_pack_works_offline_in_a_real_browser(pack: Pack, printer: render.PdfPrinter) -> None:
    with offline_page(printer.browser, pack.html) as (page, report):
        body = page.inner_text("body")
        xss_ran = page.evaluate(
            "() => document.querySelectorAll('.free-text script, .free-text img').length"
        )
        title = page.title()
    assert report.problems() == []
    assert report.charts_expected == N_CHARTS
    assert report.charts_drawn == N_CHARTS
    assert report.chart_ids == [f"fig-{i}" for i in range(1, N_CHARTS + 1)]
    assert XSS in body  # shown literally
    assert xss_ran == 0  # parsed as text, not as elements
    assert title == TITLE


@pytest.mark.notebook
@pytest.mark.browser
def test_pdf_is_a4_with_every_heading_page_numbers_and_literal_text(pack: Pack) -> None:
    info = subprocess.run(
        ["pdfinfo", str(pack.pdf)], capture_output=True, text=True, check=True
    ).stdout
    assert re.search(r"Page size:\s+595\.\d+ x 842\.\d+ pts \(A4\)", info)
    pages = pdf_pages_text(pack.pdf)
    assert len(pages) >= 2
    text = " ".join(" ".join(pages).split())
    for heading in (
        "Section A: customers",
        "Section B: free text from the data",
        "Section C: the end",
    ):
        assert heading in text
    assert f"Page 1 of {len(pages)}" in text
    assert b"/Outlines" in pack.pdf.read_bytes()  # bookmarks from the headings
    assert 'alert("xss-script")' in text  # the payload printed as text
    assert "xss-title" in " ".join(pages[0].split())  # the header shows the (escaped) title


@pytest.mark.notebook
@pytest.mark.browser
def test_no_chart_is_cut_by_a_page_break(
    pack: Pack, printer: render.PdfPrinter, tmp_path: Path
) -> None:
    """Print with a marker at each chart's top and bottom edge; both must land on one page.

    The markers are absolutely positioned inside the chart box, so they change
    no layout; pdftotext tells on which page each one was printed. The same
    page with ``break-inside`` forced to ``auto`` is the control: there a chart
    straddles pages 1 and 2 and the check must see it.
    """

    def print_marked(css: str) -> tuple[int, dict[int, tuple[list[int], list[int]]], list[str]]:
        pdf = tmp_path / f"marked{len(css)}.pdf"
        with printer.page() as page:
            render.open_for_print(page, pack.html, timeout_s=30)
            if css:
                page.add_style_tag(content=css)
            count = mark_chart_edges(page)
            wide = overflowing_charts(page)
            render.print_loaded_page(page, pdf, title="t")
        return count, split_charts(pdf_pages_text(pdf), count), wide

    count, split, wide = print_marked("")
    assert count == N_CHARTS
    assert split == {}
    assert wide == []
    count, split, _ = print_marked(
        "* { break-inside: auto !important; page-break-inside: auto !important; }"
    )
    assert split, "control: without break-inside: avoid a chart should straddle a page break"


@pytest.mark.browser
def test_a_chart_that_never_draws_raises_and_leaves_no_browser(
    tmp_path: Path, printer: render.PdfPrinter
) -> None:
    """print_pdf starts its own browser (beside the package's running one) and always closes it."""
    printer.start()
    page = tmp_path / "never.html"
    page.write_text(
        '<!DOCTYPE html><html><body><div class="plotly-graph-div" id="fig-never"></div>'
        '<div class="plotly-graph-div js-plotly-plot" id="fig-ok"></div></body></html>'
    )
    before = browser_main_processes()  # the package's shared printer
    assert len(before) == 1, [" ".join(psutil.Process(p).cmdline())[:200] for p in before]
    with pytest.raises(render.ChartsNotDrawnError) as info:
        render.print_pdf(page, tmp_path / "never.pdf", timeout_s=1)
    assert info.value.chart_ids == ("fig-never",)
    assert "fig-never" in str(info.value)
    assert not (tmp_path / "never.pdf").exists()
    assert browser_main_processes() == before
    assert stray_chromium(before) == []


@pytest.mark.browser
def test_a_shared_printer_survives_a_failed_page(
    printer: render.PdfPrinter, tmp_path: Path
) -> None:
    bad = tmp_path / "never.html"
    bad.write_text('<html><body><div class="plotly-graph-div" id="fig-x"></div></body></html>')
    with pytest.raises(render.ChartsNotDrawnError):
        render.print_pdf(bad, tmp_path / "x.pdf", timeout_s=1, printer=printer)
    good = tmp_path / "good.html"
    good.write_text("<html><body><h1>Still printing</h1></body></html>")
    out = render.print_pdf(good, tmp_path / "ok.pdf", timeout_s=30, printer=printer)
    assert "Still printing" in " ".join(pdf_pages_text(out))


def test_printer_reports_a_missing_chromium(tmp_path: Path) -> None:
    with (
        pytest.raises(render.ChromiumNotFoundError, match="Chromium not found") as info,
        render.PdfPrinter(executable=tmp_path / "nope"),
    ):
        pass
    assert render.install_command() in str(info.value)
