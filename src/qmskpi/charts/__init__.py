"""Present the review model: one house plotly style, SPC charts, tiles, tables, safe HTML.

Everything here reads a :class:`~qmskpi.review.ReviewModel` and returns HTML
fragments (objects with ``_repr_html_``) for the notebooks, or plotly figures.
Nothing is computed that a reader needs: values, limits and signal
explanations sit in visible text beside each chart, never only behind hover.

Safety (DESIGN §8): every data-derived string reaches HTML through
:func:`html.escape` (also the text put *into* plotly figures, since plotly.js
reads a subset of HTML tags in titles, labels and hover text); analyst markdown
goes through :func:`safe_markdown` (:mod:`qmskpi.markdown_html`: markdown-it-py with
raw HTML off, every character escaped, links shown as text).

Offline (STACK.md): figures are emitted with :func:`plotly.io.to_html`,
``full_html=False``, ``include_mathjax=False``, a pinned ``div_id``, and
plotly.js inlined by the first figure of a :class:`Document` only: the official
partial bundle of the trace types the pack draws (:data:`PLOTLYJS_BUNDLE`,
``templates/plotly/``), which Chromium evaluates ~1.5 s faster than the full one.

Notebook API::

    pack = charts.Pack(model)
    display(pack.cover()); display(pack.summary()); display(pack.section("c1")); ...
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import plotly.graph_objects as go
import plotly.io as pio
import polars as pl

from qmskpi import review, spc
from qmskpi.errors import QmsKpiError
from qmskpi.markdown_html import safe_markdown
from qmskpi.review import (
    PACK_SECTIONS,
    REGISTERS_XLSX,
    AnalystInput,
    CoverageRow,
    KpiTile,
    KpiValue,
    Meta,
    ReviewModel,
    Scalar,
    Section,
    Table,
    Trend,
    format_value,
    register_file,
)
from qmskpi.templating import esc, macro, trusted

__all__ = [
    "BUNDLE_TRACES",
    "COLOURS",
    "HOUSE_TEMPLATE",
    "PLOTLYJS_BUNDLE",
    "Document",
    "Fragment",
    "Pack",
    "assurance_icon",
    "bundle_script",
    "control_chart",
    "div_id",
    "esc",
    "figure_html",
    "frame_html",
    "objectives_figure",
    "pareto_figure",
    "running_label",
    "safe_markdown",
    "scorecard_figure",
    "show",
    "spc_figure",
    "spc_spec",
    "table_html",
    "variation_icon",
]

# ============================================================== house style

OKABE_ITO: Final = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",
)
COLOURS: Final = {
    "improvement": "#0072B2",  # MDC blue
    "concern": "#E69F00",  # MDC orange
    "concern_text": "#9A5B00",  # orange dark enough for text on white
    "neutral": "#CC79A7",  # MDC purple
    "common": "#7F7F7F",
    "line": "#4D4D4D",
    "limit": "#8C8C8C",
    "target": "#D55E00",
    "grid": "#E6E6E6",
    "text": "#1A1A1A",
    "muted": "#595959",
    "bar": "#56B4E9",
}
FONT: Final = "Helvetica, Arial, 'Liberation Sans', 'DejaVu Sans', sans-serif"

HOUSE_TEMPLATE: Final = go.layout.Template(
    layout=go.Layout(
        font={"family": FONT, "size": 11, "color": COLOURS["text"]},
        title={"font": {"size": 13}, "x": 0, "xanchor": "left", "y": 0.97},
        paper_bgcolor="#FFFFFF",
        plot_bgcolor="#FFFFFF",
        colorway=list(OKABE_ITO),
        margin={"l": 52, "r": 14, "t": 34, "b": 38},
        xaxis={
            "showgrid": False,
            "linecolor": "#BFBFBF",
            "ticks": "outside",
            "tickcolor": "#BFBFBF",
            "automargin": True,
            "zeroline": False,
        },
        yaxis={
            "gridcolor": COLOURS["grid"],
            "linecolor": "#BFBFBF",
            "zeroline": False,
            "automargin": True,
        },
        legend={"orientation": "h", "y": -0.22, "x": 0, "font": {"size": 10}},
        hoverlabel={"font": {"family": FONT}},
        showlegend=False,
    )
)
"""The one house plotly template: white, Okabe-Ito colours, print-size fonts."""

FULL_WIDTH: Final = 680
"""Chart width in CSS px: the printable width of A4 portrait at 14 mm margins."""
HALF_WIDTH: Final = 334

_PLOTLY_CONFIG: Final = {"displayModeBar": False, "responsive": False, "displaylogo": False}


def running_label(meta: Meta) -> str:
    """The label printed on every page of a pack whose clause map is provisional, else ``""``."""
    if not meta.clause_map_provisional:
        return ""
    return f"PROVISIONAL clause map: {meta.clause_map_title}"


def _provisional_label(meta: Meta) -> str:
    """The cover's notice; ``data-qk-running-label`` is what ``render`` prints on every page."""
    label = running_label(meta)
    if not label:
        return ""
    return _html("provisional", label=label, edition=meta.clause_map_edition)


def _html(name: str, /, **context: Any) -> str:
    """The pack piece ``name`` (a macro of ``templates/html/pack.html.j2``), values escaped."""
    return macro("pack.html.j2", name, **context)


_ID_BAD = re.compile(r"[^a-z0-9-]+")


def div_id(*parts: str) -> str:
    """A pinned element id from section, KPI and scope, sanitised to ``[a-z0-9-]``."""
    text = "-".join(str(p) for p in parts if p)
    return _ID_BAD.sub("-", text.lower()).strip("-") or "chart"


# ============================================================== documents and fragments


@dataclass(frozen=True, repr=False)
class Fragment:
    """A piece of the pack as HTML; notebooks display it (``_repr_html_``).

    The text repr is short on purpose: Jupyter stores it beside the HTML in every
    output, and the HTML can hold all of plotly.js.
    """

    html: str

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return f"<qmskpi pack fragment: {len(self.html):,} characters of HTML>"

    def __str__(self) -> str:
        return self.html


