"""Tests of qmskpi.charts.base: pinned element ids."""

from __future__ import annotations

from charts.helpers import _trend
from qmskpi import charts


def test_div_ids_are_pinned_and_sanitised() -> None:
    assert charts.div_id("c5", "defect_ppm", "South <b>") == "c5-defect-ppm-south-b"
    doc = charts.Document()
    a = charts.figure_html(charts.spc_figure(_trend()), doc, "c5-defect_ppm-all")
    b = charts.figure_html(charts.spc_figure(_trend()), doc, "c5-defect_ppm-all")
    assert 'id="c5-defect-ppm-all"' in a
    assert 'id="c5-defect-ppm-all-2"' in b
