"""The trend window: the dates a period's KPIs read (:func:`sql_window`), and the
records wholly before it that a Parquet scan leaves out (:data:`_WINDOWED`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from qmskpi.config import Config, SourceConfig
from qmskpi.datasets import Dataset
from qmskpi.periods import Period, parse_period, trailing_months
from qmskpi.sources.table import _norm_header


def sql_window(
    period: Period | str, *, trend_months: int = 24, lookback_days: int = 90
) -> tuple[dt.date, dt.date]:
    """The dates a SQL source pulls for ``period``: ``(:period_start, :period_end)``.

    The start is the first day of the trend window (the ``trend_months``
    calendar months ending with the period's last month) minus
    ``lookback_days`` (for the repeat-complaint look-back); the end is the
    period's last day.

    >>> sql_window("2026-10", trend_months=24, lookback_days=90)
    (datetime.date(2024, 8, 3), datetime.date(2026, 10, 31))
    """
    p = parse_period(period)
    if lookback_days < 0:
        raise ValueError(f"lookback_days must be zero or more, got {lookback_days}")
    first = trailing_months(p, trend_months)[0].start
    return first - dt.timedelta(days=lookback_days), p.end


_WINDOWED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # dataset: (date fields all before the window start, fields all empty)
    "complaints": (("received_date", "closed_date"), ()),
    "inspections": (("inspection_date",), ("lot_id",)),
    "receipts": (("received_date", "promised_date"), ()),
    "surveys": (("response_date",), ()),
}
"""Records that no KPI of a period reads once they lie wholly before its trend window.

A complaint counts for its received month, its closing month, the months it is
open at and the 90-day repeat look-back (inside the window's look-back); a
receipt for its received and promised months; a survey response for its
month; an inspection without a lot for its day (a lot's first inspection may
lie before the window, so inspections of a lot are always read). CAPAs are
never left out: a complaint inside the window may name one.
"""


@dataclass(frozen=True)
class _Window:
    """The first day a period's KPIs read, for one dataset."""

    start: dt.date
    dates: tuple[str, ...]
    empty: tuple[str, ...]

    @property
    def note(self) -> str:
        return (
            f"{' and '.join(self.dates)} before {self.start.isoformat()}, the start of the "
            "trend window and its look-back: no KPI of the period reads it"
        )


def _window(config: Config, ds: Dataset, period: Period | str) -> _Window | None:
    spec = _WINDOWED.get(ds.name)
    if spec is None:
        return None
    start, _ = sql_window(
        period,
        trend_months=config.review.trend_months,
        lookback_days=config.kpis.repeat_window_days,
    )
    return _Window(start, *spec)


def _outside_window(
    window: _Window | None,
    headers: Sequence[str],
    schema: Mapping[str, pl.DataType],
    src: SourceConfig,
    ds: Dataset,
) -> pl.Expr | None:
    """True for rows wholly before the window, read from the stored values; None if it cannot be told.

    Only fields read straight from a typed date column (no value map, null
    value, default, constant or derivation in between) decide; a source whose
    fields need parsing first is read whole.
    """
    if window is None or src.skip_footer_rows:
        return None
    tests: list[pl.Expr] = []
    for name in (*window.dates, *window.empty):
        rewritten = (src.constants, src.derive, src.value_maps, src.null_values, src.defaults)
        if any(name in m for m in rewritten):
            return None
        header = _stored_column(name, headers, src)
        if header is None:
            if name in window.empty:
                continue  # absent: empty in every row
            return None
        dtype = schema[header]
        if name in window.empty:
            tests.append(pl.col(header).is_null())
        elif dtype == pl.Date:
            tests.append(pl.col(header) < window.start)
        elif isinstance(dtype, pl.Datetime):
            tests.append(pl.col(header).dt.date() < window.start)
        else:
            return None
    return pl.all_horizontal(tests).fill_null(False) if tests else None


def _stored_column(name: str, headers: Sequence[str], src: SourceConfig) -> str | None:
    """The file column a field is read from (by position, mapped name or its own name)."""
    if name in src.positions:
        return headers[src.positions[name] - 1] if src.positions[name] <= len(headers) else None
    target = _norm_header(src.columns.get(name, name))
    return next((h for h in headers if _norm_header(h) == target), None)