PLOTLYJS_BUNDLE: Final = (
    Path(__file__).parent.with_name("templates") / "plotly" / "plotly-finance.min.js"
)
"""The partial plotly.js the pack inlines (``templates/plotly/README.md``): 1.3 MB, not 4.8."""
BUNDLE_TRACES: Final = frozenset(
    {
        "bar",
        "candlestick",
        "funnel",
        "funnelarea",
        "histogram",
        "indicator",
        "ohlc",
        "pie",
        "scatter",
        "waterfall",
    }
)
"""The trace types :data:`PLOTLYJS_BUNDLE` draws; a figure with another gets the full plotly.js."""
_BUNDLE_VERSION = re.compile(r"plotly\.js \(finance - minified\) v([0-9][0-9A-Za-z.+-]*)")


@functools.cache
def bundle_script() -> str:
    """:data:`PLOTLYJS_BUNDLE` as one inline ``<script>``, headed ``plotly.js v<version>``.

    The header is the one the full plotly.js carries, so that ``render`` finds the
    library in a page or notebook output the same way whichever was inlined.
    """
    code = PLOTLYJS_BUNDLE.read_text(encoding="utf-8")
    found = _BUNDLE_VERSION.search(code[:400])
    version = found.group(1) if found else "?"
    traces = ", ".join(sorted(BUNDLE_TRACES))
    return (
        "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>\n"
        f"<script>/**\n* plotly.js v{version} (finance bundle: {traces})\n*/\n{code}</script>"
    )


@dataclass
class Document:
    """Per-document state: plotly.js is inlined by the first figure only; ids stay unique.

    The first figure inlines the partial bundle (:data:`PLOTLYJS_BUNDLE`); the first
    figure with a trace type outside :data:`BUNDLE_TRACES` inlines the full plotly.js
    (``full_plotlyjs``), which then draws it and every later figure.
    """

    plotlyjs_included: bool = False
    ids: set[str] = field(default_factory=set)
    full_plotlyjs: bool = False

    def unique_id(self, wanted: str) -> str:
        candidate, n = wanted, 1
        while candidate in self.ids:
            n += 1
            candidate = f"{wanted}-{n}"
        self.ids.add(candidate)
        return candidate


def figure_html(fig: go.Figure | Mapping[str, Any], doc: Document, wanted_id: str) -> str:
    """The figure as an offline HTML fragment with a pinned id (plotly.js once per document).

    ``fig`` is a figure, or a spec qmskpi built itself (:func:`spc_spec`), written as it is.
    """
    validated = isinstance(fig, go.Figure)
    traces = fig.data if isinstance(fig, go.Figure) else fig.get("data", [])
    types = {str((t.type if validated else t.get("type")) or "scatter") for t in traces}
    needs_full = not doc.full_plotlyjs and not types <= BUNDLE_TRACES
    out: str = pio.to_html(
        fig if validated else dict(fig),
        full_html=False,
        include_plotlyjs=needs_full,
        include_mathjax=False,
        div_id=doc.unique_id(div_id(wanted_id)),
        config=_PLOTLY_CONFIG,
        validate=validated,
    )
    if needs_full:
        doc.full_plotlyjs = True
    elif not doc.plotlyjs_included:
        out = bundle_script() + out
    doc.plotlyjs_included = True
    return out


# ============================================================== icons (inline SVG)

_VARIATION_TEXT: Final = {
    "common_cause": "Common cause",
    "improvement_high": "Improvement (high)",
    "improvement_low": "Improvement (low)",
    "concern_high": "Concern (high)",
    "concern_low": "Concern (low)",
    "neutral_high": "Special cause (high)",
    "neutral_low": "Special cause (low)",
}
_ASSURANCE_TEXT: Final = {
    "consistent_pass": "Target met consistently",
    "consistent_fail": "Target missed consistently",
    "inconsistent": "Target met some months",
}


def _variation_colour(icon: str) -> str:
    for key in ("improvement", "concern", "neutral"):
        if icon.startswith(key):
            return COLOURS[key]
    return COLOURS["common"]


_NO_ICON: Final = {
    "run_chart": "run chart: too few months for limits",
    "rare_events": "too rare to chart",
}


def variation_icon(icon: str | None, *, size: int = 30) -> str:
    """The NHS Making Data Count variation icon as inline SVG (with a text title)."""
    if not icon:
        return ""
    if icon in _NO_ICON:  # no process limits: no MDC icon, say why instead
        return _html("no_icon", text=_NO_ICON[icon])
    colour = _variation_colour(icon)
    label = _VARIATION_TEXT.get(icon, icon)
    high = icon.endswith("_high")
    low = icon.endswith("_low")
    ys = (
        (22, 19, 23, 20, 21)
        if not (high or low)
        else ((24, 23, 21, 17, 12) if high else (12, 13, 16, 20, 25))
    )
    dots = [
        (8 + i * 4, y, colour if (high or low) and i >= 2 else COLOURS["common"])
        for i, y in enumerate(ys)
    ]
    return _html(
        "variation_icon",
        size=size,
        label=label,
        colour=colour,
        common=COLOURS["common"],
        points=" ".join(f"{8 + i * 4},{y}" for i, y in enumerate(ys)),
        dots=dots,
        letter=(12 if high else 29, "H" if high else "L") if high or low else None,
    )


def assurance_icon(icon: str | None, *, size: int = 30) -> str:
    """The NHS Making Data Count assurance icon as inline SVG (P / F / ?)."""
    if not icon:
        return ""
    colour = {
        "consistent_pass": COLOURS["improvement"],
        "consistent_fail": COLOURS["concern"],
    }.get(icon, COLOURS["common"])
    letter = {"consistent_pass": "P", "consistent_fail": "F"}.get(icon, "?")
    label = _ASSURANCE_TEXT.get(icon, icon)
    return _html(
        "assurance_icon",
        size=size,
        label=label,
        colour=colour,
        target=COLOURS["target"],
        letter=letter,
    )


def _status_badge(status: str | None) -> str:
    if not status:
        return ""
    label = {
        "evidenced": "Evidenced",
        "missing": "Missing",
        "stale": "Stale",
        "failed": "Failed validation",
    }.get(status, status)
    return _html("status_badge", status=status, label=label)


# ============================================================== figures


def _month_labels(months: Sequence[str]) -> list[str]:
    return [esc(m) for m in months]


