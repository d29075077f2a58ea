"""Customer KPIs (ISO 9001 9.1.2): complaints, their closure and ageing, satisfaction, NPS.

Tables for the pack: :func:`complaint_ageing` and :func:`repeat_complaints`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import polars as pl

from qmskpi.config import KpiConfig
from qmskpi.datasets import SEVERITIES
from qmskpi.kpis._common import (
    PPM,
    Context,
    KpiDef,
    count_rows,
    days_between,
    group,
    level_rows,
    make_context,
    measured,
    pooled_counts,
    ratio_rows,
    rollup,
    stat_rows,
    table_context,
    value_rows,
)
from qmskpi.kpis.firstlevel import (
    AT_END,
    Days,
    Earlier,
    FirstLevel,
    Level,
    Measure,
    Values,
    Within,
    count,
    total,
)
from qmskpi.periods import Period, parse_period

_C = ("complaints",)

COMPLAINTS_RECEIVED = KpiDef(
    id="complaints_received",
    title="Complaints received",
    iso_clause="9.1.2",
    unit="complaints",
    direction="lower_is_better",
    kind="count",
    datasets=_C,
    definition="Number of complaints whose received_date falls in the period.",
    numerator="complaints received in the period",
)
COMPLAINT_RATE_PPM = KpiDef(
    id="complaint_rate_ppm",
    title="Complaint rate",
    iso_clause="9.1.2",
    unit="ppm",
    direction="lower_is_better",
    kind="rate",
    datasets=("complaints", "shipments"),
    definition=(
        "Complaints received in the period / units_shipped in the period's months x 1e6; "
        "null when no units were shipped."
    ),
    numerator="complaints received in the period",
    denominator="units shipped in the period's months",
)
DAYS_MEDIAN = KpiDef(
    id="complaint_days_to_close_median",
    title="Days to close a complaint (median)",
    iso_clause="9.1.2",
    unit="days",
    direction="lower_is_better",
    kind="continuous",
    datasets=_C,
    definition=(
        "Median of closed_date - received_date in days over complaints whose closed_date "
        "falls in the period (mean of the two middle values for an even count); null when "
        "none closed."
    ),
    denominator="complaints closed in the period",
)
DAYS_P90 = KpiDef(
    id="complaint_days_to_close_p90",
    title="Days to close a complaint (90th percentile)",
    iso_clause="9.1.2",
    unit="days",
    direction="lower_is_better",
    kind="continuous",
    datasets=_C,
    definition=(
        "90th percentile of closed_date - received_date in days over complaints whose "
        "closed_date falls in the period, by linear interpolation between order statistics "
        "(numpy's default 'linear' method: position 0.9 x (n - 1) in the sorted values); "
        "null when none closed."
    ),
    denominator="complaints closed in the period",
)
_TARGET = (
    "the complaint's close target: complaint_close_target_days_by_severity[severity] "
    "(config) when its severity is listed there, else complaint_close_target_days (config, "
    "default 30)"
)
ON_TIME = KpiDef(
    id="complaints_closed_on_time_share",
    title="Complaints closed on time (closed complaints only)",
    iso_clause="9.1.2",
    unit="share",
    direction="higher_is_better",
    kind="proportion",
    datasets=_C,
    definition=(
        "Complaints closed in the period with closed_date - received_date <= target / "
        f"complaints closed in the period; target is {_TARGET}. Open complaints are not "
        "counted: see complaints_on_time_incl_backlog_share."
    ),
    numerator="complaints closed in the period within the target days",
    denominator="complaints closed in the period",
)
ON_TIME_BACKLOG = KpiDef(
    id="complaints_on_time_incl_backlog_share",
    title="Complaints on time, counting the open backlog past target as late",
    iso_clause="9.1.2",
    unit="share",
    direction="higher_is_better",
    kind="proportion",
    datasets=_C,
    definition=(
        "Complaints closed in the period within target / (complaints closed in the period + "
        "complaints open at the period's end whose age, end - received_date, is more than "
        f"the target); target is {_TARGET}. A complaint open at the end but still within its "
        "target is in neither count."
    ),
    numerator="complaints closed in the period within the target days",
    denominator="complaints closed in the period + complaints open past target at period end",
)
_OPEN_DEF = (
    "Complaints open at the period's end: received_date <= end and (closed_date is null "
    "or closed_date > end); the status column is not read."
)
COMPLAINTS_OPEN = KpiDef(
    id="complaints_open",
    title="Complaints open at period end",
    iso_clause="9.1.2",
    unit="complaints",
    direction="lower_is_better",
    kind="count",
    datasets=_C,
    definition=_OPEN_DEF,
    numerator="complaints open at period end",
)
AGE_BUCKETS: tuple[tuple[str, str, int, int | None], ...] = (
    ("complaints_open_age_0_30", "0-30", 0, 30),
    ("complaints_open_age_31_60", "31-60", 31, 60),
    ("complaints_open_age_61_90", "61-90", 61, 90),
    ("complaints_open_age_over_90", ">90", 91, None),
)
"""(KPI id, bucket label, lowest age, highest age or None) of the open-complaint ageing."""

OPEN_AGE = tuple(
    KpiDef(
        id=kpi_id,
        title=f"Complaints open at period end, aged {label} days",
        iso_clause="9.1.2",
        unit="complaints",
        direction="lower_is_better",
        kind="count",
        datasets=_C,
        definition=(
            f"{_OPEN_DEF} Counted when their age, period end - received_date in days, is "
            + (f"from {lo} to {hi}." if hi is not None else f"{lo} or more.")
        ),
        numerator=f"complaints open at period end aged {label} days",
    )
    for kpi_id, label, lo, hi in AGE_BUCKETS
)
BY_SEVERITY = tuple(
    KpiDef(
        id=f"complaints_received_{sev}",
        title=f"Complaints received, severity {sev}",
        iso_clause="9.1.2",
        unit="complaints",
        direction="lower_is_better",
        kind="count",
        datasets=_C,
        definition=f"Number of complaints with severity '{sev}' received in the period.",
        numerator=f"{sev} complaints received in the period",
    )
    for sev in SEVERITIES
)
REJECT_PPM = KpiDef(
    id="customer_reject_ppm",
    title="Customer rejects (units affected per million shipped)",
    iso_clause="9.1.2",
    unit="ppm",
    direction="lower_is_better",
    kind="rate",
    datasets=("complaints", "shipments"),
    definition=(
        "Sum of units_affected over complaints received in the period / units_shipped in the "
        "period's months x 1e6; a complaint without units_affected adds 0 (the note counts "
        "them); null when no units were shipped."
    ),
    numerator="units affected by complaints received in the period",
    denominator="units shipped in the period's months",
)
CUSTOMER_OTD = KpiDef(
    id="customer_otd_share",
    title="On-time delivery to customers",
    iso_clause="9.1.2",
    unit="share",
    direction="higher_is_better",
    kind="proportion",
    datasets=("shipments",),
    definition=(
        "Sum of deliveries_on_time / sum of deliveries over shipment rows of the period's "
        "months that record deliveries (optional shipments columns: customer deliveries due "
        "in the month, and how many reached the customer by the promised date); null when "
        "no row of the period records deliveries."
    ),
    numerator="customer deliveries on time",
    denominator="customer deliveries due in the period's months",
)
REPEAT = KpiDef(
    id="complaints_repeat_share",
    title="Complaints repeating an earlier one (open or closed) within the window",
    iso_clause="9.1.2",
    unit="share",
    direction="lower_is_better",
    kind="proportion",
    datasets=_C,
    definition=(
        "Complaints received in the period for which another complaint with the same "
        "customer, product and category (any site) was received 1 to repeat_window_days "
        "(config, default 90) days before / complaints received in the period. Same-day "
        "complaints are not repeats of each other; a repeat counts at the site receiving it."
    ),
    numerator="repeat complaints received in the period",
    denominator="complaints received in the period",
)
RECURRENCE = KpiDef(
    id="complaints_recurrence_share",
    title="Complaints recurring after the earlier one was closed",
    iso_clause="9.1.2",
    unit="share",
    direction="lower_is_better",
    kind="proportion",
    datasets=_C,
    definition=(
        "Complaints received in the period for which another complaint with the same "
        "customer, product and category (any site) was closed 1 to repeat_window_days "
        "(config, default 90) days before this one was received / complaints received in "
        "the period. An earlier complaint still open, or closed the same day, makes no "
        "recurrence: the fix had not been made."
    ),
    numerator="complaints received in the period recurring after a closed one",
    denominator="complaints received in the period",
)
SATISFACTION = KpiDef(
    id="satisfaction_mean",
    title="Customer satisfaction (mean share of scale)",
    iso_clause="9.1.2",
    unit="share of scale",
    direction="higher_is_better",
    kind="continuous",
    datasets=("surveys",),
    definition=(
        "Mean of score / scale_max over survey responses whose response_date falls in the "
        "period (each response normalised to 0-1 of its own scale, so 4 of 5 and 8 of 10 "
        "both count 0.8); responses with scale_max <= 0 are left out."
    ),
    numerator="sum of score / scale_max",
    denominator="survey responses in the period",
)
SCORE_MEAN = KpiDef(
    id="satisfaction_score_mean",
    title="Customer satisfaction (mean score on the survey's scale)",
    iso_clause="9.1.2",
    unit="score",
    direction="higher_is_better",
    kind="continuous",
    datasets=("surveys",),
    definition=(
        "Mean score of the survey responses whose response_date falls in the period, on the "
        "survey's own scale (e.g. 4.2 on 1-5). Null, with a note, when the period's responses "
        "use more than one scale (scale_min, scale_max): use satisfaction_range_share then."
    ),
    numerator="sum of scores",
    denominator="survey responses in the period",
)
RANGE_SHARE = KpiDef(
    id="satisfaction_range_share",
    title="Customer satisfaction (share of the scale's range)",
    iso_clause="9.1.2",
    unit="share of range",
    direction="higher_is_better",
    kind="continuous",
    datasets=("surveys",),
    definition=(
        "Mean of (score - scale_min) / (scale_max - scale_min) over survey responses in the "
        "period with a scale_min and scale_max > scale_min: the lowest answer is 0, the "
        "highest 1, on any scale. Responses without scale_min are left out."
    ),
    numerator="sum of (score - scale_min) / (scale_max - scale_min)",
    denominator="survey responses in the period with scale_min",
)
RESPONSES = KpiDef(
    id="survey_responses",
    title="Survey responses received",
    iso_clause="9.1.2",
    unit="responses",
    direction="higher_is_better",
    kind="count",
    datasets=("surveys",),
    definition="Number of survey responses whose response_date falls in the period.",
    numerator="survey responses in the period",
)
NPS = KpiDef(
    id="nps",
    title="Net promoter score",
    iso_clause="9.1.2",
    unit="NPS points",
    direction="higher_is_better",
    kind="continuous",
    datasets=("surveys",),
    definition=(
        "100 x (promoters - detractors) / responses, over survey responses in the period "
        "with scale_max = 10: promoters score >= 9, detractors score <= 6 (passives in "
        "between); from -100 to 100. Responses on other scales are left out."
    ),
    numerator="promoters - detractors",
    denominator="survey responses on a 0-10 scale in the period",
)

KPIS: tuple[KpiDef, ...] = (
    COMPLAINTS_RECEIVED,
    *BY_SEVERITY,
    COMPLAINT_RATE_PPM,
    REJECT_PPM,
    CUSTOMER_OTD,
    DAYS_MEDIAN,
    DAYS_P90,
    ON_TIME,
    ON_TIME_BACKLOG,
    COMPLAINTS_OPEN,
    *OPEN_AGE,
    REPEAT,
    RECURRENCE,
    SATISFACTION,
    SCORE_MEAN,
    RANGE_SHARE,
    RESPONSES,
    NPS,
)

_KEYS = ("customer", "product", "category")


def repeat_flag(config: KpiConfig) -> Earlier:
    """A complaint repeats (``complaints_repeat_share``): another with the same customer,
    product and category (none null; any site) was received 1 to ``repeat_window_days``
    days before it. Same-day complaints are 0 days apart: not repeats of each other."""
    return Earlier("repeat", _KEYS, "received_date", "received_date", config.repeat_window_days)


def recurrence_flag(config: KpiConfig) -> Earlier:
    """A complaint recurs (``complaints_recurrence_share``): another with the same
    customer, product and category was closed 1 to ``repeat_window_days`` days before it
    was received (one still open, or closed the same day, makes no recurrence)."""
    return Earlier("recurs", _KEYS, "received_date", "closed_date", config.repeat_window_days)


def received_measures(config: KpiConfig) -> tuple[Measure, ...]:
    """First level of the complaints received (by received_date): all, per severity,
    repeats and recurrences (:func:`repeat_flag`, :func:`recurrence_flag`)."""
    return (
        count("received"),
        *SEVERITY_MEASURES,
        count("repeats", flag=repeat_flag(config)),
        count("recurrences", flag=recurrence_flag(config)),
    )


SEVERITY_MEASURES = tuple(count(f"sev_{sev}", ("severity", sev)) for sev in SEVERITIES)
"""Complaints of each severity (``sev_<severity>``)."""

RATE_MEASURES = (
    count("received"),
    total("affected", "units_affected"),
    count("unknown", absent="units_affected"),
)
"""First level of :func:`complaint_rate`: complaints received, the units they affected (a
complaint without units_affected adds 0) and how many have none."""

CATEGORY_MEASURES = (count("received"), *SEVERITY_MEASURES)
"""First level of :func:`complaints_by_category`, per category (:data:`CATEGORY_BY`)."""
CATEGORY_BY = "category"
CATEGORY_LEVEL = Level("received_date", CATEGORY_MEASURES, CATEGORY_BY, blanks=True)


def _by_target(config: KpiConfig, name: str, within: Callable[[int], Within]) -> list[Measure]:
    """Complaints meeting ``within(target)`` for their close target: one measure per
    severity with its own target (``<name>_<severity>``) and one for the rest
    (``<name>_other``: the default target), or one (``name``) when no severity has its own;
    their sum is the count (:func:`_targeted`)."""
    default = config.complaint_close_target_days
    by_sev = dict(config.complaint_close_target_days_by_severity)
    if not by_sev:
        return [count(name, within=within(default))]
    return [
        *(count(f"{name}_{sev}", ("severity", sev), within=within(t)) for sev, t in by_sev.items()),
        count(f"{name}_other", other=("severity", tuple(by_sev)), within=within(default)),
    ]


def _targeted(measures: Sequence[Measure], name: str) -> pl.Expr:
    """The sum of :func:`_by_target`'s measures ``name``."""
    cols = [m.name for m in measures if m.name == name or m.name.startswith(f"{name}_")]
    return pl.sum_horizontal(cols).alias(name)


