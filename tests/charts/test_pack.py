"""Charts and pack HTML: pinned figure specs, plotly.js once, escaping everywhere."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import plotly.graph_objects as go
import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from qmskpi import charts, review
from test_review import (  # the hand-made data set of the review tests
    ANALYST,
    PERIOD,
    XSS,
    fake_validation,
    make_config,
    make_data,
)

PLOTLYJS = re.compile(r"<script[^>]*>\s*/\*\*\s*\*\s*plotly\.js v[\s\S]*?</script>")


@pytest.fixture
def json_snapshot(snapshot: Any) -> Any:
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.fixture(scope="module")
def model() -> review.ReviewModel:
    data = make_data()
    return review.build(
        data,
        period=PERIOD,
        scope="all",
        config=make_config(),
        validation=fake_validation(data, set()),
        analyst_inputs=ANALYST,
    )


@pytest.fixture(scope="module")
def evil_html() -> str:
    """The whole pack of a model whose every free-text field is hostile."""
    data = make_data(evil=True)
    evil_md = "\n".join(
        [
            f"# Heading {XSS[0]}",
            "",
            f"Paragraph with **bold {XSS[1]}** and *{XSS[2]}*.",
            "",
            f"- item {XSS[0]}",
            "- [click](javascript:alert(1))",
            '<a href="javascript:alert(1)">raw link</a>',
        ]
    )
    m = review.build(
        data,
        period=PERIOD,
        scope="all",
        config=make_config(sites=()),
        validation=fake_validation(data, {"capa"}),
        analyst_inputs={"changes": evil_md, "resources": XSS[1], "risks": XSS[2]},
    )
    return charts.Pack(m).everything().html


def _trend() -> review.Trend:
    months = tuple(f"2025-{m:02d}" for m in range(1, 13))
    values: tuple[float | None, ...] = (5, 6, 5, 7, 6, 5, 6, 5, 6, 7, 6, 12)
    return review.Trend(
        id="x",
        kpi="defect_ppm",
        scope="South <b>",
        title="Defect <i>ppm</i>",
        section="c3",
        unit="ppm",
        direction="lower_is_better",
        kind="rate",
        chart="u",
        months=months,
        values=values,
        center=(6.0,) * 12,
        ucl=(9.0,) * 12,
        lcl=(3.0,) * 12,
        signals=((),) * 11 + (("beyond_limits",),),
        classes=("none",) * 11 + ("concern",),
        variation="concern_high",
        assurance="inconsistent",
        target=7.0,
        rebase=(6,),
        sound=True,
        explanation=("2025-12: 12 ppm.",),
    )


def _pareto() -> review.Table:
    return review.Table(
        id="defect_pareto",
        title="Defects",
        columns=(
            review.Column("defect_code", "Defect code"),
            review.Column("count", "Count", "int"),
            review.Column("cumulative_share", "Cumulative", "share"),
            review.Column("vital_few", "Vital few", "bool"),
        ),
        rows=(("SCRATCH", 8, 0.5, True), ("<b>DENT</b>", 6, 0.875, True), ("BURR", 2, 1.0, False)),
    )


# ---------------------------------------------------------------- figures


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


def test_exception_counts_agree_across_the_page(model: review.ReviewModel) -> None:
    pack = charts.Pack(model)
    serious = sum(1 for e in model.exceptions if e.rank <= 2)
    gaps = len(model.exceptions) - serious
    said = (
        f"{serious} exceptions need attention; {gaps} gap{'s' if gaps != 1 else ''} in the evidence"
    )
    assert said in pack.cover().html
    assert f"All exceptions: {said}" in pack.summary().html


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


def test_div_ids_are_pinned_and_sanitised() -> None:
    assert charts.div_id("c5", "defect_ppm", "South <b>") == "c5-defect-ppm-south-b"
    doc = charts.Document()
    a = charts.figure_html(charts.spc_figure(_trend()), doc, "c5-defect_ppm-all")
    b = charts.figure_html(charts.spc_figure(_trend()), doc, "c5-defect_ppm-all")
    assert 'id="c5-defect-ppm-all"' in a
    assert 'id="c5-defect-ppm-all-2"' in b


# ---------------------------------------------------------------- documents


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


def test_pack_is_deterministic(model: review.ReviewModel) -> None:
    a = charts.Pack(model).everything().html
    b = charts.Pack(review.ReviewModel.from_json(model.to_json())).everything().html
    assert a == b


def test_fragments_display_in_notebooks(model: review.ReviewModel) -> None:
    pack = charts.Pack(model)
    cover = pack.cover()
    assert cover._repr_html_() == cover.html
    assert "Hand-made Ltd" in cover.html
    assert "exceptions need attention" in cover.html
    summary = pack.summary().html
    # exceptions first: the in-brief box comes before the tiles
    assert summary.index("qk-exceptions") < summary.index("qk-tiles")
    tiles = re.findall(r'<div class="(qk-tile(?: [^"]*)?)"', summary)
    flags = ["qk-exception" in t for t in tiles]
    assert flags == sorted(flags, reverse=True)
    assert "<svg" in summary  # MDC icons drawn inline
    assert "<img" not in summary
    with pytest.raises(review.QmsKpiError, match="did you mean 'c1'"):
        pack.section("C1")
    assert charts.show(model, "c1").html.startswith("<section")


def test_values_limits_and_signals_are_visible_text(model: review.ReviewModel) -> None:
    html = charts.Pack(model).section("c5").html
    visible = PLOTLYJS.sub("", html)
    visible = re.sub(r"<script[\s\S]*?</script>", "", visible)
    assert "process limits" in visible
    assert "rose above the upper limit in 2026-10" in visible
    assert "Variation in the latest month, by measure and site" in visible


# ---------------------------------------------------------------- escaping


def _without_plotlyjs(html: str) -> str:
    return PLOTLYJS.sub("", html)


def test_hostile_text_is_escaped_everywhere(evil_html: str) -> None:
    html = _without_plotlyjs(evil_html)
    assert "<script>alert" not in html
    assert not re.search(r"<[^>]*\sonerror\s*=", html)
    assert not re.search(r"<[^>]*\sonload\s*=", html)
    assert "<svg onload" not in html
    assert "<img src=x" not in html
    assert 'href="javascript:' not in html
    # ... and they are there, escaped, for the reader to see
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&quot;&#x27;&gt;&lt;svg onload=alert(1)&gt;" in html


def test_hostile_text_inside_plotly_figures_is_escaped(evil_html: str) -> None:
    scripts = re.findall(r"Plotly\.newPlot\([\s\S]*?</script>", evil_html)
    assert scripts
    for s in scripts:
        assert "<script" not in s.replace("</script>", "")
        assert "<img" not in s
        assert "<svg" not in s


def test_safe_markdown_subset() -> None:
    out = charts.safe_markdown(
        "# Title\n\nSome **bold** and *italic* and `code`.\n\n- one\n- two\n\n1. first\n2. second"
    )
    assert out == (
        "<h3>Title</h3>\n"
        "<p>Some <strong>bold</strong> and <em>italic</em> and <code>code</code>.</p>\n"
        "<ul><li>one</li><li>two</li></ul>\n"
        "<ol><li>first</li><li>second</li></ol>"
    )


@pytest.mark.parametrize("attack", [*XSS, '<a href="javascript:alert(1)">x</a>'])
def test_safe_markdown_escapes_html(attack: str) -> None:
    out = charts.safe_markdown(f"{attack}\n\n**{attack}**\n\n- {attack}")
    assert "<script" not in out
    assert "<img" not in out
    assert "<svg" not in out
    assert "<a " not in out
    assert out.count("&lt;") >= 3


def test_safe_markdown_pipe_tables() -> None:
    out = charts.safe_markdown(f"| Area | Note |\n|---|---|\n| QA | **ok** {XSS[0]} |\n\nAfter.")
    assert out == (
        '<table class="qk-table"><thead><tr><th>Area</th><th>Note</th></tr></thead>'
        "<tbody><tr><td>QA</td><td><strong>ok</strong> "
        "&lt;script&gt;alert(1)&lt;/script&gt;</td></tr></tbody></table>\n<p>After.</p>"
    )


def test_safe_markdown_links_are_text() -> None:
    out = charts.safe_markdown("See [the plan](javascript:alert(1)) and [docs](https://x.example).")
    assert "<a" not in out
    assert "the plan (javascript:alert(1))" in out


TEMPLATE_SYNTAX = "{{ 'ab' ~ 'cd' }} {% if true %}YES{% endif %} {# c #} <script>alert(1)</script>"


def test_template_syntax_in_a_field_reaches_the_pack_as_text(model: review.ReviewModel) -> None:
    # the pack's HTML comes from Jinja2 templates: a value is never evaluated as a template
    import html

    import polars as pl

    t = TEMPLATE_SYNTAX
    tile = replace(model.tiles[0], title=t, note=t, display=t)
    hostile = replace(model, narrative=(t,), tiles=(tile, *model.tiles[1:]))
    detail = {
        "superseded": {"id": t, "created_at": t},
        "changed_inputs": [{"dataset": t, "old_rows_in": 1, "new_rows_in": 2}],
        "kpis": [
            {
                "kpi": t,
                "scope": t,
                "period": t,
                "old_value": t,
                "new_value": t,
                "old_sound": t,
                "new_sound": "x",
            }
        ],
    }
    pages = [
        charts.Pack(hostile).summary().html,
        charts.Pack(hostile).restatement(detail).html,
        charts.frame_html(pl.DataFrame({t: [t]}), title=t).html,
    ]
    for page in pages:
        assert html.escape(t, quote=True) in page
        assert "<script" not in page
        assert "abcd" not in page
        assert ">YES<" not in page


def test_frame_html_escapes() -> None:
    import polars as pl

    frag = charts.frame_html(pl.DataFrame({"name<": [XSS[0]], "n": [1.23456]}), title=XSS[1])
    assert "<script>" not in frag.html
    assert "&lt;img" in frag.html
    assert "1.235" in frag.html


def test_restatement_shows_what_changed_escaped(model: review.ReviewModel) -> None:
    """A restated pack says which figures moved, from what to what, and why — all as text."""
    pack = charts.Pack(model)
    assert pack.restatement(None).html == ""
    detail = {
        "superseded": {"id": "old<pack>", "created_at": "2026-11-02T06:00:00Z"},
        "changed_inputs": [
            {"dataset": "complaints<script>", "old_rows_in": 1200, "new_rows_in": 1199}
        ],
        "config_changed": True,
        "qmskpi_changed": False,
        "kpis": [
            {
                "kpi": "complaints_received",
                "scope": "all",
                "period": "2026-10",
                "old_value": "83.0",
                "new_value": "82.0",
                "old_sound": "true",
                "new_sound": "true",
            },
            {
                "kpi": "x<img src=x onerror=alert(1)>",
                "scope": "North",
                "period": "2026-10",
                "old_value": None,
                "new_value": "0.5",
                "old_sound": "true",
                "new_sound": "false",
            },
        ],
    }
    html = pack.restatement(detail).html
    assert "Restatement: 2 figures differ from the pack published 2026-11-02T06:00:00Z" in html
    assert "supersedes pack old&lt;pack&gt;" in html
    assert "complaints&lt;script&gt; (rows 1,200 → 1,199); the configuration changed" in html
    assert '<td class="qk-f-float">83</td><td class="qk-f-float">82</td>' in html
    assert "true → false" in html
    assert "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "†" not in html  # no definition changed
    detail["definitions_changed"] = [
        {"kpi": "complaints_received", "old_definition": "a", "new_definition": "b"}
    ]
    html = pack.restatement(detail).html
    assert "the definition of 1 measure changed (marked †;" in html
    assert html.count("†") == 2  # the reason, and the one redefined row
    assert "Complaints received †</td>" in html


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


# ---------------------------------------------------------------- control_chart


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