def spc_figure(trend: Trend, *, width: int = HALF_WIDTH, height: int = 215) -> go.Figure:
    """The SPC chart of a trend: values, centre, limits, coloured signals, target, rebases."""
    fig = go.Figure(spc_spec(trend, width=width, height=height))
    _add_rebases(fig, trend, _month_labels(trend.months))
    return fig


def spc_spec(trend: Trend, *, width: int = HALF_WIDTH, height: int = 215) -> dict[str, Any]:
    """:func:`spc_figure` but its rebases, as plain ``{"data", "layout"}`` data.

    Building it costs ~0.5 ms, against ~14 ms for the validated figure (plotly
    checks every property): the pack draws ~40 of them in the notebook.
    ``go.Figure(spc_spec(t))`` is the validated figure (``tests/test_charts.py``).
    """
    x = _month_labels(trend.months)
    unit = trend.unit
    scale = 100.0 if unit.lower().startswith("share") else 1.0
    suffix = " %" if scale == 100.0 else ""
    where = "All sites" if trend.scope == "all" else trend.scope
    title = esc(trend.title)
    if where:  # a chart drawn from a bare ControlChart has no scope
        title += f" <span style='color:{COLOURS['muted']}'>· {esc(where)}</span>"
    step = 6 if width < FULL_WIDTH else 3
    ticks = [x[i] for i in range(len(x)) if i % step == (len(x) - 1) % step]
    layout = {
        "template": _house_template_json(),
        "title": {"text": title},
        "width": width,
        "height": height,
        "xaxis": {"type": "category", "tickvals": ticks, "tickangle": 0, "tickfont": {"size": 9}},
        "yaxis": {
            "title": {"text": esc(_axis_unit(unit)), "font": {"size": 10}},
            "ticksuffix": suffix,
            "tickformat": ",.3~g" if scale == 1.0 else ".1f",
        },
    }
    data = [*_reference_lines(trend, x, scale), _values(trend, x, scale, suffix)]
    return {"data": data, "layout": layout}


@functools.cache
def _house_template_json() -> dict[str, Any]:
    template: dict[str, Any] = HOUSE_TEMPLATE.to_plotly_json()
    return template


def control_chart(
    chart: spc.ControlChart | pl.DataFrame | Trend,
    *,
    months: Sequence[str] | None = None,
    title: str = "",
    unit: str = "",
    direction: spc.Direction = "neutral",
    target: float | None = None,
    width: int = FULL_WIDTH,
    height: int = 260,
) -> go.Figure:
    """Any control chart as the pack draws it (:func:`spc_figure`).

    ``chart``: a :class:`~qmskpi.spc.ControlChart` you computed (``months`` label
    its points, default 1…n; ``direction`` colours its signals), a slice of
    :func:`qmskpi.kpis.kpi_series` for one KPI and one scope (charted as the
    pack charts that KPI), or a :class:`~qmskpi.review.Trend`.
    """
    if isinstance(chart, spc.ControlChart):
        trend = review.chart_trend(
            chart, months=months, title=title, unit=unit, direction=direction, target=target
        )
    elif isinstance(chart, pl.DataFrame):
        found = review.series_trend(chart, months=months, target=target)
        if found is None:
            raise QmsKpiError("nothing to chart: the series slice has no values")
        trend = found
    elif isinstance(chart, Trend):
        trend = chart
    else:
        raise TypeError(
            f"control_chart draws a spc.ControlChart, a polars kpi_series slice or a Trend, "
            f"not {type(chart).__name__}"
        )
    return spc_figure(trend, width=width, height=height)


def _scaled(vals: Sequence[float | None], scale: float) -> list[float | None]:
    return [None if v is None else v * scale for v in vals]


def _reference_lines(trend: Trend, x: list[str], scale: float) -> list[dict[str, Any]]:
    """Limits, centre line and target, drawn under the values (in that order)."""
    varying = len({v for v in trend.ucl if v is not None}) > 1
    limit_dash = "solid" if varying else "dash"
    centre = "Median" if trend.status == "run_chart" else "Average"
    traces: list[dict[str, Any]] = []
    for name, vals, dash, colour in (
        ("Upper limit", trend.ucl, limit_dash, COLOURS["limit"]),
        ("Lower limit", trend.lcl, limit_dash, COLOURS["limit"]),
        (centre, trend.center, "solid", COLOURS["line"]),
    ):
        if all(v is None for v in vals):
            continue  # a run chart has no limits, a rare-event chart no line at all
        traces.append(
            {
                "type": "scatter",
                "x": x,
                "y": _scaled(vals, scale),
                "mode": "lines",
                "name": name,
                "line": {
                    "color": colour,
                    "width": 1.2 if name != centre else 1.4,
                    "dash": dash,
                    "shape": "hv" if trend.chart in ("p", "laney_p", "u") else "linear",
                },
                "hoverinfo": "skip",
            }
        )
    if trend.target is not None:
        traces.append(
            {
                "type": "scatter",
                "x": x,
                "y": [trend.target * scale] * len(x),
                "mode": "lines",
                "name": "Target",
                "line": {"color": COLOURS["target"], "width": 1.4, "dash": "dot"},
                "hoverinfo": "skip",
            }
        )
    return traces


def _values(trend: Trend, x: list[str], scale: float, suffix: str) -> dict[str, Any]:
    """The values line, its markers coloured by signal class, and the hover text."""
    colours = [
        COLOURS.get(c, COLOURS["common"]) if c != "none" else COLOURS["common"]
        for c in trend.classes
    ]
    hover_n = ""
    trace: dict[str, Any] = {"type": "scatter"}
    if trend.denominators:
        trace["customdata"] = [[_g_or_dash(n), _g_or_dash(d)] for n, d in _num_den(trend)]
        hover_n = " (%{customdata[0]} / %{customdata[1]} " + esc(_short(trend.denominator_label))
        hover_n += ")"
    sizes = [7 if c != "none" else 5 for c in trend.classes]
    trace.update(
        x=x,
        y=_scaled(trend.values, scale),
        mode="lines+markers",
        name=esc(trend.title),
        line={"color": COLOURS["line"], "width": 1.3},
        marker={"color": colours, "size": sizes, "line": {"width": 0}},
        hovertemplate="%{x}: %{y:,.4g}" + suffix + hover_n + "<extra></extra>",
        connectgaps=False,  # a gap month is no point and breaks the line
    )
    return trace


