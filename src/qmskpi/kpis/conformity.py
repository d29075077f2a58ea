"""Product and process conformity KPIs (ISO 9001 8.6): first-pass yield, defect PPM, RTY.

Every inspection record counts once, by its inspection_date. Table for the
pack: :func:`defect_pareto`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import polars as pl

from qmskpi.datasets import STAGES
from qmskpi.kpis._common import (
    PPM,
    Context,
    KpiDef,
    group,
    make_context,
    ratio_rows,
    rollup,
)
from qmskpi.periods import Period, parse_period

_I = ("inspections",)

FPY = KpiDef(
    id="fpy_share",
    title="First-pass yield",
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
        title=f"First-pass yield, {_STAGE_TITLES[stage]} inspection",
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
    title="Rolled throughput yield",
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

KPIS: tuple[KpiDef, ...] = (FPY, *FPY_STAGES, DEFECT_PPM, RTY)


@group(FPY, *FPY_STAGES, DEFECT_PPM, RTY)
def inspections(ctx: Context) -> pl.LazyFrame:
    """Inspections in each period: FPY overall and per stage, defect PPM, RTY (one group-by)."""
    b = ctx.buckets
    lf = b.assign(ctx.frame("inspections"), "inspection_date")
    passed = pl.col("result") == "pass"
    aggs = [
        pl.len().alias("n"),
        passed.sum().alias("passes"),
        pl.col("qty_inspected").sum().alias("qty_inspected"),
        pl.col("qty_defective").sum().alias("qty_defective"),
    ]
    for stage in STAGES:
        at = pl.col("stage") == stage
        aggs += [at.sum().alias(f"n_{stage}"), (at & passed).sum().alias(f"passes_{stage}")]
    sums = rollup(ctx, lf, aggs)
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
            rty_rows,
        ],
        how="vertical_relaxed",
    )


GROUPS = (inspections,)


ParetoMeasure = Literal["inspections", "qty_defective"]


def defect_pareto(
    data: Mapping[str, pl.DataFrame],
    period: Period | str,
    scope: str = "all",
    *,
    measure: ParetoMeasure = "inspections",
) -> pl.DataFrame:
    """Defect codes of the period's inspections, largest first, with the vital few.

    Rows: inspections in the period (and scope's sites) with a non-empty
    ``defect_code``. ``measure="inspections"`` (default) ranks codes by the
    number of inspections that recorded them; ``"qty_defective"`` by the sum of
    qty_defective. Ties go by the other measure, then by code (ascending).

    Columns: ``rank`` (1-based), ``defect_code``, ``inspections``,
    ``qty_defective`` (Int64), ``count`` (the chosen measure), ``share`` of the
    measure's total, ``cumulative_share``, ``vital_few``: the smallest set of
    top codes whose cumulative share reaches 80 % (the code that crosses 80 %
    is included; compared in integers, so exactly 80 % stops there).
    """
    p = parse_period(period)
    ctx, _ = make_context(data, [p], scope, None, asked=p)
    schema = {
        "rank": pl.Int64(),
        "defect_code": pl.String(),
        "inspections": pl.Int64(),
        "qty_defective": pl.Int64(),
        "count": pl.Int64(),
        "share": pl.Float64(),
        "cumulative_share": pl.Float64(),
        "vital_few": pl.Boolean(),
    }
    if "inspections" not in ctx.frames:
        return pl.DataFrame(schema=schema)
    other = "qty_defective" if measure == "inspections" else "inspections"
    total = pl.col("count").sum()
    cum = pl.col("count").cum_sum()
    return (
        ctx.in_scope(ctx.frame("inspections"))
        .filter(
            ctx.buckets.contains(pl.col("inspection_date"))
            & (pl.col("defect_code").str.strip_chars().str.len_chars() > 0)
        )
        .group_by("defect_code")
        .agg(
            inspections=pl.len().cast(pl.Int64()),
            qty_defective=pl.col("qty_defective").sum().cast(pl.Int64()),
        )
        .with_columns(count=pl.col(measure))
        .sort(["count", other, "defect_code"], descending=[True, True, False])
        .with_columns(
            rank=pl.int_range(1, pl.len() + 1, dtype=pl.Int64()),
            share=pl.when(total > 0).then(pl.col("count") / total),
            cumulative_share=pl.when(total > 0).then(cum / total),
            vital_few=(cum - pl.col("count")) * 5 < total * 4,
        )
        .select(list(schema))
        .collect()
    )