def closed_measures(config: KpiConfig) -> tuple[Measure, ...]:
    """First level of the complaints closed (by closed_date): all, and those closed
    within their close target (``on_time``)."""
    return (
        count("closed"),
        *_by_target(config, "on_time", lambda t: Within("closed_date", "received_date", None, t)),
    )


DAYS_TO_CLOSE = Level("closed_date", (count("n"),), Days("closed_date", "received_date"))
"""Complaints closed per (month closed, site, whole days from received_date to
closed_date): the histogram the median and 90th percentile are computed from, exactly."""

OPEN_MEASURES = (
    count("open"),
    *(
        count(kpi_id, within=Within(AT_END, "received_date", lo, hi))
        for kpi_id, _, lo, hi in AGE_BUCKETS
    ),
)
"""Complaints open at a period end, and per age bucket (end - received_date)."""


def late_measures(config: KpiConfig) -> tuple[Measure, ...]:
    """Complaints open at a period end past their close target (``late``)."""
    return tuple(_by_target(config, "late", lambda t: Within(AT_END, "received_date", t + 1, None)))


def open_level(measures: tuple[Measure, ...]) -> Level:
    """Complaints open at each period end (received_date <= end, closed_date null or
    after it), per site: ``measures`` of them (the ends are the run's)."""
    return Level("received_date", measures, open_until="closed_date")


