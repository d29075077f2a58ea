"""Nonconformity and corrective action KPIs (ISO 9001 10.2).

Table for the pack: :func:`capa_effectiveness`.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from qmskpi.datasets import CAPA_SOURCES
from qmskpi.kpis._common import (
    Context,
    KpiDef,
    count_rows,
    days_between,
    group,
    make_context,
    pooled,
    ratio_rows,
    rollup,
    stat_rows,
)
from qmskpi.periods import Period, parse_period

_CAPA = ("capa",)

OPENED = KpiDef(
    id="capa_opened",
    title="CAPAs opened",
    iso_clause="10.2",
    unit="CAPAs",
    direction="neutral",
    kind="count",
    datasets=_CAPA,
    definition="Number of CAPAs whose opened_date falls in the period.",
    numerator="CAPAs opened in the period",
)
CLOSED = KpiDef(
    id="capa_closed",
    title="CAPAs closed",
    iso_clause="10.2",
    unit="CAPAs",
    direction="higher_is_better",
    kind="count",
    datasets=_CAPA,
    definition="Number of CAPAs whose closed_date falls in the period.",
    numerator="CAPAs closed in the period",
)
OPEN_OVERDUE = KpiDef(
    id="capa_open_overdue",
    title="CAPAs open past due",
    iso_clause="10.2",
    unit="CAPAs",
    direction="lower_is_better",
    kind="count",
    datasets=_CAPA,
    definition=(
        "CAPAs open at the period's end (opened_date <= end and (closed_date is null or "
        "closed_date > end)) with due_date < end."
    ),
    numerator="CAPAs open past due at period end",
)
DAYS_MEDIAN = KpiDef(
    id="capa_days_to_close_median",
    title="Days to close a CAPA (median)",
    iso_clause="10.2",
    unit="days",
    direction="lower_is_better",
    kind="continuous",
    datasets=_CAPA,
    definition=(
        "Median of closed_date - opened_date in days over CAPAs whose closed_date falls in "
        "the period (mean of the two middle values for an even count); null when none closed."
    ),
    denominator="CAPAs closed in the period",
)
EFFECTIVE = KpiDef(
    id="capa_effective_share",
    title="CAPAs verified effective (not yet verified counts as not effective)",
    iso_clause="10.2",
    unit="share",
    direction="higher_is_better",
    kind="proportion",
    datasets=_CAPA,
    definition=(
        "CAPAs whose closed_date falls in the period with effectiveness_verified true / CAPAs "
        "whose closed_date falls in the period (effectiveness_verified null counts as not "
        "verified)."
    ),
    numerator="CAPAs closed in the period and verified effective",
    denominator="CAPAs closed in the period",
)

_OPEN_AT_END = "opened_date <= end and (closed_date is null or closed_date > end)"
OPEN = KpiDef(
    id="capa_open",
    title="CAPAs open at period end (backlog)",
    iso_clause="10.2",
    unit="CAPAs",
    direction="lower_is_better",
    kind="count",
    datasets=_CAPA,
    definition=f"CAPAs open at the period's end: {_OPEN_AT_END}.",
    numerator="CAPAs open at period end",
)
CLOSED_ON_TIME = KpiDef(
    id="capa_closed_on_time_share",
    title="CAPAs closed on time (closed CAPAs only)",
    iso_clause="10.2",
    unit="share",
    direction="higher_is_better",
    kind="proportion",
    datasets=_CAPA,
    definition=(
        "CAPAs whose closed_date falls in the period with closed_date <= due_date / CAPAs "
        "whose closed_date falls in the period (closed on the due date is on time)."
    ),
    numerator="CAPAs closed in the period by their due date",
    denominator="CAPAs closed in the period",
)
ON_TIME_BACKLOG = KpiDef(
    id="capa_on_time_incl_backlog_share",
    title="CAPAs on time, counting the open backlog past due as late",
    iso_clause="10.2",
    unit="share",
    direction="higher_is_better",
    kind="proportion",
    datasets=_CAPA,
    definition=(
        "CAPAs closed in the period by their due date / (CAPAs closed in the period + CAPAs "
        f"open at the period's end ({_OPEN_AT_END}) with due_date < end)."
    ),
    numerator="CAPAs closed in the period by their due date",
    denominator="CAPAs closed in the period + CAPAs open past due at period end",
)
EFFECTIVE_VERIFIED = KpiDef(
    id="capa_effective_verified_share",
    title="CAPAs verified effective, of those verified",
    iso_clause="10.2",
    unit="share",
    direction="higher_is_better",
    kind="proportion",
    datasets=_CAPA,
    definition=(
        "CAPAs whose closed_date falls in the period with effectiveness_verified true / CAPAs "
        "whose closed_date falls in the period with effectiveness_verified true or false; "
        "CAPAs not verified yet (null) are left out, so a recent period's value can change "
        "when verifications are recorded."
    ),
    numerator="CAPAs closed in the period and verified effective",
    denominator="CAPAs closed in the period with a verification result",
)

KPIS: tuple[KpiDef, ...] = (
    OPENED,
    CLOSED,
    OPEN,
    OPEN_OVERDUE,
    DAYS_MEDIAN,
    CLOSED_ON_TIME,
    ON_TIME_BACKLOG,
    EFFECTIVE,
    EFFECTIVE_VERIFIED,
)

_VERIFIED = pl.col("effectiveness_verified").fill_null(False)
_ON_TIME = (pl.col("closed_date") <= pl.col("due_date")).fill_null(False)


@group(OPENED, CLOSED, DAYS_MEDIAN, CLOSED_ON_TIME, EFFECTIVE, EFFECTIVE_VERIFIED)
def capa_flow(ctx: Context) -> pl.LazyFrame:
    """CAPAs opened and closed in each period."""
    b = ctx.buckets
    lf = ctx.frame("capa")
    opened = rollup(
        ctx,
        b.assign(lf, "opened_date"),
        [pl.len().alias("opened")],
    )
    closed_rows = b.assign(lf, "closed_date").with_columns(
        days=days_between("opened_date", "closed_date")
    )
    closed = rollup(
        ctx,
        closed_rows,
        [
            pl.len().alias("closed"),
            _VERIFIED.sum().alias("effective"),
            pl.col("effectiveness_verified").is_not_null().sum().alias("verified"),
            _ON_TIME.sum().alias("on_time"),
        ],
    )
    stats = pooled(ctx, closed_rows, [pl.col("days").median().alias("median"), pl.len().alias("n")])
    return pl.concat(
        [
            count_rows(OPENED.id, opened, "opened"),
            count_rows(CLOSED.id, closed, "closed"),
            stat_rows(DAYS_MEDIAN.id, stats, "median", "n", empty_note="no CAPAs closed in period"),
            ratio_rows(
                CLOSED_ON_TIME.id,
                closed,
                "on_time",
                "closed",
                empty_note="no CAPAs closed in period: share undefined",
            ),
            ratio_rows(
                EFFECTIVE.id,
                closed,
                "effective",
                "closed",
                empty_note="no CAPAs closed in period: share undefined",
            ),
            ratio_rows(
                EFFECTIVE_VERIFIED.id,
                closed,
                "effective",
                "verified",
                empty_note="no CAPA closed in period has a verification result yet",
            ),
        ]
    )


@group(OPEN, OPEN_OVERDUE, ON_TIME_BACKLOG)
def capa_backlog(ctx: Context) -> pl.LazyFrame:
    """CAPAs open, and open past their due date, at each period end; on time with backlog."""
    b = ctx.buckets
    lf = ctx.frame("capa")
    at_end = rollup(
        ctx,
        b.open_at_ends(lf, "opened_date", "closed_date"),
        [pl.len().alias("open"), (pl.col("due_date") < pl.col("end")).sum().alias("n")],
    )
    closed = rollup(
        ctx,
        b.assign(lf, "closed_date"),
        [pl.len().alias("closed"), _ON_TIME.sum().alias("on_time")],
    )
    judged = at_end.join(closed, on=["scope", "key"], how="left").with_columns(
        judged=pl.col("closed") + pl.col("n")
    )
    return pl.concat(
        [
            count_rows(OPEN.id, at_end, "open"),
            count_rows(OPEN_OVERDUE.id, at_end, "n"),
            ratio_rows(
                ON_TIME_BACKLOG.id,
                judged,
                "on_time",
                "judged",
                empty_note="no CAPAs closed in period and none open past due",
            ),
        ]
    )


GROUPS = (capa_flow, capa_backlog)


def capa_effectiveness(
    data: Mapping[str, pl.DataFrame], period: Period | str, scope: str = "all"
) -> pl.DataFrame:
    """CAPAs closed in the period, by source, with a total row (``source`` = ``all``).

    Columns: ``source`` (complaint, audit, inspection, supplier, internal, any
    other value found, then ``all``), ``closed``, ``effective``
    (effectiveness_verified true), ``not_effective`` (false), ``not_verified``
    (null), ``closed_on_time`` (closed_date <= due_date) (Int64),
    ``effective_share`` (effective / closed, as ``capa_effective_share``),
    ``on_time_share``, ``days_to_close_median`` (Float64, null when none closed).
    Every known source has a row, zero when none closed.
    """
    p = parse_period(period)
    ctx, _ = make_context(data, [p], scope, None, asked=p)
    schema = {
        "source": pl.String(),
        "closed": pl.Int64(),
        "effective": pl.Int64(),
        "not_effective": pl.Int64(),
        "not_verified": pl.Int64(),
        "closed_on_time": pl.Int64(),
        "effective_share": pl.Float64(),
        "on_time_share": pl.Float64(),
        "days_to_close_median": pl.Float64(),
    }
    if "capa" not in ctx.frames:
        return pl.DataFrame(schema=schema)
    rows = ctx.in_scope(ctx.frame("capa")).filter(ctx.buckets.contains(pl.col("closed_date")))
    verified = pl.col("effectiveness_verified")
    aggs = [
        pl.len().cast(pl.Int64()).alias("closed"),
        verified.fill_null(False).sum().cast(pl.Int64()).alias("effective"),
        (~verified).fill_null(False).sum().cast(pl.Int64()).alias("not_effective"),
        verified.is_null().sum().cast(pl.Int64()).alias("not_verified"),
        (pl.col("closed_date") <= pl.col("due_date"))
        .fill_null(False)
        .sum()
        .cast(pl.Int64())
        .alias("closed_on_time"),
        days_between("opened_date", "closed_date")
        .median()
        .cast(pl.Float64())
        .alias("days_to_close_median"),
    ]
    by_source = rows.group_by("source").agg(aggs).collect()
    total = rows.select(aggs).collect().with_columns(source=pl.lit("all", pl.String()))
    extra = sorted(set(by_source["source"].drop_nulls()) - set(CAPA_SOURCES))
    order = pl.DataFrame({"source": [*CAPA_SOURCES, *extra]}, schema={"source": pl.String()})
    counts = ["closed", "effective", "not_effective", "not_verified", "closed_on_time"]
    table = order.join(by_source, on="source", how="left", maintain_order="left").with_columns(
        pl.col(counts).fill_null(0)
    )
    table = pl.concat([table, total.select(table.columns)], how="vertical_relaxed")
    closed = pl.col("closed")
    return table.with_columns(
        effective_share=pl.when(closed > 0).then(pl.col("effective") / closed),
        on_time_share=pl.when(closed > 0).then(pl.col("closed_on_time") / closed),
    ).select([pl.col(c).cast(t) for c, t in schema.items()])
