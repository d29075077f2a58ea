"""Fixtures shared by the render tests: one Chromium, and the demo pack rendered once."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import pytest

from qmskpi import render
from render.helpers import DEMO_CELLS, TITLE, XSS, Pack, make_notebook


@pytest.fixture(scope="package")
def printer() -> Iterator[render.PdfPrinter]:
    """One Chromium for the render tests."""
    with render.PdfPrinter() as p:
        yield p


@pytest.fixture(scope="package")
def pack(tmp_path_factory: pytest.TempPathFactory, printer: render.PdfPrinter) -> Pack:
    """The demo notebook executed, exported and printed once (through render_pack)."""
    work = tmp_path_factory.mktemp("pack")
    source = make_notebook(work / "demo.ipynb", *DEMO_CELLS)
    stage = work / "stage"
    (work / "tmp").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("qmskpi.render.pack.packaged_notebook", lambda name: source)
        # the render tests check the template's own CSS; pack.css is the charts' look
        mp.setattr("qmskpi.render.html.PACK_CSS", work / "no-pack.css")
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
