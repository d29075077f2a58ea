"""The measures: each KPI's value for the period and its monthly SPC series.

:func:`measure_values` computes the KPIs of the scope and its sites
(``kpis.compute_kpis``); :func:`measure_trends` charts each over the trend
window (``kpis.kpi_series`` and ``spc``), with the signals explained in words.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import polars as pl

from qmskpi import kpis, spc
from qmskpi.errors import QmsKpiError, did_you_mean
from qmskpi.periods import trailing_months
from qmskpi.review.context import Context
from qmskpi.review.formatting import as_float, format_value, slug
from qmskpi.review.model import KpiValue, SignalClass, Trend
from qmskpi.review.signals import explain


def _direction(kpi_id: str) -> str:
    d = kpis.REGISTRY[kpi_id].direction
    return d if d in ("higher_is_better", "lower_is_better") else "neutral"


def measure_values(ctx: Context) -> tuple[KpiValue, ...]:
    """The KPI values of the period and scope (``ctx.kpi_frame``, computed when not given)."""
    if ctx.kpi_frame is None:
        ctx.kpi_frame = kpis.compute_kpis(
            ctx.data,
            ctx.period,
            ctx.scope,
            config=ctx.config.kpis,
            unsound=ctx.unsound,
            set_aside=ctx.set_aside,
            constants=kpis.mapping_constants(ctx.config),
            as_of=ctx.as_of,
            aggregates=ctx.first_levels(),
        )
    frame = ctx.kpi_frame
    scope_rank = {s: i for i, s in enumerate(ctx.scopes)}
    out: list[KpiValue] = []
    for row in frame.iter_rows(named=True):
        kpi_id = str(row["kpi"])
        if kpi_id not in kpis.REGISTRY or row["scope"] not in scope_rank:
            continue
        d = kpis.REGISTRY[kpi_id]
        unit = str(row.get("unit") or d.unit)
        value = as_float(row["value"])
        target = ctx.target(kpi_id)
        out.append(
            KpiValue(
                kpi=kpi_id,
                scope=str(row["scope"]),
                title=d.title,
                section=ctx.kpi_section.get(kpi_id, ""),
                value=value,
                numerator=as_float(row.get("numerator")),
                denominator=as_float(row.get("denominator")),
                unit=unit,
                display=format_value(value, unit),
                target=target,
                target_display=format_value(target, unit) if target is not None else "",
                direction=_direction(kpi_id),
                sound=bool(row.get("sound", True)),
                note=str(row.get("note") or ""),
            )
        )
    order = {k: i for i, k in enumerate(kpis.REGISTRY)}
    out.sort(key=lambda v: (order[v.kpi], scope_rank[v.scope]))
    return tuple(out)


_SCALE = {"ppm": 1e6}


def measure_trends(ctx: Context) -> tuple[Trend, ...]:
    """One SPC series per KPI and scope (the scope, then each site for the whole organisation)."""
    months = [m.label for m in trailing_months(ctx.period, ctx.config.review.trend_months)]
    series = kpis.kpi_series(
        ctx.data,
        ctx.period,
        ctx.scope,
        months=ctx.config.review.trend_months,
        config=ctx.config.kpis,
        unsound=ctx.unsound,
        coverage=kpis.coverage_of(ctx.config.sources),
        constants=kpis.mapping_constants(ctx.config),
        as_of=ctx.as_of,
        aggregates=ctx.first_levels(),
    )
    out: list[Trend] = []
    for kpi_id, d in kpis.REGISTRY.items():
        if kpi_id not in ctx.kpi_section or not ctx.cmap.trended(kpi_id):
            continue
        rows = series.filter(pl.col("kpi") == kpi_id)
        if rows.height == 0:
            continue
        for s in ctx.scopes:
            t = _trend(ctx, kpi_id, d, s, months, rows.filter(pl.col("scope") == s))
            if t is not None:
                out.append(t)
    return tuple(out)


def _trend(
    ctx: Context,
    kpi_id: str,
    d: kpis.KpiDef,
    scope: str,
    months: list[str],
    rows: pl.DataFrame,
) -> Trend | None:
    return series_trend(
        rows, months=months, target=ctx.target(kpi_id), section=ctx.kpi_section.get(kpi_id, "")
    )


def series_trend(
    rows: pl.DataFrame,
    *,
    months: Sequence[str] | None = None,
    target: float | None = None,
    section: str = "",
) -> Trend | None:
    """The SPC trend of one KPI and scope from its rows of :func:`qmskpi.kpis.kpi_series`.

    The chart is chosen by the KPI's kind, as in the pack. ``months`` (default:
    the periods in ``rows``) are the points; months before the first value are
    left out. None when there is nothing to chart.
    """
    if rows.height == 0:
        return None
    found = {c: sorted(str(x) for x in rows[c].unique()) for c in ("kpi", "scope")}
    for column, seen in found.items():
        if len(seen) != 1:
            raise QmsKpiError(
                f"a series slice holds one KPI and one scope; {column}: {', '.join(seen)}"
            )
    kpi_id, scope = found["kpi"][0], found["scope"][0]
    if kpi_id not in kpis.REGISTRY:
        raise QmsKpiError(f"unknown KPI {kpi_id!r}{did_you_mean(kpi_id, kpis.REGISTRY)}")
    d = kpis.REGISTRY[kpi_id]
    months = list(months) if months is not None else sorted({str(p) for p in rows["period"]})
    by_month = {str(r["period"]): r for r in rows.iter_rows(named=True)}
    # nothing before the first month of data: no point, no line
    first = next(
        (i for i, m in enumerate(months) if by_month.get(m, {}).get("value") is not None), 0
    )
    months = months[first:]
    values = np.array([_nan(by_month.get(m, {}).get("value")) for m in months])
    nums = np.array([_nan(by_month.get(m, {}).get("numerator")) for m in months])
    dens = np.array([_nan(by_month.get(m, {}).get("denominator")) for m in months])
    sound = all(bool(by_month[m].get("sound", True)) for m in months if m in by_month)
    unit = str(rows["unit"][0]) if "unit" in rows.columns and rows["unit"][0] else d.unit
    chart = _chart(str(d.kind), unit, values, nums, dens)
    if chart is None:
        return None
    return chart_trend(
        chart,
        months=months,
        kpi=kpi_id,
        scope=scope,
        title=d.title,
        section=section,
        unit=unit,
        direction=_direction(kpi_id),
        kind=str(d.kind),
        target=target,
        sound=sound,
        numerators=nums,
        denominators=dens,
        numerator_label=d.numerator or "",
        denominator_label=d.denominator or "",
    )


def chart_trend(
    chart: spc.ControlChart,
    *,
    months: Sequence[str] | None = None,
    kpi: str = "",
    scope: str = "",
    title: str = "",
    section: str = "",
    unit: str = "",
    direction: str = "neutral",
    kind: str = "",
    target: float | None = None,
    sound: bool = True,
    numerators: Iterable[float] | None = None,
    denominators: Iterable[float] | None = None,
    numerator_label: str = "",
    denominator_label: str = "",
) -> Trend:
    """Any control chart as a :class:`Trend`: signals classed by ``direction``, icons,
    baseline and explanation, as the pack shows them. ``months`` label the points
    (default ``"1"`` … ``"n"``); numerators and denominators default to the chart's."""
    n = len(chart)
    labels_x = list(months) if months is not None else [str(i + 1) for i in range(n)]
    if len(labels_x) != n:
        raise QmsKpiError(f"{len(labels_x)} month labels for a chart of {n} points")
    classes: tuple[SignalClass, ...] = tuple(
        lab if lab is not None else "none"
        for lab in spc.classify(chart, direction)  # type: ignore[arg-type]
    )
    low, high = _NATURAL_BOUNDS.get(unit.lower(), (None, None))
    variation = str(spc.variation(chart, direction))  # type: ignore[arg-type]
    assurance = _opt_str(spc.assurance(chart, target, direction))  # type: ignore[arg-type]
    with_den = chart.denominators is not None
    nums = numerators if numerators is not None else chart.numerators
    dens = denominators if denominators is not None else chart.denominators
    basis = _icon_basis(chart, labels_x, variation, assurance, target, unit)
    t = Trend(
        id=slug(kpi or str(chart.chart), scope),
        kpi=kpi,
        scope=scope,
        title=title or f"{chart.chart} chart",
        section=section,
        unit=unit,
        direction=direction,
        kind=kind,
        chart="laney_p" if chart.chart == "p'" else str(chart.chart),
        months=tuple(labels_x),
        values=_opt(chart.values),
        center=_opt(chart.center),
        ucl=_bounded(chart.ucl, low, high),
        lcl=_bounded(chart.lcl, low, high),
        signals=tuple(tuple(sorted(s)) for s in chart.signals),
        classes=classes,
        variation=variation,
        assurance=assurance,
        target=target,
        rebase=tuple(ph.start for ph in chart.phases[1:]),
        sound=sound,
        explanation=(),
        status=chart.status,
        baseline=_baseline_text(chart, labels_x),
        numerators=_opt(nums) if with_den and nums is not None else (),
        denominators=_opt(dens) if with_den and dens is not None else (),
        numerator_label=numerator_label if with_den else "",
        denominator_label=denominator_label if with_den else "",
        variation_basis=basis[0],
        assurance_basis=basis[1],
    )
    return dataclasses.replace(t, explanation=tuple(explain(t)))


