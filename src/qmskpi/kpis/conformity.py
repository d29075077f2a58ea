"""Product and process conformity KPIs (ISO 9001 8.6): first-pass yield, defect PPM, RTY.

Every inspection record counts once, by its inspection_date. Table for the
pack: :func:`defect_pareto`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import polars as pl

from qmskpi.datasets import STAGES
from qmskpi.errors import KpiError
from qmskpi.kpis._common import (
    PPM,
    Context,
    KpiDef,
    group,
    make_context,
    measured,
    ratio_rows,
    value_rows,
)
from qmskpi.kpis.firstlevel import (
    MONTH,
    FirstLevel,
    Level,
    Lots,
    Measure,
    count,
    nonblank,
    polars_agg,
    total,
)
from qmskpi.periods import Period, parse_period

_I = ("inspections",)

FPY = KpiDef(
    id="fpy_share",
    title="Inspection pass rate (every inspection record, re-inspections included)",
    iso_clause="8.6",
    unit="share",
    direction="higher_is_better",
    kind="proportion",
    datasets=_I,
    definition=(
        "Inspections whose inspection_date falls in the period with result 'pass' / "
        "inspections whose inspection_date falls in the period (all stages; each "
        "inspection record counts once)."
    ),
    numerator="inspections passed",
    denominator="inspections in the period",
)
_STAGE_TITLES = {"incoming": "incoming", "in_process": "in-process", "final": "final"}
FPY_STAGES = tuple(
    KpiDef(
        id=f"fpy_share_{stage}",
        title=f"Inspection pass rate, {_STAGE_TITLES[stage]} (every record)",
        iso_clause="8.6",
        unit="share",
        direction="higher_is_better",
        kind="proportion",
        datasets=_I,
        definition=(
            f"Inspections with stage '{stage}' whose inspection_date falls in the period with "
            f"result 'pass' / inspections with stage '{stage}' whose inspection_date falls in "
            "the period."
        ),
        numerator=f"{_STAGE_TITLES[stage]} inspections passed",
        denominator=f"{_STAGE_TITLES[stage]} inspections in the period",
    )
    for stage in STAGES
)
DEFECT_PPM = KpiDef(
    id="defect_ppm",
    title="Defects per million inspected",
    iso_clause="8.6",
    unit="ppm",
    direction="lower_is_better",
    kind="rate",
    datasets=_I,
    definition=(
        "Sum of qty_defective / sum of qty_inspected x 1e6 over inspections whose "
        "inspection_date falls in the period (all stages)."
    ),
    numerator="quantity defective",
    denominator="quantity inspected",
)
RTY = KpiDef(
    id="rty_share",
    title="Rolled throughput yield of pass rates, incoming included, missing stages skipped",
    iso_clause="8.6",
    unit="share",
    direction="higher_is_better",
    kind="continuous",
    datasets=_I,
    definition=(
        "Product of the per-stage first-pass yields (incoming x in_process x final) in the "
        "period; a stage with no inspections in the period (and scope) is left out of the "
        "product (a stage not performed passes everything); null when no stage has "
        "inspections."
    ),
)

_LOT = (
    "A lot is (site, stage, lot_id); an inspection without lot_id is a lot of its own. "
    "A lot's first inspection day is the earliest inspection_date of its records; the lot "
    "passes first time when every record of that day has result 'pass' (a same-day "
    "re-inspection after a fail does not rescue it). The lot counts in the period holding "
    "its first inspection day."
)
FPY_LOT = KpiDef(
    id="fpy_lot_share",
    title="First-pass yield (lots passing their first inspection)",
    iso_clause="8.6",
    unit="share",
    direction="higher_is_better",
    kind="proportion",
    datasets=_I,
    definition=(
        "Lots first inspected in the period that passed first time / lots first inspected in "
        f"the period, all stages. {_LOT}"
    ),
    numerator="lots passing their first inspection",
    denominator="lots first inspected in the period",
)
FPY_LOT_STAGES = tuple(
    KpiDef(
        id=f"fpy_lot_share_{stage}",
        title=f"First-pass yield, {_STAGE_TITLES[stage]} (lots)",
        iso_clause="8.6",
        unit="share",
        direction="higher_is_better",
        kind="proportion",
        datasets=_I,
        definition=(
            f"Lots at stage '{stage}' first inspected in the period that passed first time / "
            f"lots at stage '{stage}' first inspected in the period. {_LOT}"
        ),
        numerator=f"{_STAGE_TITLES[stage]} lots passing their first inspection",
        denominator=f"{_STAGE_TITLES[stage]} lots first inspected in the period",
    )
    for stage in STAGES
)
INTERNAL_STAGES = ("in_process", "final")
RTY_INTERNAL = KpiDef(
    id="rty_internal_share",
    title="Rolled throughput yield of own stages (in-process x final, lots)",
    iso_clause="8.6",
    unit="share",
    direction="higher_is_better",
    kind="continuous",
    datasets=_I,
    definition=(
        "fpy_lot_share_in_process x fpy_lot_share_final in the period. Incoming inspection "
        "measures suppliers, not the organisation's process, and is left out. Null when "
        "either stage has no lots first inspected in the period (and scope): a missing stage "
        "is unknown, not perfect."
    ),
)
DEFECT_PPM_STAGES = tuple(
    KpiDef(
        id=f"defect_ppm_{stage}",
        title=f"Defects per million inspected, {_STAGE_TITLES[stage]}",
        iso_clause="8.6",
        unit="ppm",
        direction="lower_is_better",
        kind="rate",
        datasets=_I,
        definition=(
            f"Sum of qty_defective / sum of qty_inspected x 1e6 over inspections with stage "
            f"'{stage}' whose inspection_date falls in the period."
        ),
        numerator=f"quantity defective at {_STAGE_TITLES[stage]} inspection",
        denominator=f"quantity inspected at {_STAGE_TITLES[stage]} inspection",
    )
    for stage in STAGES
)

_COST = (
    "Costs are in the currency the source records them in; a row without cost adds "
    "nothing, and the value is null, with a note, when no row of the period has a cost."
)
COPQ_INTERNAL = KpiDef(
    id="copq_internal",
    title="Cost of poor quality, internal failures (scrap, rework, sorting)",
    iso_clause="8.6",
    unit="currency",
    direction="lower_is_better",
    kind="continuous",
    datasets=_I,
    definition=f"Sum of cost over inspections whose inspection_date falls in the period. {_COST}",
    numerator="sum of inspection cost",
    denominator="inspections in the period with a cost",
)
COPQ_EXTERNAL = KpiDef(
    id="copq_external",
    title="Cost of poor quality, external failures (complaints)",
    iso_clause="8.6",
    unit="currency",
    direction="lower_is_better",
    kind="continuous",
    datasets=("complaints",),
    definition=f"Sum of cost over complaints whose received_date falls in the period. {_COST}",
    numerator="sum of complaint cost",
    denominator="complaints received in the period with a cost",
)
COPQ_TOTAL = KpiDef(
    id="copq_total",
    title="Cost of poor quality, internal and external failures",
    iso_clause="8.6",
    unit="currency",
    direction="lower_is_better",
    kind="continuous",
    datasets=("inspections", "complaints"),
    definition=(
        "copq_internal + copq_external, a side without any cost in the period counting 0 "
        "(the note names it); null when neither side has a cost. Prevention and appraisal "
        "costs are not in the data and not included."
    ),
    numerator="internal + external failure cost",
    denominator="inspections and complaints in the period with a cost",
)

KPIS: tuple[KpiDef, ...] = (
    FPY_LOT,
    *FPY_LOT_STAGES,
    RTY_INTERNAL,
    FPY,
    *FPY_STAGES,
    DEFECT_PPM,
    *DEFECT_PPM_STAGES,
    RTY,
    COPQ_INTERNAL,
    COPQ_EXTERNAL,
    COPQ_TOTAL,
)


def _inspection_measures() -> tuple[Measure, ...]:
    passed = ("result", "pass")
    out = [
        count("n"),
        count("passes", passed),
        total("qty_inspected", "qty_inspected"),
        total("qty_defective", "qty_defective"),
    ]
    for stage in STAGES:
        at = ("stage", stage)
        out += [
            count(f"n_{stage}", at),
            count(f"passes_{stage}", at, passed),
            total(f"qi_{stage}", "qty_inspected", at),
            total(f"qd_{stage}", "qty_defective", at),
        ]
    return tuple(out)


INSPECTION_MEASURES = _inspection_measures()
"""First aggregation level of :func:`inspections` (and of ``pushdown``): per stage and
overall, inspections, passes, quantity inspected and quantity defective."""


def _cost_measures(name: str) -> tuple[Measure, ...]:
    return (total(f"{name}_cost", "cost", present="cost"), count(f"{name}_n", present="cost"))


COST_MEASURES = _cost_measures("internal")
"""First aggregation level of the internal cost of poor quality (inspections with a cost)."""


@group(
    FPY,
    *FPY_STAGES,
    DEFECT_PPM,
    *DEFECT_PPM_STAGES,
    RTY,
    pushdown={"inspections": Level("inspection_date", INSPECTION_MEASURES)},
)
def inspections(ctx: Context) -> pl.LazyFrame:
    """Inspections in each period: FPY overall and per stage, defect PPM, RTY (one group-by)."""
    sums = measured(ctx, "inspections", "inspection_date", INSPECTION_MEASURES)
    rty = pl.lit(1.0)
    for stage in STAGES:
        n = pl.col(f"n_{stage}")
        rty = rty * pl.when(n > 0).then(pl.col(f"passes_{stage}") / n).otherwise(1.0)
    staged = pl.sum_horizontal([pl.col(f"n_{s}") for s in STAGES]) > 0
    rty_rows = sums.select(
        pl.lit(RTY.id).alias("kpi"),
        "scope",
        "key",
        pl.when(staged).then(rty).alias("value"),
        pl.lit(None, pl.Float64()).alias("numerator"),
        pl.lit(None, pl.Float64()).alias("denominator"),
        pl.when(staged)
        .then(pl.lit(None, pl.String()))
        .otherwise(pl.lit("no inspections in period: yield undefined"))
        .alias("note"),
    )
    return pl.concat(
        [
            ratio_rows(
                FPY.id, sums, "passes", "n", empty_note="no inspections in period: share undefined"
            ),
            *[
                ratio_rows(
                    f"fpy_share_{stage}",
                    sums,
                    f"passes_{stage}",
                    f"n_{stage}",
                    empty_note=f"no {stage} inspections in period: share undefined",
                )
                for stage in STAGES
            ],
            ratio_rows(
                DEFECT_PPM.id,
                sums,
                "qty_defective",
                "qty_inspected",
                scale=PPM,
                empty_note="no quantity inspected in period: rate undefined",
            ),
            *[
                ratio_rows(
                    f"defect_ppm_{stage}",
                    sums,
                    f"qd_{stage}",
                    f"qi_{stage}",
                    scale=PPM,
                    empty_note=f"no {stage} quantity inspected in period: rate undefined",
                )
                for stage in STAGES
            ],
            rty_rows,
        ],
        how="vertical_relaxed",
    )


LOTS = Lots(
    key=("site", "stage", "lot_id"),
    record="inspection_id",
    date="inspection_date",
    passed=("result", "pass"),
)
"""Lots of the first-pass yield: see ``_LOT`` (the KPI definitions' words)."""


def _lot_measures() -> tuple[Measure, ...]:
    ok = ("first_pass", True)
    out = [count("lots_n", lots=LOTS), count("lots_passes", ok, lots=LOTS)]
    for stage in STAGES:
        at = ("stage", stage)
        out += [
            count(f"lots_n_{stage}", at, lots=LOTS),
            count(f"lots_passes_{stage}", at, ok, lots=LOTS),
        ]
    return tuple(out)


LOT_MEASURES = _lot_measures()
"""First aggregation level of :func:`lots` (and of ``pushdown``): lots first inspected and
lots passing first time, overall and per stage, counted in the month of the first day."""


@group(
    FPY_LOT,
    *FPY_LOT_STAGES,
    RTY_INTERNAL,
    pushdown={"inspections": Level("inspection_date", LOT_MEASURES)},
)
def lots(ctx: Context) -> pl.LazyFrame:
    """Lots first inspected in each period: first-pass yield overall and per stage, own RTY."""
    sums = measured(ctx, "inspections", "inspection_date", LOT_MEASURES).rename(
        {m.name: m.name.removeprefix("lots_") for m in LOT_MEASURES}
    )
    have = pl.all_horizontal([pl.col(f"n_{s}") > 0 for s in INTERNAL_STAGES])
    rty = pl.lit(1.0)
    for stage in INTERNAL_STAGES:
        rty = rty * pl.col(f"passes_{stage}") / pl.col(f"n_{stage}")
    missing = [pl.when(pl.col(f"n_{s}") == 0).then(pl.lit(s)) for s in INTERNAL_STAGES]
    rty_note = pl.when(~have).then(
        pl.concat_str(
            [
                pl.lit("no lots inspected in period at: "),
                pl.concat_str(missing, separator=", ", ignore_nulls=True),
            ]
        )
    )
    return pl.concat(
        [
            ratio_rows(
                FPY_LOT.id,
                sums,
                "passes",
                "n",
                empty_note="no lots inspected in period: share undefined",
            ),
            *[
                ratio_rows(
                    f"fpy_lot_share_{stage}",
                    sums,
                    f"passes_{stage}",
                    f"n_{stage}",
                    empty_note=f"no {stage} lots inspected in period: share undefined",
                )
                for stage in STAGES
            ],
            value_rows(RTY_INTERNAL.id, sums, pl.when(have).then(rty), note=rty_note),
        ],
        how="vertical_relaxed",
    )


def _cost_sums(ctx: Context, dataset: str, date_col: str, name: str) -> pl.LazyFrame:
    return measured(ctx, dataset, date_col, _cost_measures(name))


def _cost_rows(kpi: str, frame: pl.LazyFrame, name: str, what: str) -> pl.LazyFrame:
    has = pl.col(f"{name}_n") > 0
    return value_rows(
        kpi,
        frame,
        pl.when(has).then(pl.col(f"{name}_cost")),
        numerator=pl.col(f"{name}_cost"),
        denominator=pl.col(f"{name}_n"),
        note=pl.when(~has).then(pl.lit(f"no {what} cost recorded in period")),
    )


@group(COPQ_INTERNAL, pushdown={"inspections": Level("inspection_date", COST_MEASURES)})
def internal_cost(ctx: Context) -> pl.LazyFrame:
    """Internal failure cost recorded on the period's inspections."""
    sums = _cost_sums(ctx, "inspections", "inspection_date", "internal")
    return _cost_rows(COPQ_INTERNAL.id, sums, "internal", "inspection")


EXTERNAL_COST = _cost_measures("external")
"""First aggregation level of the external cost of poor quality (complaints with a cost)."""


@group(COPQ_EXTERNAL, pushdown={"complaints": Level("received_date", EXTERNAL_COST)})
def external_cost(ctx: Context) -> pl.LazyFrame:
    """External failure cost recorded on the period's complaints."""
    sums = _cost_sums(ctx, "complaints", "received_date", "external")
    return _cost_rows(COPQ_EXTERNAL.id, sums, "external", "complaint")


@group(
    COPQ_TOTAL,
    pushdown={
        "inspections": Level("inspection_date", COST_MEASURES),
        "complaints": Level("received_date", EXTERNAL_COST),
    },
)
def total_cost(ctx: Context) -> pl.LazyFrame:
    """Internal plus external failure cost."""
    both = _cost_sums(ctx, "inspections", "inspection_date", "internal").join(
        _cost_sums(ctx, "complaints", "received_date", "external"), on=["scope", "key"]
    )
    i, e = pl.col("internal_n") > 0, pl.col("external_n") > 0
    return value_rows(
        COPQ_TOTAL.id,
        both,
        pl.when(i | e).then(pl.col("internal_cost") + pl.col("external_cost")),
        numerator=pl.col("internal_cost") + pl.col("external_cost"),
        denominator=pl.col("internal_n") + pl.col("external_n"),
        note=pl.when(~i & ~e)
        .then(pl.lit("no cost recorded in period"))
        .when(~i)
        .then(pl.lit("no inspection cost recorded in period: external only"))
        .when(~e)
        .then(pl.lit("no complaint cost recorded in period: internal only")),
    )


GROUPS = (lots, inspections, internal_cost, external_cost, total_cost)


ParetoMeasure = Literal["inspections", "qty_defective"]


PARETO_BY = "defect_code"
PARETO_MEASURES: tuple[Measure, ...] = (
    count("inspections"),
    total("qty_defective", "qty_defective"),
)
"""First level of :func:`defect_pareto`, by ``defect_code`` (blank codes left out): the
inspections recording each code and their defective units; with ``pushdown`` the database
computes them per (month, site, code) (``kpis.sql.first_level_sql(..., by=PARETO_BY)``)."""

_PARETO_SCHEMA: dict[str, pl.DataType] = {
    "rank": pl.Int64(),
    "defect_code": pl.String(),
    "inspections": pl.Int64(),
    "qty_defective": pl.Int64(),
    "count": pl.Int64(),
    "share": pl.Float64(),
    "cumulative_share": pl.Float64(),
    "vital_few": pl.Boolean(),
}


def defect_pareto(
    data: Mapping[str, pl.DataFrame],
    period: Period | str,
    scope: str = "all",
    *,
    measure: ParetoMeasure = "inspections",
    aggregate: FirstLevel | None = None,
) -> pl.DataFrame:
    """Defect codes of the period's inspections, largest first, with the vital few.

    Rows: inspections in the period (and scope's sites) with a non-empty
    ``defect_code``. ``measure="inspections"`` (default) ranks codes by the
    number of inspections that recorded them; ``"qty_defective"`` by the sum of
    qty_defective. Ties go by the other measure, then by code (ascending).
    ``aggregate``: without inspection rows in ``data``, the
    :data:`PARETO_MEASURES` per (month, site, code) the database computed
    (``pushdown``); the same table.

    Columns: ``rank`` (1-based), ``defect_code``, ``inspections``,
    ``qty_defective`` (Int64), ``count`` (the chosen measure), ``share`` of the
    measure's total, ``cumulative_share``, ``vital_few``: the smallest set of
    top codes whose cumulative share reaches 80 % (the code that crosses 80 %
    is included; compared in integers, so exactly 80 % stops there).
    """
    p = parse_period(period)
    from_rows = "inspections" in data
    aggregates = {"inspections": aggregate} if aggregate is not None and not from_rows else None
    ctx, _ = make_context(data, [p], scope, None, asked=p, aggregates=aggregates)
    if from_rows:
        lf = ctx.in_scope(ctx.frame("inspections"))
        per_code = (
            lf.filter(ctx.buckets.contains(pl.col("inspection_date")) & nonblank(PARETO_BY))
            .group_by(PARETO_BY)
            .agg(polars_agg(m) for m in PARETO_MEASURES)
        )
    elif aggregate is not None:
        if aggregate.by != PARETO_BY or not aggregate.covers(PARETO_MEASURES):
            raise KpiError(f"the aggregate given is not the defect Pareto's (by {PARETO_BY})")
        per_code = (
            ctx.in_scope(aggregate.frame.lazy())
            .filter(ctx.buckets.contains(pl.col(MONTH)))
            .group_by(PARETO_BY)
            .agg(pl.col(m.name).sum() for m in PARETO_MEASURES)
        )
    else:
        return pl.DataFrame(schema=_PARETO_SCHEMA)
    other = "qty_defective" if measure == "inspections" else "inspections"
    total_ = pl.col("count").sum()
    cum = pl.col("count").cum_sum()
    return (
        per_code.with_columns(pl.col("inspections", "qty_defective").cast(pl.Int64()))
        .with_columns(count=pl.col(measure))
        .sort(["count", other, "defect_code"], descending=[True, True, False])
        .with_columns(
            rank=pl.int_range(1, pl.len() + 1, dtype=pl.Int64()),
            share=pl.when(total_ > 0).then(pl.col("count") / total_),
            cumulative_share=pl.when(total_ > 0).then(cum / total_),
            vital_few=(cum - pl.col("count")) * 5 < total_ * 4,
        )
        .select(list(_PARETO_SCHEMA))
        .collect()
    )
