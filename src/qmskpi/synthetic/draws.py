"""The drawing machinery every dataset shares: random streams, the calendar, column-wise helpers.

One ``numpy`` stream per dataset spawned from the seed (:func:`_streams`); the months as
day numbers (:class:`_Calendar`); arrays to polars columns (ids, dates, lookups, nulls)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt
import polars as pl

from qmskpi.periods import trailing_months
from qmskpi.synthetic.spec import SEASON, SyntheticSpec

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
EPOCH = date(1970, 1, 1)


def _day(d: date) -> int:
    return (d - EPOCH).days


@dataclass(frozen=True)
class _Calendar:
    labels: tuple[str, ...]
    start: IntArray
    """First day of each month, days since 1970-01-01."""
    length: IntArray
    season: FloatArray
    end_day: int

    @staticmethod
    def of(spec: SyntheticSpec) -> _Calendar:
        months = trailing_months(spec.end_month, spec.months)
        return _Calendar(
            labels=tuple(m.label for m in months),
            start=np.array([_day(m.start) for m in months], dtype=np.int64),
            length=np.array([m.days for m in months], dtype=np.int64),
            season=np.array([SEASON[m.start.month - 1] for m in months], dtype=np.float64),
            end_day=_day(months[-1].end),
        )

    @property
    def n(self) -> int:
        return len(self.labels)

    def random_day(self, rng: np.random.Generator, month_idx: IntArray) -> IntArray:
        u = rng.random(month_idx.size)
        return self.start[month_idx] + (u * self.length[month_idx]).astype(np.int64)


def _streams(seed: int) -> dict[str, np.random.Generator]:
    names = (
        "master",
        "shipments",
        "complaints",
        "receipts",
        "inspections",
        "capa",
        "audit_findings",
        "review_actions",
        "surveys",
        "objective_results",
        "audit_programme",
        "customer_deliveries",
        "open_orders",  # last: appending a stream leaves the others' draws unchanged
    )
    children = np.random.SeedSequence(seed).spawn(len(names))
    return {n: np.random.default_rng(s) for n, s in zip(names, children, strict=True)}


def _expand(counts: IntArray) -> IntArray:
    """Cell index of every row, for ``counts[i]`` rows in cell ``i``."""
    return np.repeat(np.arange(counts.size, dtype=np.int64), counts)


def _within(counts: IntArray) -> IntArray:
    """0-based position of every row inside its cell (rows laid out by :func:`_expand`)."""
    offsets = np.cumsum(counts) - counts
    return np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(offsets, counts)


def _choice(rng: np.random.Generator, p: Sequence[float] | FloatArray, size: int) -> IntArray:
    probs = np.asarray(p, dtype=np.float64)
    cum = np.cumsum(probs / probs.sum())
    idx = np.searchsorted(cum, rng.random(size), side="right")
    return np.minimum(idx, probs.size - 1).astype(np.int64)


def _lognormal_days(
    rng: np.random.Generator, median: FloatArray, sigma: float, minimum: int = 1
) -> IntArray:
    raw = np.exp(np.log(median) + sigma * rng.standard_normal(median.size))
    return np.maximum(np.rint(raw), minimum).astype(np.int64)


def _lookup(values: Sequence[str], idx: IntArray) -> pl.Series:
    return pl.Series(values=list(values), dtype=pl.String).gather(idx)


def _dates(days: IntArray) -> pl.Series:
    return pl.Series(values=days.astype(np.int32), dtype=pl.Int32).cast(pl.Date)


def _ids(prefix: str, n: int, *, width: int = 6) -> pl.Series:
    w = max(width, len(str(n)))
    seq = pl.Series(values=np.arange(1, n + 1, dtype=np.int64), dtype=pl.Int64)
    return (prefix + seq.cast(pl.String).str.zfill(w)).rename("id")


def _null_unless(series: pl.Series, keep: BoolArray) -> pl.Series:
    """``series`` with nulls where ``keep`` is false."""
    frame = pl.DataFrame({"v": series, "k": keep})
    out = frame.select(pl.when(pl.col("k")).then(pl.col("v")).alias("v")).to_series()
    return out.alias(series.name)


def _order(*keys: IntArray) -> IntArray:
    """Stable row order by ``keys`` (first key most significant)."""
    return np.lexsort(tuple(reversed(keys))).astype(np.int64)


def _volume(cal: _Calendar) -> FloatArray:
    """Seasonality x growth by month (about 3 % a year)."""
    growth = 1.0 + 0.03 * np.arange(cal.n, dtype=np.float64) / 12.0
    out: FloatArray = cal.season * growth
    return out


def _site_month_grid(spec: SyntheticSpec, cal: _Calendar) -> tuple[IntArray, IntArray]:
    site, month = (
        a.ravel().astype(np.int64)
        for a in np.meshgrid(np.arange(spec.sites), np.arange(cal.n), indexing="ij")
    )
    return site, month
