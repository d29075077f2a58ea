"""Tests of qmskpi.charts.spc_chart: the SPC spec and figure, control_chart, the numbers under a chart."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import plotly.graph_objects as go
import pytest

from charts.helpers import _trend
from qmskpi import charts, review
from test_review import (  # the hand-made data set of the review tests
    PERIOD,
    XSS,
    make_config,
    make_data,
)


def test_spc_figure_spec(json_snapshot: Any) -> None:
    fig = charts.spc_figure(_trend())
    spec = charts.figure_spec(fig)
    assert spec["layout"]["template"] == "qmskpi"
    names = [t["name"] for t in spec["data"]]
    assert names[:4] == ["Upper limit", "Lower limit", "Average", "Target"]
    last = spec["data"][-1]
    assert last["marker"]["color"][-1] == charts.COLOURS["concern"]
    assert last["name"] == "Defect &lt;i&gt;ppm&lt;/i&gt;"
    assert "<b>" not in spec["layout"]["title"]["text"].replace("<span", "")
    assert spec == json_snapshot


def test_run_chart_has_a_median_no_limits_and_gaps_stay_gaps() -> None:
    t = replace(
        _trend(),
        status="run_chart",
        variation="run_chart",
        assurance=None,
        target=None,
        rebase=(),
        values=(5, 6, None, 7, 6, 5, 6, 5, 6),
        months=_trend().months[3:],
        center=(6.0,) * 9,
        ucl=(None,) * 9,
        lcl=(None,) * 9,
        signals=((),) * 9,
        classes=("none",) * 9,
        numerators=(5, 6, None, 7, 6, 5, 6, 5, 6),
        denominators=(1e6, 1e6, None, 1e6, 1e6, 1e6, 1e6, 1e6, 1e6),
        numerator_label="quantity defective",
        denominator_label="quantity inspected in the period",
    )
    spec = charts.figure_spec(charts.spc_figure(t))
    assert [d["name"] for d in spec["data"]][:1] == ["Median"]  # no limit lines at all
    points = spec["data"][-1]
    assert spec["data"][0]["x"][0] == "2025-04"  # starts at the first month given
    assert points["y"][2] is None
    assert points["connectgaps"] is False
    assert points["customdata"][0] == ["5", "1,000,000"]
    assert "quantity inspected)" in points["hovertemplate"]
    table = charts.trend_data_table(t)
    assert "<th class='qk-num'>quantity inspected</th>" in table
    assert "<td>2025-06</td><td class='qk-num'>gap</td>" in table
    # no MDC icon for a chart without limits: a label that says why
    icon = charts.variation_icon("run_chart")
    assert "<svg" not in icon
    assert "too few months for limits" in icon


def test_the_spc_spec_is_what_plotly_validates(model: review.ReviewModel) -> None:
    """The pack writes spc_spec unchecked: plotly's own validation must give the same JSON."""
    plain = replace(_trend(), rebase=(), denominators=(), numerators=())
    run_chart = replace(plain, ucl=(None,) * 12, lcl=(None,) * 12, target=None)
    share = replace(plain, unit="share of lots", chart="p", denominators=(10.0,) * 12)
    trends = [plain, run_chart, share, *model.trends]
    assert len(trends) > 5
    for t in trends:
        for size in ({}, {"width": charts.FULL_WIDTH, "height": 260}):
            spec = charts.spc_spec(t, **size)
            checked = go.Figure(spec).to_plotly_json()
            assert json.dumps(spec, sort_keys=True) == json.dumps(checked, sort_keys=True)
    # spc_figure is the spec plus its rebases (a line and a label each)
    rebased = charts.spc_figure(_trend()).to_plotly_json()
    assert rebased["data"] == go.Figure(charts.spc_spec(_trend())).to_plotly_json()["data"]
    assert len(rebased["layout"]["shapes"]) == len(rebased["layout"]["annotations"]) == 1


def _traces(fig: Any) -> dict[str, Any]:
    return {t.name: t for t in fig.data}


def test_control_chart_draws_a_chart_the_analyst_computed() -> None:
    from qmskpi import spc

    # limits 3.371 and 18.53 (tests/spc/test_results.py works them out)
    values = [9.0, 11.0] * 10 + [30.0]
    c = spc.xmr(values)
    fig = charts.control_chart(c, title=XSS[1], direction="lower_is_better")
    traces = _traces(fig)
    assert list(traces["Upper limit"].y) == pytest.approx([18.5334] * 21, abs=1e-4)
    assert list(traces["Lower limit"].y) == pytest.approx([3.3714] * 21, abs=1e-4)
    assert list(traces["Average"].y) == pytest.approx([230 / 21] * 21)
    shown = traces[charts.esc(XSS[1])]
    assert list(shown.y) == values
    assert list(shown.x) == [str(i) for i in range(1, 22)]
    # lower is better: the point above the upper limit is a concern, the others common cause
    assert list(shown.marker.color) == [charts.COLOURS["common"]] * 20 + [charts.COLOURS["concern"]]
    assert XSS[1] not in str(fig.layout.title.text)
    assert fig.layout.title.text == charts.esc(XSS[1])  # no scope for a bare chart


def test_control_chart_of_a_series_slice_is_the_packs_chart(model: review.ReviewModel) -> None:
    import polars as pl

    from qmskpi import kpis

    cfg = make_config()
    series = kpis.kpi_series(
        make_data(),
        PERIOD,
        "all",
        months=cfg.review.trend_months,
        config=cfg.kpis,
        coverage=kpis.coverage_of(cfg.sources),
        constants=kpis.mapping_constants(cfg),
    )
    trend = next(t for t in model.trends if t.chart == "u" and t.scope != "all")
    piece = series.filter((pl.col("kpi") == trend.kpi) & (pl.col("scope") == trend.scope))
    fig = charts.control_chart(piece, target=trend.target)
    pack = charts.spc_figure(trend, width=charts.FULL_WIDTH, height=260)
    assert fig.layout.title.text == pack.layout.title.text
    mine, theirs = _traces(fig), _traces(pack)
    assert mine.keys() == theirs.keys()
    for name, t in theirs.items():
        assert list(mine[name].x) == list(t.x)
        assert list(mine[name].y) == pytest.approx(list(t.y), rel=1e-5, nan_ok=True), name
        assert mine[name].marker.color == t.marker.color


def test_control_chart_refuses_a_slice_of_several_kpis(model: review.ReviewModel) -> None:
    import polars as pl

    from qmskpi import kpis
    from qmskpi.errors import QmsKpiError

    cfg = make_config()
    series = kpis.kpi_series(make_data(), PERIOD, "all", months=6, config=cfg.kpis)
    two = series.filter(pl.col("kpi").is_in(["defect_ppm", "supplier_ppm"]))
    with pytest.raises(QmsKpiError, match="one KPI and one scope; kpi: defect_ppm, supplier_ppm"):
        charts.control_chart(two)