def _add_rebases(fig: go.Figure, trend: Trend, x: list[str]) -> None:
    """A dotted line and a "rebased" label where the limits were recomputed."""
    for i in trend.rebase:
        if 0 <= i < len(x):
            fig.add_vline(x=i - 0.5, line={"color": COLOURS["muted"], "width": 1, "dash": "dot"})
            fig.add_annotation(
                x=i - 0.5,
                y=1,
                yref="paper",
                text="rebased",
                showarrow=False,
                font={"size": 9, "color": COLOURS["muted"]},
                xanchor="left",
                yanchor="top",
            )


def _num_den(trend: Trend) -> list[tuple[float | None, float | None]]:
    nums = trend.numerators or tuple(None for _ in trend.months)
    return list(zip(nums, trend.denominators, strict=True))


def _g_or_dash(x: float | None) -> str:
    return "–" if x is None else f"{x:,.10g}"


def _short(label: str) -> str:
    """``"units shipped in the period's months"`` -> ``"units shipped"`` (hover text)."""
    for cut in (" in the period", " in period"):
        if cut in label:
            return label[: label.index(cut)]
    return label


def trend_data_table(trend: Trend) -> str:
    """The numbers under a chart: month, value and (for a ratio) numerator and denominator."""
    ratio = bool(trend.denominators)
    pairs = _num_den(trend) if ratio else [(None, None)] * len(trend.months)
    rows = [
        (
            m,
            format_value(v, trend.unit) if v is not None else "gap",
            _g_or_dash(n),
            _g_or_dash(d),
        )
        for m, v, (n, d) in zip(trend.months, trend.values, pairs, strict=True)
    ]
    return _html(
        "trend_data",
        ratio=ratio,
        num_label=_short(trend.numerator_label) or "Numerator",
        den_label=_short(trend.denominator_label) or "Denominator",
        rows=rows,
    )


def _axis_unit(unit: str) -> str:
    u = unit.lower()
    if u.startswith("share"):
        return "%"
    return unit


def pareto_figure(table: Table, *, width: int = FULL_WIDTH, height: int = 280) -> go.Figure:
    """Defect Pareto: bars by count, cumulative-share line and the 80 % line."""
    recs = table.records()
    count_col = "count" if any("count" in r for r in recs) else "qty_defective"
    codes = [esc(r.get("defect_code")) for r in recs]
    counts = [r.get(count_col) for r in recs]
    cum = [(_num(r.get("cumulative_share")) or 0.0) * 100 for r in recs]
    vital = [bool(r.get("vital_few")) for r in recs]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=codes,
            y=counts,
            name=esc(_count_label(table, count_col)),
            marker={"color": [COLOURS["improvement"] if v else COLOURS["bar"] for v in vital]},
            text=[f"{c:,}" if isinstance(c, int) else esc(c) for c in counts],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{x}: %{y:,}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=codes,
            y=cum,
            name="Cumulative share",
            yaxis="y2",
            mode="lines+markers",
            line={"color": COLOURS["target"], "width": 1.5},
            marker={"size": 5},
            hovertemplate="%{x}: %{y:.1f} %<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=codes,
            y=[80.0] * len(codes),
            name="80 %",
            yaxis="y2",
            mode="lines",
            line={"color": COLOURS["muted"], "width": 1, "dash": "dash"},
            hoverinfo="skip",
        )
    )
    fig.update_layout(
        template=HOUSE_TEMPLATE,
        title={"text": esc(table.title)},
        width=width,
        height=height,
        showlegend=True,
        xaxis={"type": "category", "tickfont": {"size": 9}},
        yaxis={"title": {"text": esc(_count_label(table, count_col))}, "rangemode": "tozero"},
        yaxis2={
            "overlaying": "y",
            "side": "right",
            "range": [0, 105],
            "tickvals": [0, 20, 40, 60, 80, 100],
            "ticksuffix": " %",
            "title": {"text": "Cumulative share"},
            "showgrid": False,
        },
        margin={"r": 44},
    )
    return fig


def _count_label(table: Table, column_id: str) -> str:
    for c in table.columns:
        if c.id == column_id:
            return c.label
    return column_id


def scorecard_figure(
    table: Table, *, width: int = FULL_WIDTH, height: int | None = None
) -> go.Figure:
    """Supplier scores as horizontal bars coloured by rating (A blue, B grey, C orange)."""
    recs = sorted(table.records(), key=lambda r: _num(r.get("score")) or 0.0)
    names = [esc(r.get("name") or r.get("supplier_id")) for r in recs]
    scores = [_num(r.get("score")) for r in recs]
    colour = {"A": COLOURS["improvement"], "B": COLOURS["common"], "C": COLOURS["concern"]}
    fig = go.Figure(
        go.Bar(
            y=names,
            x=scores,
            orientation="h",
            marker={"color": [colour.get(str(r.get("rating")), COLOURS["bar"]) for r in recs]},
            text=[
                f"{s:.0f} · {esc(r.get('rating'))}" if s is not None else "n/a"
                for s, r in zip(scores, recs, strict=True)
            ],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.1f}<extra></extra>",
        )
    )
    fig.update_layout(
        template=HOUSE_TEMPLATE,
        title={"text": "Supplier score (0-100) and rating"},
        width=width,
        height=height or max(160, 60 + 18 * len(recs)),
        xaxis={"range": [0, 112], "title": {"text": "Score"}},
        yaxis={"type": "category", "tickfont": {"size": 9}},
        margin={"l": 10},
    )
    return fig


