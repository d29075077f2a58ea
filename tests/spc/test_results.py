"""qmskpi.spc.results: the rule set, ``to_frame``, the baseline statement, ``repr`` and inline SVG."""

from __future__ import annotations

import dataclasses
import math

import polars as pl
import pytest

from qmskpi import spc
from spc.helpers import CIRCUIT, PISTONRINGS, chart


def test_rule_set_validation() -> None:
    with pytest.raises(spc.SpcError, match="did you mean 'nelson'"):
        spc.xmr([1, 2, 3], rules="nelsen")  # type: ignore[arg-type]
    with pytest.raises(spc.SpcError, match="no trend rule"):
        spc.RuleSet("western_electric", trend_length=6)
    with pytest.raises(spc.SpcError, match="at least 2"):
        spc.RuleSet(run_length=1)


def test_to_frame_columns_and_rows() -> None:
    # p̄ = 24/120 = 0.2, σ = √(0.16/20) = 0.0894427, UCL 0.4683282: 12/20 = 0.6 is above.
    c = spc.p_chart([2, 0, 3, 2, 3, 2, 12], [20, 0, 20, 20, 20, 20, 20])
    df = c.to_frame()
    assert df.columns == [
        "index", "phase", "value", "center", "lcl", "ucl", "sigma", "baseline", "missing",
        "signal", "numerator", "denominator",
    ]  # fmt: skip
    assert df.height == 7
    assert df["value"][1] is None
    assert df["missing"].to_list() == [False, True] + [False] * 5
    assert df["ucl"][0] == pytest.approx(0.4683282, abs=5e-8)
    assert df["signal"].to_list() == [""] * 6 + ["beyond_limits"]
    assert df["denominator"].to_list() == [20.0, 0.0] + [20.0] * 5
    assert df.schema["index"] == pl.Int64


def test_to_frame_signal_order_and_subgroup_size() -> None:
    c = chart([11, 14, 14, 14], "mdc")  # beyond limits and two_of_three on the same points
    assert c.to_frame()["signal"][14] == "beyond_limits,two_of_three"
    xs = spc.xbar_r(PISTONRINGS).to_frame()
    assert "subgroup_size" in xs.columns
    assert xs["subgroup_size"].unique().to_list() == [5]
    assert "numerator" not in xs.columns


def test_chart_is_frozen() -> None:
    c = spc.c_chart(CIRCUIT)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.chart = "u"  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        c.ucl[0] = 1.0
    with pytest.raises(AttributeError, match="range_chart"):
        _ = c.range_chart
    assert len(c) == 26


def test_baseline_statement_says_where_limits_come_from() -> None:
    values = [float(10 + (i % 3)) for i in range(24)]
    values[5] = math.nan
    months = [f"{2025 + (i + 10) // 12}-{(i + 10) % 12 + 1:02d}" for i in range(24)]
    every = spc.xmr(values).baseline_statement()
    assert every.describe(months) == (
        "Limits from all 23 points (2025-11 to 2027-10), recalculated each run. 1 gap left out."
    )
    frozen = spc.xmr(values, baseline=12).baseline_statement()
    assert frozen.phases[0].method == "first"
    assert frozen.phases[0].points == 11  # 12 points, one a gap
    assert frozen.describe(months).startswith("Limits frozen after the first 11 points")
    rebased = spc.xmr(values, rebase=[12], baseline=[0, 1, 2, 3, 4, 6, 12, 13, 14, 15])
    d = rebased.baseline_statement().to_dict(months)
    assert [ph["method"] for ph in d["phases"]] == ["selected", "first"]
    assert d["rebase"] == [months[12]]
    assert d["gaps"] == [months[5]]
    assert "rebased at " + months[12] in d["text"]
    assert d["phases"][0]["baseline"] == [months[i] for i in (0, 1, 2, 3, 4, 6)]


ALTERNATING_THEN_SPIKE = [9.0, 11.0] * 10 + [30.0]


def test_control_chart_repr_is_short_and_says_what_matters() -> None:
    # 9, 11 ten times, then 30: centre = (200 + 30)/21 = 10.952; moving ranges 19 x 2 and
    # 19 -> MR-bar = 57/20 = 2.85; limits 10.952 -/+ 2.66 * 2.85 = 3.371 and 18.53. Only the
    # last point signals (beyond the upper limit); the alternation breaks every run.
    c = spc.xmr(ALTERNATING_THEN_SPIKE)
    text = repr(c)
    assert len(text) < 200
    assert text == (
        "<ControlChart xmr: 21 points, centre 10.95, limits 3.371 to 18.53, "
        "1 signal point (beyond_limits 1)>"
    )
    assert "array" not in text
    assert "[" not in text


def test_control_chart_repr_names_varying_limits_and_missing_points() -> None:
    # p chart, p-bar = 30/600 = 0.05; n = 100: UCL = 0.05 + 3*sqrt(0.05*0.95/100) = 0.1154;
    # n = 200: 0.05 + 3*sqrt(0.0475/200) = 0.05 + 0.046233 = 0.09623, LCL 0.003767;
    # n = 100: LCL 0.05 - 0.0654 < 0, floored at 0.
    c = spc.p_chart([5, 10, 5, 10], [100, 200, 100, 200])
    assert "limits 0–0.003767 to 0.09623–0.1154" in repr(c)
    gap = spc.xmr([1.0, 2.0, float("nan"), 2.0, 1.0])
    assert repr(gap).endswith("1 missing>")


def test_control_chart_html_draws_each_point_offline() -> None:
    c = spc.xmr(ALTERNATING_THEN_SPIKE)
    page = c._repr_html_()
    assert page.count("<circle") == 21  # one marker a point
    assert page.count("fill='#E69F00'") == 1  # the one signal, in the concern colour
    assert "<script" not in page.lower()
    assert "src=" not in page
    assert "http://www.w3.org/2000/svg" in page  # the namespace, the only URL
    assert page.count("http") == 1
    assert len(page) < 10_000  # no plotly.js (4 MB) in every output
