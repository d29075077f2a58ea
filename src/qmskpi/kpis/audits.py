"""Internal audit KPIs (ISO 9001 9.2): findings raised, by type, and findings open past due.

A finding's due date is its ``due_date`` or, when that is null, ``audit_date +
finding_due_days`` (config, default 60).
"""

from __future__ import annotations

import polars as pl

from qmskpi.datasets import FINDING_TYPES
from qmskpi.kpis._common import Context, KpiDef, count_rows, group, rollup

_A = ("audit_findings",)

FINDINGS = KpiDef(
    id="audit_findings",
    title="Audit findings",
    iso_clause="9.2",
    unit="findings",
    direction="lower_is_better",
    kind="count",
    datasets=_A,
    definition="Number of audit findings whose audit_date falls in the period (all types).",
    numerator="findings dated in the period",
)
_TYPE_TITLES = {
    "major_nc": ("major nonconformities", "lower_is_better"),
    "minor_nc": ("minor nonconformities", "lower_is_better"),
    "observation": ("observations", "neutral"),
    "ofi": ("opportunities for improvement", "neutral"),
}
FINDINGS_BY_TYPE = tuple(
    KpiDef(
        id=f"audit_findings_{t}",
        title=f"Audit findings: {_TYPE_TITLES[t][0]}",
        iso_clause="9.2",
        unit="findings",
        direction="lower_is_better" if _TYPE_TITLES[t][1] == "lower_is_better" else "neutral",
        kind="count",
        datasets=_A,
        definition=f"Number of audit findings of type '{t}' whose audit_date falls in the period.",
        numerator=f"{_TYPE_TITLES[t][0]} dated in the period",
    )
    for t in FINDING_TYPES
)
OPEN_OVERDUE = KpiDef(
    id="audit_findings_open_overdue",
    title="Audit findings open past due",
    iso_clause="9.2",
    unit="findings",
    direction="lower_is_better",
    kind="count",
    datasets=_A,
    definition=(
        "Audit findings open at the period's end (audit_date <= end and (closed_date is null "
        "or closed_date > end)) whose due date is before the end; the due date is due_date, "
        "or audit_date + finding_due_days (config, default 60) when due_date is null."
    ),
    numerator="findings open past due at period end",
)

KPIS: tuple[KpiDef, ...] = (FINDINGS, *FINDINGS_BY_TYPE, OPEN_OVERDUE)


def due_date(finding_due_days: int) -> pl.Expr:
    """A finding's effective due date."""
    return pl.coalesce(
        pl.col("due_date"), pl.col("audit_date") + pl.duration(days=finding_due_days)
    )


@group(FINDINGS, *FINDINGS_BY_TYPE)
def findings(ctx: Context) -> pl.LazyFrame:
    """Audit findings dated in each period, in total and by type."""
    b = ctx.buckets
    lf = b.assign(ctx.frame("audit_findings"), "audit_date")
    aggs = [pl.len().alias("n")] + [(pl.col("type") == t).sum().alias(t) for t in FINDING_TYPES]
    sums = rollup(ctx, lf, aggs)
    return pl.concat(
        [count_rows(FINDINGS.id, sums, "n")]
        + [count_rows(f"audit_findings_{t}", sums, t) for t in FINDING_TYPES]
    )


@group(OPEN_OVERDUE)
def findings_overdue(ctx: Context) -> pl.LazyFrame:
    """Audit findings open past their due date at each period end."""
    lf = (
        ctx.buckets.open_at_ends(ctx.frame("audit_findings"), "audit_date", "closed_date")
        .with_columns(_due=due_date(ctx.config.finding_due_days))
        .filter(pl.col("_due") < pl.col("end"))
    )
    return count_rows(OPEN_OVERDUE.id, rollup(ctx, lf, [pl.len().alias("n")]), "n")


GROUPS = (findings, findings_overdue)
