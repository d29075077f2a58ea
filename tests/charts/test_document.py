"""Tests of qmskpi.charts.document: plotly.js inlined once per document (the partial bundle, or the full one)."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import plotly.graph_objects as go

from charts.helpers import PLOTLYJS, _pareto, _trend
from qmskpi import charts, review


def _registered_traces(js: str) -> set[str]:
    """The trace modules a plotly.js bundle registers, read from its source."""
    return set(re.findall(r'moduleType:"trace",name:"([a-z0-9]+)"', js))


def test_the_inlined_bundle_draws_every_trace_type_of_the_pack(model: review.ReviewModel) -> None:
    js = charts.PLOTLYJS_BUNDLE.read_text(encoding="utf-8")
    assert _registered_traces(js) == charts.BUNDLE_TRACES
    score, objectives = model.table("supplier_scorecard"), model.table("objective_attainment")
    assert score is not None
    assert objectives is not None
    figures = [
        charts.spc_figure(_trend()),
        charts.pareto_figure(_pareto()),
        charts.scorecard_figure(score),
        charts.objectives_figure(objectives),
    ]
    types = {str(t.type) for fig in figures for t in fig.data}
    assert types == {"scatter", "bar", "indicator"}
    assert types <= charts.BUNDLE_TRACES
    pack = charts.Pack(model)
    html = "\n".join(pack.section(s).html for s in model.section_ids)
    (found,) = PLOTLYJS.findall(html)
    assert js[-200:] in found  # the bundle itself, not the full plotly.js
    assert len(found) < 1_500_000


def test_the_bundle_matches_the_plotly_package_and_a_foreign_trace_gets_full_plotlyjs() -> None:
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    (bundled,) = re.findall(r"plotly\.js v([0-9.]+)", charts.bundle_script()[:300])
    assert bundled.split(".")[:2] == get_plotlyjs_version().split(".")[:2]
    doc = charts.Document()
    first = charts.figure_html(charts.spc_figure(_trend()), doc, "a")
    heat = charts.figure_html(go.Figure(go.Heatmap(z=[[1, 2], [3, 4]])), doc, "b")
    third = charts.figure_html(go.Figure(go.Heatmap(z=[[1]])), doc, "c")
    assert "finance bundle" in first
    assert get_plotlyjs()[-200:] not in first
    assert get_plotlyjs()[-200:] in heat
    assert "finance bundle" not in heat
    assert "plotly.js v" not in third
    assert first.index("plotly.js v") < first.index("Plotly.newPlot")


def test_a_spec_and_its_figure_give_the_same_html() -> None:
    t = replace(_trend(), rebase=())
    spec_html = charts.figure_html(charts.spc_spec(t), charts.Document(), "x")
    fig_html = charts.figure_html(charts.spc_figure(t), charts.Document(), "x")
    plot = re.compile(r"Plotly\.newPlot\(\s*\"x\",\s*(\[.*\]),\s*(\{.*\}),\s*\{\"display")
    found = [plot.search(h.replace("\n", " ")) for h in (spec_html, fig_html)]
    assert found[0] is not None
    assert found[1] is not None
    spec_json = [json.loads(g) for g in found[0].groups()]
    fig_json = [json.loads(g) for g in found[1].groups()]
    assert spec_json == fig_json


def test_plotlyjs_is_inlined_exactly_once_per_document(model: review.ReviewModel) -> None:
    pack = charts.Pack(model)
    fragments = [pack.section(s).html for s in model.section_ids]
    html = "\n".join(fragments)
    assert len(PLOTLYJS.findall(html)) == 1
    first = next(i for i, f in enumerate(fragments) if "plotly-graph-div" in f)
    assert "plotly.js v" in fragments[first]
    assert all("plotly.js v" not in f for f in fragments[first + 1 :])
    ids = re.findall(r'<div id="([^"]+)" class="plotly-graph-div"', html)
    assert len(ids) == len(set(ids)) > 10
    assert all(re.fullmatch(r"[a-z0-9-]+", i) for i in ids)
    assert "c3-defect-pareto" in ids
    assert "c5-defect-ppm-all" in ids
    # a second pack is a second document
    again = charts.Pack(model).section("c3").html
    assert len(PLOTLYJS.findall(again)) == 1
    # no network: no CDN, no remote script or image
    assert "cdn." not in PLOTLYJS.sub("", html).lower()
    assert not re.search(r"""(src|href)=["']?https?:""", PLOTLYJS.sub("", html))