def objectives_figure(table: Table, *, width: int = FULL_WIDTH) -> go.Figure:
    """Bullet charts: each objective's actual (bar) against its target (red line).

    The bar is blue when the objective is met, orange when not; the shaded band
    is the side of the target that meets it. Values are printed beside each bar.
    """
    recs = table.records()
    n = max(1, len(recs))
    fig = go.Figure()
    for i, r in enumerate(recs):
        actual = _num(r.get("actual"))
        target = _num(r.get("target")) or 0.0
        higher = str(r.get("direction")) != "lower_is_better"
        top = max(abs(actual or 0.0), abs(target)) * 1.25 or 1.0
        met = r.get("met")
        bar = (
            COLOURS["improvement"]
            if met is True
            else COLOURS["concern"]
            if met is False
            else COLOURS["common"]
        )
        good = [target, top] if higher else [0, target]
        y0 = 1 - (i + 1) / n
        y1 = 1 - i / n
        name = esc(r.get("name") or r.get("objective_id"))
        shown = esc(f"{r.get('actual_display') or ''} (target {r.get('target_display') or ''})")
        fig.add_trace(
            go.Indicator(
                mode="gauge",
                value=actual if actual is not None else 0.0,
                title={"text": name, "font": {"size": 10}, "align": "right"},
                domain={"x": [0.36, 0.74], "y": [y0 + 0.18 / n, y1 - 0.18 / n]},
                gauge={
                    "shape": "bullet",
                    "axis": {"range": [0, top], "visible": False},
                    "bar": {"color": bar, "thickness": 0.5},
                    "bgcolor": "#FFFFFF",
                    "borderwidth": 1,
                    "bordercolor": "#BFBFBF",
                    "steps": [{"range": good, "color": "#E3F0F8"}],
                    "threshold": {
                        "line": {"color": COLOURS["target"], "width": 2.5},
                        "thickness": 0.95,
                        "value": target,
                    },
                },
            )
        )
        fig.add_annotation(
            x=0.75,
            y=(y0 + y1) / 2,
            xref="paper",
            yref="paper",
            text=shown,
            showarrow=False,
            xanchor="left",
            font={"size": 10},
        )
    fig.update_layout(
        template=HOUSE_TEMPLATE,
        width=width,
        height=40 + 30 * n,
        margin={"l": 10, "r": 10, "t": 28, "b": 6},
        title={"text": "Objectives: actual (bar) against target (red line); blue = met"},
    )
    return fig


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or x is None:
        return None
    if isinstance(x, int | float):
        f = float(x)
        return f if math.isfinite(f) else None
    return None


# ============================================================== tables


def format_cell(value: Scalar, fmt: str) -> str:
    """A table cell as escaped HTML, by the column's format."""
    if value is None or value == "":
        return ""
    if fmt == "icon":
        text = _VARIATION_TEXT.get(str(value)) or _ASSURANCE_TEXT.get(str(value), str(value))
        icon = (
            variation_icon(str(value), size=20)
            if str(value) in _VARIATION_TEXT
            else (assurance_icon(str(value), size=20))
        )
        return _html("icon_cell", icon=trusted(icon), text=text)
    if fmt == "bool":
        return "yes" if value is True else "no" if value is False else esc(value)
    num = _num(value)
    if num is not None:
        if fmt == "int":
            return f"{num:,.0f}"
        if fmt in ("share", "ppm", "days"):
            return esc(format_value(num, fmt))
        if fmt == "float":
            return esc(_g(num))
    return esc(value)


def _g(x: float) -> str:
    if float(x).is_integer() and abs(x) < 1e9:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:,.1f}"
    return f"{x:.4g}"


def table_html(
    table: Table,
    *,
    table_class: str = "",
    hide: Iterable[str] = (),
    highlight: str | None = None,
) -> str:
    """A model table as an escaped HTML table (``highlight``: a bool column marking rows)."""
    hidden = set(hide)
    cols = [(i, c) for i, c in enumerate(table.columns) if c.id not in hidden]
    ids = [c.id for c in table.columns]
    hi = ids.index(highlight) if highlight in ids else None
    rows = [
        (
            hi is not None and row[hi] is True,
            [(c.format, trusted(format_cell(row[i], c.format))) for i, c in cols],
        )
        for row in table.rows
    ]
    return _html(
        "table",
        anchor=div_id("table", table.id),
        title=table.title,
        empty_text=table.empty_text,
        table_class=table_class,
        heads=[(c.format, c.label) for _, c in cols],
        rows=rows,
        note=table.note,
        more=trusted(_more_html(table)),
    )


_TABLE_ID: Final = re.compile(r"^[a-z0-9_]{1,64}$")


def _more_html(table: Table) -> str:
    """The ranking rule and, for a cut table, "and N more" with relative links to the registers.

    The links are built from constants and the table id (a model id, checked),
    never from data: the pack folder works offline as a unit.
    """
    cut = bool(table.more and table.register)
    return _html(
        "more",
        order=table.order if table.order and (table.more or table.rows) else "",
        count=f"{table.more:,}" if cut else "",
        register=table.register,
        xlsx=REGISTERS_XLSX,
        csv=register_file(table.id) if cut and _TABLE_ID.match(table.id) else "",
    )


LIST_MAX: Final = 15
"""Items of the exceptions and opportunities lists the pack prints; all are in the registers."""


def _more_list(total: int, sheet: str, table_id: str, order: str) -> str:
    """ "and N more" under a list cut at :data:`LIST_MAX` (links from constants only)."""
    if total <= LIST_MAX:
        return ""
    return _html(
        "more_list",
        shown=LIST_MAX,
        order=order,
        count=f"{total - LIST_MAX:,}",
        xlsx=REGISTERS_XLSX,
        sheet=sheet,
        csv=register_file(table_id),
    )


def frame_html(frame: pl.DataFrame, *, title: str = "", max_rows: int = 200) -> Fragment:
    """Any polars frame as an escaped HTML table (for the analysts' deep-dive notebooks)."""
    shown = frame.head(max_rows)
    rows = [
        [_g(v) if isinstance(v, float) and math.isfinite(v) else v for v in r]
        for r in shown.iter_rows()
    ]
    cut = frame.height > max_rows
    return Fragment(
        _html(
            "frame",
            title=title,
            columns=shown.columns,
            rows=rows,
            shown=f"{max_rows:,}" if cut else "",
            total=f"{frame.height:,}",
        )
    )


def _rows_change(old: Any, new: Any) -> str:
    def rows(x: Any) -> str:
        return f"{int(x):,}" if _num(x) is not None else "none"

    return f"rows {rows(old)} → {rows(new)}"


