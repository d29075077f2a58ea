"""Actions from earlier management reviews (ISO 9001 9.3.2 a), and the pack's overdue list.

Review actions have no site: their KPIs are whole-scope values only. The
:func:`overdue_items` table lists every CAPA, audit finding and review action
open past due at the period's end.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from qmskpi.config import KpiConfig
from qmskpi.kpis._common import (
    Context,
    KpiDef,
    count_rows,
    group,
    make_context,
    rollup_whole,
)
from qmskpi.kpis.audits import nc_due_date
from qmskpi.periods import Period, parse_period

_R = ("review_actions",)
_OPEN = "review_date <= end and (closed_date is null or closed_date > end)"

OPEN = KpiDef(
    id="review_actions_open",
    title="Review actions open",
    iso_clause="9.3.2 a",
    unit="actions",
    direction="neutral",
    kind="count",
    datasets=_R,
    definition=f"Review actions open at the period's end: {_OPEN}. Whole scope only.",
    numerator="review actions open at period end",
    per_site=False,
)
OVERDUE = KpiDef(
    id="review_actions_overdue",
    title="Review actions overdue",
    iso_clause="9.3.2 a",
    unit="actions",
    direction="lower_is_better",
    kind="count",
    datasets=_R,
    definition=(
        f"Review actions open at the period's end ({_OPEN}) with due_date < end. Whole scope only."
    ),
    numerator="review actions open past due at period end",
    per_site=False,
)
CLOSED = KpiDef(
    id="review_actions_closed",
    title="Review actions closed",
    iso_clause="9.3.2 a",
    unit="actions",
    direction="higher_is_better",
    kind="count",
    datasets=_R,
    definition="Number of review actions whose closed_date falls in the period. Whole scope only.",
    numerator="review actions closed in the period",
    per_site=False,
)

KPIS: tuple[KpiDef, ...] = (OPEN, OVERDUE, CLOSED)


@group(OPEN, OVERDUE, CLOSED)
def review_actions(ctx: Context) -> pl.LazyFrame:
    """Review actions open, overdue (at each period end) and closed (in each period)."""
    b = ctx.buckets
    lf = ctx.frame("review_actions")
    at_end = rollup_whole(
        ctx,
        b.open_at_ends(lf, "review_date", "closed_date"),
        [pl.len().alias("open"), (pl.col("due_date") < pl.col("end")).sum().alias("overdue")],
    )
    closed = rollup_whole(
        ctx,
        b.assign(lf, "closed_date"),
        [pl.len().alias("closed")],
    )
    return pl.concat(
        [
            count_rows(OPEN.id, at_end, "open"),
            count_rows(OVERDUE.id, at_end, "overdue"),
            count_rows(CLOSED.id, closed, "closed"),
        ]
    )


GROUPS = (review_actions,)


_OVERDUE_SCHEMA: dict[str, pl.DataType] = {
    "item_type": pl.String(),
    "item_id": pl.String(),
    "site": pl.String(),
    "owner": pl.String(),
    "detail": pl.String(),
    "opened_date": pl.Date(),
    "due_date": pl.Date(),
    "days_overdue": pl.Int64(),
}


def overdue_items(
    data: Mapping[str, pl.DataFrame],
    period: Period | str,
    scope: str = "all",
    *,
    config: KpiConfig | None = None,
) -> pl.DataFrame:
    """CAPAs, audit findings and review actions open past due at the period's end.

    "Open past due" is as the ``capa_open_overdue``, ``audit_nc_open_overdue``
    (nonconformities; observations and OFIs only with an agreed due_date) and
    ``review_actions_overdue`` KPIs count it. Review actions have no site and
    are listed for scope ``all`` only.

    Columns: ``item_type`` (``capa``, ``audit_finding``, ``review_action``),
    ``item_id``, ``site`` (null for review actions), ``owner`` (review actions;
    null for the others, whose datasets carry no owner), ``detail`` (CAPA
    source; finding type, clause and audit id; review action description —
    untrusted text, escape it), ``opened_date`` (opened / audit / review date),
    ``due_date``, ``days_overdue`` (period end - due date). Sorted by
    days_overdue (largest first), then item_type and item_id.
    """
    p = parse_period(period)
    ctx, _ = make_context(data, [p], scope, config, asked=p)
    b = ctx.buckets
    parts: list[pl.LazyFrame] = []
    end = pl.lit(p.end)
    if "capa" in ctx.frames:
        parts.append(
            b.open_at_ends(ctx.in_scope(ctx.frame("capa")), "opened_date", "closed_date").select(
                item_type=pl.lit("capa"),
                item_id="capa_id",
                site="site",
                owner=pl.lit(None, pl.String()),
                detail=pl.lit("source: ") + pl.col("source"),
                opened_date="opened_date",
                due_date="due_date",
            )
        )
    if "audit_findings" in ctx.frames:
        parts.append(
            b.open_at_ends(
                ctx.in_scope(ctx.frame("audit_findings")), "audit_date", "closed_date"
            ).select(
                item_type=pl.lit("audit_finding"),
                item_id="finding_id",
                site="site",
                owner=pl.lit(None, pl.String()),
                detail=pl.format(
                    "{} (clause {}), audit {}", pl.col("type"), pl.col("clause"), pl.col("audit_id")
                ),
                opened_date="audit_date",
                due_date=nc_due_date(ctx.config.finding_due_days),
            )
        )
    if "review_actions" in ctx.frames and ctx.include_all:
        parts.append(
            b.open_at_ends(ctx.frame("review_actions"), "review_date", "closed_date").select(
                item_type=pl.lit("review_action"),
                item_id="action_id",
                site=pl.lit(None, pl.String()),
                owner="owner",
                detail="description",
                opened_date="review_date",
                due_date="due_date",
            )
        )
    if not parts:
        return pl.DataFrame(schema=_OVERDUE_SCHEMA)
    cols = [pl.col(c).cast(t) for c, t in _OVERDUE_SCHEMA.items() if c != "days_overdue"]
    return (
        pl.concat([part.select(cols) for part in parts])
        .filter(pl.col("due_date") < end)
        .with_columns(days_overdue=(end - pl.col("due_date")).dt.total_days().cast(pl.Int64()))
        .sort(["days_overdue", "item_type", "item_id"], descending=[True, False, False])
        .collect()
    )