def _flow_levels(config: KpiConfig) -> dict[str, tuple[Level, ...]]:
    return {
        "complaints": (
            Level("received_date", received_measures(config)),
            Level("closed_date", closed_measures(config)),
            DAYS_TO_CLOSE,
            open_level(late_measures(config)),
        )
    }


@group(
    COMPLAINTS_RECEIVED,
    *BY_SEVERITY,
    DAYS_MEDIAN,
    DAYS_P90,
    ON_TIME,
    ON_TIME_BACKLOG,
    REPEAT,
    RECURRENCE,
    pushdown=_flow_levels,
)
def complaint_flow(ctx: Context) -> pl.LazyFrame:
    """Complaints received and closed in each period, per site and for the whole scope.

    From first levels (:func:`_flow_levels`): counts per month and site, the histogram
    of days to close (:data:`DAYS_TO_CLOSE`, median and p90 pooled from it) and the
    complaints open past target at each period end.
    """
    c = ctx.config
    received = measured(ctx, "complaints", "received_date", received_measures(c))
    closing = closed_measures(c)
    counts = measured(ctx, "complaints", "closed_date", closing).with_columns(
        _targeted(closing, "on_time")
    )
    late = late_measures(c)
    late_open = rollup(
        ctx,
        level_rows(ctx, "complaints", open_level(late)),
        [_targeted(late, "late").sum().alias("late_open")],
    )
    backlog = counts.join(late_open, on=["scope", "key"], how="left").with_columns(
        judged=pl.col("closed") + pl.col("late_open")
    )
    stats = pooled_counts(
        ctx,
        level_rows(ctx, "complaints", DAYS_TO_CLOSE),
        "days",
        "n",
        {"median": 0.5, "p90": 0.9},
    ).join(counts.select("scope", "key", pl.col("closed").alias("n")), on=["scope", "key"])
    none_closed = "no complaints closed in period"
    none_received = "no complaints received in period: share undefined"
    return pl.concat(
        [
            count_rows(COMPLAINTS_RECEIVED.id, received, "received"),
            *[
                count_rows(k.id, received, f"sev_{sev}")
                for k, sev in zip(BY_SEVERITY, SEVERITIES, strict=True)
            ],
            stat_rows(DAYS_MEDIAN.id, stats, "median", "n", empty_note=none_closed),
            stat_rows(DAYS_P90.id, stats, "p90", "n", empty_note=none_closed),
            ratio_rows(
                ON_TIME.id,
                counts,
                "on_time",
                "closed",
                empty_note=none_closed + ": share undefined",
            ),
            ratio_rows(
                ON_TIME_BACKLOG.id,
                backlog,
                "on_time",
                "judged",
                empty_note="no complaints closed in period and none open past target",
            ),
            ratio_rows(REPEAT.id, received, "repeats", "received", empty_note=none_received),
            ratio_rows(
                RECURRENCE.id, received, "recurrences", "received", empty_note=none_received
            ),
        ]
    )


