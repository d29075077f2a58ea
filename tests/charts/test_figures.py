"""Tests of qmskpi.charts.figures: Pareto, scorecard and objectives figures, escaped text inside figures."""

from __future__ import annotations

import re
from typing import Any

from charts.helpers import _pareto
from qmskpi import charts, review


def test_pareto_figure_spec(json_snapshot: Any) -> None:
    spec = charts.figure_spec(charts.pareto_figure(_pareto()))
    assert spec["data"][0]["x"][1] == "&lt;b&gt;DENT&lt;/b&gt;"
    assert spec["data"][2]["y"] == [80.0, 80.0, 80.0]
    assert spec == json_snapshot


def test_scorecard_and_objectives_figures(model: review.ReviewModel) -> None:
    score = model.table("supplier_scorecard")
    objectives = model.table("objective_attainment")
    assert score is not None
    assert objectives is not None
    s = charts.figure_spec(charts.scorecard_figure(score))
    assert s["data"][0]["orientation"] == "h"
    o = charts.figure_spec(charts.objectives_figure(objectives))
    assert [d["type"] for d in o["data"]] == ["indicator"] * len(objectives.rows)


def test_hostile_text_inside_plotly_figures_is_escaped(evil_html: str) -> None:
    scripts = re.findall(r"Plotly\.newPlot\([\s\S]*?</script>", evil_html)
    assert scripts
    for s in scripts:
        assert "<script" not in s.replace("</script>", "")
        assert "<img" not in s
        assert "<svg" not in s
