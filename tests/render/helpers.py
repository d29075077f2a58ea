"""Helpers shared by the render tests: notebooks to run, the processes left behind, the demo pack."""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import psutil

from qmskpi import render

ROOT = Path(__file__).resolve().parent.parent.parent

XSS = '<script>alert("xss-script")</script><img src=x onerror=alert("xss-img")> & "quoted"'
TITLE = 'Acme <script>alert("xss-title")</script> — review 2026-10 (all)'
N_CHARTS = 4


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
