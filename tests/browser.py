"""A small real-browser harness for tests: open a local page offline and report what happened.

Reusable by any test that checks an HTML file qmskpi writes (the pack,
``reports/index.html``)::

    from browser import offline_page
    from qmskpi.render import PdfPrinter

    with PdfPrinter() as printer, offline_page(printer.browser, path) as (page, report):
        assert report.problems() == []
        assert report.charts_drawn == report.charts_expected

Every request that is not ``file:``/``data:``/``blob:`` is aborted (and so also
shows up as a failed request). The report lists console errors, page errors,
failed and blocked requests, JavaScript dialogs (``alert`` from an injected
``<script>`` or ``onerror``), and counts charts (``.plotly-graph-div``) and
drawn charts (``.js-plotly-plot``).

For print layout checks, :func:`mark_chart_edges` puts a text marker at the top
and the bottom edge of every drawn chart; :func:`split_charts` then reads the
printed PDF's pages (``pdftotext``) and names every chart whose two markers
landed on different pages, i.e. a chart cut by a page break.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from playwright.sync_api import Browser, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

LOCAL_SCHEMES = ("file:", "data:", "blob:")


@dataclass
class PageReport:
    """What a page did while it loaded and drew its charts."""

    url: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    blocked_requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    charts_expected: int = 0
    charts_drawn: int = 0
    chart_ids: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Every console error, page error, failed or blocked request and dialog."""
        return [
            *(f"console error: {m}" for m in self.console_errors),
            *(f"page error: {m}" for m in self.page_errors),
            *(f"failed request: {m}" for m in self.failed_requests),
            *(f"blocked request: {m}" for m in self.blocked_requests),
            *(f"dialog: {m}" for m in self.dialogs),
        ]


@contextlib.contextmanager
def offline_page(
    browser: Browser,
    html: Path,
    *,
    media: Literal["screen", "print"] = "screen",
    viewport: tuple[int, int] = (1280, 900),
    timeout_s: float = 30,
    wait_for_charts: bool = True,
) -> Iterator[tuple[Page, PageReport]]:
    """Open ``html`` from disk with the network cut off; yield the page and its report.

    Waits for ``load`` and, with ``wait_for_charts``, until every
    ``.plotly-graph-div`` is drawn or ``timeout_s`` passes (the counts in the
    report tell which). The report keeps filling while the page is open.
    """
    url = Path(html).resolve().as_uri()
    report = PageReport(url=url)
    context = browser.new_context(
        viewport={"width": viewport[0], "height": viewport[1]}, service_workers="block"
    )
    try:
        page = context.new_page()

        def _route(route: Any) -> None:
            if route.request.url.startswith(LOCAL_SCHEMES):
                route.continue_()
            else:
                report.blocked_requests.append(route.request.url)
                route.abort()

        def _dialog(dialog: Any) -> None:
            report.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.route("**/*", _route)
        page.on(
            "console",
            lambda msg: report.console_errors.append(msg.text) if msg.type == "error" else None,
        )
        page.on("pageerror", lambda exc: report.page_errors.append(str(exc)))
        page.on(
            "requestfailed",
            lambda req: report.failed_requests.append(f"{req.url} ({req.failure})"),
        )
        page.on("dialog", _dialog)
        page.emulate_media(media=media)
        page.goto(url, wait_until="load", timeout=timeout_s * 1000)
        if wait_for_charts:
            with contextlib.suppress(PlaywrightTimeout):
                page.wait_for_function(
                    """() => Array.from(document.querySelectorAll('.plotly-graph-div'))
                        .every(el => el.classList.contains('js-plotly-plot'))""",
                    timeout=timeout_s * 1000,
                )
        page.evaluate(
            "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
        )
        report.charts_expected = page.locator(".plotly-graph-div").count()
        report.charts_drawn = page.locator(".js-plotly-plot").count()
        report.chart_ids = page.eval_on_selector_all(
            ".plotly-graph-div", "els => els.map(e => e.id)"
        )
        yield page, report
    finally:
        context.close()


_MARK_JS = """() => {
  const charts = Array.from(document.querySelectorAll('.js-plotly-plot'));
  charts.forEach((el, i) => {
    if (getComputedStyle(el).position === 'static') el.style.position = 'relative';
    for (const edge of ['top', 'bottom']) {
      const m = document.createElement('span');
      m.textContent = `QMSKPIEDGE${edge.toUpperCase()}${i}X`;
      m.style.cssText = `position:absolute;left:0;${edge}:0;font:6px/6px monospace;` +
                        'color:#000;background:#fff;z-index:99999;white-space:nowrap';
      el.appendChild(m);
    }
  });
  return charts.length;
}"""


def mark_chart_edges(page: Page) -> int:
    """Put a text marker at the top and bottom edge of every drawn chart; return the count.

    Absolutely positioned inside the chart box, the markers do not change the
    layout; when printed, each lands on the page where that edge of the chart is.
    """
    return int(page.evaluate(_MARK_JS))


def pdf_pages_text(pdf: Path) -> list[str]:
    """The text of each page of ``pdf`` (``pdftotext``), in page order."""
    out = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    pages = out.split("\f")
    if pages and not pages[-1].strip():
        pages.pop()
    return pages


def split_charts(pages: list[str], count: int) -> dict[int, tuple[list[int], list[int]]]:
    """Charts (by marker index) whose top and bottom edge are not both on one page.

    Returns ``{chart: (pages with its top marker, pages with its bottom marker)}``
    (1-based pages) for every chart that is cut or whose markers are missing.
    """
    bad: dict[int, tuple[list[int], list[int]]] = {}
    for i in range(count):
        top = [n for n, t in enumerate(pages, 1) if re.search(rf"QMSKPIEDGETOP{i}X", t)]
        bottom = [n for n, t in enumerate(pages, 1) if re.search(rf"QMSKPIEDGEBOTTOM{i}X", t)]
        if len(top) != 1 or top != bottom:
            bad[i] = (top, bottom)
    return bad


def overflowing_charts(page: Page) -> list[str]:
    """Ids of drawn charts wider than the page's layout width (cut at the right edge)."""
    return list(
        page.evaluate(
            """() => {
              const w = document.documentElement.clientWidth;
              return Array.from(document.querySelectorAll('.js-plotly-plot'))
                .filter(el => el.getBoundingClientRect().right > w + 0.5 ||
                              el.getBoundingClientRect().left < -0.5)
                .map(el => el.id);
            }"""
        )
    )


def overflowing_tables(page: Page) -> list[str]:
    """Ids of the blocks whose table is wider than the page's layout width (cut at the right)."""
    return list(
        page.evaluate(
            """() => {
              const w = document.documentElement.clientWidth;
              return Array.from(document.querySelectorAll('table'))
                .filter(el => el.getBoundingClientRect().right > w + 0.5 ||
                              el.getBoundingClientRect().left < -0.5)
                .map(el => (el.closest('[id]') || {id: '(no id)'}).id);
            }"""
        )
    )
