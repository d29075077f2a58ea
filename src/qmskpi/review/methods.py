"""The method notes of the pack's appendix: every convention a figure depends on.

SPC (charts, signals, icons), coverage, and the statistical conventions of the
KPIs (percentile method, ties, rounding, readings of a measure), stated in words
a quality manager and an auditor can check against ``docs/kpis.md``.
"""

from __future__ import annotations

from collections.abc import Collection

from qmskpi.config import Config


def method_notes(config: Config, *, datasets: Collection[str] = ()) -> tuple[tuple[str, str], ...]:
    """The methods and conventions, as (topic, note) pairs for the appendix.

    ``datasets``: the datasets the run read; the supplier-status note says
    whether the approval history or the current supplier list was used, the
    open-orders note whether deliveries not received were seen.
    """
    months = config.review.trend_months
    return (
        (
            "Charts",
            f"Each measure is charted monthly over the last {months} months. The chart follows "
            "the measure's kind: XmR for continuous values (limits = mean ± 2.66 × mean moving "
            "range); Laney p′ for proportions whose large denominators make plain p limits too "
            "narrow, else p; u for rates per unit; c for counts. Limits use every point of the "
            "window as baseline.",
        ),
        (
            "Signals",
            "NHS England 'Making Data Count' rules: a point beyond a process limit; 7 points in "
            "a row on one side of the average (a point on the average breaks the run); 7 points "
            "in a row rising or falling; 2 of 3 points beyond two-thirds of the way to a limit, "
            "on the same side. Every point of a run or trend is marked.",
        ),
        (
            "Icons",
            "Variation: grey = common cause only; blue = special cause that is an improvement; "
            "orange = special cause that is a concern; H/L = high/low. Assurance (with a "
            "target): P = the target lies beyond the limits on the good side, so it is met "
            "consistently; F = beyond the limits on the bad side, so it will be missed unless "
            "the process changes; ? = the target lies within the limits and will be met in "
            "some months and missed in others.",
        ),
        (
            "Coverage",
            "An input is evidenced when its records exist up to period end; missing when no "
            "source is configured or there are no records; stale when its newest record is "
            f"more than {config.review.stale_after_days} days before period end; failed when "
            "its data broke an error-severity validation rule.",
        ),
        (
            "Whole organisation",
            "Values for all sites are recomputed from the rows, never averaged from site values.",
        ),
        *_kpi_conventions(config, datasets),
    )


def _kpi_conventions(config: Config, datasets: Collection[str]) -> tuple[tuple[str, str], ...]:
    k = config.kpis
    by_sev = ", ".join(
        f"{sev} {days} days" for sev, days in k.complaint_close_target_days_by_severity.items()
    )
    targets = (
        f"{by_sev}; other severities {k.complaint_close_target_days} days"
        if by_sev
        else f"{k.complaint_close_target_days} days for every severity"
    )
    if "supplier_approvals" in datasets:
        status = (
            "Supplier status on a day is the latest decision of the supplier approval history "
            "on or before that day, so past periods give the same figures when re-rendered "
            "(measures ending in 'as of'/'approval history'). The measures marked 'current "
            "list' use today's supplier list and can change when an old period is re-rendered."
        )
    else:
        status = (
            "No supplier approval history was supplied: supplier evaluations overdue and "
            "receipts from suppliers not approved use the current supplier list, also for "
            "past periods, so re-rendering an old period can change them."
        )
    return (
        (
            "Percentiles",
            "The 90th percentile of days to close uses linear interpolation between order "
            "statistics (Hyndman-Fan type 7, the default of numpy, R and Excel PERCENTILE.INC): "
            "position 0.9 x (n - 1) in the sorted values, counted from 0. Minitab's default and "
            "Excel PERCENTILE.EXC (type 6, position 0.9 x (n + 1)) can give a different value "
            "on the same data. The median is the middle value, or the mean of the two middle "
            "values.",
        ),
        (
            "Ties and days",
            "Equal values need no tie rule (they are interchangeable in the order statistics). "
            "Days are whole calendar days between two dates (closed - received); a date is in "
            "a period when start <= date <= end. Due on the last day of the period is not "
            "overdue; closed on the due date is on time.",
        ),
        (
            "Rounding",
            "Figures are computed unrounded and stored so in kpis.csv and kpis.xlsx; shares are "
            "fractions of 1. The pack rounds only for display, to nearest with ties to even: "
            "shares to 0.1 percentage point, ppm to whole numbers, days to 0.1 day, scores to "
            "0.01, NPS to whole points; a value and its target get more digits until they read "
            "differently.",
        ),
        (
            "Two readings",
            "Where a measure has two legitimate readings both are computed under their own "
            "names. The pack charts (and, for headline measures, shows as the tile) the one "
            "to steer by: complaints on time including the open backlog past target; "
            "first-pass yield per lot on its first inspection; supplier on-time delivery of "
            "deliveries due in the period; CAPA effectiveness of those verified; audit "
            "nonconformities overdue. The other reading is listed with its value, without a "
            "chart.",
        ),
        (
            "Targets and windows",
            f"Complaint close targets: {targets}. Supplier deliveries are on time from "
            f"{k.supplier_otd_early_days} days early to {k.supplier_otd_tolerance_days} days "
            f"late. Repeats and recurrences look back {k.repeat_window_days} days. An audit "
            f"nonconformity without a due date is due {k.finding_due_days} days after the "
            "audit; an observation or opportunity for improvement only when it has an agreed "
            "due date.",
        ),
        ("Supplier status", status),
        ("Open order lines", _open_orders_note(datasets)),
    )


def _open_orders_note(datasets: Collection[str]) -> str:
    if "open_orders" in datasets:
        return (
            "Supplier on-time delivery of deliveries due in the period counts open purchase-"
            "order lines (nothing received at the export) as late once promised date + "
            "tolerance is before the as-of date (the run's as-of date, else the newest record "
            "of the data); a line that can still arrive on time is left out and counted in "
            "the note. A partly delivered line counts as its receipt plus its open remainder. "
            "The supplier scorecard counts receipts only."
        )
    return (
        "No open purchase-order lines were supplied: supplier on-time delivery counts only "
        "deliveries received, so a delivery that has not arrived at all is not seen and a "
        "supplier that has not delivered looks on time."
    )
