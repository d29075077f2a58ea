"""Tests of qmskpi.charts.pieces: tiles and exception counts."""

from __future__ import annotations

from qmskpi import charts, review


def test_exception_counts_agree_across_the_page(model: review.ReviewModel) -> None:
    pack = charts.Pack(model)
    serious = sum(1 for e in model.exceptions if e.rank <= 2)
    gaps = len(model.exceptions) - serious
    said = (
        f"{serious} exceptions need attention; {gaps} gap{'s' if gaps != 1 else ''} in the evidence"
    )
    assert said in pack.cover().html
    assert f"All exceptions: {said}" in pack.summary().html


def _a_tile(*, sound: bool, note: str) -> review.KpiTile:
    return review.KpiTile(
        kpi="supplier_ppm",
        scope="all",
        title="Supplier PPM",
        section="9.3.2 c 7",
        value=0.0,
        display="0 ppm",
        unit="ppm",
        target=None,
        target_display="",
        variation=None,
        assurance=None,
        sound=sound,
        exception=not sound,
        note=note,
    )


def test_a_tile_says_not_measured_and_what_a_value_is_based_on() -> None:
    unmeasured = charts.tiles_html(
        [_a_tile(sound=False, note="not measured: qty_rejected is a mapping constant")]
    )
    assert "qk-unsound" in unmeasured
    assert '<div class="qk-tile-flag">Not measured</div>' in unmeasured
    assert "Data failed validation" not in unmeasured
    assert "not measured: qty_rejected is a mapping constant" in unmeasured
    based = charts.tiles_html(
        [_a_tile(sound=True, note="based on 5,022 of 5,300 receipts (278 set aside: <x> 278)")]
    )
    assert "qk-tile-flag" not in based
    assert "based on 5,022 of 5,300 receipts (278 set aside: &lt;x&gt; 278)" in based