@group(
    COMPLAINT_RATE_PPM,
    REJECT_PPM,
    pushdown={"complaints": Level("received_date", RATE_MEASURES)},
)
def complaint_rate(ctx: Context) -> pl.LazyFrame:
    """Complaints and units affected per million units shipped."""
    b = ctx.buckets
    complaints = measured(ctx, "complaints", "received_date", RATE_MEASURES)
    shipped = rollup(
        ctx,
        ctx.frame("shipments")
        .filter(b.month_contains(pl.col("month")))
        .with_columns(key=b.month_key(pl.col("month"))),
        [pl.col("units_shipped").sum().alias("units")],
    )
    both = complaints.join(shipped, on=["scope", "key"], how="left")
    no_units = "no shipments in period: rate undefined"
    shipped_any = pl.col("units") > 0
    unknown_note = (
        pl.when(~shipped_any)
        .then(pl.lit(no_units))
        .when(pl.col("unknown") > 0)
        .then(
            pl.format(
                "{} complaint(s) without units_affected counted as 0",
                pl.col("unknown").cast(pl.Int64()),
            )
        )
    )
    return pl.concat(
        [
            ratio_rows(
                COMPLAINT_RATE_PPM.id, both, "received", "units", scale=PPM, empty_note=no_units
            ),
            value_rows(
                REJECT_PPM.id,
                both,
                pl.when(shipped_any).then(pl.col("affected") / pl.col("units") * PPM),
                numerator=pl.col("affected"),
                denominator=pl.col("units"),
                note=unknown_note,
            ),
        ]
    )