def _restated_value(value: Any) -> str:
    """A value of ``kpis.csv`` (text there) shown as a number where it is one."""
    if value is None or value == "":
        return "—"
    try:
        return _g(float(value))
    except (TypeError, ValueError):
        return str(value)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _sound_change(old: Any, new: Any) -> str:
    if str(old) == str(new):
        return _text(old)
    return f"{_text(old)} → {_text(new)}"


# ============================================================== pack pieces


def _tile(t: KpiTile) -> str:
    classes = ["qk-tile"]
    if t.exception:
        classes.append("qk-exception")
    if not t.sound:
        classes.append("qk-unsound")
    labels = []
    if t.variation:
        labels.append(_VARIATION_TEXT.get(t.variation, t.variation))
    if t.assurance:
        labels.append(_ASSURANCE_TEXT.get(t.assurance, t.assurance))
    unmeasured = "not measured:" in (t.note or "")
    # A null value says why; a value says what it is based on or why it is not sound.
    return _html(
        "tile",
        classes=" ".join(classes),
        anchor=div_id("tile", t.kpi, t.scope),
        title=t.title,
        display=t.display,
        icons=trusted(variation_icon(t.variation) + assurance_icon(t.assurance)),
        target=f"Target {t.target_display}" if t.target_display else "No target",
        labels=" · ".join(labels),
        flag=("Not measured" if unmeasured else "Data failed validation") if not t.sound else "",
        note=t.note,
    )


def tiles_html(tiles: Sequence[KpiTile]) -> str:
    return _html("tiles", items=[trusted(_tile(t)) for t in tiles])


def _kpi_table(model: ReviewModel, section: Section) -> str:
    """The section's KPIs: value per scope, target, variation and assurance icons."""
    trends = {(t.kpi, t.scope): t for t in model.trends}
    rows = [v for v in model.kpis if v.kpi in section.kpis]
    if not rows:
        return ""
    # a site column only when some measure of the section has a value there
    scopes = [
        s
        for s in dict.fromkeys(v.scope for v in rows)
        if s == model.meta.scope or any(v.scope == s and v.value is not None for v in rows)
    ]
    multi = len(scopes) > 1
    # Many sites: the worst and the best site instead of a column each (fits A4 with 50).
    spread = len(scopes) - 1 > SITE_VALUE_COLUMNS
    shown = [scopes[0]] if spread else scopes
    by: dict[str, dict[str, KpiValue]] = {}
    for v in rows:
        by.setdefault(v.kpi, {})[v.scope] = v
    body = []
    for kpi_id, per in by.items():
        main = per[model.meta.scope] if model.meta.scope in per else next(iter(per.values()))
        t = _trend_for(model, kpi_id, main.scope, trends)
        cells: list[tuple[str, str]] = []
        if spread:
            cells.extend(_worst_best(main, [per[s] for s in scopes[1:] if s in per]))
        for s in shown:
            cell = per.get(s)
            if cell is None or (cell.value is None and cell.note.startswith("not split by site")):
                cells.append(("qk-num", ""))
                continue
            ts = trends.get((kpi_id, s))
            cls = "qk-num"
            if ts is not None and ts.classes and ts.classes[-1] in ("concern", "improvement"):
                cls += f" qk-sig-{ts.classes[-1]}"
            if not cell.sound:
                cls += " qk-unsound-cell"
            cells.append((cls, cell.display))
        if spread:  # the main scope's cell first, then worst and best
            cells = [*cells[2:], *cells[:2]]
        body.append(
            {
                "title": main.title,
                "sound": main.sound,
                "cells": cells,
                "target": main.target_display,
                "trend": t is not None,
                "var_icon": trusted(variation_icon(t.variation, size=20)) if t else None,
                "var_text": _VARIATION_TEXT.get(t.variation or "", "") if t else "",
                "ass_icon": (
                    trusted(assurance_icon(t.assurance, size=20)) if t and t.assurance else None
                ),
                "ass_text": _ASSURANCE_TEXT.get(t.assurance or "", "") if t else "",
            }
        )
    return _html(
        "kpi_table",
        anchor=div_id("kpis", section.id),
        heads=["All sites" if s == "all" else s for s in shown],
        spread=spread,
        rows=body,
        note={"scope": model.meta.scope_label, "sites": len(scopes) - 1} if multi else None,
    )


SITE_VALUE_COLUMNS: Final = 4
"""A section's KPI table has a column per site up to this many sites; beyond, worst and best."""


def _worst_best(main: KpiValue, sites: Sequence[KpiValue]) -> list[tuple[str, str]]:
    """Two cells (class, text): the site with the worst and the best value (by direction)."""
    valued = [v for v in sites if v.value is not None]
    if not valued:
        return [("qk-num", ""), ("qk-num", "")]
    ranked = sorted(valued, key=lambda v: (float(v.value or 0.0), v.scope))
    low, high = ranked[0], ranked[-1]
    worst, best = (low, high) if main.direction != "lower_is_better" else (high, low)
    return [("qk-num", f"{v.scope}: {v.display}") for v in (worst, best)]


def _trend_for(
    model: ReviewModel, kpi_id: str, scope: str, trends: dict[tuple[str, str], Trend]
) -> Trend | None:
    return trends.get((kpi_id, scope))


