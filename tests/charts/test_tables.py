"""Tests of qmskpi.charts.tables: any frame as an escaped table."""

from __future__ import annotations

from qmskpi import charts
from test_review import (  # the hand-made data set of the review tests
    XSS,
)


def test_frame_html_escapes() -> None:
    import polars as pl

    frag = charts.frame_html(pl.DataFrame({"name<": [XSS[0]], "n": [1.23456]}), title=XSS[1])
    assert "<script>" not in frag.html
    assert "&lt;img" in frag.html
    assert "1.235" in frag.html