def _open_counts(ctx: Context) -> pl.LazyFrame:
    """Per (scope, key): complaints open at the bucket's end, and per age bucket."""
    rows = level_rows(ctx, "complaints", open_level(OPEN_MEASURES))
    return rollup(ctx, rows, [pl.col(m.name).sum() for m in OPEN_MEASURES])


@group(COMPLAINTS_OPEN, *OPEN_AGE, pushdown={"complaints": open_level(OPEN_MEASURES)})
def complaints_open(ctx: Context) -> pl.LazyFrame:
    """Complaints open at each period end, and their age at that end."""
    counts = _open_counts(ctx)
    return pl.concat(
        [count_rows(COMPLAINTS_OPEN.id, counts, "open")]
        + [count_rows(kpi_id, counts, kpi_id) for kpi_id, *_ in AGE_BUCKETS]
    )


SURVEY_SCALE = ("scale_min", "scale_max", "score")
SURVEY_LEVEL = Level("response_date", (count("n"),), Values(SURVEY_SCALE))
"""Survey responses per (month, site, scale_min, scale_max, score): every satisfaction
KPI is computed from these counts (:func:`_survey_sums`), the same whether the rows or the
database counted them."""


def _survey_sums(ctx: Context) -> pl.LazyFrame:
    """Per (scope, period key): response counts and score sums on each kind of scale."""
    scale = list(SURVEY_SCALE)
    counts = (
        ctx.in_scope(level_rows(ctx, "surveys", SURVEY_LEVEL))
        .group_by("key", "site", *scale)
        .agg(pl.col("n").sum())
        .cache()
    )
    parts = [counts.rename({"site": "scope"})]
    if ctx.include_all:
        parts.append(
            counts.group_by("key", *scale)
            .agg(pl.col("n").sum())
            .with_columns(scope=pl.lit("all", pl.String()))
        )
    cols = ["scope", "key", *scale, "n"]
    n, score, lo, hi = pl.col("n"), pl.col("score"), pl.col("scale_min"), pl.col("scale_max")
    ten = hi == 10
    ranged = lo.is_not_null() & (hi > lo)
    exact = {  # float terms, summed exactly (math.fsum): no order of the counts changes them
        "score_sum": (n * score / hi).filter(hi > 0),
        "raw_sum": (n * score).drop_nulls(),
        "range_sum": (n * (score - lo) / (hi - lo)).filter(ranged),
    }
    sums = (
        pl.concat([p.select(cols) for p in parts])
        .group_by("scope", "key")
        .agg(
            responses=n.sum(),
            scaled=n.filter(hi > 0).sum(),
            scales=pl.struct(lo, hi).n_unique(),
            ranged_n=n.filter(ranged).sum(),
            nps_n=n.filter(ten).sum(),
            net=n.filter(ten & (score >= 9)).sum() - n.filter(ten & (score <= 6)).sum(),
            **{name: term.drop_nulls() for name, term in exact.items()},
        )
        .collect()  # a few rows per scope and period
    )
    return sums.with_columns(
        pl.Series(name, [math.fsum(v) for v in sums[name].to_list()], pl.Float64())
        for name in exact
    ).lazy()