def _baseline_text(chart: spc.ControlChart, months: list[str]) -> str:
    """The chart's baseline statement in months ("9 months of data: too few ...")."""
    if chart.status == "run_chart":
        n = len(months) - len(chart.missing)
        return (
            f"{n} month{'s' if n != 1 else ''} of data: too few for process limits "
            f"({spc.MIN_POINTS_FOR_LIMITS} needed); the centre line is the median."
        )
    if chart.status == "rare_events":
        return (
            "Too few events a month for a chart (mean below "
            f"{spc.RARE_MEAN_COUNT:g}): the values are stated without a signal."
        )
    return chart.baseline_statement().describe(months, noun="month")


def _icon_basis(
    chart: spc.ControlChart,
    months: list[str],
    variation: str,
    assurance: str | None,
    target: float | None,
    unit: str,
) -> tuple[str, str]:
    """(rule behind the variation icon, comparison behind the assurance icon)."""
    if not chart.has_limits:
        return f"no icon: {chart.status.replace('_', ' ')}", ""
    observed = [i for i in range(len(chart)) if not math.isnan(chart.values[i])]
    last = observed[-1]
    rules = sorted(chart.signals[last])
    why = f"{', '.join(rules)} in {months[last]}" if rules else f"no rule fired in {months[last]}"
    var = f"{variation}: {why}"
    if assurance is None or target is None:
        return var, ""
    ok = [
        i
        for i in range(len(chart))
        if not math.isnan(chart.ucl[i]) and not math.isnan(chart.lcl[i])
    ]
    i = ok[-1]
    tgt = format_value(target, unit)
    lo, hi = format_value(float(chart.lcl[i]), unit), format_value(float(chart.ucl[i]), unit)
    if target > chart.ucl[i]:
        where = f"target {tgt} above the upper limit {hi}"
    elif target < chart.lcl[i]:
        where = f"target {tgt} below the lower limit {lo}"
    else:
        where = f"target {tgt} within the limits {lo} to {hi}"
    return var, f"{assurance}: {where} ({months[i]})"


