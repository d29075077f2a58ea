"""render: notebook execution, offline HTML, Chromium PDF and the CSV/XLSX/JSON exports.

Real kernel, real nbconvert, real Chromium. Kernels and browsers are heavy on
two shared cores, so one small notebook is executed, exported and printed once
per module (``pack``) and many things are asserted on it; the failure tests use
one-cell notebooks.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import json
import re
import subprocess
import tempfile
import zipfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import openpyxl
import polars as pl
import psutil
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

ROOT = Path(__file__).resolve().parent.parent

XSS = '<script>alert("xss-script")</script><img src=x onerror=alert("xss-img")> & "quoted"'
TITLE = 'Acme <script>alert("xss-title")</script> — review 2026-10 (all)'
N_CHARTS = 4


# --------------------------------------------------------------------------- helpers


def make_notebook(path: Path, *cells: tuple[str, str] | tuple[str, str, list[str]]) -> Path:
    """Write a notebook of ``(kind, source[, tags])`` cells; kind is "code" or "md"."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for kind, source, *rest in cells:
        meta = {"tags": rest[0]} if rest else {}
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(source, metadata=meta))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(source, metadata=meta))
    nbformat.write(nb, path)
    return path


def kernel_processes() -> list[psutil.Process]:
    """ipykernel processes descending from this test process."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if "ipykernel" in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def chromium_processes() -> list[psutil.Process]:
    """Chromium processes descending from this test process."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if "chrom" in proc.name().lower() and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def browser_main_processes() -> set[int]:
    """Pids of the Chromium browser processes (not their renderer/GPU/zygote helpers)."""
    mains = set()
    for proc in chromium_processes():
        try:
            cmd = proc.cmdline()
            if (
                cmd
                and Path(cmd[0]).name == "chromium"
                and not any(a.startswith("--type=") for a in cmd)
            ):
                mains.add(proc.pid)
        except psutil.Error:
            continue
    return mains


def stray_chromium(mains: set[int]) -> list[int]:
    """Chromium processes that are not one of ``mains`` or a helper of one of them."""
    stray = []
    for proc in chromium_processes():
        try:
            if proc.pid not in mains and not {p.pid for p in proc.parents()} & mains:
                stray.append(proc.pid)
        except psutil.NoSuchProcess:
            continue
    return stray


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


DEMO_CELLS = (
    ("code", 'payload = ""\nrecord = "kernel.json"', ["parameters"]),
    ("md", "# Section A: customers\n\nThe analyst's text."),
    (
        "code",
        "import html, json, os, sys\n"
        "import plotly.graph_objects as go\n"
        "import plotly.io as pio\n"
        "from IPython.display import HTML, display\n"
        "from ipykernel.kernelapp import IPKernelApp\n"
        "with open('/proc/net/unix') as fh:\n"
        "    bound = 'qmskpi-kernel-' in fh.read()\n"
        "with open(record, 'w') as fh:\n"
        "    json.dump({'cwd': os.getcwd(), 'transport': IPKernelApp.instance().transport,\n"
        "               'sockets_listed': bound}, fh)",
    ),
    (
        "code",
        f"for i in range({N_CHARTS}):\n"
        "    fig = go.Figure(go.Bar(x=list('abcd'), y=[i + 1, 3, 2, 5]),\n"
        "                    layout=dict(title=f'Chart {i + 1}', height=400))\n"
        "    display(HTML(pio.to_html(fig, full_html=False, include_plotlyjs=(i == 0),\n"
        "                             include_mathjax=False, div_id=f'fig-{i + 1}')))",
    ),
    ("md", "## Section B: free text from the data"),
    ("code", "HTML('<p class=\"free-text\">' + html.escape(payload) + '</p>')"),
    ("code", "print('visible stdout line')\nprint('hidden stderr line', file=sys.stderr)"),
    ("code", "print('removed cell output')", ["remove-cell"]),
    ("md", "## Section C: the end"),
)


@dataclasses.dataclass(frozen=True)
class Pack:
    source: Path
    executed: Path
    html: Path
    pdf: Path
    work: Path
    result: render.RenderResult


