"""SPC charts: a trend's values, centre line, limits, coloured signals, target and rebases.

:func:`spc_spec` writes the chart as plain ``{"data", "layout"}`` data (no plotly
validation: ~0.5 ms against ~14 ms), :func:`spc_figure` is the validated figure
(with its rebase lines), :func:`control_chart` draws any chart an analyst
computed, and :func:`trend_data_table` is the numbers printed under each chart.
One of the three parts that import plotly.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
import polars as pl

from qmskpi import review, spc
from qmskpi.charts.base import COLOURS, _html
from qmskpi.charts.figures import FULL_WIDTH, HALF_WIDTH, HOUSE_TEMPLATE
from qmskpi.errors import QmsKpiError
from qmskpi.review import (
    Trend,
    format_value,
)
from qmskpi.templating import esc


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
    ``go.Figure(spc_spec(t))`` is the validated figure (``tests/charts/test_spc_chart.py``).
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
