"""Quality objectives (ISO 9001 6.2): actual against target, met or not, year to date, trend.

An objective with a ``kpi`` takes its actuals from the data: the linked KPI's
whole-scope value (scope ``all``) as :func:`qmskpi.kpis.compute_kpis` gives it.
Its year-to-date actual is that KPI recomputed from the rows of 1 January to
the period's end (never a mean of monthly values). An objective without a KPI
takes its actuals from ``objective_results`` (one value per month): its value
for a longer period, and its year-to-date value, is the mean of the monthly
actuals present in that span.

``met``: actual >= target for ``higher_is_better``, actual <= target for
``lower_is_better``; null when there is no actual. Shares are 0-1 fractions,
so an FPY objective's target is written 0.98, not 98.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date
from typing import Any

import polars as pl

from qmskpi.config import WHOLE_SCOPE, KpiConfig
from qmskpi.errors import did_you_mean
from qmskpi.kpis._common import make_context
from qmskpi.kpis.firstlevel import Aggregates
from qmskpi.periods import Period, parse_period, trailing_months

ATTAINMENT_SCHEMA: dict[str, pl.DataType] = {
    "objective_id": pl.String(),
    "name": pl.String(),
    "clause": pl.String(),
    "owner": pl.String(),
    "unit": pl.String(),
    "direction": pl.String(),
    "target": pl.Float64(),
    "kpi": pl.String(),
    "source": pl.String(),
    "period": pl.String(),
    "actual": pl.Float64(),
    "met": pl.Boolean(),
    "ytd_actual": pl.Float64(),
    "ytd_met": pl.Boolean(),
    "sound": pl.Boolean(),
    "note": pl.String(),
}

TREND_SCHEMA: dict[str, pl.DataType] = {
    "objective_id": pl.String(),
    "month": pl.String(),
    "actual": pl.Float64(),
    "target": pl.Float64(),
    "met": pl.Boolean(),
}


def _met(actual: float | None, target: float | None, direction: str) -> bool | None:
    if actual is None or target is None:
        return None
    if direction == "lower_is_better":
        return actual <= target
    return actual >= target


def _objectives(data: Mapping[str, pl.DataFrame]) -> list[dict[str, Any]]:
    frame = data.get("objectives")
    if frame is None:
        return []
    rows = frame.lazy().collect().sort("objective_id").iter_rows(named=True)
    return [dict(r) for r in rows]


def _kpi_id(obj: Mapping[str, Any]) -> str | None:
    k = obj.get("kpi")
    return k.strip() if isinstance(k, str) and k.strip() else None


def _manual(data: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    frame = data.get("objective_results")
    if frame is None:
        return pl.DataFrame(
            schema={"objective_id": pl.String(), "month": pl.String(), "actual": pl.Float64()}
        )
    return frame.lazy().select("objective_id", "month", "actual").collect()


def _mean_of(
    results: pl.DataFrame, objective_id: str, months: list[str]
) -> tuple[float | None, int]:
    vals = results.filter(
        (pl.col("objective_id") == objective_id)
        & pl.col("month").is_in(months)
        & pl.col("actual").is_not_null()
    )["actual"]
    if vals.len() == 0:
        return None, 0
    return float(vals.sort().mean()), vals.len()  # type: ignore[arg-type]


def _kpi_value(frame: pl.DataFrame, kpi: str, label: str) -> dict[str, Any] | None:
    hit = frame.filter(
        (pl.col("kpi") == kpi) & (pl.col("scope") == WHOLE_SCOPE) & (pl.col("period") == label)
    )
    return hit.row(0, named=True) if hit.height else None


def _linked_actuals(
    hit: dict[str, Any] | None, ytd: pl.DataFrame, kpi: str, notes: list[str]
) -> tuple[Any, Any, bool]:
    """A KPI-linked objective's actual, YTD actual and soundness; the KPI's note goes to ``notes``."""
    ytd_hit = ytd.filter((pl.col("kpi") == kpi) & (pl.col("scope") == WHOLE_SCOPE))
    ytd_row = ytd_hit.row(0, named=True)
    actual = hit["value"] if hit else None
    ytd_actual = ytd_row["value"]
    sound = bool(hit["sound"]) if hit else False
    if hit and hit["note"]:
        notes.append(str(hit["note"]))
    return actual, ytd_actual, sound


def _manual_actuals(
    results: pl.DataFrame,
    objective_id: str,
    p: Period,
    *,
    manual_sound: bool,
    notes: list[str],
) -> tuple[float | None, float | None]:
    """A manual objective's actual and YTD actual (means of monthly results); gaps go to ``notes``."""
    months = [m.label for m in p.months()]
    ytd_months = [m.label for m in p.year_to_date().months()]
    actual, n = _mean_of(results, objective_id, months)
    ytd_actual, _ = _mean_of(results, objective_id, ytd_months)
    if n == 0:
        notes.append(f"no result for {p.label} in objective_results")
    elif n < len(months):
        notes.append(f"mean of {n} of {len(months)} monthly results")
    if not manual_sound:
        notes.append("inputs failed validation: objectives or objective_results")
    return actual, ytd_actual