class Pack:
    """The pack of one review model, section by section, as displayable fragments.

    One :class:`Document` per pack: plotly.js is inlined by the first chart the
    pack emits, and never again; element ids are pinned and unique.
    """

    def __init__(self, model: ReviewModel, *, document: Document | None = None) -> None:
        self.model = model
        self.doc = document if document is not None else Document()

    # ------------------------------------------------------------ notebook API

    def _repr_html_(self) -> str:
        return self.everything().html

    def everything(self) -> Fragment:
        """Every section in clause-map order (a whole pack in one fragment)."""
        return Fragment("\n".join(self._one(s) for s in self.model.sections))

    def cover(self) -> Fragment:
        return self.section("cover")

    def summary(self) -> Fragment:
        return self.section("summary")

    def section(self, section_id: str) -> Fragment:
        """One section (``cover``, ``summary``, ``a``, ``b``, ``c1`` ... ``c7``, ``d``, ``e``,
        ``f``, ``decisions``, ``coverage``, ``appendix``) as a fragment.

        Sections a clause map of the user's own adds (ids not in
        :data:`~qmskpi.review.PACK_SECTIONS`, which the packaged notebook names one
        by one) are shown with the section they follow in the map.
        """
        s = self.model.section(section_id)
        parts = [self._one(s)]
        sections = self.model.sections
        for extra in sections[sections.index(s) + 1 :]:
            if extra.id in PACK_SECTIONS:
                break
            parts.append(self._one(extra))
        return Fragment("\n".join(parts))

    def _one(self, s: Section) -> str:
        render = {
            "cover": self._cover,
            "summary": self._summary,
            "f": self._opportunities,
            "coverage": self._coverage,
            "appendix": self._appendix,
            "decisions": self._decisions,
        }.get(s.id, self._input)
        return render(s)

    def trends(self, *, section: str | None = None, scope: str | None = None) -> Fragment:
        """SPC charts of the model's trends (optionally of one section's KPIs or one scope)."""
        ts = [
            t
            for t in self.model.trends
            if (section is None or t.section == section) and (scope is None or t.scope == scope)
        ]
        return Fragment(self._trend_grid(ts, section or "trends"))

    def charts(self, trends: Sequence[Trend], *, prefix: str = "deep-dive") -> Fragment:
        """SPC charts of any trends (e.g. ``review.trends(...)``), in this pack's document."""
        return Fragment(self._trend_grid(list(trends), prefix))

    def table(self, table_id: str) -> Fragment:
        t = self.model.table(table_id)
        return Fragment(table_html(t) if t is not None else "")

    def restatement(self, detail: Mapping[str, Any] | None) -> Fragment:
        """What this pack restates, when a published period was re-rendered with other figures.

        ``detail`` is the ``restatement.json`` a scheduled run stages beside
        ``review-inputs.json`` (``pipeline.restatement_for``); None gives nothing.
        Every value shows as text, so a director can answer "why is this month's
        figure not what we approved?" from the pack itself.
        """
        if not detail:
            return Fragment("")
        titles = {v.kpi: v.title for v in self.model.kpis}
        old = detail.get("superseded") or {}
        changed = [
            f"{_text(c.get('dataset'))} ({_rows_change(c.get('old_rows_in'), c.get('new_rows_in'))})"
            for c in detail.get("changed_inputs") or []
        ]
        reasons = []
        if changed:
            reasons.append("changed inputs: " + ", ".join(changed))
        if detail.get("config_changed"):
            reasons.append("the configuration changed")
        redefined = {str(d.get("kpi")) for d in detail.get("definitions_changed") or []}
        if redefined:
            n_def = len(redefined)
            reasons.append(
                f"the definition of {n_def} measure{'s' if n_def != 1 else ''} changed "
                "(marked †; old and new definitions in restatement.json)"
            )
        if detail.get("qmskpi_changed"):
            reasons.append(
                f"qmskpi {_text(detail.get('old_qmskpi'))} → {_text(detail.get('new_qmskpi'))}"
            )
        why = "; ".join(reasons) if reasons else "no input, configuration or version change"
        rows = [
            (
                titles.get(str(k.get("kpi")), str(k.get("kpi")))
                + (" †" if str(k.get("kpi")) in redefined else ""),
                k.get("scope"),
                k.get("period"),
                _restated_value(k.get("old_value")),
                _restated_value(k.get("new_value")),
                _sound_change(k.get("old_sound"), k.get("new_sound")),
            )
            for k in detail.get("kpis") or []
        ]
        return Fragment(
            _html(
                "restatement",
                n=len(rows),
                created_at=old.get("created_at"),
                old_id=old.get("id"),
                why=why,
                rows=rows,
            )
        )

    # ------------------------------------------------------------ pieces

    def _header(self, s: Section, *, extra: str = "") -> str:
        return _html(
            "section_head",
            page_break=s.page_break,
            anchor=div_id("section", s.id),
            ref=s.ref,
            title=s.title,
            badge=trusted(_status_badge(s.status)),
            wording=s.wording,
            notes=list(s.notes),
            extra=trusted(extra),
        )

    def _cover(self, s: Section) -> str:
        m = self.model.meta
        serious = [e for e in self.model.exceptions if e.rank <= 2]
        inputs = list(self.model.coverage)
        evidenced = sum(1 for c in inputs if c.status == "evidenced")
        state_cls = "qk-state-alert" if serious else "qk-state-ok"
        state = _exception_count(len(serious), len(self.model.exceptions) - len(serious))
        validated = (
            "data validated against the data contracts"
            if m.validated
            else "data NOT validated against the data contracts"
        )
        return _html(
            "cover",
            m=m,
            state_cls=state_cls,
            state=state,
            evidenced=evidenced,
            inputs=len(inputs),
            validated=validated,
            provisional=trusted(_provisional_label(m)),
        )

    def _summary(self, s: Section) -> str:
        m = self.model
        serious = [e for e in m.exceptions if e.rank <= 2]
        exceptions = (
            {
                "count": _exception_count(len(serious), len(m.exceptions) - len(serious)),
                "entries": [
                    (e.kind, _KIND_TEXT.get(e.kind, e.kind), self._ref(e.section), e.text)
                    for e in m.exceptions[:LIST_MAX]
                ],
                "more": trusted(
                    _more_list(len(m.exceptions), "Exceptions", "exceptions", "most serious")
                ),
            }
            if m.exceptions
            else None
        )
        icons = [
            *(variation_icon(i, size=16) for i in _LEGEND_VARIATION),
            *(assurance_icon(i, size=16) for i in _LEGEND_ASSURANCE),
        ]
        contents = [
            (
                x.ref,
                x.title,
                trusted(_status_badge(x.status)) if x.status not in (None, "evidenced") else None,
            )
            for x in m.sections
            if x.id not in ("cover", "summary")
        ]
        return _html(
            "summary",
            box="qk-exceptions" + ("" if serious else " qk-none"),
            narrative=list(m.narrative),
            meta=m.meta,
            tiles=trusted(tiles_html(m.tiles)),
            legend=trusted(_html("legend", icons=[trusted(i) for i in icons])),
            exceptions=exceptions,
            contents=contents,
        )

    def _input(self, s: Section) -> str:
        m = self.model
        parts = [self._header(s)]
        if s.analyst is not None:
            a = m.analyst_input(s.id)
            parts.append(self._analyst(a))
        parts.append(_kpi_table(m, s))
        for table_id in s.tables:
            parts.append(self._table_block(table_id, s))
        if s.trends:
            parts.append(self._trend_grid([t for t in m.trends if t.id in set(s.trends)], s.id))
        return _section(parts, anchor=div_id("body", s.id))

    def _analyst(self, a: AnalystInput | None) -> str:
        given = a is not None and a.markdown.strip()
        return _html(
            "analyst", markdown=trusted(safe_markdown(a.markdown)) if a and given else None
        )

    def _table_block(self, table_id: str, s: Section) -> str:
        t = self.model.table(table_id)
        if t is None:
            return ""
        if table_id == "defect_pareto" and t.rows:
            return figure_html(pareto_figure(t), self.doc, f"{s.id}-defect-pareto") + table_html(
                t, highlight="vital_few"
            )
        if table_id == "supplier_scorecard" and t.rows:
            return figure_html(
                scorecard_figure(t), self.doc, f"{s.id}-supplier-scorecard"
            ) + table_html(t)
        if table_id == "objective_attainment" and t.rows:
            return figure_html(objectives_figure(t), self.doc, f"{s.id}-objectives") + table_html(
                t, hide=_OBJECTIVE_HIDDEN
            )
        if table_id in ("review_actions",):
            return table_html(t, highlight="overdue")
        if table_id == "site_signals":
            return table_html(t, table_class="qk-matrix")
        return table_html(t)

    def _trend_grid(self, trends: Sequence[Trend], prefix: str) -> str:
        blocks = []
        for t in trends:
            fig = spc_figure(t) if t.rebase else spc_spec(t)  # the spec: no plotly checks
            chart = figure_html(fig, self.doc, f"{prefix}-{t.kpi}-{t.scope}")
            cls = "qk-chart"
            if t.classes and t.classes[-1] == "concern":
                cls += " qk-chart-concern"
            elif t.classes and t.classes[-1] == "improvement":
                cls += " qk-chart-improvement"
            icons = variation_icon(t.variation, size=22) + assurance_icon(t.assurance, size=22)
            blocks.append(
                {
                    "cls": cls,
                    "icons": trusted(icons),
                    "chart": trusted(chart),
                    "explanation": list(t.explanation),
                    "data": trusted(trend_data_table(t)),
                }
            )
        return _html("trend_grid", charts=blocks)

    def _opportunities(self, s: Section) -> str:
        ops = self.model.opportunities
        body = _html(
            "opportunities",
            items=[(o.text, o.basis, self._ref(o.section)) for o in ops[:LIST_MAX]],
            more=trusted(
                _more_list(len(ops), "Opportunities", "opportunities", "in section order")
            ),
        )
        return _section([self._header(s), body])

    def _ref(self, section_id: str) -> str:
        for x in self.model.sections:
            if x.id == section_id:
                return x.ref
        return section_id

    def _decisions(self, s: Section) -> str:
        t = self.model.table("decisions")
        return _section([self._header(s), table_html(t, table_class="qk-decisions") if t else ""])

    def _coverage(self, s: Section) -> str:
        rows = [_coverage_row(c) for c in self.model.coverage]
        return _section([self._header(s), _html("coverage", rows=rows)])

    def _appendix(self, s: Section) -> str:
        parts = [self._header(s)]
        for table_id in s.tables:
            t = self.model.table(table_id)
            if t is None:
                continue
            if table_id == "kpi_definitions":
                parts.append(
                    table_html(t, table_class="qk-small qk-defs", hide=("datasets", "kind"))
                )
            elif table_id == "ledger":
                parts.append(table_html(t, table_class="qk-ledger"))
            else:
                parts.append(table_html(t, table_class="qk-small"))
        return _section(parts, classes="qk-section qk-appendix")


