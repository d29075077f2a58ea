"""The house plotly style and the pack's figures other than SPC charts.

:data:`HOUSE_TEMPLATE` (white, Okabe-Ito colours, print-size fonts), the chart
widths, :func:`pareto_figure`, :func:`scorecard_figure`, :func:`objectives_figure`
and :func:`figure_spec`. Every data-derived string put into a figure is escaped
(plotly.js reads a subset of HTML tags). One of the three parts that import plotly.
"""

from __future__ import annotations

from typing import Any, Final

import plotly.graph_objects as go

from qmskpi.charts.base import COLOURS, _num
from qmskpi.review import (
    Table,
)
from qmskpi.templating import esc

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


def figure_spec(fig: go.Figure) -> dict[str, Any]:
    """A figure's data and layout as plain JSON-able data (template reduced to a marker)."""
    d: dict[str, Any] = fig.to_plotly_json()
    layout = dict(d.get("layout", {}))
    if "template" in layout:
        layout["template"] = "qmskpi"
    return {"data": d.get("data", []), "layout": layout}