def objective_attainment(
    data: Mapping[str, pl.DataFrame],
    period: Period | str,
    *,
    kpi_values: pl.DataFrame | None = None,
    config: KpiConfig | None = None,
    unsound: Collection[str] = (),
    as_of: date | None = None,
    aggregates: Aggregates | None = None,
) -> pl.DataFrame:
    """One row per objective: actual vs target for ``period``, met, year to date.

    ``kpi_values``: the :func:`~qmskpi.kpis.compute_kpis` frame for ``period``
    (scope ``all``), to reuse; computed when not given. The YTD values of linked
    KPIs are always computed from rows over 1 January .. period end (or from the
    pushed-down first levels in ``aggregates``). ``as_of``, ``aggregates``: as in
    :func:`~qmskpi.kpis.compute_kpis`.

    Columns: objective_id, name, clause, owner, unit, direction, target, kpi,
    ``source`` (``kpi`` or ``manual``), ``period`` (label), ``actual``,
    ``met``, ``ytd_actual``, ``ytd_met``, ``sound`` (the linked KPI's inputs, or
    objectives / objective_results, passed validation), ``note`` (why an actual
    is missing or unsound). Sorted by objective_id.
    """
    from qmskpi.kpis import REGISTRY, compute_kpis  # the package API, built on this module

    p = parse_period(period)
    # checks the period and the frames
    make_context(data, [p], WHOLE_SCOPE, config, asked=p, aggregates=aggregates)
    unsound = {unsound} if isinstance(unsound, str) else set(unsound)
    objectives = _objectives(data)
    linked = sorted({k for o in objectives if (k := _kpi_id(o)) is not None and k in REGISTRY})
    given: dict[str, Any] = {
        "config": config,
        "unsound": unsound,
        "as_of": as_of,
        "aggregates": aggregates,
    }
    now = kpi_values
    ytd = None
    if linked:
        if now is None:
            now = compute_kpis(data, p, WHOLE_SCOPE, only=linked, **given)
        ytd_period = p.year_to_date()
        ytd = compute_kpis(data, ytd_period, WHOLE_SCOPE, only=linked, **given)
    results = _manual(data)
    manual_sound = not ({"objectives", "objective_results"} & unsound)
    rows = []
    for o in objectives:
        kpi = _kpi_id(o)
        row = {c: o.get(c) for c in ("objective_id", "name", "clause", "owner", "unit")}
        row |= {"direction": o.get("direction"), "target": o.get("target"), "kpi": kpi}
        row["period"] = p.label
        notes: list[str] = []
        if kpi is not None:
            row["source"] = "kpi"
            if kpi not in REGISTRY:
                actual = ytd_actual = None
                sound = "objectives" not in unsound
                notes.append(f"unknown KPI {kpi!r}{did_you_mean(kpi, REGISTRY)}")
            else:
                assert now is not None
                assert ytd is not None
                hit = _kpi_value(now, kpi, p.label)
                if hit is None:
                    hit = _kpi_value(
                        compute_kpis(data, p, WHOLE_SCOPE, only=linked, **given), kpi, p.label
                    )
                actual, ytd_actual, sound = _linked_actuals(hit, ytd, kpi, notes)
        else:
            row["source"] = "manual"
            actual, ytd_actual = _manual_actuals(
                results, str(o["objective_id"]), p, manual_sound=manual_sound, notes=notes
            )
            sound = manual_sound
        direction = str(o.get("direction"))
        row |= {
            "actual": actual,
            "met": _met(actual, o.get("target"), direction),
            "ytd_actual": ytd_actual,
            "ytd_met": _met(ytd_actual, o.get("target"), direction),
            "sound": sound,
            "note": "; ".join(notes) or None,
        }
        rows.append(row)
    return pl.DataFrame(rows, schema=ATTAINMENT_SCHEMA)


def objective_trend(
    data: Mapping[str, pl.DataFrame],
    period: Period | str,
    *,
    months: int = 24,
    series: pl.DataFrame | None = None,
    config: KpiConfig | None = None,
    as_of: date | None = None,
    aggregates: Aggregates | None = None,
) -> pl.DataFrame:
    """Monthly actuals of every objective with its target line, for charts.

    ``series``: the :func:`~qmskpi.kpis.kpi_series` frame (scope ``all``) to
    reuse for linked objectives; computed when not given (``aggregates``: the
    pushed-down first levels, as :func:`~qmskpi.kpis.kpi_series`). Manual objectives
    read ``objective_results``; a month without a result has a null actual.

    Columns: objective_id, ``month`` (``YYYY-MM``), actual, target, met (by the
    objective's direction). Sorted by objective_id, month.
    """
    from qmskpi.kpis import REGISTRY, kpi_series

    p = parse_period(period)
    labels = [m.label for m in trailing_months(p, months)]
    objectives = _objectives(data)
    if any((k := _kpi_id(o)) is not None and k in REGISTRY for o in objectives) and series is None:
        series = kpi_series(
            data,
            p,
            WHOLE_SCOPE,
            months=months,
            config=config,
            as_of=as_of,
            aggregates=aggregates,
        )
    results = _manual(data)
    rows = []
    for o in objectives:
        kpi = _kpi_id(o)
        values: dict[str, float | None] = dict.fromkeys(labels)
        if kpi is not None and kpi in REGISTRY and series is not None:
            sub = series.filter((pl.col("kpi") == kpi) & (pl.col("scope") == WHOLE_SCOPE))
            for r in sub.iter_rows(named=True):
                if r["period"] in values:
                    values[r["period"]] = r["value"]
        elif kpi is None:
            sub = results.filter(pl.col("objective_id") == o["objective_id"])
            for r in sub.iter_rows(named=True):
                if r["month"] in values:
                    values[r["month"]] = r["actual"]
        for label in labels:
            rows.append(
                {
                    "objective_id": o["objective_id"],
                    "month": label,
                    "actual": values[label],
                    "target": o.get("target"),
                    "met": _met(values[label], o.get("target"), str(o.get("direction"))),
                }
            )
    return pl.DataFrame(rows, schema=TREND_SCHEMA)
