"""The coverage matrix: is each 9.3.2 input evidenced, missing, stale or failed?

Each input's datasets are judged (:class:`DatasetCoverage`); the input's
status is the worst of them (``coverage_rule = "all"``) or the best
(``"any"``). Analyst inputs are evidenced by their markdown, 9.3.2 f) by the
trends it is suggested from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, timedelta

import polars as pl

from qmskpi.datasets import DATASETS
from qmskpi.periods import month
from qmskpi.review.clauses import ClauseEntry
from qmskpi.review.context import Context
from qmskpi.review.model import CoverageRow, CoverageStatus, DatasetCoverage, Trend

COVERAGE_ORDER: dict[str, int] = {"failed": 0, "missing": 1, "stale": 2, "evidenced": 3}
"""Worst first: the status of an input is the worst of its datasets'."""


_REGISTERS: dict[str, tuple[str, ...]] = {
    "suppliers": (),
    "objectives": (),
    "review_actions": ("review_date", "closed_date"),
}
"""Lists kept up to date rather than event logs: every row counts; these dates say how fresh."""


def _month_end(label: str) -> date | None:
    if re.fullmatch(r"\d{4}-\d{2}", label) and 1 <= int(label[5:7]) <= 12:
        return month(int(label[:4]), int(label[5:7])).end
    return None


def _newest(name: str, frame: pl.DataFrame, period_end: date) -> tuple[date | None, int]:
    """Newest record date on or before ``period_end`` and the rows up to then.

    Event logs count the rows whose period field (the date that places a row in
    a period) is on or before period end; registers count every row and take
    the newest of their activity dates.
    """
    register = name in _REGISTERS
    period_field = DATASETS[name].period_field if name in DATASETS else None
    cols = _REGISTERS.get(name, (period_field,) if period_field else ())
    cols = tuple(c for c in cols if c in frame.columns)
    if not cols:
        return None, frame.height
    newest: date | None = None
    rows = frame.height
    for col in cols:
        s = frame[col]
        if s.dtype == pl.String:  # a YYYY-MM month column: the month's last day
            labels = s.drop_nulls().unique().to_list()  # a few hundred months at most
            days = pl.Series(
                [d for m in labels if (d := _month_end(m)) is not None], dtype=pl.Date()
            )
            upto_month = {m for m in labels if (d := _month_end(m)) is not None and d <= period_end}
            counted = int(s.is_in(list(upto_month)).sum())
        elif s.dtype in (pl.Date, pl.Datetime):
            days = s.cast(pl.Date())
            counted = int((days <= period_end).sum())
        else:  # not a date column: places no row
            days, counted = pl.Series([], dtype=pl.Date()), 0
        top = days.filter(days <= period_end).max()
        if isinstance(top, date) and (newest is None or top > newest):
            newest = top
        if not register and col == period_field:
            rows = counted
    return newest, rows


def _pushed_newest(pushed: pl.DataFrame, period_end: date) -> tuple[date | None, int]:
    """:func:`_newest` from a pushed-down dataset's records per month (whole months)."""
    upto = pushed.filter(pl.col("month") <= period_end)
    newest = upto["last"].max() if upto.height else None
    return (newest if isinstance(newest, date) else None), int(upto["n"].sum())


def _dataset_coverage(ctx: Context, name: str) -> DatasetCoverage:
    title = DATASETS[name].title if name in DATASETS else name
    frame = ctx.frame(name)
    pushed = ctx.pushed_rows(name)
    configured = name in ctx.config.sources
    total = int(pushed["n"].sum()) if pushed is not None else None
    if name in ctx.unsound:
        rows = frame.height if frame is not None else total or 0
        return DatasetCoverage(name, "failed", None, rows, f"{title}: failed validation")
    if pushed is not None and total:
        newest, rows = _pushed_newest(pushed, ctx.period.end)
    elif frame is None or frame.height == 0:
        why = "no records" if configured or frame is not None else "no source configured"
        return DatasetCoverage(name, "missing", None, 0, f"{title}: {why}")
    else:
        newest, rows = _newest(name, frame, ctx.period.end)
    if rows == 0:
        return DatasetCoverage(name, "missing", None, 0, f"{title}: no records up to period end")
    if newest is None:
        return DatasetCoverage(name, "evidenced", None, rows, f"{title}: {rows:,} records")
    limit = ctx.period.end - timedelta(days=ctx.config.review.stale_after_days)
    if newest < limit:
        return DatasetCoverage(
            name,
            "stale",
            newest.isoformat(),
            rows,
            f"{title}: newest record {newest.isoformat()} is more than "
            f"{ctx.config.review.stale_after_days} days before period end",
        )
    return DatasetCoverage(
        name, "evidenced", newest.isoformat(), rows, f"{title}: {rows:,} records, newest {newest}"
    )


def coverage_row(
    ctx: Context,
    e: ClauseEntry,
    analyst_inputs: Mapping[str, str],
    trends: Sequence[Trend],
) -> CoverageRow:
    evidence = tuple(_dataset_coverage(ctx, ds) for ds in e.datasets)
    status: CoverageStatus
    if e.analyst is not None:
        text = (analyst_inputs.get(e.analyst) or "").strip()
        configured = getattr(ctx.config.analyst_inputs, e.analyst, None)
        if text:
            status, detail = "evidenced", f"analyst input ({e.analyst})"
        elif configured:
            status, detail = "missing", f"analyst input file {configured} not found or empty"
        else:
            status, detail = "missing", f"no analyst input configured (analyst_inputs.{e.analyst})"
        return CoverageRow(e.id, e.ref, e.title, status, evidence, detail)
    if e.derived:
        if trends:
            status, detail = "evidenced", f"suggested from {len(trends)} SPC series"
        else:
            status, detail = "missing", "no measure could be trended"
        return CoverageRow(e.id, e.ref, e.title, status, evidence, detail)
    if not evidence:
        return CoverageRow(e.id, e.ref, e.title, "missing", evidence, "no evidence defined")
    ranked = sorted(evidence, key=lambda d: COVERAGE_ORDER[d.status])
    chosen = ranked[0] if e.coverage_rule == "all" else ranked[-1]
    status = chosen.status
    if status == "evidenced":
        detail = "; ".join(d.detail for d in evidence)
    else:
        detail = "; ".join(d.detail for d in ranked if d.status == status)
    return CoverageRow(e.id, e.ref, e.title, status, evidence, detail)


def section_notes(e: ClauseEntry, coverage: Sequence[CoverageRow]) -> tuple[str, ...]:
    for c in coverage:
        if c.section == e.id and c.status != "evidenced":
            return tuple(d.detail for d in c.evidence if d.status != "evidenced") or (c.detail,)
    return ()
