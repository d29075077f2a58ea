"""render.html: the offline HTML, no code, escaped, deterministic, with the pack's CSS.

Real nbconvert, on the demo pack (conftest.py) rendered once for the package.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import nbformat
import pytest

from qmskpi import render
from render.helpers import ROOT, TITLE, XSS, Pack, fetched_urls


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
    monkeypatch.setattr("qmskpi.render.html.PACK_CSS", pack.work / "no-pack.css")  # as in `pack`
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
    monkeypatch.setattr("qmskpi.render.html.PACK_CSS", css)
    text = render.export_html(pack.executed, tmp_path / "a.html", title="t").read_text()
    assert ".qmskpi-test-marker { color: #123456; }" in text
    assert text.index("qmskpi-test-marker") > text.index("break-inside: avoid")  # after print.css
    monkeypatch.setattr("qmskpi.render.html.PACK_CSS", tmp_path / "missing.css")
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