@pytest.fixture(scope="module")
def printer() -> Iterator[render.PdfPrinter]:
    """One Chromium for the whole module."""
    with render.PdfPrinter() as p:
        yield p


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory, printer: render.PdfPrinter) -> Pack:
    """The demo notebook executed, exported and printed once (through render_pack)."""
    work = tmp_path_factory.mktemp("pack")
    source = make_notebook(work / "demo.ipynb", *DEMO_CELLS)
    stage = work / "stage"
    (work / "tmp").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(render, "packaged_notebook", lambda name: source)
        # this module tests the template's own CSS; pack.css is the charts' look
        mp.setattr(render, "PACK_CSS", work / "no-pack.css")
        # kernel sockets go to a private temp dir, checked for leftovers below
        mp.setattr(tempfile, "tempdir", str(work / "tmp"))
        result = render.render_pack(
            stage,
            notebook="demo",
            parameters={"payload": XSS, "record": str(work / "kernel.json")},
            title=TITLE,
            timeout_s=120,
            browser=printer,
        )
    assert result.pdf_path is not None
    return Pack(source, result.notebook_path, result.html_path, result.pdf_path, work, result)


# --------------------------------------------------------------------------- execute


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


@pytest.mark.notebook
@pytest.mark.browser
def test_kernel_runs_in_the_stage_dir_over_ipc_and_is_gone(pack: Pack) -> None:
    record = json.loads((pack.work / "kernel.json").read_text())
    assert record == {
        "cwd": str((pack.work / "stage").resolve()),
        "transport": "ipc",
        "sockets_listed": True,  # what the stale-socket sweep relies on
    }
    assert kernel_processes() == []
    assert list((pack.work / "tmp").iterdir()) == []  # IPC sockets removed


def test_sweep_removes_only_socket_dirs_of_dead_kernels(tmp_path: Path) -> None:
    """Socket dirs a SIGKILLed run left behind go; live or fresh ones stay."""
    import os
    import socket

    dead, fresh, live, other = (
        tmp_path / n
        for n in ("qmskpi-kernel-dead", "qmskpi-kernel-fresh", "qmskpi-kernel-live", "other")
    )
    for d in (dead, fresh, live, other):
        d.mkdir()
    (dead / "kernel-1").write_text("")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(live / "kernel-1"))
        old = 1_000_000_000
        for d in (dead, live, other):
            os.utime(d, (old, old))
        assert render._sweep_stale_socket_dirs(tmp_path) == [dead]
    finally:
        server.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "other",
        "qmskpi-kernel-fresh",
        "qmskpi-kernel-live",
    ]


@pytest.mark.notebook
def test_failing_cell_raises_with_cell_index_and_keeps_the_notebook(tmp_path: Path) -> None:
    source = make_notebook(
        tmp_path / "fail.ipynb",
        ("code", "n = 1", ["parameters"]),
        ("code", "x = n + 1"),
        ("code", "raise ValueError(f'boom {n}')"),
        ("code", "print('never')"),
    )
    out = tmp_path / "out" / "fail.ipynb"
    with pytest.raises(render.NotebookCellError) as info:
        render.execute_notebook(source, out, {"n": 7}, cwd=tmp_path, timeout_s=60)
    err = info.value
    assert isinstance(err, RenderError)
    # 0 parameters, 1 injected-parameters, 2 x = ..., 3 raise
    assert err.cell_index == 3
    assert (err.ename, err.evalue) == ("ValueError", "boom 7")
    assert "raise ValueError" in err.source
    assert "cell 3" in str(err)
    assert "ValueError: boom 7" in str(err)
    assert err.notebook == out
    kept = nbformat.read(out, as_version=4)
    assert any(o.get("ename") == "ValueError" for c in kept.cells for o in c.get("outputs", []))
    assert kernel_processes() == []


@pytest.mark.notebook
def test_a_pre_started_kernel_runs_the_notebook_as_a_fresh_one_and_is_gone(
    tmp_path: Path,
) -> None:
    """Warmed up and moved to cwd silently: same counts, cwd and namespace as a fresh kernel."""
    source = make_notebook(
        tmp_path / "pre.ipynb",
        ("code", "n = 1", ["parameters"]),
        (
            "code",
            "import os, sys\nprint(os.getcwd(), n, 'qmskpi' in dir(), 'qmskpi.charts' in sys.modules)",
        ),
    )
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    kernel = render.start_kernel()
    assert kernel is not None
    assert len(kernel_processes()) == 1
    out = render.execute_notebook(
        source, tmp_path / "out.ipynb", {"n": 7}, cwd=cwd, timeout_s=60, kernel=kernel
    )
    assert kernel.closed
    assert kernel_processes() == []
    cells = nbformat.read(out, as_version=4).cells
    assert [c.execution_count for c in cells] == [1, 2, 3]
    assert cells[2].outputs[0]["text"] == f"{cwd.resolve()} 7 False True\n"


