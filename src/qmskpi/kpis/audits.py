"""Internal audit KPIs (ISO 9001 9.2): findings raised, by type, and findings open past due.

A finding's due date is its ``due_date`` or, when that is null, ``audit_date +
finding_due_days`` (config, default 60).
"""

from __future__ import annotations

import polars as pl

from qmskpi.datasets import FINDING_TYPES
from qmskpi.kpis._common import Context, KpiDef, count_rows, group, ratio_rows, rollup

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
    title="Audit findings open past due (every type, default due dates for all)",
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

NC_TYPES = ("major_nc", "minor_nc")
_OPEN = "audit_date <= end and (closed_date is null or closed_date > end)"
NC_OPEN = KpiDef(
    id="audit_nc_open",
    title="Audit nonconformities open at period end",
    iso_clause="9.2",
    unit="findings",
    direction="lower_is_better",
    kind="count",
    datasets=_A,
    definition=f"Audit findings of type major_nc or minor_nc open at the period's end ({_OPEN}).",
    numerator="audit nonconformities open at period end",
)
NC_OPEN_OVERDUE = KpiDef(
    id="audit_nc_open_overdue",
    title="Audit nonconformities open past due (and OFIs past an agreed due date)",
    iso_clause="9.2",
    unit="findings",
    direction="lower_is_better",
    kind="count",
    datasets=_A,
    definition=(
        f"Audit findings open at the period's end ({_OPEN}) whose due date is before the end. "
        "A nonconformity (major_nc, minor_nc) is due on its due_date, or audit_date + "
        "finding_due_days (config, default 60) when it has none; an observation or "
        "opportunity for improvement counts only when it has an agreed due_date of its own."
    ),
    numerator="nonconformities (and OFIs with an agreed due date) open past due at period end",
)

_P = ("audit_programme",)
PROGRAMME_COMPLETION = KpiDef(
    id="audit_programme_completion_share",
    title="Audit programme completion (audits planned in the period and performed)",
    iso_clause="9.2",
    unit="share",
    direction="higher_is_better",
    kind="proportion",
    datasets=_P,
    definition=(
        "Audits of the audit programme whose planned_date falls in the period with a "
        "performed_date on or before the period's end / audits whose planned_date falls in "
        "the period. An audit performed after the period's end counts as not performed for "
        "that period (re-rendering a past period gives the same value)."
    ),
    numerator="audits planned in the period and performed by its end",
    denominator="audits planned in the period",
)
PROGRAMME_OVERDUE = KpiDef(
    id="audits_not_performed_overdue",
    title="Planned audits not performed by their planned date",
    iso_clause="9.2",
    unit="audits",
    direction="lower_is_better",
    kind="count",
    datasets=_P,
    definition=(
        "Audits of the audit programme with planned_date < the period's end and not "
        "performed by the end (performed_date empty or after the end), whatever period "
        "they were planned in."
    ),
    numerator="planned audits past their planned date and not performed at period end",
)

KPIS: tuple[KpiDef, ...] = (
    FINDINGS,
    *FINDINGS_BY_TYPE,
    OPEN_OVERDUE,
    NC_OPEN,
    NC_OPEN_OVERDUE,
    PROGRAMME_COMPLETION,
    PROGRAMME_OVERDUE,
)


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


def nc_due_date(finding_due_days: int) -> pl.Expr:
    """Due date of a finding for ``audit_nc_open_overdue``: null for an OFI without its own."""
    return (
        pl.when(pl.col("type").is_in(NC_TYPES))
        .then(due_date(finding_due_days))
        .otherwise(pl.col("due_date"))
    )


@group(NC_OPEN, NC_OPEN_OVERDUE)
def nonconformities_open(ctx: Context) -> pl.LazyFrame:
    """Audit nonconformities open, and findings open past an agreed due date, at each end."""
    lf = ctx.buckets.open_at_ends(
        ctx.frame("audit_findings"), "audit_date", "closed_date"
    ).with_columns(_due=nc_due_date(ctx.config.finding_due_days))
    sums = rollup(
        ctx,
        lf,
        [
            pl.col("type").is_in(NC_TYPES).sum().alias("open"),
            (pl.col("_due") < pl.col("end")).fill_null(False).sum().alias("overdue"),
        ],
    )
    return pl.concat(
        [count_rows(NC_OPEN.id, sums, "open"), count_rows(NC_OPEN_OVERDUE.id, sums, "overdue")]
    )


@group(PROGRAMME_COMPLETION, PROGRAMME_OVERDUE)
def programme(ctx: Context) -> pl.LazyFrame:
    """Audits planned in each period and performed by its end; audits late at each end."""
    b = ctx.buckets
    lf = ctx.frame("audit_programme")
    planned = b.assign(lf, "planned_date").join(b.ends_frame(), on="key", how="inner")
    done = (pl.col("performed_date") <= pl.col("end")).fill_null(False)
    completion = rollup(ctx, planned, [pl.len().alias("planned"), done.sum().alias("done")])
    late = b.open_at_ends(lf, "planned_date", "performed_date").filter(
        pl.col("planned_date") < pl.col("end")
    )
    overdue = rollup(ctx, late, [pl.len().alias("n")])
    return pl.concat(
        [
            ratio_rows(
                PROGRAMME_COMPLETION.id,
                completion,
                "done",
                "planned",
                empty_note="no audits planned in period: share undefined",
            ),
            count_rows(PROGRAMME_OVERDUE.id, overdue, "n"),
        ]
    )


GROUPS = (findings, findings_overdue, nonconformities_open, programme)