@group(SATISFACTION, SCORE_MEAN, RANGE_SHARE, RESPONSES, NPS, pushdown={"surveys": SURVEY_LEVEL})
def satisfaction(ctx: Context) -> pl.LazyFrame:
    """Survey responses in each period: mean scores on three scales, responses, NPS.

    Responses are first counted per distinct (scale_min, scale_max, score) and month
    (:data:`SURVEY_LEVEL`, a first level the database can compute); sums run over those
    counts, the scores' exactly (``math.fsum``), so the result does not depend on the
    order of rows or counts.
    """
    sums = _survey_sums(ctx)
    names = ["responses", "scaled", "score_sum", "raw_sum", "ranged_n", "range_sum", "nps_n", "net"]
    frame = (
        ctx.grid()
        .join(sums, on=["scope", "key"], how="left")
        .with_columns(pl.col(names).cast(pl.Float64()).fill_null(0.0))
    )
    none = "no survey responses in period"
    single = (pl.col("responses") > 0) & (pl.col("scales") == 1)
    mixed_note = (
        pl.when(pl.col("responses") == 0)
        .then(pl.lit(none))
        .when(~single)
        .then(pl.lit("responses on more than one scale: see satisfaction_range_share"))
    )
    return pl.concat(
        [
            ratio_rows(SATISFACTION.id, frame, "score_sum", "scaled", empty_note=none),
            value_rows(
                SCORE_MEAN.id,
                frame,
                pl.when(single).then(pl.col("raw_sum") / pl.col("responses")),
                numerator=pl.col("raw_sum"),
                denominator=pl.col("responses"),
                note=mixed_note,
            ),
            ratio_rows(
                RANGE_SHARE.id,
                frame,
                "range_sum",
                "ranged_n",
                empty_note="no survey responses with scale_min in period",
            ),
            count_rows(RESPONSES.id, frame, "responses"),
            ratio_rows(
                NPS.id,
                frame,
                "net",
                "nps_n",
                scale=100.0,
                empty_note="no survey responses on a 0-10 scale in period",
            ),
        ]
    )