_NATURAL_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "days": (0.0, None),
    "share": (0.0, 1.0),
    "share of scale": (0.0, 1.0),
    "nps points": (-100.0, 100.0),
}
"""What a measure can be at all, by unit. An XmR limit beyond it (a median of
-1.2 days) is shown at the bound, as attribute charts already floor and cap
theirs; signals and icons are judged on the unbounded limits."""


def _bounded(a: Iterable[float], low: float | None, high: float | None) -> tuple[float | None, ...]:
    out = []
    for x in _opt(a):
        if x is not None and low is not None:
            x = max(x, low)
        if x is not None and high is not None:
            x = min(x, high)
        out.append(x)
    return tuple(out)


def _nan(x: Any) -> float:
    f = as_float(x)
    return math.nan if f is None else f


def _opt(a: Iterable[float]) -> tuple[float | None, ...]:
    return tuple(as_float(x) for x in a)


def _opt_str(x: str | None) -> str | None:
    return None if x is None else str(x)


def _chart(
    kind: str, unit: str, values: np.ndarray, nums: np.ndarray, dens: np.ndarray
) -> spc.ControlChart | None:
    if np.all(np.isnan(values)):
        return None
    try:
        if kind in ("rate", "proportion") and not np.all(np.isnan(dens)):
            return spc.auto_chart(
                kind,  # type: ignore[arg-type]
                numerators=np.nan_to_num(nums, nan=0.0),
                denominators=np.nan_to_num(dens, nan=0.0),
                scale=_SCALE.get(unit.lower(), 1.0),
            )
        if kind == "count":
            return spc.auto_chart("count", values=values)
        return spc.auto_chart("continuous", values=values)
    except spc.SpcError:
        return None