@pytest.mark.notebook
def test_a_failing_cell_in_a_pre_started_kernel_leaves_no_kernel(tmp_path: Path) -> None:
    source = make_notebook(
        tmp_path / "fail.ipynb",
        ("code", "n = 1", ["parameters"]),
        ("code", "raise ValueError(f'boom {n}')"),
    )
    kernel = render.start_kernel(warm_up=False)
    assert kernel is not None
    with pytest.raises(render.NotebookCellError) as info:
        render.execute_notebook(
            source, tmp_path / "out.ipynb", {"n": 7}, cwd=tmp_path, timeout_s=60, kernel=kernel
        )
    assert info.value.cell_index == 2
    assert kernel_processes() == []


@pytest.mark.notebook
def test_a_dead_pre_started_kernel_falls_back_to_a_fresh_one(tmp_path: Path) -> None:
    source = make_notebook(tmp_path / "ok.ipynb", ("code", "n = 1", ["parameters"]), ("code", "n"))
    kernel = render.start_kernel()
    assert kernel is not None
    (proc,) = kernel_processes()
    proc.kill()
    proc.wait(timeout=10)
    out = render.execute_notebook(
        source, tmp_path / "out.ipynb", {"n": 7}, cwd=tmp_path, timeout_s=60, kernel=kernel
    )
    assert nbformat.read(out, as_version=4).cells[2].outputs[0]["data"]["text/plain"] == "7"
    assert kernel_processes() == []


@pytest.mark.notebook
def test_cell_timeout_raises_and_kills_the_kernel_and_its_children(tmp_path: Path) -> None:
    source = make_notebook(
        tmp_path / "slow.ipynb",
        ("code", "print('fast')"),
        (
            "code",
            "import pathlib, subprocess, time\n"
            "child = subprocess.Popen(['sleep', '300'])\n"
            "pathlib.Path('child.pid').write_text(str(child.pid))\n"
            "time.sleep(300)",
        ),
    )
    out = tmp_path / "slow.out.ipynb"
    with pytest.raises(render.NotebookCellError) as info:
        render.execute_notebook(source, out, {}, cwd=tmp_path, timeout_s=2)
    assert info.value.cell_index == 1
    assert info.value.ename == "CellTimeoutError"
    assert "timed out" in str(info.value)
    kept = nbformat.read(out, as_version=4)  # saved as far as it ran
    assert kept.cells[0].outputs[0]["text"] == "fast\n"
    assert kernel_processes() == []
    assert gone(int((tmp_path / "child.pid").read_text()))


def test_execute_refuses_what_it_cannot_run(tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "a.ipynb", ("code", "1"))
    with pytest.raises(RenderError, match="notebook not found"):
        render.execute_notebook(
            tmp_path / "nope.ipynb", tmp_path / "o.ipynb", {}, cwd=tmp_path, timeout_s=5
        )
    with pytest.raises(RenderError, match="cannot be passed"):
        render.execute_notebook(
            nb, tmp_path / "o.ipynb", {"x": object()}, cwd=tmp_path, timeout_s=5
        )
    with pytest.raises(RenderError, match="working directory"):
        render.execute_notebook(nb, tmp_path / "o.ipynb", {}, cwd=tmp_path / "no", timeout_s=5)


def test_packaged_notebook_unknown_name_lists_the_available() -> None:
    with pytest.raises(RenderError, match="no packaged notebook 'nope'"):
        render.packaged_notebook("nope")


# --------------------------------------------------------------------------- HTML


