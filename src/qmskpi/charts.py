"""Present the review model: one house plotly style, SPC charts, tiles, tables, safe HTML.

Everything here reads a :class:`~qmskpi.review.ReviewModel` and returns HTML
fragments (objects with ``_repr_html_``) for the notebooks, or plotly figures.
Nothing is computed that a reader needs: values, limits and signal
explanations sit in visible text beside each chart, never only behind hover.

Safety (DESIGN §8): every data-derived string reaches HTML through
:func:`html.escape` (also the text put *into* plotly figures, since plotly.js
reads a subset of HTML tags in titles, labels and hover text); analyst markdown
goes through :func:`safe_markdown`, a tiny renderer that escapes everything and
knows only paragraphs, headings, bullet lists, bold, italic and code.

Offline (STACK.md): figures are emitted with :func:`plotly.io.to_html`,
``full_html=False``, ``include_mathjax=False``, a pinned ``div_id``, and
plotly.js inlined by the first figure of a :class:`Document` only.

Notebook API::

    pack = charts.Pack(model)
    display(pack.cover()); display(pack.summary()); display(pack.section("c1")); ...
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import plotly.graph_objects as go
import plotly.io as pio
import polars as pl

from qmskpi import review, spc
from qmskpi.errors import QmsKpiError
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

__all__ = [
    "COLOURS",
    "HOUSE_TEMPLATE",
    "Document",
    "Fragment",
    "Pack",
    "assurance_icon",
    "control_chart",
    "div_id",
    "figure_html",
    "frame_html",
    "objectives_figure",
    "pareto_figure",
    "running_label",
    "safe_markdown",
    "scorecard_figure",
    "show",
    "spc_figure",
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
    return (
        f'<p class="qk-provisional" data-qk-running-label="{esc(label)}">'
        f"<strong>{esc(label)}</strong> · {esc(meta.clause_map_edition)}</p>"
    )


def esc(value: object) -> str:
    """HTML-escape any value (quotes too); None becomes an empty string."""
    return "" if value is None else html.escape(str(value), quote=True)


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


@dataclass
class Document:
    """Per-document state: plotly.js is inlined by the first figure only; ids stay unique."""

    plotlyjs_included: bool = False
    ids: set[str] = field(default_factory=set)

    def unique_id(self, wanted: str) -> str:
        candidate, n = wanted, 1
        while candidate in self.ids:
            n += 1
            candidate = f"{wanted}-{n}"
        self.ids.add(candidate)
        return candidate


def figure_html(fig: go.Figure, doc: Document, wanted_id: str) -> str:
    """The figure as an offline HTML fragment with a pinned id (plotly.js once per document)."""
    first = not doc.plotlyjs_included
    doc.plotlyjs_included = True
    out: str = pio.to_html(
        fig,
        full_html=False,
        include_plotlyjs=first,
        include_mathjax=False,
        div_id=doc.unique_id(div_id(wanted_id)),
        config=_PLOTLY_CONFIG,
        validate=True,
    )
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
        return (
            f'<span class="qk-no-icon" title="{esc(_NO_ICON[icon])}">{esc(_NO_ICON[icon])}</span>'
        )
    colour = _variation_colour(icon)
    label = _VARIATION_TEXT.get(icon, icon)
    high = icon.endswith("_high")
    low = icon.endswith("_low")
    ys = (
        (22, 19, 23, 20, 21)
        if not (high or low)
        else ((24, 23, 21, 17, 12) if high else (12, 13, 16, 20, 25))
    )
    dots = []
    for i, y in enumerate(ys):
        special = (high or low) and i >= 2
        dots.append(
            f'<circle cx="{8 + i * 4}" cy="{y}" r="1.9" fill="{colour if special else COLOURS["common"]}"/>'
        )
    letter = ""
    if high or low:
        letter = (
            f'<text x="20" y="{12 if high else 29}" font-size="9" font-weight="700" '
            f'text-anchor="middle" fill="{colour}" font-family="Arial, sans-serif">'
            f"{'H' if high else 'L'}</text>"
        )
    line = '<polyline points="' + " ".join(f"{8 + i * 4},{y}" for i, y in enumerate(ys))
    line += f'" fill="none" stroke="{COLOURS["common"]}" stroke-width="0.9"/>'
    return (
        f'<svg class="qk-icon" width="{size}" height="{size}" viewBox="0 0 40 36" role="img" '
        f'aria-label="{esc(label)}"><title>{esc(label)}</title>'
        f'<circle cx="20" cy="18" r="16" fill="#fff" stroke="{colour}" stroke-width="3"/>'
        f"{line}{''.join(dots)}{letter}</svg>"
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
    return (
        f'<svg class="qk-icon" width="{size}" height="{size}" viewBox="0 0 40 36" role="img" '
        f'aria-label="{esc(label)}"><title>{esc(label)}</title>'
        f'<circle cx="20" cy="18" r="16" fill="#fff" stroke="{colour}" stroke-width="3"/>'
        f'<line x1="8" y1="25" x2="32" y2="25" stroke="{COLOURS["target"]}" stroke-width="1.2" '
        'stroke-dasharray="2,1.5"/>'
        f'<text x="20" y="22" font-size="15" font-weight="700" text-anchor="middle" '
        f'fill="{colour}" font-family="Arial, sans-serif">{letter}</text></svg>'
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
    return f'<span class="qk-badge qk-status-{esc(status)}">{esc(label)}</span>'


# ============================================================== safe markdown

_INLINE: Final = (
    (re.compile(r"`([^`\n]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"__(?=\S)(.+?)(?<=\S)__"), r"<strong>\1</strong>"),
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])"), r"<em>\1</em>"),
    (re.compile(r"(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])"), r"<em>\1</em>"),
)
# [text](url) -> "text (url)": shown as plain text, never a link.
_LINK: Final = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)\)")
_HEADING: Final = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET: Final = re.compile(r"^\s*[-*+]\s+(.*)$")
_NUMBERED: Final = re.compile(r"^\s*\d{1,3}[.)]\s+(.*)$")


def _inline(text: str) -> str:
    out = html.escape(text, quote=True)
    out = _LINK.sub(r"\1 (\2)", out)
    for pattern, repl in _INLINE:
        out = pattern.sub(repl, out)
    return out


def safe_markdown(text: str, *, heading_offset: int = 2) -> str:
    """Render a small markdown subset to HTML, escaping every character of the input.

    Supported: paragraphs, ``#`` headings (shifted down by ``heading_offset``
    levels to sit under the section heading), ``-``/``*``/``+`` bullet and
    ``1.`` numbered lists, ``| a | b |`` pipe tables, ``**bold**``, ``*italic*``,
    `` `code` ``. Raw HTML is shown as text; links are shown as "text (url)",
    never as anchors.
    """
    blocks: list[str] = []
    para: list[str] = []
    items: list[str] = []
    list_tag = "ul"

    def flush() -> None:
        nonlocal para, items
        if para:
            blocks.append("<p>" + " ".join(_inline(p) for p in para) + "</p>")
            para = []
        if items:
            lis = "".join(f"<li>{_inline(i)}</li>" for i in items)
            blocks.append(f"<{list_tag}>{lis}</{list_tag}>")
            items = []

    rows: list[list[str]] = []

    def flush_table() -> None:
        nonlocal rows
        if not rows:
            return
        head, body = rows[0], rows[1:]
        if body and all(re.fullmatch(r":?-{2,}:?", c.strip()) for c in body[0]):
            body = body[1:]
        else:  # no separator line: every row is data
            head, body = [], rows
        thead = (
            "<thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr></thead>"
            if head
            else ""
        )
        tbody = "".join(
            "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body
        )
        blocks.append(f'<table class="qk-table">{thead}<tbody>{tbody}</tbody></table>')
        rows = []

    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.rstrip()
        if line.strip().startswith("|"):
            flush()
            cells = line.strip().strip("|").split("|")
            rows.append([c.strip() for c in cells])
            continue
        flush_table()
        if not line.strip():
            flush()
            continue
        if m := _HEADING.match(line.strip()):
            flush()
            level = min(6, len(m.group(1)) + heading_offset)
            blocks.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
            continue
        bullet = _BULLET.match(line)
        numbered = _NUMBERED.match(line) if not bullet else None
        if bullet or numbered:
            tag = "ul" if bullet else "ol"
            if para or (items and tag != list_tag):
                flush()
            list_tag = tag
            items.append((bullet or numbered).group(1))  # type: ignore[union-attr]
            continue
        if items and raw.startswith((" ", "\t")):
            items[-1] += " " + line.strip()
            continue
        if items:
            flush()
        para.append(line.strip())
    flush()
    flush_table()
    return "\n".join(blocks)


# ============================================================== figures


def _month_labels(months: Sequence[str]) -> list[str]:
    return [esc(m) for m in months]


def spc_figure(trend: Trend, *, width: int = HALF_WIDTH, height: int = 215) -> go.Figure:
    """The SPC chart of a trend: values, centre, limits, coloured signals, target, rebases."""
    x = _month_labels(trend.months)
    unit = trend.unit
    scale = 100.0 if unit.lower().startswith("share") else 1.0
    suffix = " %" if scale == 100.0 else ""
    fig = go.Figure()
    _add_reference_lines(fig, trend, x, scale)
    _add_values(fig, trend, x, scale, suffix)
    _add_rebases(fig, trend, x)
    where = "All sites" if trend.scope == "all" else trend.scope
    title = esc(trend.title)
    if where:  # a chart drawn from a bare ControlChart has no scope
        title += f" <span style='color:{COLOURS['muted']}'>· {esc(where)}</span>"
    step = 6 if width < FULL_WIDTH else 3
    ticks = [x[i] for i in range(len(x)) if i % step == (len(x) - 1) % step]
    fig.update_layout(
        template=HOUSE_TEMPLATE,
        title={"text": title},
        width=width,
        height=height,
        xaxis={"type": "category", "tickvals": ticks, "tickangle": 0, "tickfont": {"size": 9}},
        yaxis={
            "title": {"text": esc(_axis_unit(unit)), "font": {"size": 10}},
            "ticksuffix": suffix,
            "tickformat": ",.3~g" if scale == 1.0 else ".1f",
        },
    )
    return fig


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


def _add_reference_lines(fig: go.Figure, trend: Trend, x: list[str], scale: float) -> None:
    """Limits, centre line and target, drawn under the values (in that order)."""
    varying = len({v for v in trend.ucl if v is not None}) > 1
    limit_dash = "solid" if varying else "dash"
    centre = "Median" if trend.status == "run_chart" else "Average"
    for name, vals, dash, colour in (
        ("Upper limit", trend.ucl, limit_dash, COLOURS["limit"]),
        ("Lower limit", trend.lcl, limit_dash, COLOURS["limit"]),
        (centre, trend.center, "solid", COLOURS["line"]),
    ):
        if all(v is None for v in vals):
            continue  # a run chart has no limits, a rare-event chart no line at all
        fig.add_trace(
            go.Scatter(
                x=x,
                y=_scaled(vals, scale),
                mode="lines",
                name=name,
                line={
                    "color": colour,
                    "width": 1.2 if name != centre else 1.4,
                    "dash": dash,
                    "shape": "hv" if trend.chart in ("p", "laney_p", "u") else "linear",
                },
                hoverinfo="skip",
            )
        )
    if trend.target is not None:
        fig.add_trace(
            go.Scatter(
                x=x,
                y=[trend.target * scale] * len(x),
                mode="lines",
                name="Target",
                line={"color": COLOURS["target"], "width": 1.4, "dash": "dot"},
                hoverinfo="skip",
            )
        )


def _add_values(fig: go.Figure, trend: Trend, x: list[str], scale: float, suffix: str) -> None:
    """The values line, its markers coloured by signal class, and the hover text."""
    colours = [
        COLOURS.get(c, COLOURS["common"]) if c != "none" else COLOURS["common"]
        for c in trend.classes
    ]
    custom: list[list[str]] | None = None
    hover_n = ""
    if trend.denominators:
        custom = [[_g_or_dash(n), _g_or_dash(d)] for n, d in _num_den(trend)]
        hover_n = " (%{customdata[0]} / %{customdata[1]} " + esc(_short(trend.denominator_label))
        hover_n += ")"
    sizes = [7 if c != "none" else 5 for c in trend.classes]
    fig.add_trace(
        go.Scatter(
            x=x,
            y=_scaled(trend.values, scale),
            mode="lines+markers",
            name=esc(trend.title),
            line={"color": COLOURS["line"], "width": 1.3},
            marker={"color": colours, "size": sizes, "line": {"width": 0}},
            hovertemplate="%{x}: %{y:,.4g}" + suffix + hover_n + "<extra></extra>",
            customdata=custom,
            connectgaps=False,  # a gap month is no point and breaks the line
        )
    )


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
    unit = trend.unit
    head = "<th>Month</th><th class='qk-num'>Value</th>"
    if trend.denominators:
        head += (
            f"<th class='qk-num'>{esc(_short(trend.numerator_label) or 'Numerator')}</th>"
            f"<th class='qk-num'>{esc(_short(trend.denominator_label) or 'Denominator')}</th>"
        )
        pairs = _num_den(trend)
    else:
        pairs = [(None, None)] * len(trend.months)
    rows = []
    for m, v, (n, d) in zip(trend.months, trend.values, pairs, strict=True):
        cells = f"<td>{esc(m)}</td><td class='qk-num'>"
        cells += (esc(format_value(v, unit)) if v is not None else "gap") + "</td>"
        if trend.denominators:
            cells += f"<td class='qk-num'>{esc(_g_or_dash(n))}</td>"
            cells += f"<td class='qk-num'>{esc(_g_or_dash(d))}</td>"
        rows.append(f"<tr>{cells}</tr>")
    return (
        '<details class="qk-data"><summary>Data</summary><table class="qk-table">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></details>"
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
        return f'{icon}<span class="qk-sr">{esc(text)}</span>'
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
    head = "".join(f'<th class="qk-f-{esc(c.format)}">{esc(c.label)}</th>' for _, c in cols)
    body = []
    hi = (
        [c.id for c in table.columns].index(highlight)
        if highlight in [c.id for c in table.columns]
        else None
    )
    for row in table.rows:
        cls = ' class="qk-flag"' if hi is not None and row[hi] is True else ""
        cells = "".join(
            f'<td class="qk-f-{esc(c.format)}">{format_cell(row[i], c.format)}</td>'
            for i, c in cols
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    caption = f"<caption>{esc(table.title)}</caption>" if table.title else ""
    note = f'<p class="qk-note">{esc(table.note)}</p>' if table.note else ""
    note += _more_html(table)
    if not table.rows:
        return (
            f'<div class="qk-block qk-table-block" id="{esc(div_id("table", table.id))}">'
            f'<p class="qk-caption">{esc(table.title)}</p>'
            f'<p class="qk-empty">{esc(table.empty_text)}</p>{note}</div>'
        )
    return (
        f'<div class="qk-block qk-table-block" id="{esc(div_id("table", table.id))}">'
        f'<table class="qk-table {esc(table_class)}">{caption}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>{note}</div>"
    )


_TABLE_ID: Final = re.compile(r"^[a-z0-9_]{1,64}$")


def _more_html(table: Table) -> str:
    """The ranking rule and, for a cut table, "and N more" with relative links to the registers.

    The links are built from constants and the table id (a model id, checked),
    never from data: the pack folder works offline as a unit.
    """
    parts = []
    if table.order and (table.more or table.rows):
        parts.append(f'<span class="qk-order">Ranked: {esc(table.order)}</span>')
    if table.more and table.register:
        where = f"sheet {esc(table.register)}"
        if _TABLE_ID.match(table.id):
            where = (
                f'<a href="{REGISTERS_XLSX}">{REGISTERS_XLSX}</a>, {where} '
                f'(<a href="{esc(register_file(table.id))}">{esc(register_file(table.id))}</a>)'
            )
        parts.append(f'<span class="qk-more">and {table.more:,} more: {where}</span>')
    return f'<p class="qk-note qk-register">{" · ".join(parts)}</p>' if parts else ""


LIST_MAX: Final = 15
"""Items of the exceptions and opportunities lists the pack prints; all are in the registers."""


def _more_list(total: int, sheet: str, table_id: str, order: str) -> str:
    """ "and N more" under a list cut at :data:`LIST_MAX` (links from constants only)."""
    if total <= LIST_MAX:
        return ""
    csv = register_file(table_id)
    return (
        f'<p class="qk-note qk-register"><span class="qk-order">Ranked: the first {LIST_MAX}, '
        f'{esc(order)}.</span> · <span class="qk-more">and {total - LIST_MAX:,} more: '
        f'<a href="{REGISTERS_XLSX}">{REGISTERS_XLSX}</a>, sheet {esc(sheet)} '
        f'(<a href="{csv}">{csv}</a>)</span></p>'
    )


def frame_html(frame: pl.DataFrame, *, title: str = "", max_rows: int = 200) -> Fragment:
    """Any polars frame as an escaped HTML table (for the analysts' deep-dive notebooks)."""
    shown = frame.head(max_rows)
    cols = shown.columns
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    rows = []
    for r in shown.iter_rows():
        cells = "".join(
            f"<td>{esc(_g(v) if isinstance(v, float) and math.isfinite(v) else v)}</td>" for v in r
        )
        rows.append(f"<tr>{cells}</tr>")
    more = (
        f'<p class="qk-note">Showing {max_rows:,} of {frame.height:,} rows.</p>'
        if frame.height > max_rows
        else ""
    )
    cap = f"<caption>{esc(title)}</caption>" if title else ""
    return Fragment(
        f'<div class="qk-block qk-table-block"><table class="qk-table">{cap}<thead><tr>{head}'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}</div>"
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
        return esc(_g(float(value)))
    except (TypeError, ValueError):
        return esc(value)


def _sound_change(old: Any, new: Any) -> str:
    if str(old) == str(new):
        return esc(old if old is not None else "")
    return f"{esc(old)} → {esc(new)}"


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
    target = f"Target {esc(t.target_display)}" if t.target_display else "No target"
    unmeasured = "not measured:" in (t.note or "")
    flag_text = "Not measured" if unmeasured else "Data failed validation"
    flag = f'<div class="qk-tile-flag">{flag_text}</div>' if not t.sound else ""
    # A null value says why; a value says what it is based on or why it is not sound.
    note = f'<div class="qk-tile-note">{esc(t.note)}</div>' if t.note else ""
    return (
        f'<div class="{" ".join(classes)}" id="{esc(div_id("tile", t.kpi, t.scope))}">'
        f'<div class="qk-tile-title">{esc(t.title)}</div>'
        f'<div class="qk-tile-row"><div class="qk-tile-value">{esc(t.display)}</div>'
        f'<div class="qk-tile-icons">{variation_icon(t.variation)}{assurance_icon(t.assurance)}</div></div>'
        f'<div class="qk-tile-target">{target}</div>'
        f'<div class="qk-tile-label">{esc(" · ".join(labels))}</div>{flag}{note}</div>'
    )


def tiles_html(tiles: Sequence[KpiTile]) -> str:
    return '<div class="qk-tiles">' + "".join(_tile(t) for t in tiles) + "</div>"


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
    head = (
        "<th>Measure</th>"
        + "".join(f'<th class="qk-num">{esc("All sites" if s == "all" else s)}</th>' for s in shown)
        + ('<th class="qk-num">Worst site</th><th class="qk-num">Best site</th>' if spread else "")
        + '<th class="qk-num">Target</th><th>Variation</th><th>Assurance</th>'
    )
    by: dict[str, dict[str, KpiValue]] = {}
    for v in rows:
        by.setdefault(v.kpi, {})[v.scope] = v
    body = []
    for kpi_id, per in by.items():
        main = per[model.meta.scope] if model.meta.scope in per else next(iter(per.values()))
        t = _trend_for(model, kpi_id, main.scope, trends)
        cells = []
        if spread:
            cells.extend(_worst_best(main, [per[s] for s in scopes[1:] if s in per]))
        for s in shown:
            cell = per.get(s)
            if cell is None or (cell.value is None and cell.note.startswith("not split by site")):
                cells.append('<td class="qk-num"></td>')
                continue
            ts = trends.get((kpi_id, s))
            cls = "qk-num"
            if ts is not None and ts.classes and ts.classes[-1] in ("concern", "improvement"):
                cls += f" qk-sig-{ts.classes[-1]}"
            if not cell.sound:
                cls += " qk-unsound-cell"
            cells.append(f'<td class="{cls}">{esc(cell.display)}</td>')
        if spread:  # the main scope's cell first, then worst and best
            cells = [*cells[2:], *cells[:2]]
        var = (
            f"{variation_icon(t.variation, size=20)} {esc(_VARIATION_TEXT.get(t.variation or '', ''))}"
            if t
            else ""
        )
        ass = (
            f"{assurance_icon(t.assurance, size=20)} {esc(_ASSURANCE_TEXT.get(t.assurance or '', ''))}"
            if t and t.assurance
            else ""
        )
        flag = "" if main.sound else ' <span class="qk-badge qk-status-failed">not sound</span>'
        body.append(
            f"<tr><td>{esc(main.title)}{flag}</td>{''.join(cells)}"
            f'<td class="qk-num">{esc(main.target_display)}</td>'
            f'<td class="qk-icon-cell">{var}</td><td class="qk-icon-cell">{ass}</td></tr>'
        )
    note = (
        '<p class="qk-note">Values for the period. Variation and assurance are for '
        f"{esc(model.meta.scope_label)}; coloured site values carry a signal in the latest month."
        + (
            f" Worst and best of {len(scopes) - 1} sites by the measure's direction; every "
            'site\'s value: <a href="kpis.csv">kpis.csv</a>.'
            if spread
            else ""
        )
        + "</p>"
        if multi
        else ""
    )
    return (
        f'<div class="qk-block qk-table-block" id="{esc(div_id("kpis", section.id))}">'
        f'<table class="qk-table qk-kpi-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>{note}</div>"
    )


SITE_VALUE_COLUMNS: Final = 4
"""A section's KPI table has a column per site up to this many sites; beyond, worst and best."""


def _worst_best(main: KpiValue, sites: Sequence[KpiValue]) -> list[str]:
    """Two cells: the site with the worst and the best value (by direction), named."""
    valued = [v for v in sites if v.value is not None]
    if not valued:
        return ['<td class="qk-num"></td>', '<td class="qk-num"></td>']
    ranked = sorted(valued, key=lambda v: (float(v.value or 0.0), v.scope))
    low, high = ranked[0], ranked[-1]
    worst, best = (low, high) if main.direction != "lower_is_better" else (high, low)
    return [f'<td class="qk-num">{esc(v.scope)}: {esc(v.display)}</td>' for v in (worst, best)]


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
            f"{esc(c.get('dataset'))} ({_rows_change(c.get('old_rows_in'), c.get('new_rows_in'))})"
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
                f"qmskpi {esc(detail.get('old_qmskpi'))} → {esc(detail.get('new_qmskpi'))}"
            )
        why = "; ".join(reasons) if reasons else "no input, configuration or version change"
        rows = []
        for k in detail.get("kpis") or []:
            kpi = str(k.get("kpi"))
            rows.append(
                "<tr>"
                f"<td>{esc(titles.get(kpi, kpi))}{' †' if kpi in redefined else ''}</td>"
                f"<td>{esc(k.get('scope'))}</td>"
                f"<td>{esc(k.get('period'))}</td>"
                f'<td class="qk-f-float">{_restated_value(k.get("old_value"))}</td>'
                f'<td class="qk-f-float">{_restated_value(k.get("new_value"))}</td>'
                f"<td>{_sound_change(k.get('old_sound'), k.get('new_sound'))}</td>"
                "</tr>"
            )
        n = len(rows)
        return Fragment(
            '<section class="qk-block qk-restatement" id="section-restatement">'
            f"<h2>Restatement: {n} figure{'s differ' if n != 1 else ' differs'} from the pack "
            f"published {esc(old.get('created_at'))}</h2>"
            f"<p>This pack supersedes pack {esc(old.get('id'))}, which is kept unchanged as a "
            f"record. Why the figures moved: {why}.</p>"
            '<table class="qk-table"><thead><tr><th>Measure</th><th>Scope</th><th>Period</th>'
            '<th class="qk-f-float">Approved</th><th class="qk-f-float">Restated</th>'
            f"<th>Sound</th></tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
        )

    # ------------------------------------------------------------ pieces

    def _header(self, s: Section, *, extra: str = "") -> str:
        brk = " qk-break" if s.page_break else ""
        ref = f'<span class="qk-ref">{esc(s.ref)}</span> ' if s.ref else ""
        notes = "".join(f"<li>{esc(n)}</li>" for n in s.notes)
        notes_html = f'<ul class="qk-notes">{notes}</ul>' if notes else ""
        return (
            f'<header class="qk-section-head{brk}" id="{esc(div_id("section", s.id))}">'
            f"<h2>{ref}{esc(s.title)} {_status_badge(s.status)}</h2>"
            f'<p class="qk-wording">{esc(s.wording)}</p>{notes_html}{extra}</header>'
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
        return (
            '<section class="qk-cover" id="section-cover">'
            f'<p class="qk-org">{esc(m.organisation)}</p>'
            f"<h1>Management review inputs · {esc(m.period)}</h1>"
            f'<p class="qk-scope">{esc(m.scope_label)} · {esc(m.period_start)} to '
            f"{esc(m.period_end)} · {esc(m.clause_map_title)}</p>"
            f'<div class="qk-state {state_cls}"><strong>{esc(state)}</strong>'
            f" · {evidenced} of {len(inputs)} review inputs evidenced · {esc(validated)}</div>"
            f"{_provisional_label(m)}</section>"
        )

    def _summary(self, s: Section) -> str:
        m = self.model
        serious = [e for e in m.exceptions if e.rank <= 2]
        box = "qk-exceptions" + ("" if serious else " qk-none")
        narrative = "".join(f"<li>{esc(x)}</li>" for x in m.narrative)
        items = "".join(
            f'<li class="qk-exc-{esc(e.kind)}"><span class="qk-exc-kind">'
            f"{esc(_KIND_TEXT.get(e.kind, e.kind))}</span> "
            f'<span class="qk-ref">{esc(self._ref(e.section))}</span> {esc(e.text)}</li>'
            for e in m.exceptions[:LIST_MAX]
        )
        count = _exception_count(len(serious), len(m.exceptions) - len(serious))
        all_exc = (
            f'<div class="qk-block qk-all-exceptions"><h3>All exceptions: {esc(count)}'
            f"</h3><ul>{items}</ul>"
            f"{_more_list(len(m.exceptions), 'Exceptions', 'exceptions', 'most serious')}</div>"
            if m.exceptions
            else ""
        )
        legend = (
            '<p class="qk-legend">Variation: '
            f"{variation_icon('common_cause', size=16)} common cause "
            f"{variation_icon('improvement_high', size=16)} improvement "
            f"{variation_icon('concern_high', size=16)} concern (H/L: high/low) · Assurance: "
            f"{assurance_icon('consistent_pass', size=16)} target met consistently "
            f"{assurance_icon('consistent_fail', size=16)} missed consistently "
            f"{assurance_icon('inconsistent', size=16)} met some months</p>"
        )
        contents = "".join(
            f'<li><span class="qk-ref">{esc(x.ref)}</span> {esc(x.title)}'
            f"{' ' + _status_badge(x.status) if x.status not in (None, 'evidenced') else ''}</li>"
            for x in m.sections
            if x.id not in ("cover", "summary")
        )
        return (
            f'<section class="qk-section qk-summary">'
            f'<div class="qk-block {box}"><h3>In brief</h3><ul>{narrative}</ul></div>'
            f"<h3>Headline measures · {esc(m.meta.scope_label)} · {esc(m.meta.period)}</h3>"
            f"{tiles_html(m.tiles)}{legend}{all_exc}"
            f'<div class="qk-block"><h3>Contents</h3><ol class="qk-contents">{contents}</ol></div>'
            "</section>"
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
        return (
            f'<section class="qk-section" id="{esc(div_id("body", s.id))}">'
            + "".join(parts)
            + "</section>"
        )

    def _analyst(self, a: AnalystInput | None) -> str:
        if a is None or not a.markdown.strip():
            return (
                '<div class="qk-block qk-missing"><p>No analyst input was provided for this '
                "item. Record the discussion in the minutes.</p></div>"
            )
        return f'<div class="qk-block qk-markdown">{safe_markdown(a.markdown)}</div>'

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
            fig = spc_figure(t)
            chart = figure_html(fig, self.doc, f"{prefix}-{t.kpi}-{t.scope}")
            expl = "".join(f"<li>{esc(x)}</li>" for x in t.explanation)
            cls = "qk-chart"
            if t.classes and t.classes[-1] == "concern":
                cls += " qk-chart-concern"
            elif t.classes and t.classes[-1] == "improvement":
                cls += " qk-chart-improvement"
            icons = f"{variation_icon(t.variation, size=22)}{assurance_icon(t.assurance, size=22)}"
            blocks.append(
                f'<div class="{cls}"><div class="qk-chart-icons">{icons}</div>{chart}'
                f'<ul class="qk-expl">{expl}</ul>{trend_data_table(t)}</div>'
            )
        if not blocks:
            return '<p class="qk-empty">No measure could be charted.</p>'
        return '<div class="qk-charts">' + "".join(blocks) + "</div>"

    def _opportunities(self, s: Section) -> str:
        ops = self.model.opportunities
        if ops:
            items = "".join(
                f'<li><strong>{esc(o.text)}</strong> <span class="qk-basis">{esc(o.basis)}</span>'
                f' <span class="qk-ref">({esc(self._ref(o.section))})</span></li>'
                for o in ops[:LIST_MAX]
            )
            body = f'<ol class="qk-block qk-opportunities">{items}</ol>' + _more_list(
                len(ops), "Opportunities", "opportunities", "in section order"
            )
        else:
            body = (
                '<p class="qk-empty">No opportunity was suggested by the signals this period.</p>'
            )
        return f'<section class="qk-section">{self._header(s)}{body}</section>'

    def _ref(self, section_id: str) -> str:
        for x in self.model.sections:
            if x.id == section_id:
                return x.ref
        return section_id

    def _decisions(self, s: Section) -> str:
        t = self.model.table("decisions")
        return (
            f'<section class="qk-section">{self._header(s)}'
            f"{table_html(t, table_class='qk-decisions') if t else ''}</section>"
        )

    def _coverage(self, s: Section) -> str:
        rows = "".join(_coverage_row(c) for c in self.model.coverage)
        return (
            f'<section class="qk-section">{self._header(s)}'
            '<div class="qk-block qk-table-block" id="table-coverage"><table class="qk-table qk-coverage">'
            "<thead><tr><th>Input</th><th>Title</th><th>Status</th><th>Evidence</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></div></section>"
        )

    def _appendix(self, s: Section) -> str:
        parts = [self._header(s)]
        for table_id in s.tables:
            t = self.model.table(table_id)
            if t is None:
                continue
            if table_id == "kpi_definitions":
                parts.append(table_html(t, table_class="qk-small qk-defs", hide=("datasets",)))
            elif table_id == "ledger":
                parts.append(table_html(t, table_class="qk-ledger"))
            else:
                parts.append(table_html(t, table_class="qk-small"))
        return f'<section class="qk-section qk-appendix">{"".join(parts)}</section>'


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


def _coverage_row(c: CoverageRow) -> str:
    ev = (
        "".join(f"<li>{_status_badge(d.status)} {esc(d.detail)}</li>" for d in c.evidence)
        or f"<li>{esc(c.detail)}</li>"
    )
    return (
        f'<tr class="qk-cov-{esc(c.status)}"><td class="qk-ref">{esc(c.ref)}</td><td>{esc(c.title)}</td>'
        f'<td>{_status_badge(c.status)}</td><td><ul class="qk-evidence">{ev}</ul></td></tr>'
    )


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
