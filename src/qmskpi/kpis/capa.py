"""Nonconformity and corrective action KPIs (ISO 9001 10.2).

Table for the pack: :func:`capa_effectiveness`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from qmskpi.datasets import CAPA_SOURCES
from qmskpi.kpis._common import (
    Context,
    KpiDef,
    count_rows,
    group,
    level_rows,
    measured,
    pooled_counts,
    ratio_rows,
    rollup,
    stat_rows,
    table_context,
)
from qmskpi.kpis.firstlevel import (
    AT_END,
    Days,
    FirstLevel,
    Level,
    Within,
    count,
    quantile_of_counts,
)
from qmskpi.periods import Period

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

OPENED_LEVEL = Level("opened_date", (count("opened"),))
"""CAPAs opened per month and site."""

ON_TIME_MEASURE = count("on_time", within=Within("due_date", "closed_date", 0, None))
"""Closed on or before the due date (``closed_date <= due_date``; no due date: not on time)."""

CLOSED_MEASURES = (
    count("closed"),
    count("effective", ("effectiveness_verified", True)),
    count("verified", present="effectiveness_verified"),
    ON_TIME_MEASURE,
)
"""CAPAs closed per month and site: all, verified effective (a null counts as not), with a
verification result, closed on time."""
CLOSED_LEVEL = Level("closed_date", CLOSED_MEASURES)

DAYS_TO_CLOSE = Level("closed_date", (count("n"),), Days("closed_date", "opened_date"))
"""CAPAs closed per (month closed, site, whole days from opened_date to closed_date): the
histogram the median is computed from, exactly (``pooled_counts``)."""

OPEN_MEASURES = (count("open"), count("overdue", within=Within(AT_END, "due_date", 1, None)))
"""CAPAs open at a period end, and those of them past due (``due_date < end``)."""
OPEN_LEVEL = Level("opened_date", OPEN_MEASURES, open_until="closed_date")
"""CAPAs open at each period end (opened_date <= end, closed_date null or after it)."""


@group(
    OPENED,
    CLOSED,
    DAYS_MEDIAN,
    CLOSED_ON_TIME,
    EFFECTIVE,
    EFFECTIVE_VERIFIED,
    pushdown={"capa": (OPENED_LEVEL, CLOSED_LEVEL, DAYS_TO_CLOSE)},
)
def capa_flow(ctx: Context) -> pl.LazyFrame:
    """CAPAs opened and closed in each period (first levels: counts per month and site, the
    histogram of days to close)."""
    opened = measured(ctx, "capa", "opened_date", OPENED_LEVEL.measures)
    closed = measured(ctx, "capa", "closed_date", CLOSED_MEASURES)
    stats = pooled_counts(
        ctx, level_rows(ctx, "capa", DAYS_TO_CLOSE), "days", "n", {"median": 0.5}
    ).join(closed.select("scope", "key", pl.col("closed").alias("n")), on=["scope", "key"])
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


_BACKLOG_CLOSED = (count("closed"), ON_TIME_MEASURE)


@group(
    OPEN,
    OPEN_OVERDUE,
    ON_TIME_BACKLOG,
    pushdown={"capa": (OPEN_LEVEL, Level("closed_date", _BACKLOG_CLOSED))},
)
def capa_backlog(ctx: Context) -> pl.LazyFrame:
    """CAPAs open, and open past their due date, at each period end; on time with backlog."""
    at_end = rollup(
        ctx,
        level_rows(ctx, "capa", OPEN_LEVEL),
        [pl.col(m.name).sum() for m in OPEN_MEASURES],
    )
    closed = measured(ctx, "capa", "closed_date", _BACKLOG_CLOSED)
    judged = at_end.join(closed, on=["scope", "key"], how="left").with_columns(
        judged=pl.col("closed") + pl.col("overdue")
    )
    return pl.concat(
        [
            count_rows(OPEN.id, at_end, "open"),
            count_rows(OPEN_OVERDUE.id, at_end, "overdue"),
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


EFFECT_MEASURES = (
    count("closed"),
    count("effective", ("effectiveness_verified", True)),
    count("not_effective", ("effectiveness_verified", False)),
    count("not_verified", absent="effectiveness_verified"),
    ON_TIME_MEASURE,
)
"""CAPAs closed, by their verification, and closed on time (:func:`capa_effectiveness`)."""
SOURCE_BY = "source"
EFFECT_LEVEL = Level("closed_date", EFFECT_MEASURES, SOURCE_BY, blanks=True)
"""CAPAs closed per month, site and source (every source value kept, null included)."""
DAYS_BY_SOURCE = Level(
    "closed_date", (count("n"),), Days("closed_date", "opened_date", per=SOURCE_BY)
)
"""CAPAs closed per month, site, source and whole days to close: the medians per source."""
TABLE_LEVELS = (EFFECT_LEVEL, DAYS_BY_SOURCE)
"""The first levels of :func:`capa_effectiveness` (no KPI reads them)."""


def _median(hist: pl.LazyFrame, keys: Sequence[str]) -> pl.LazyFrame:
    """The median days to close per ``keys`` (none: over all) of a days histogram."""
    counts = hist.group_by(*keys, "days").agg(pl.col("n").sum()).sort(*keys, "days")
    median = quantile_of_counts(pl.col("days"), pl.col("n"), 0.5).alias("days_to_close_median")
    if not keys:
        return counts.select(median)
    return counts.group_by(*keys, maintain_order=True).agg(median)


def capa_effectiveness(
    data: Mapping[str, pl.DataFrame],
    period: Period | str,
    scope: str = "all",
    *,
    aggregate: FirstLevel | Sequence[FirstLevel] | None = None,
) -> pl.DataFrame:
    """CAPAs closed in the period, by source, with a total row (``source`` = ``all``).

    Columns: ``source`` (complaint, audit, inspection, supplier, internal, any
    other value found, then ``all``), ``closed``, ``effective``
    (effectiveness_verified true), ``not_effective`` (false), ``not_verified``
    (null), ``closed_on_time`` (closed_date <= due_date) (Int64),
    ``effective_share`` (effective / closed, as ``capa_effective_share``),
    ``on_time_share``, ``days_to_close_median`` (Float64, null when none closed).
    Every known source has a row, zero when none closed.

    ``aggregate``: without CAPA rows in ``data``, the CAPA first levels the database
    computed (``pushdown``: :data:`TABLE_LEVELS` among :func:`~qmskpi.kpis.pushdown_levels`);
    the same table.
    """
    ctx = table_context(data, period, scope, None, aggregate, "capa", EFFECT_LEVEL)
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
    if "capa" not in ctx.frames and "capa" not in ctx.aggregates:
        return pl.DataFrame(schema=schema)
    counts = ["closed", "effective", "not_effective", "not_verified", "closed_on_time"]
    rows = ctx.in_scope(level_rows(ctx, "capa", EFFECT_LEVEL)).rename({"on_time": "closed_on_time"})
    hist = ctx.in_scope(level_rows(ctx, "capa", DAYS_BY_SOURCE))
    aggs = [pl.col(c).sum().cast(pl.Int64()) for c in counts]
    by_source = (
        rows.group_by(SOURCE_BY)
        .agg(aggs)
        .join(_median(hist, [SOURCE_BY]), on=SOURCE_BY, how="left", nulls_equal=True)
        .collect()
    )
    total = (
        pl.concat([rows.select(aggs), _median(hist, [])], how="horizontal")
        .collect()
        .with_columns(source=pl.lit("all", pl.String()))
    )
    extra = sorted(set(by_source[SOURCE_BY].drop_nulls()) - set(CAPA_SOURCES))
    order = pl.DataFrame({"source": [*CAPA_SOURCES, *extra]}, schema={"source": pl.String()})
    table = order.join(by_source, on="source", how="left", maintain_order="left").with_columns(
        pl.col(counts).fill_null(0)
    )
    table = pl.concat([table, total.select(table.columns)], how="vertical_relaxed")
    closed = pl.col("closed")
    return table.with_columns(
        effective_share=pl.when(closed > 0).then(pl.col("effective") / closed),
        on_time_share=pl.when(closed > 0).then(pl.col("closed_on_time") / closed),
    ).select([pl.col(c).cast(t) for c, t in schema.items()])