class _Fetches(HTMLParser):
    """URLs in the markup that a browser would request by itself (not <a href>, not script text)."""

    ATTRS = frozenset(
        {"src", "href", "srcset", "poster", "data", "background", "xlink:href", "action"}
    )

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        for name, value in attrs:
            if not value:
                continue
            if name in self.ATTRS and not (tag == "a" and name == "href"):
                self.urls += re.findall(r"(?:https?:)?//[^\s,\"']+", value)
            if name == "style":
                self._css(value)
            if tag == "meta" and name == "content" and "url=" in value.lower():
                self.urls.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self._css(data)

    def _css(self, css: str) -> None:
        self.urls += re.findall(r"url\(\s*['\"]?((?:https?:)?//[^)'\"]+)", css)
        self.urls += re.findall(r"@import\s+(?:url\()?\s*['\"]?([^'\")\s;]+)", css)


def fetched_urls(markup: str) -> list[str]:
    parser = _Fetches()
    parser.feed(markup)
    return parser.urls


def test_fetch_scanner_finds_what_a_browser_would_load() -> None:
    markup = (
        '<script src="https://cdn.example/a.js"></script><link href="//cdn.example/b.css">'
        '<img src="http://x.example/i.png"><a href="https://fine.example">link</a>'
        "<style>@import 'https://f.example/c.css'; .a{background:url(https://g.example/d.png)}</style>"
        "<script>var s = 'https://in-script-text.example';</script>"
    )
    assert fetched_urls(markup) == [
        "https://cdn.example/a.js",
        "//cdn.example/b.css",
        "http://x.example/i.png",
        "https://g.example/d.png",
        "https://f.example/c.css",
    ]


@pytest.mark.notebook
@pytest.mark.browser
def test_html_has_no_code_no_prompts_and_an_escaped_title(pack: Pack) -> None:
    text = pack.html.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert '<html lang="en">' in text
    assert f"<title>{html.escape(TITLE, quote=False)}</title>" in text
    assert '<script>alert("xss-title")' not in text
    body = text[text.index("<body") :]
    assert "include_plotlyjs" not in body  # no code
    assert "jp-CodeMirrorEditor" not in body
    assert "cm-editor" not in body
    assert "In&nbsp;[" not in body
    assert "Out[" not in body
    assert "Section A: customers" in text
    assert "Section C: the end" in text
    assert "visible stdout line" in text
    assert "hidden stderr line" not in text
    assert "removed cell output" not in text


@pytest.mark.notebook
@pytest.mark.browser
def test_html_fetches_nothing_and_inlines_plotlyjs_once(pack: Pack) -> None:
    text = pack.html.read_text(encoding="utf-8")
    assert fetched_urls(text) == []
    assert text.count("plotly.js v") == 1
    assert re.search(r"<script[^>]*\bsrc=", text) is None
    assert re.search(r"<link[^>]*\bhref=", text) is None
    # Script text other than plotly.js's own bundle names no URL at all (no dynamic
    # import of mermaid, MathJax or require.js from a CDN).
    scripts = re.findall(r"<script[^>]*>([\s\S]*?)</script>", text)
    others = [s for s in scripts if "plotly.js v" not in s]
    assert len(others) == len(scripts) - 1
    assert [s[:80] for s in others if re.search(r"https?://|//cdn|import\(", s)] == []


@pytest.mark.notebook
@pytest.mark.browser
def test_html_escapes_free_text_from_the_data(pack: Pack) -> None:
    text = pack.html.read_text(encoding="utf-8")
    assert html.escape(XSS) in text  # as the notebook escaped it
    assert "<script>alert(" not in text
    assert "<img src=x" not in text