_OBJECTIVE_HIDDEN: Final = ("direction", "unit", "target", "actual", "ytd_actual", "sound")


def _exception_count(serious: int, gaps: int) -> str:
    """The same count on the cover and over the exceptions list: "3 exceptions need
    attention; 10 gaps in the evidence"."""
    if serious:
        head = f"{serious} exception{'s' if serious != 1 else ''} need"
        head += f"{'s' if serious == 1 else ''} attention"
    else:
        head = "No exception needs attention"
    if gaps:
        head += f"; {gaps} gap{'s' if gaps != 1 else ''} in the evidence"
    return head


_KIND_TEXT: Final = {
    "unsound": "Data",
    "concern": "Concern",
    "assurance_fail": "Target",
    "overdue": "Overdue",
    "coverage": "Evidence",
}


def _coverage_row(c: CoverageRow) -> dict[str, Any]:
    """One row of the coverage matrix: the input, its status and each piece of evidence."""
    evidence = [(trusted(_status_badge(d.status)), d.detail) for d in c.evidence]
    return {
        "status": c.status,
        "ref": c.ref,
        "title": c.title,
        "badge": trusted(_status_badge(c.status)),
        "evidence": evidence or [(None, c.detail)],
    }


def _section(
    parts: Sequence[str], *, anchor: str | None = None, classes: str = "qk-section"
) -> str:
    """``<section>`` around pieces already rendered."""
    return _html("section", anchor=anchor, parts=[trusted(p) for p in parts], classes=classes)


_LEGEND_VARIATION: Final = ("common_cause", "improvement_high", "concern_high")
_LEGEND_ASSURANCE: Final = ("consistent_pass", "consistent_fail", "inconsistent")


_LAST_PACK: list[Pack] = []


def show(model: ReviewModel, section_id: str) -> Fragment:
    """One section of ``model``; successive calls with the same model share one document."""
    if not _LAST_PACK or _LAST_PACK[0].model is not model:
        _LAST_PACK[:] = [Pack(model)]
    return _LAST_PACK[0].section(section_id)


def figure_spec(fig: go.Figure) -> dict[str, Any]:
    """A figure's data and layout as plain JSON-able data (template reduced to a marker)."""
    d: dict[str, Any] = fig.to_plotly_json()
    layout = dict(d.get("layout", {}))
    if "template" in layout:
        layout["template"] = "qmskpi"
    return {"data": d.get("data", []), "layout": layout}