@group(CUSTOMER_OTD)
def customer_deliveries(ctx: Context) -> pl.LazyFrame:
    """Customer deliveries due in each period's months and how many were on time."""
    b = ctx.buckets
    rows = (
        ctx.frame("shipments")
        .filter(b.month_contains(pl.col("month")) & pl.col("deliveries").is_not_null())
        .with_columns(key=b.month_key(pl.col("month")))
    )
    sums = rollup(
        ctx,
        rows,
        [
            pl.col("deliveries").sum().alias("due"),
            pl.col("deliveries_on_time").fill_null(0).sum().alias("on_time"),
        ],
    )
    return ratio_rows(
        CUSTOMER_OTD.id,
        sums,
        "on_time",
        "due",
        empty_note="no customer deliveries recorded in period: share undefined",
    )


GROUPS = (complaint_flow, complaint_rate, customer_deliveries, complaints_open, satisfaction)


# --------------------------------------------------------------------------- tables


def complaint_ageing(
    data: Mapping[str, pl.DataFrame],
    period: Period | str,
    scope: str = "all",
    *,
    config: KpiConfig | None = None,
    aggregate: FirstLevel | Sequence[FirstLevel] | None = None,
) -> pl.DataFrame:
    """Complaints open at the period's end by age bucket, per scope.

    Columns: ``scope`` (``all`` first, then sites), ``bucket`` (``0-30``,
    ``31-60``, ``61-90``, ``>90`` days since received_date at period end),
    ``lowest_days``, ``highest_days`` (null for ``>90``), ``open`` (Int64),
    ``share`` (of the scope's open complaints; null when none are open). The
    ``open`` counts equal the ``complaints_open_age_*`` KPIs.

    ``aggregate``: without complaint rows in ``data``, the complaints open at period
    ends the database computed (``pushdown``: the open-at-ends level of
    :func:`~qmskpi.kpis.pushdown_levels` with ``period``, alone or among the other
    complaint levels); the same table.
    """
    ctx = table_context(
        data, period, scope, config, aggregate, "complaints", open_level(OPEN_MEASURES)
    )
    counts = _open_counts(ctx).collect()
    order = {s: i for i, s in enumerate(ctx.scopes)}
    rows = []
    for r in sorted(counts.iter_rows(named=True), key=lambda r: order[r["scope"]]):
        for kpi_id, label, lo, hi in AGE_BUCKETS:
            rows.append(
                {
                    "scope": r["scope"],
                    "bucket": label,
                    "lowest_days": lo,
                    "highest_days": hi,
                    "open": int(r[kpi_id]),
                    "share": r[kpi_id] / r["open"] if r["open"] else None,
                }
            )
    return pl.DataFrame(
        rows,
        schema={
            "scope": pl.String(),
            "bucket": pl.String(),
            "lowest_days": pl.Int64(),
            "highest_days": pl.Int64(),
            "open": pl.Int64(),
            "share": pl.Float64(),
        },
    )


