"""External-provider KPIs (ISO 9001 8.4): on-time delivery, supplier PPM, overdue evaluations.

Receipts carry a site, so OTD and PPM are split by the site that received the
goods. The supplier list has no site: ``supplier_evaluations_overdue`` is a
whole-scope value only. Table for the pack: :func:`supplier_scorecard`.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from qmskpi.config import KpiConfig
from qmskpi.errors import KpiError
from qmskpi.kpis._common import (
    PPM,
    Context,
    KpiDef,
    count_rows,
    group,
    held,
    level_rows,
    make_context,
    measured,
    ratio_rows,
    rollup,
    rollup_whole,
    value_rows,
)
from qmskpi.kpis.firstlevel import DAY, FirstLevel, Level, Measure, Within, count, total
from qmskpi.periods import Period, parse_period

OTD = KpiDef(
    id="supplier_otd_share",
    title="Supplier on-time delivery (receipts received in the period, early counts as on time)",
    iso_clause="8.4",
    unit="share",
    direction="higher_is_better",
    kind="proportion",
    datasets=("receipts",),
    definition=(
        "Receipts whose received_date falls in the period with received_date <= "
        "promised_date + supplier_otd_tolerance_days (config, default 0) / receipts whose "
        "received_date falls in the period."
    ),
    numerator="receipts on time",
    denominator="receipts in the period",
)
OTD_DUE = KpiDef(
    id="supplier_otd_due_share",
    title="Supplier on-time delivery (deliveries due in the period)",
    iso_clause="8.4",
    unit="share",
    direction="higher_is_better",
    kind="proportion",
    datasets=("receipts",),
    optional_datasets=("open_orders",),
    definition=(
        "Receipts whose promised_date falls in the period and whose received_date is from "
        "promised_date - supplier_otd_early_days (config, default 7) to promised_date + "
        "supplier_otd_tolerance_days (config, default 0) / (receipts whose promised_date "
        "falls in the period + open order lines whose promised_date falls in the period and "
        "whose window closed before the as-of date: promised_date + "
        "supplier_otd_tolerance_days < as_of). A delivery due in the period and received "
        "after the window (even after the period's end) is late; one received earlier than "
        "the window is not on time. An open line (open_orders: nothing received against it "
        "at the export) past its window is late; one whose window is still open at the "
        "as-of date is pending: left out of the share and counted in the note. A partly "
        "delivered line counts twice: its receipt, judged on its own dates, and its open "
        "remainder. as_of is the run's as-of date, else the newest record of the data. "
        "Without open_orders a delivery never received is not seen: only receipts count."
    ),
    numerator="receipts due in the period and received within the window",
    denominator="receipts due in the period + open lines due in the period past their window",
)
SUPPLIER_PPM = KpiDef(
    id="supplier_ppm",
    title="Supplier rejects",
    iso_clause="8.4",
    unit="ppm",
    direction="lower_is_better",
    kind="rate",
    datasets=("receipts",),
    definition=(
        "Sum of qty_rejected / sum of qty_received x 1e6 over receipts whose received_date "
        "falls in the period; null when nothing was received."
    ),
    numerator="quantity rejected",
    denominator="quantity received",
)
EVALUATIONS_OVERDUE = KpiDef(
    id="supplier_evaluations_overdue",
    title="Supplier evaluations overdue",
    iso_clause="8.4",
    unit="suppliers",
    direction="lower_is_better",
    kind="count",
    datasets=("suppliers",),
    definition=(
        "Suppliers with approval_status 'approved' and next_evaluation_due < the period's "
        "end (the supplier list as given: a snapshot, so past periods use today's statuses "
        "and due dates). Whole scope only: the supplier list has no site."
    ),
    numerator="approved suppliers whose evaluation is overdue at period end",
    per_site=False,
)

EVALUATIONS_DUE_ACTIVE = KpiDef(
    id="supplier_evaluations_overdue_active",
    title="Approved and conditional suppliers overdue for evaluation or never evaluated",
    iso_clause="8.4",
    unit="suppliers",
    direction="lower_is_better",
    kind="count",
    datasets=("suppliers",),
    definition=(
        "Suppliers with approval_status 'approved' or 'conditional' and either "
        "next_evaluation_due < the period's end or no evaluation at all (last_evaluation_date "
        "and next_evaluation_due both empty). Uses the supplier list as given (current "
        "statuses and due dates, not the state at the period's end). Whole scope only."
    ),
    numerator="approved or conditional suppliers overdue or never evaluated",
    per_site=False,
)
UNAPPROVED_RECEIPTS = KpiDef(
    id="receipts_from_unapproved",
    title="Receipts from suppliers not approved (current list)",
    iso_clause="8.4",
    unit="receipts",
    direction="lower_is_better",
    kind="count",
    datasets=("receipts", "suppliers"),
    definition=(
        "Receipts whose received_date falls in the period from a supplier whose "
        "approval_status is not 'approved' (conditional, disapproved, or not on the supplier "
        "list). The status is the supplier list's current one, not the one on the receipt "
        "date (the list has no history)."
    ),
    numerator="receipts from suppliers not approved",
)

_HISTORY = (
    "A supplier's status on a day is its latest supplier_approvals decision with "
    "decision_date on or before that day (no decision yet: not approved)"
)
EVALUATIONS_ASOF = KpiDef(
    id="supplier_evaluations_overdue_asof",
    title="Suppliers overdue for evaluation at period end (approval history)",
    iso_clause="8.4",
    unit="suppliers",
    direction="lower_is_better",
    kind="count",
    datasets=("supplier_approvals",),
    definition=(
        "Suppliers whose status at the period's end is 'approved' or 'conditional' and whose "
        "next_evaluation_due, from that same latest decision, is before the end or empty. "
        f"{_HISTORY}. Past periods are reproducible. Whole scope only."
    ),
    numerator="approved or conditional suppliers overdue at period end",
    per_site=False,
)
UNAPPROVED_ASOF = KpiDef(
    id="receipts_from_unapproved_asof",
    title="Receipts from suppliers not approved on the receipt date (approval history)",
    iso_clause="8.4",
    unit="receipts",
    direction="lower_is_better",
    kind="count",
    datasets=("receipts", "supplier_approvals"),
    definition=(
        "Receipts whose received_date falls in the period from a supplier whose status on "
        f"the received_date is not 'approved'. {_HISTORY}."
    ),
    numerator="receipts from suppliers not approved on the receipt date",
)

KPIS: tuple[KpiDef, ...] = (
    OTD,
    OTD_DUE,
    SUPPLIER_PPM,
    EVALUATIONS_OVERDUE,
    EVALUATIONS_DUE_ACTIVE,
    UNAPPROVED_RECEIPTS,
    EVALUATIONS_ASOF,
    UNAPPROVED_ASOF,
)


def _on_time(c: KpiConfig) -> Within:
    """Received no later than promised_date + supplier_otd_tolerance_days."""
    return Within("received_date", "promised_date", None, c.supplier_otd_tolerance_days)


def receipt_measures(c: KpiConfig) -> tuple[Measure, ...]:
    """First level of :func:`receipts` (by received_date): receipts, on time, quantities."""
    return (
        count("n"),
        count("on_time", within=_on_time(c)),
        total("qty_received", "qty_received"),
        total("qty_rejected", "qty_rejected"),
    )


def due_measures(c: KpiConfig) -> tuple[Measure, ...]:
    """First level of :func:`deliveries_due` (by promised_date): receipts due, and those
    received from supplier_otd_early_days before to supplier_otd_tolerance_days after."""
    window = Within(
        "received_date",
        "promised_date",
        -c.supplier_otd_early_days,
        c.supplier_otd_tolerance_days,
    )
    return (count("due"), count("due_on_time", within=window))


SUPPLIER_BY = "supplier_id"


def supplier_level(c: KpiConfig) -> Level:
    """Receipts per (day, site, supplier), every supplier_id kept (a blank or unknown one
    is a supplier not approved): ``receipts_from_unapproved`` (on the current list and on
    the day's status) and the scorecard read it."""
    return Level("received_date", receipt_measures(c), SUPPLIER_BY, daily=True, blanks=True)


@group(
    OTD, SUPPLIER_PPM, pushdown=lambda c: {"receipts": Level("received_date", receipt_measures(c))}
)
def receipts(ctx: Context) -> pl.LazyFrame:
    """Goods receipts in each period: on-time share and rejects per million."""
    sums = measured(ctx, "receipts", "received_date", receipt_measures(ctx.config))
    return pl.concat(
        [
            ratio_rows(
                OTD.id,
                sums,
                "on_time",
                "n",
                empty_note="no receipts in period: share undefined",
            ),
            ratio_rows(
                SUPPLIER_PPM.id,
                sums,
                "qty_rejected",
                "qty_received",
                scale=PPM,
                empty_note="no quantity received in period: rate undefined",
            ),
        ]
    )


@group(OTD_DUE, pushdown=lambda c: {"receipts": Level("promised_date", due_measures(c))})
def deliveries_due(ctx: Context) -> pl.LazyFrame:
    """Deliveries due in each period: share received within the early/late window."""
    sums = measured(ctx, "receipts", "promised_date", due_measures(ctx.config))
    if "open_orders" in ctx.frames:
        closed = _window_closed(ctx).cast(pl.Int64())
        lines = ctx.buckets.assign(ctx.frame("open_orders"), "promised_date")
        opened = rollup(
            ctx, lines, [closed.sum().alias("due_open"), (1 - closed).sum().alias("pending")]
        )
        sums = sums.join(opened, on=["scope", "key"], how="left").with_columns(
            due=pl.col("due") + pl.col("due_open")
        )
    else:
        sums = sums.with_columns(pending=pl.lit(0.0))
    ok = pl.col("due") > 0
    empty = (
        pl.when(ok)
        .then(pl.lit(None, pl.String()))
        .otherwise(pl.lit("no deliveries due in period: share undefined"))
    )
    n = pl.col("pending").cast(pl.Int64())
    lines_word = pl.when(n == 1).then(pl.lit("line")).otherwise(pl.lit("lines"))
    pending = pl.when(n > 0).then(
        pl.format("{} open {} not yet due at {} left out", n, lines_word, pl.lit(_as_of_label(ctx)))
    )
    note = pl.concat_str([empty, pending], separator="; ", ignore_nulls=True)
    return value_rows(
        OTD_DUE.id,
        sums,
        pl.when(ok).then(pl.col("due_on_time") / pl.col("due")),
        numerator=pl.col("due_on_time"),
        denominator=pl.col("due"),
        note=pl.when(note != "").then(note),  # both parts null: no note, not ""
    )


def _window_closed(ctx: Context) -> pl.Expr:
    """An open line is late once promised_date + tolerance is before the as-of date."""
    if ctx.as_of is None:  # no data at all: nothing is judged late
        return pl.lit(False)
    tolerance = pl.duration(days=ctx.config.supplier_otd_tolerance_days)
    return pl.col("promised_date") + tolerance < pl.lit(ctx.as_of)


def _as_of_label(ctx: Context) -> str:
    return ctx.as_of.isoformat() if ctx.as_of is not None else "the as-of date"


def _per_supplier(c: KpiConfig) -> dict[str, Level]:
    return {"receipts": supplier_level(c)}


@group(UNAPPROVED_RECEIPTS, pushdown=_per_supplier)
def unapproved_receipts(ctx: Context) -> pl.LazyFrame:
    """Receipts in each period from suppliers not approved on the current list."""
    status = ctx.frame("suppliers").select("supplier_id", "approval_status")
    lf = (
        level_rows(ctx, "receipts", supplier_level(ctx.config))
        .join(status, on="supplier_id", how="left")
        .filter(pl.col("approval_status").fill_null("") != "approved")
    )
    return count_rows(UNAPPROVED_RECEIPTS.id, rollup(ctx, lf, [pl.col("n").sum()]), "n")


def _decisions(ctx: Context) -> pl.LazyFrame:
    return (
        ctx.frame("supplier_approvals")
        .select(
            "supplier_id",
            pl.col("decision_date").alias("_decided"),
            pl.col("approval_status").alias("_status"),
            pl.col("next_evaluation_due").alias("_next_due"),
        )
        .filter(pl.col("_decided").is_not_null())
        .sort("_decided")
    )


@group(EVALUATIONS_ASOF)
def evaluations_asof(ctx: Context) -> pl.LazyFrame:
    """Suppliers overdue for evaluation at each period end, from the approval history."""
    latest = (
        _decisions(ctx)
        .join(ctx.buckets.ends_frame(), how="cross")
        .filter(pl.col("_decided") <= pl.col("end"))
        .sort("supplier_id", "key", "_decided")
        .group_by("supplier_id", "key", "end")
        .last()
    )
    lf = latest.filter(
        pl.col("_status").is_in(["approved", "conditional"])
        & (pl.col("_next_due").is_null() | (pl.col("_next_due") < pl.col("end")))
    )
    return count_rows(EVALUATIONS_ASOF.id, rollup_whole(ctx, lf, [pl.len().alias("n")]), "n")


@group(UNAPPROVED_ASOF, pushdown=_per_supplier)
def unapproved_receipts_asof(ctx: Context) -> pl.LazyFrame:
    """Receipts in each period from suppliers not approved on the receipt date (receipts
    per supplier and day: the status is the supplier's on that day)."""
    rec = level_rows(ctx, "receipts", supplier_level(ctx.config)).sort(DAY)
    lf = rec.join_asof(
        _decisions(ctx),
        left_on=DAY,
        right_on="_decided",
        by="supplier_id",
        strategy="backward",
        # both sides are sorted by their date overall, hence within each supplier
        check_sortedness=False,
    ).filter(pl.col("_status").fill_null("") != "approved")
    return count_rows(UNAPPROVED_ASOF.id, rollup(ctx, lf, [pl.col("n").sum()]), "n")


@group(EVALUATIONS_DUE_ACTIVE)
def evaluations_active(ctx: Context) -> pl.LazyFrame:
    """Approved and conditional suppliers overdue or never evaluated at each period end."""
    never = pl.col("last_evaluation_date").is_null() & pl.col("next_evaluation_due").is_null()
    lf = (
        ctx.frame("suppliers")
        .filter(pl.col("approval_status").is_in(["approved", "conditional"]))
        .join(ctx.buckets.ends_frame(), how="cross")
        .filter(never | (pl.col("next_evaluation_due") < pl.col("end")))
    )
    counts = rollup_whole(ctx, lf, [pl.len().alias("n")])
    return count_rows(EVALUATIONS_DUE_ACTIVE.id, counts, "n")


@group(EVALUATIONS_OVERDUE)
def evaluations(ctx: Context) -> pl.LazyFrame:
    """Approved suppliers whose next evaluation was due before each period end."""
    lf = (
        ctx.frame("suppliers")
        .filter(
            (pl.col("approval_status") == "approved") & pl.col("next_evaluation_due").is_not_null()
        )
        .join(ctx.buckets.ends_frame(), how="cross")
        .filter(pl.col("next_evaluation_due") < pl.col("end"))
    )
    counts = rollup_whole(ctx, lf, [pl.len().alias("overdue")])
    return count_rows(EVALUATIONS_OVERDUE.id, counts, "overdue")


GROUPS = (
    receipts,
    deliveries_due,
    unapproved_receipts,
    evaluations,
    evaluations_active,
    evaluations_asof,
    unapproved_receipts_asof,
)


# --------------------------------------------------------------------------- scorecard


_SUPPLIER_COLS = {
    "supplier_id": pl.String(),
    "name": pl.String(),
    "category": pl.String(),
    "critical": pl.Boolean(),
    "approval_status": pl.String(),
    "next_evaluation_due": pl.Date(),
}


def _scorecard_suppliers(ctx: Context) -> pl.LazyFrame:
    """The supplier list's scorecard columns (empty, typed, without a supplier list)."""
    if "suppliers" in ctx.frames:
        return ctx.frame("suppliers").select(list(_SUPPLIER_COLS))
    return pl.LazyFrame(schema=_SUPPLIER_COLS)


def _scorecard_receipt_sums(ctx: Context) -> pl.LazyFrame:
    """Per supplier: receipts, on-time receipts and quantities over the context's buckets
    (from the receipts per supplier and day: the rows', or the database's)."""
    level = supplier_level(ctx.config)
    if "receipts" in ctx.frames or held(ctx, "receipts", level) is not None:
        rec = ctx.in_scope(level_rows(ctx, "receipts", level))
    else:
        rec = pl.LazyFrame(schema={SUPPLIER_BY: pl.String(), **dict.fromkeys(_SUMS, pl.Float64())})
    return rec.group_by(SUPPLIER_BY).agg(
        pl.col(m).sum().cast(pl.Int64()).alias(out) for m, out in _SUMS.items()
    )


_SUMS = {
    "n": "receipts",
    "on_time": "on_time_receipts",
    "qty_received": "qty_received",
    "qty_rejected": "qty_rejected",
}
"""Scorecard columns from the measures of :func:`receipt_measures`."""


def _scorecard_rating(ctx: Context) -> pl.Expr:
    """``A`` / ``B`` / ``C`` from the ``score`` column and the configured bands; null without one."""
    sc = ctx.config.scorecard
    return (
        pl.when(pl.col("score").is_null())
        .then(pl.lit(None, pl.String()))
        .when(pl.col("score") >= sc.rating_a_min)
        .then(pl.lit("A"))
        .when(pl.col("score") >= sc.rating_b_min)
        .then(pl.lit("B"))
        .otherwise(pl.lit("C"))
    )


def supplier_scorecard(
    data: Mapping[str, pl.DataFrame],
    period: Period | str,
    scope: str = "all",
    *,
    config: KpiConfig | None = None,
    aggregate: FirstLevel | None = None,
) -> pl.DataFrame:
    """Per-supplier scorecard over the receipts of ``period`` (and ``scope``'s sites).

    One row per supplier of the supplier list, plus any supplier that only
    appears in receipts (name etc. null). OTD is the received reading
    (``supplier_otd_share``'s rule): open order lines (``open_orders``) do not
    count here. Scores, with ``sc = config.scorecard``:

    - ``otd_score = 100 x otd_share``
    - ``quality_score = clip(100 x (1 - ppm / sc.ppm_zero_score), 0, 100)``
      (100 at 0 ppm, 0 at ``ppm_zero_score`` ppm and beyond)
    - ``score = sc.otd_weight x otd_score + sc.quality_weight x quality_score``
    - ``rating``: ``A`` when score >= ``sc.rating_a_min``, ``B`` when
      >= ``sc.rating_b_min``, else ``C``; null (like the scores) without receipts.

    Columns: supplier_id, name, category, critical, approval_status,
    next_evaluation_due, evaluation_overdue (approved and next_evaluation_due <
    period end, as ``supplier_evaluations_overdue`` counts), receipts,
    on_time_receipts, qty_received, qty_rejected (Int64), otd_share, ppm,
    otd_score, quality_score, score (Float64), rating. Sorted by supplier_id.

    ``aggregate``: without receipt rows in ``data``, the receipts per supplier and
    day the database computed (``pushdown``, by :data:`SUPPLIER_BY`); the same table.
    """
    p = parse_period(period)
    pushed = {"receipts": aggregate} if aggregate is not None and "receipts" not in data else None
    ctx, _ = make_context(data, [p], scope, config, asked=p, aggregates=pushed)
    if pushed is not None and held(ctx, "receipts", supplier_level(ctx.config)) is None:
        raise KpiError(
            f"the aggregate given is not the scorecard's (receipts per {SUPPLIER_BY} and day, "
            "with this configuration's on-time tolerance)"
        )
    sc = ctx.config.scorecard
    suppliers = _scorecard_suppliers(ctx)
    sums = _scorecard_receipt_sums(ctx)
    n = pl.col("receipts")
    otd = pl.when(n > 0).then(pl.col("on_time_receipts") / n)
    ppm = pl.when(pl.col("qty_received") > 0).then(
        pl.col("qty_rejected") / pl.col("qty_received") * PPM
    )
    quality = (100.0 * (1.0 - pl.col("ppm") / sc.ppm_zero_score)).clip(0.0, 100.0)
    score = sc.otd_weight * pl.col("otd_score") + sc.quality_weight * pl.col("quality_score")
    rating = _scorecard_rating(ctx)
    count_cols = ["receipts", "on_time_receipts", "qty_received", "qty_rejected"]
    return (
        suppliers.join(sums, on="supplier_id", how="full", coalesce=True)
        .with_columns(pl.col(count_cols).fill_null(0))
        .with_columns(
            evaluation_overdue=(
                (pl.col("approval_status") == "approved") & (pl.col("next_evaluation_due") < p.end)
            ).fill_null(False),
            otd_share=otd,
            ppm=ppm,
        )
        .with_columns(otd_score=100.0 * pl.col("otd_share"), quality_score=quality)
        .with_columns(score=score)
        .with_columns(rating=rating)
        .select(
            *_SUPPLIER_COLS,
            "evaluation_overdue",
            *count_cols,
            "otd_share",
            "ppm",
            "otd_score",
            "quality_score",
            "score",
            "rating",
        )
        .sort("supplier_id")
        .collect()
    )