@pytest.mark.notebook
@pytest.mark.browser
def test_html_is_identical_for_identical_notebooks(
    pack: Pack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kernel ids, timestamps, papermill's random cell ids do not reach the HTML."""
    monkeypatch.setattr(render, "PACK_CSS", pack.work / "no-pack.css")  # as in `pack`
    nb = nbformat.read(pack.executed, as_version=4)
    nb.metadata["papermill"]["start_time"] = "1999-01-01T00:00:00"
    nb.metadata["papermill"]["duration"] = 99.0
    nb.metadata["widgets"] = {"state": {}}
    for cell in nb.cells:
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell["id"] = "0123abcd"
        if "papermill" in cell.metadata:
            cell.metadata["papermill"]["end_time"] = "1999-01-01T00:00:01"
        cell.metadata["execution"] = {"iopub.status.busy": "1999-01-01T00:00:00Z"}
    other = tmp_path / "other.ipynb"
    nbformat.write(nb, other)
    again = render.export_html(pack.executed, tmp_path / "again.html", title=TITLE)
    changed = render.export_html(other, tmp_path / "changed.html", title=TITLE)
    # the stored notebook keeps no copy of plotly.js (the pack's HTML has it once),
    # so its HTML is compared with itself, not with the pack's
    assert b"plotly.js removed" in again.read_bytes()
    assert changed.read_bytes() == again.read_bytes()


@pytest.mark.notebook
@pytest.mark.browser
def test_pack_css_is_inlined_when_it_exists(
    pack: Pack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    css = tmp_path / "pack.css"
    css.write_text(".qmskpi-test-marker { color: #123456; }\n")
    monkeypatch.setattr(render, "PACK_CSS", css)
    text = render.export_html(pack.executed, tmp_path / "a.html", title="t").read_text()
    assert ".qmskpi-test-marker { color: #123456; }" in text
    assert text.index("qmskpi-test-marker") > text.index("break-inside: avoid")  # after print.css
    monkeypatch.setattr(render, "PACK_CSS", tmp_path / "missing.css")
    assert (
        "qmskpi-test-marker"
        not in render.export_html(pack.executed, tmp_path / "b.html", title="t").read_text()
    )


def test_template_files_ship_as_package_data() -> None:
    """pyproject's package-data globs cover every file of the nbconvert template."""
    import tomllib

    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["qmskpi"]
    pkg = ROOT / "src" / "qmskpi"
    files = [
        p.relative_to(pkg) for p in (pkg / "templates" / "nbconvert").rglob("*") if p.is_file()
    ]
    assert {f.name for f in files} >= {"conf.json", "index.html.j2", "print.css"}
    for f in files:
        assert any(f.match(g) or pkg.joinpath(f) in pkg.glob(g) for g in globs), f


# --------------------------------------------------------------------------- browser


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
    """print_pdf starts its own browser (beside the module's running one) and always closes it."""
    printer.start()
    page = tmp_path / "never.html"
    page.write_text(
        '<!DOCTYPE html><html><body><div class="plotly-graph-div" id="fig-never"></div>'
        '<div class="plotly-graph-div js-plotly-plot" id="fig-ok"></div></body></html>'
    )
    before = browser_main_processes()  # the module's shared printer
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


@pytest.mark.notebook
@pytest.mark.browser
def test_render_pack_without_a_browser_starts_and_closes_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, printer: render.PdfPrinter
) -> None:
    """Chromium launches in a thread of its own while the kernel runs, and is gone afterwards."""
    source = make_notebook(
        tmp_path / "tiny.ipynb", ("md", "# Tiny pack"), ("code", "print(40 + 2)")
    )
    monkeypatch.setattr(render, "packaged_notebook", lambda name: source)
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


def test_printer_reports_a_missing_chromium(tmp_path: Path) -> None:
    with (
        pytest.raises(render.ChromiumNotFoundError, match="Chromium not found") as info,
        render.PdfPrinter(executable=tmp_path / "nope"),
    ):
        pass
    assert render.install_command() in str(info.value)


# --------------------------------------------------------------------------- finding Chromium

SYSTEM_DEPS = ROOT / "scripts" / "system-deps"


def fake_browser(folder: Path, name: str) -> Path:
    """An executable file called ``name`` in ``folder`` (found, never run)."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / name
    exe.write_text("#!/bin/sh\nexit 1\n")
    exe.chmod(0o755)
    return exe


def script_finds(env: dict[str, str]) -> str | None:
    """What ``scripts/system-deps find-chromium`` finds in ``env`` (None: nothing)."""
    done = subprocess.run(
        ["/bin/bash", str(SYSTEM_DEPS), "find-chromium"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def test_chromium_is_looked_for_in_the_documented_order(tmp_path: Path) -> None:
    """QMSKPI_CHROMIUM, chromium, Chrome names, playwright; the script agrees at each step."""
    bins, home = tmp_path / "bin", tmp_path / "home"
    home.mkdir()
    env = {"PATH": str(bins), "HOME": str(home)}
    seen: list[Path | None] = []

    def step() -> None:
        found = render.find_chromium(env)
        assert script_finds(env) == (str(found) if found else None), env
        seen.append(found)

    step()  # nothing anywhere
    pw = home / ".cache" / "ms-playwright"
    fake_browser(pw / "chromium-999" / "chrome-linux", "chrome")
    newest = fake_browser(pw / "chromium-1187" / "chrome-linux", "chrome")
    step()
    stable = fake_browser(bins, "google-chrome-stable")
    step()
    chrome = fake_browser(bins, "google-chrome")
    step()
    debian = fake_browser(bins, "chromium")
    step()
    chosen = fake_browser(tmp_path / "mine", "my-chrome")
    env["QMSKPI_CHROMIUM"] = str(chosen)
    step()
    # A wrong QMSKPI_CHROMIUM is not silently replaced by another browser.
    env["QMSKPI_CHROMIUM"] = str(tmp_path / "nothing-here")
    step()
    assert seen == [None, newest, stable, chrome, debian, chosen, None]


def test_without_chromium_the_printer_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("QMSKPI_CHROMIUM", raising=False)
    assert render.find_chromium() is None
    with pytest.raises(render.ChromiumNotFoundError) as info, render.PdfPrinter():
        pass
    message = str(info.value)
    assert "no Chromium found" in message
    assert "google-chrome" in message
    assert render.install_command() in message
    assert "\n" not in message


def test_render_pack_without_chromium_fails_before_the_kernel_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QMSKPI_CHROMIUM", str(tmp_path / "nothing-here"))
    with pytest.raises(render.ChromiumNotFoundError, match="is not an executable file"):
        render.render_pack(tmp_path / "stage", parameters={}, title="t", timeout_s=60)
    assert not (tmp_path / "stage" / "management-review.ipynb").exists()
    assert kernel_processes() == []


# --------------------------------------------------------------------------- the real pack

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


# --------------------------------------------------------------------------- a bounded pack


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


# --------------------------------------------------------------------------- exports

FORMULAS = ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tTAB", "\rCR", '=HYPERLINK("http://x")']


@pytest.mark.parametrize("text", FORMULAS)
def test_neutralise_formula_prefixes_a_quote(text: str) -> None:
    assert render.neutralise_formula(text) == "'" + text


@pytest.mark.parametrize("text", ["plain", "", " =x", "a=b", "'=x", "1-2"])
def test_neutralise_formula_leaves_other_text(text: str) -> None:
    assert render.neutralise_formula(text) == text


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "kpi": ["complaints_received", *FORMULAS],
            "value": [3.5, -1.0, -2.25, 0.0, 1e6, None, 7.0, 8.0],
            "count": [1, -5, 2, 3, 4, 5, 6, 7],
            "sound": [True, False, True, True, None, True, True, True],
            "day": [dt.date(2026, 10, 31)] * 8,
            "site": pl.Series(
                ["S1", "=S2", "S1", "S1", "S1", "S1", "S1", "S1"], dtype=pl.Categorical
            ),
        }
    )


def test_write_csv_neutralises_strings_keeps_numbers_and_is_deterministic(tmp_path: Path) -> None:
    a = render.write_csv(_frame(), tmp_path / "a.csv")
    b = render.write_csv(_frame(), tmp_path / "b.csv")
    assert a.read_bytes() == b.read_bytes()
    text = a.read_text(encoding="utf-8")
    assert "\r\n" not in text
    assert text.endswith("\n")
    lines = text.split("\n")
    assert lines[0] == "kpi,value,count,sound,day,site"
    assert lines[1] == "complaints_received,3.5,1,true,2026-10-31,S1"
    assert lines[2] == "'=1+1,-1.0,-5,false,2026-10-31,'=S2"  # a negative number stays a number
    back = pl.read_csv(a)
    assert back["value"].dtype == pl.Float64
    assert back["count"].dtype == pl.Int64
    assert back["kpi"].to_list()[1:] == ["'" + f for f in FORMULAS]


def test_write_xlsx_writes_plain_values_no_formula_no_hyperlink(tmp_path: Path) -> None:
    frame = _frame()
    path = render.write_xlsx({"kpis": frame, "other": frame.head(2)}, tmp_path / "k.xlsx")
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["kpis", "other"]
    ws = wb["kpis"]
    cells = [c for row in ws.iter_rows() for c in row]
    assert [c.data_type for c in cells if c.data_type == "f"] == []
    assert [c.coordinate for c in cells if c.hyperlink is not None] == []
    assert ws._hyperlinks == []
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == ("kpi", "value", "count", "sound", "day", "site")
    assert rows[2][:3] == ("'=1+1", -1.0, -5)  # numbers stay numbers, negative included
    assert rows[6][1] is None  # null -> empty cell
    assert rows[1][4] == dt.datetime(2026, 10, 31)
    # (XML reads a stored CR back as LF)
    assert [r[0] for r in rows[2:]] == ["'" + f.replace("\r", "\n") for f in FORMULAS]
    assert rows[2][5] == "'=S2"
    assert ws["A1"].font.bold
    assert ws.freeze_panes == "A2"
    with zipfile.ZipFile(path) as z:
        # raw XML: no <f> formula element, no <hyperlink>, no hyperlink relationship
        xml = b"".join(z.read(n) for n in z.namelist())
        assert b"<f>" not in xml
        assert b"<hyperlink" not in xml
        assert b"relationships/hyperlink" not in xml
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_write_xlsx_is_deterministic(tmp_path: Path) -> None:
    a = render.write_xlsx({"kpis": _frame()}, tmp_path / "a.xlsx").read_bytes()
    b = render.write_xlsx({"kpis": _frame()}, tmp_path / "b.xlsx").read_bytes()
    assert a == b
    with zipfile.ZipFile(tmp_path / "a.xlsx") as z:
        core = z.read("docProps/core.xml").decode()
    stamps = re.findall(r"<dcterms:(created|modified)[^>]*>([^<]+)<", core)
    assert stamps == [("created", "2000-01-01T00:00:00Z"), ("modified", "2000-01-01T00:00:00Z")]


def test_write_xlsx_strips_characters_excel_refuses(tmp_path: Path) -> None:
    path = render.write_xlsx(
        {"s": pl.DataFrame({"t": ["bell\x07here", "ok"]})}, tmp_path / "c.xlsx"
    )
    assert openpyxl.load_workbook(path)["s"]["A2"].value == "bellhere"


@pytest.mark.parametrize("name", ["", "a" * 32, "bad/name", "x[1]", "why?"])
def test_write_xlsx_refuses_a_bad_sheet_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(RenderError, match="invalid sheet name"):
        render.write_xlsx({name: pl.DataFrame({"a": [1]})}, tmp_path / "x.xlsx")


def test_write_json_is_sorted_utf8_with_a_final_newline(tmp_path: Path) -> None:
    @dataclasses.dataclass(frozen=True)
    class Item:
        name: str
        when: dt.date

    one = {
        "b": 1,
        "a": [Item("Müller", dt.date(2026, 10, 1))],
        "c": {"z", "y"},
        "nan": float("nan"),
    }
    two = {
        "nan": float("nan"),
        "c": {"y", "z"},
        "a": [Item("Müller", dt.date(2026, 10, 1))],
        "b": 1,
    }
    pa = render.write_json(one, tmp_path / "a.json")
    pb = render.write_json(two, tmp_path / "b.json")
    assert pa.read_bytes() == pb.read_bytes()
    text = pa.read_bytes().decode("utf-8")
    assert text.endswith("}\n")
    assert "Müller" in text
    assert json.loads(text) == {
        "a": [{"name": "Müller", "when": "2026-10-01"}],
        "b": 1,
        "c": ["y", "z"],
        "nan": None,
    }
    assert list(json.loads(text)) == ["a", "b", "c", "nan"]
    frame = render.write_json(
        {"t": pl.DataFrame({"x": [1, 2]}), "p": Path("a/b")}, tmp_path / "f.json"
    )
    assert json.loads(frame.read_text()) == {"p": "a/b", "t": [{"x": 1}, {"x": 2}]}


def test_exports_leave_no_temp_files(tmp_path: Path) -> None:
    render.write_json({"a": 1}, tmp_path / "a.json")
    render.write_csv(pl.DataFrame({"a": [1]}), tmp_path / "a.csv")
    render.write_xlsx({"a": pl.DataFrame({"a": [1]})}, tmp_path / "a.xlsx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.json", "a.xlsx"]