def repeat_complaints(
    data: Mapping[str, pl.DataFrame],
    period: Period | str,
    scope: str = "all",
    *,
    config: KpiConfig | None = None,
) -> pl.DataFrame:
    """Complaints received in the period that repeat an earlier one (``complaints_repeat_share``).

    Columns: ``complaint_id``, ``received_date``, ``site``, ``customer``,
    ``product``, ``category``, ``severity``, ``previous_complaint_id`` (the
    latest earlier complaint with the same customer, product and category; the
    greatest id among several that day), ``previous_received_date``,
    ``previous_site``, ``days_since_previous``. Sorted by received_date, then
    complaint_id.
    """
    p = parse_period(period)
    ctx, _ = make_context(data, [p], scope, config, asked=p)
    window = ctx.config.repeat_window_days
    lf = ctx.frame("complaints")
    current = ctx.in_scope(lf).filter(ctx.buckets.contains(pl.col("received_date")))
    since = pl.lit(p.start) - pl.duration(days=window)
    earlier = lf.filter(pl.col("received_date").is_between(since, pl.lit(p.end))).select(
        *_KEYS,
        previous_complaint_id=pl.col("complaint_id"),
        previous_received_date=pl.col("received_date"),
        previous_site=pl.col("site"),
    )
    return (
        current.join(earlier, on=_KEYS, how="inner")
        .with_columns(days_since_previous=days_between("previous_received_date", "received_date"))
        .filter(pl.col("days_since_previous").is_between(1, window, closed="both"))
        .sort("complaint_id", "previous_received_date", "previous_complaint_id")
        .group_by("complaint_id", maintain_order=True)
        .last()
        .select(
            "complaint_id",
            "received_date",
            "site",
            *_KEYS,
            "severity",
            "previous_complaint_id",
            "previous_received_date",
            "previous_site",
            "days_since_previous",
        )
        .sort("received_date", "complaint_id")
        .collect()
    )


def complaints_by_category(
    data: Mapping[str, pl.DataFrame],
    period: Period | str,
    scope: str = "all",
    *,
    aggregate: FirstLevel | Sequence[FirstLevel] | None = None,
) -> pl.DataFrame:
    """Complaints received in the period by category and severity, largest category first.

    Columns: ``category``, ``received`` (Int64), one Int64 column per severity
    (``minor``, ``major``, ``critical``; they add up to ``received``), ``share``
    (of the period's complaints in the scope). Sorted by received (largest first),
    then critical, then category; a last row ``category = "all"`` holds the totals
    (its severity counts equal the ``complaints_received_<severity>`` KPIs). Empty
    period: only the ``all`` row, with zeros and a null share.

    ``aggregate``: without complaint rows in ``data``, the complaints per category the
    database computed (``pushdown``, by :data:`CATEGORY_BY`; alone or among the other
    complaint levels); the same table.
    """
    ctx = table_context(data, period, scope, None, aggregate, "complaints", CATEGORY_LEVEL)
    counts = ["received", *SEVERITIES]
    schema = {"category": pl.String(), **dict.fromkeys(counts, pl.Int64()), "share": pl.Float64()}
    if "complaints" not in ctx.frames and "complaints" not in ctx.aggregates:
        return pl.DataFrame(schema=schema)
    rows = ctx.in_scope(level_rows(ctx, "complaints", CATEGORY_LEVEL))
    aggs = [pl.col("received").sum().cast(pl.Int64()).alias("received")] + [
        pl.col(f"sev_{sev}").sum().cast(pl.Int64()).alias(sev) for sev in SEVERITIES
    ]
    by_category = (
        rows.group_by("category")
        .agg(aggs)
        .sort(["received", "critical", "category"], descending=[True, True, False])
    )
    total = rows.select(aggs).with_columns(category=pl.lit("all", pl.String()))
    table = pl.concat(
        [by_category.select(["category", *counts]), total.select(["category", *counts])],
        how="vertical_relaxed",
    )
    grand = pl.col("received").filter(pl.col("category") == "all").first()
    return (
        table.with_columns(share=pl.when(grand > 0).then(pl.col("received") / grand))
        .select([pl.col(c).cast(t) for c, t in schema.items()])
        .collect()
    )
