"""Shared machinery of :mod:`qmskpi.kpis`: KPI definitions, period buckets, scopes, roll-ups.

Every KPI is computed on *buckets*: either one :class:`~qmskpi.periods.Period`
(``compute_kpis``) or a run of consecutive months (``kpi_series``). A row is put
in a bucket by the date its definition names, with one vectorised expression,
so a 24-month series costs one group-by, not 24 calls.

Scopes: per-site values come from a group-by on ``(bucket, site)``; the
whole-scope value is recomputed from the pooled rows: additive numerators and
denominators are summed over every row (the same sum as adding the per-site
sums), and the ratio is taken of those totals, never a mean of site values.
Order statistics (median, p90) are computed from the pooled rows directly.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import polars as pl

from qmskpi.config import WHOLE_SCOPE, KpiConfig
from qmskpi.datasets import DATASETS, Dataset
from qmskpi.errors import KpiError, PeriodError, did_you_mean
from qmskpi.kpis.firstlevel import (
    AT_END,
    DAY,
    MONTH,
    Aggregates,
    FirstLevel,
    Level,
    Measure,
    as_levels,
    by_names,
    first_level,
    level_of,
    open_rows,
    polars_agg,
    quantile_of_counts,
    split,
    with_flags,
)
from qmskpi.periods import Period, month, parse_period

Direction = Literal["higher_is_better", "lower_is_better", "neutral"]
"""Which way a KPI improves; ``neutral`` when neither way is better."""

Kind = Literal["proportion", "rate", "count", "continuous"]
"""Tells SPC which chart fits: proportion -> p/p' (numerator over denominator),
rate -> u (numerator count over denominator units, e.g. ppm), count -> c,
continuous -> XmR."""

PPM = 1_000_000.0


@dataclass(frozen=True)
class KpiDef:
    """The definition of one KPI, as the pack's appendix prints it."""

    id: str
    title: str
    iso_clause: str
    unit: str
    direction: Direction
    kind: Kind
    datasets: tuple[str, ...]
    """Input datasets; the KPI is unsound when any of them failed validation."""
    definition: str
    """The exact definition (also in the docstring of the function computing it)."""
    numerator: str | None = None
    """What the ``numerator`` column holds, or ``None`` when it is always null."""
    denominator: str | None = None
    """What the ``denominator`` column holds, or ``None`` when it is always null."""
    per_site: bool = True
    """False for KPIs of site-less datasets: whole-scope values only."""
    optional_datasets: tuple[str, ...] = ()
    """Datasets read when supplied (the KPI is computed without them, by its definition's
    rule for their absence); one supplied that failed validation makes the KPI unsound."""

    @property
    def inputs(self) -> tuple[str, ...]:
        """:attr:`datasets` then :attr:`optional_datasets`."""
        return self.datasets + self.optional_datasets


# The tidy internal row every group computation returns; ``key`` is the bucket index.
ROW_SCHEMA: dict[str, pl.DataType] = {
    "kpi": pl.String(),
    "scope": pl.String(),
    "key": pl.Int32(),
    "value": pl.Float64(),
    "numerator": pl.Float64(),
    "denominator": pl.Float64(),
    "note": pl.String(),
}


# --------------------------------------------------------------------------- buckets


def _month_index(d: date) -> int:
    return d.year * 12 + d.month - 1


@dataclass(frozen=True)
class Buckets:
    """Consecutive periods: one period of any granularity, or a run of months."""

    periods: tuple[Period, ...]

    def __post_init__(self) -> None:
        if not self.periods:
            raise KpiError("no period to compute")
        if len(self.periods) > 1:
            for a, b in zip(self.periods, self.periods[1:], strict=False):
                if a.granularity != "month" or b.granularity != "month" or b != a.next():
                    raise KpiError("a series must be consecutive calendar months")

    @property
    def start(self) -> date:
        return self.periods[0].start

    @property
    def end(self) -> date:
        return self.periods[-1].end

    @property
    def labels(self) -> list[str]:
        return [p.label for p in self.periods]

    @property
    def ends(self) -> list[date]:
        return [p.end for p in self.periods]

    def contains(self, d: pl.Expr) -> pl.Expr:
        """True where the date falls in some bucket."""
        return d.is_between(self.start, self.end, closed="both")

    def key(self, d: pl.Expr) -> pl.Expr:
        """Bucket index (Int32) of a date; valid only on rows where :meth:`contains` holds.

        A look-up table with one entry per day of the buckets, gathered by the
        day offset: several times faster than ``dt.year``/``dt.month`` on
        millions of rows. Use :meth:`assign`, which filters first.
        """
        if len(self.periods) == 1:
            return pl.lit(0, dtype=pl.Int32)
        return pl.lit(self._day_lut()).gather((d - pl.lit(self.start)).dt.total_days())

    def _day_lut(self) -> pl.Series:
        keys: list[int] = []
        for i, p in enumerate(self.periods):
            keys.extend([i] * p.days)
        return pl.Series("bucket", keys, dtype=pl.Int32())

    def assign(self, lf: pl.LazyFrame, date_col: str) -> pl.LazyFrame:
        """Rows whose ``date_col`` falls in a bucket, with their bucket index as ``key``."""
        d = pl.col(date_col)
        return lf.filter(self.contains(d)).with_columns(key=self.key(d))

    def month_contains(self, m: pl.Expr) -> pl.Expr:
        """True where a ``YYYY-MM`` string names a month inside the buckets."""
        first = month(self.start.year, self.start.month).label
        last = month(self.end.year, self.end.month).label
        return (m >= first) & (m <= last)

    def month_key(self, m: pl.Expr) -> pl.Expr:
        """Bucket index of a ``YYYY-MM`` string."""
        if len(self.periods) == 1:
            return pl.lit(0, dtype=pl.Int32)
        base = _month_index(self.start)
        y = m.str.slice(0, 4).cast(pl.Int32)
        mo = m.str.slice(5, 2).cast(pl.Int32)
        return y * 12 + mo - (base + 1)

    def ends_frame(self) -> pl.LazyFrame:
        return pl.LazyFrame(
            {"key": list(range(len(self.periods))), "end": self.ends},
            schema={"key": pl.Int32(), "end": pl.Date()},
        )

    def open_at_ends(self, lf: pl.LazyFrame, start: str, close: str) -> pl.LazyFrame:
        """One row per (item, bucket end) at which the item is open.

        Open at ``end`` means ``start <= end`` and (``close`` is null or
        ``close > end``). Adds columns ``key`` and ``end``. Cost is the number
        of (item, end) pairs that are open, not items x buckets.
        """
        return (
            open_rows(lf, start, close, self.ends)
            .rename({AT_END: "end"})
            .join(self.ends_frame(), on="end", how="inner")
        )


# --------------------------------------------------------------------------- data


def prepare(data: Mapping[str, pl.DataFrame | pl.LazyFrame]) -> dict[str, pl.LazyFrame]:
    """Canonical lazy frames of the datasets in ``data`` (``source_row`` and extras dropped).

    A missing optional column is added as nulls; a missing required column or a
    column of the wrong type raises :class:`KpiError` naming dataset and column.
    """
    out: dict[str, pl.LazyFrame] = {}
    for name, frame in data.items():
        if name not in DATASETS:
            raise KpiError(
                f"unknown dataset {name!r}{did_you_mean(name, DATASETS)}; "
                f"known: {', '.join(DATASETS)}"
            )
        ds = DATASETS[name]
        lf = frame.lazy()
        schema = lf.collect_schema()
        exprs: list[pl.Expr] = []
        for f in ds.fields:
            if f.name not in schema:
                if f.required:
                    raise KpiError(
                        f"dataset {name!r} has no column {f.name!r}"
                        f"{did_you_mean(f.name, schema.names())}; "
                        f"required: {', '.join(ds.required_fields)}"
                    )
                exprs.append(pl.lit(None, dtype=f.dtype).alias(f.name))
            elif schema[f.name] != f.dtype:
                if not _castable(schema[f.name], f.dtype):
                    raise KpiError(
                        f"dataset {name!r} column {f.name!r} is {schema[f.name]}, "
                        f"expected {f.dtype}"
                    )
                exprs.append(pl.col(f.name).cast(f.dtype).alias(f.name))
            else:
                exprs.append(pl.col(f.name))
        out[name] = lf.select(exprs)
    return out


def _castable(got: pl.DataType, want: pl.DataType) -> bool:
    if want == pl.Date():
        return isinstance(got, pl.Date | pl.Datetime) or got == pl.Null()
    if want == pl.String():
        return got in (pl.String(), pl.Categorical(), pl.Null()) or isinstance(got, pl.Enum)
    if want in (pl.Int64(), pl.Float64()):
        return got.is_numeric() or got == pl.Null()
    if want == pl.Boolean():
        return got in (pl.Boolean(), pl.Null())
    return False


class FrameMemo:
    """Results computed from an eager frame, kept while the frame lives.

    One review computes the KPIs of a month, of a 24-month series, of the year
    to date and several tables from the same validated frames; what depends on
    a frame only (its profile, the lots of its inspections) is computed once.
    Entries are keyed by the frame object (a weak reference: a frame that is
    dropped takes its entries with it) and its height, so a frame grown in
    place is not mistaken for the one measured.
    """

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[weakref.ref[pl.DataFrame], int, dict[Hashable, object]]] = {}

    def get(self, frame: pl.DataFrame, key: Hashable, compute: Callable[[], object]) -> object:
        """The result stored for ``(frame, key)``, computing and storing it the first time."""
        found, value = self.find(frame, key)
        if not found:
            value = compute()
            self.put(frame, key, value)
        return value

    def find(self, frame: pl.DataFrame, key: Hashable) -> tuple[bool, object]:
        entry = self._by_id.get(id(frame))
        if entry is None or entry[0]() is not frame or entry[1] != frame.height:
            return False, None
        return (True, entry[2][key]) if key in entry[2] else (False, None)

    def put(self, frame: pl.DataFrame, key: Hashable, value: object) -> None:
        ident = id(frame)
        entry = self._by_id.get(ident)
        if entry is None or entry[0]() is not frame or entry[1] != frame.height:

            def forget(ref: weakref.ref[pl.DataFrame], i: int = ident) -> None:
                self._forget(i, ref)

            entry = (weakref.ref(frame, forget), frame.height, {})
            self._by_id[ident] = entry
        entry[2][key] = value

    def _forget(self, ident: int, ref: weakref.ref[pl.DataFrame]) -> None:
        entry = self._by_id.get(ident)
        if entry is not None and entry[0] is ref:
            del self._by_id[ident]


MEMO = FrameMemo()
"""Per-frame results shared by every KPI call of the process."""


@dataclass(frozen=True)
class DataProfile:
    """What the data covers: its sites, each dataset's first date, the newest record date."""

    sites: tuple[str, ...]
    first: Mapping[str, date]
    """First date of each dated, non-empty dataset (its period field)."""
    newest: date | None
    """Newest event date over every dataset (period fields and closed dates)."""
    months: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    """``YYYY-MM`` months in which each dated dataset has a row dated (period field)
    or closed (``closed_date``): the months the source shows activity in."""


def profile(
    frames: Mapping[str, pl.LazyFrame], eager: Mapping[str, pl.DataFrame] | None = None
) -> DataProfile:
    """Sites, first dates and the newest date, in one pass per dataset.

    ``eager``: the frames ``frames`` were prepared from, where they were eager;
    their profiles are computed once per frame (:data:`MEMO`).
    """
    eager = eager or {}
    names: list[str] = []
    queries: list[pl.LazyFrame] = []
    found: dict[str, dict[str, Any]] = {}
    for name, lf in frames.items():
        exprs = _profile_exprs(DATASETS[name])
        if not exprs:
            continue
        src = eager.get(name)
        hit, row = MEMO.find(src, "profile") if src is not None else (False, None)
        if hit:
            found[name] = row  # type: ignore[assignment]
        else:
            names.append(name)
            queries.append(lf.select(exprs))
    for name, res in zip(names, pl.collect_all(queries), strict=True):
        found[name] = res.row(0, named=True)
        if name in eager:
            MEMO.put(eager[name], "profile", found[name])
    sites: set[str] = set()
    first: dict[str, date] = {}
    months: dict[str, frozenset[str]] = {}
    newest: date | None = None
    for name in frames:
        if name not in found:
            continue
        row = found[name]
        sites.update(row.get("sites") or [])
        if "months" in row:  # a month with a record dated in it, or a record closed in it
            months[name] = frozenset((row["months"] or []) + (row.get("closed_months") or []))
        lo, hi = row.get("first"), row.get("last")
        if isinstance(lo, str):  # a YYYY-MM month column
            lo, hi = _month_date(lo, end=False), _month_date(hi, end=True)
        if isinstance(lo, date):
            first[name] = lo
        if DATASETS[name].forward_dated:  # a due date after the export does not make the data newer
            hi = None
        for d in (hi, row.get("last_closed")):
            if isinstance(d, date) and (newest is None or d > newest):
                newest = d
    return DataProfile(tuple(sorted(sites)), first, newest, months)


def _profile_exprs(ds: Dataset) -> list[pl.Expr]:
    exprs: list[pl.Expr] = []
    pf = ds.period_field
    if pf is not None:
        exprs += [pl.col(pf).min().alias("first"), pl.col(pf).max().alias("last")]
        label = pl.col(pf) if ds.field(pf).type != "date" else pl.col(pf).dt.strftime("%Y-%m")
        exprs.append(label.drop_nulls().unique().implode().alias("months"))
    if "closed_date" in ds.field_names:
        exprs.append(pl.col("closed_date").max().alias("last_closed"))
        if pf is not None:
            closed = pl.col("closed_date").drop_nulls().dt.strftime("%Y-%m")
            exprs.append(closed.unique().implode().alias("closed_months"))
    if ds.site_level:
        exprs.append(pl.col("site").drop_nulls().unique().implode().alias("sites"))
    return exprs


def _month_date(label: str | None, *, end: bool) -> date | None:
    if label is None:
        return None
    try:
        p = parse_period(label)
    except PeriodError:  # a malformed month: contracts report it; it places no row
        return None
    return p.end if end else p.start


@dataclass(frozen=True)
class Context:
    """Everything a group computation needs: frames, buckets, scopes, settings."""

    frames: Mapping[str, pl.LazyFrame]
    buckets: Buckets
    sites: tuple[str, ...]
    """Sites to report (all sites of the data for scope "all", else the one site)."""
    include_all: bool
    """Whether to report the whole scope ("all")."""
    config: KpiConfig
    aggregates: Mapping[str, tuple[FirstLevel, ...]] = dataclasses.field(default_factory=dict)
    """First-level aggregates computed in the database (``pushdown``), by dataset."""
    eager: Mapping[str, pl.DataFrame] = dataclasses.field(default_factory=dict)
    """The eager frames ``frames`` were prepared from (results per frame: :data:`MEMO`)."""
    as_of: date | None = None
    """The day the data is judged on (an open order line is late once its window closed
    before it): the run's as-of date, else the newest record of the data
    (:func:`make_context`); None only for a context built without data."""

    @property
    def scopes(self) -> tuple[str, ...]:
        return ((WHOLE_SCOPE,) if self.include_all else ()) + self.sites

    def frame(self, name: str) -> pl.LazyFrame:
        return self.frames[name]

    def in_scope(self, lf: pl.LazyFrame) -> pl.LazyFrame:
        """Rows of the reported sites only (no filter for the whole scope)."""
        if self.include_all:
            return lf
        return lf.filter(pl.col("site").is_in(list(self.sites)))

    def grid(self, *, per_site: bool = True) -> pl.LazyFrame:
        """Every (scope, key) the output needs, for left-joining aggregates onto."""
        scopes = list(self.scopes) if per_site else ([WHOLE_SCOPE] if self.include_all else [])
        n = len(self.buckets.periods)
        return pl.LazyFrame(
            {
                "scope": [s for s in scopes for _ in range(n)],
                "key": [k for _ in scopes for k in range(n)],
            },
            schema={"scope": pl.String(), "key": pl.Int32()},
        )


def resolve_scope(scope: str, sites: Sequence[str]) -> tuple[tuple[str, ...], bool]:
    """(sites to report, include whole scope) for ``scope``; unknown site -> KpiError."""
    if scope == WHOLE_SCOPE:
        return tuple(sites), True
    if scope in sites:
        return (scope,), False
    known = [WHOLE_SCOPE, *sites]
    raise KpiError(
        f"unknown scope {scope!r}{did_you_mean(scope, known)}; "
        f"known: {', '.join(known)} (sites are those found in the data)"
    )


def check_period(period: Period, newest: date | None) -> None:
    """A period starting after the newest record is a mistake, not a run of zeros."""
    if newest is not None and period.start > newest:
        latest = month(newest.year, newest.month).label
        raise KpiError(
            f"period {period.label} starts after the newest data ({newest.isoformat()}); "
            f"the latest month with data is {latest}"
        )


def make_context(
    data: Mapping[str, pl.DataFrame | pl.LazyFrame],
    periods: Sequence[Period],
    scope: str,
    config: KpiConfig | None,
    *,
    asked: Period,
    aggregates: Aggregates | None = None,
    as_of: date | None = None,
) -> tuple[Context, DataProfile]:
    """Prepare frames, check scope and the ``asked`` period, build the computation context.

    ``as_of``: the day the data is judged on; None takes the newest record date of the
    data (the export is at least that new), so a re-run on the same data gives the
    same figures.
    """
    frames = prepare(data)
    eager = {n: f for n, f in data.items() if isinstance(f, pl.DataFrame)}
    levels = as_levels(aggregates)
    prof = _with_aggregates(profile(frames, eager), levels, frames)
    buckets = Buckets(tuple(periods))
    check_period(asked, prof.newest)
    sites, include_all = resolve_scope(scope, prof.sites)
    ctx = Context(
        frames,
        buckets,
        sites,
        include_all,
        config or KpiConfig(),
        levels,
        eager,
        as_of=as_of or prof.newest,
    )
    return ctx, prof


def records_level(name: str, levels: Sequence[FirstLevel]) -> FirstLevel | None:
    """Of a dataset's first levels, the one counting its records by its period field
    (monthly, no breakdown): what says which months and sites it has, and how many rows."""
    pf = DATASETS[name].period_field if name in DATASETS else None
    return next(
        (
            a
            for a in levels
            if a.date_field == pf and a.by is None and not a.daily and a.open_until is None
        ),
        None,
    )


def _closed_levels(levels: Sequence[FirstLevel]) -> list[FirstLevel]:
    """Of a dataset's first levels, those dated by ``closed_date`` per month (what the
    profile of rows reads as months with activity and as the newest date too)."""
    return [
        a for a in levels if a.date_field == "closed_date" and not a.daily and a.open_until is None
    ]


def _with_aggregates(
    prof: DataProfile,
    aggregates: Mapping[str, tuple[FirstLevel, ...]],
    frames: Mapping[str, pl.LazyFrame],
) -> DataProfile:
    """The profile of rows plus that of datasets known only by their first-level aggregates
    (months, first and newest dates from the level dated by the period field, else the
    first given: a table's own level)."""
    extra = {
        n: (records_level(n, levels) or levels[0], levels)
        for n, levels in aggregates.items()
        if n not in frames and levels
    }
    if not extra:
        return prof
    sites = set(prof.sites)
    first = dict(prof.first)
    months = dict(prof.months)
    newest = prof.newest
    for name, (agg, levels) in extra.items():
        for level in levels:
            sites.update(level.sites)
        closed = _closed_levels(levels)
        months[name] = agg.months.union(*(c.months for c in closed))
        if agg.first is not None:
            first[name] = agg.first
        for last in (agg.last, *(c.last for c in closed)):
            if last is not None and (newest is None or last > newest):
                newest = last
    return DataProfile(tuple(sorted(sites)), first, newest, months)


# --------------------------------------------------------------------------- roll-ups


def _names(aggs: Iterable[pl.Expr]) -> list[str]:
    return [a.meta.output_name() for a in aggs]


def rollup(ctx: Context, lf: pl.LazyFrame, aggs: Sequence[pl.Expr]) -> pl.LazyFrame:
    """Additive aggregates per (scope, key), zero-filled over the output grid.

    ``lf`` carries ``key`` and ``site``; ``aggs`` must be sums or counts. Site
    rows come from a group-by on (key, site); the whole scope sums every row
    (via the per-site sums, which is the same sum). Columns are Float64.
    """
    names = _names(aggs)
    by_site = ctx.in_scope(lf).group_by("key", "site").agg(aggs).cache()
    parts = [by_site.rename({"site": "scope"})]
    if ctx.include_all:
        parts.append(
            by_site.group_by("key")
            .agg(pl.col(names).sum())
            .with_columns(scope=pl.lit(WHOLE_SCOPE, dtype=pl.String()))
        )
    return _fill(ctx.grid(), _concat(parts, names), names)


def measured(
    ctx: Context, dataset: str, date_col: str, measures: Sequence[Measure]
) -> pl.LazyFrame:
    """:func:`rollup` of ``measures`` over the rows of ``dataset`` in each bucket by ``date_col``.

    From the first-level aggregates when the database computed them
    (``ctx.aggregates``, same measures), else from the rows: the same sums.
    """
    agg = held(ctx, dataset, Level(date_col, tuple(measures)))
    if agg is not None:
        lf = ctx.buckets.assign(agg.frame.lazy(), MONTH)
        return rollup(ctx, lf, [pl.col(m.name).sum() for m in measures])
    rows = ctx.frame(dataset)
    _, lots, per_lot = split(measures)
    if lots is not None:  # all of them count lots (one grouping per call)
        if len(per_lot) != len(measures) or lots.date != date_col:
            raise KpiError("lot measures are bucketed by their lots' first day, alone")
        # Lots are counted in the month of their first day, so their first level (per
        # calendar month and site) holds every period's sums; computed once per frame.
        src = ctx.eager.get(dataset)
        key = ("first_level", date_col, tuple(measures))
        level = (
            MEMO.get(src, key, lambda: first_level(rows, dataset, date_col, measures))
            if src is not None
            else first_level(rows, dataset, date_col, measures)
        )
        assert isinstance(level, FirstLevel)
        lf = ctx.buckets.assign(level.frame.lazy(), MONTH)
        return rollup(ctx, lf, [pl.col(m.name).sum() for m in measures])
    lf = ctx.buckets.assign(with_flags(rows, measures), date_col)
    return rollup(ctx, lf, [polars_agg(m) for m in measures])


def held(ctx: Context, dataset: str, level: Level) -> FirstLevel | None:
    """The first level of ``dataset`` in ``ctx.aggregates`` that holds ``level``, if any."""
    return next((a for a in ctx.aggregates.get(dataset, ()) if a.holds(level)), None)


def level_rows(ctx: Context, dataset: str, level: Level) -> pl.LazyFrame:
    """The rows of ``level``'s first level in the buckets, with their bucket ``key``.

    From the aggregates the database computed when they hold ``level``, else computed
    from the rows (once per eager frame, :data:`MEMO`): the same frame. A daily level is
    bucketed by its day, a monthly one by its month. An open-at-ends level
    (``open_until``) gives, for each bucket, the rows counted at the bucket's end; from
    aggregates that do not hold every bucket end it raises :class:`KpiError`.
    """
    agg = held(ctx, dataset, level)
    b = ctx.buckets
    if agg is None:
        if level.open_until is not None:
            level = dataclasses.replace(level, ends=tuple(b.ends))
        rows = ctx.frame(dataset)
        lvl = level

        def compute() -> FirstLevel:
            return level_of(rows, dataset, lvl)

        src = ctx.eager.get(dataset)
        got = MEMO.get(src, ("level", level), compute) if src is not None else compute()
        assert isinstance(got, FirstLevel)
        agg = got
    if level.open_until is None:
        return b.assign(agg.frame.lazy(), DAY if level.daily else MONTH)
    missing = sorted(set(b.ends) - set(agg.ends))
    if missing:
        held_ends = f"{agg.ends[0]} to {agg.ends[-1]}" if agg.ends else "no period end"
        raise KpiError(
            f"the first-level aggregates of {dataset!r} count open items at {held_ends}, "
            f"not at {', '.join(d.isoformat() for d in missing)}: push them down for this "
            "period (kpis.pushdown_levels(..., period=...))"
        )
    at = pl.LazyFrame(
        {"key": range(len(b.ends)), MONTH: [date(e.year, e.month, 1) for e in b.ends]},
        schema={"key": pl.Int32(), MONTH: pl.Date()},
    )
    return agg.frame.lazy().join(at, on=MONTH, how="inner")


def pooled_counts(
    ctx: Context, lf: pl.LazyFrame, value: str, n: str, quantiles: Mapping[str, float]
) -> pl.LazyFrame:
    """Quantiles per (scope, key) of ``value`` counted ``n`` times in each row of ``lf``
    (a histogram: ``key``, ``site``, ``value``, ``n``), as :func:`pooled`: the whole scope's
    from every site's counts at once, never from site results; missing groups stay null.
    Exactly the quantiles of the rows counted (:func:`~qmskpi.kpis.firstlevel.quantile_of_counts`).
    """
    scoped = ctx.in_scope(lf)
    parts = [scoped.group_by("key", "site", value).agg(pl.col(n).sum()).rename({"site": "scope"})]
    if ctx.include_all:
        parts.append(
            scoped.group_by("key", value)
            .agg(pl.col(n).sum())
            .with_columns(scope=pl.lit(WHOLE_SCOPE, pl.String()))
        )
    cols = [pl.col("scope").cast(pl.String()), pl.col("key").cast(pl.Int32()), value, n]
    stats = (
        pl.concat([p.select(cols) for p in parts], how="vertical_relaxed")
        .sort("scope", "key", value)
        .group_by("scope", "key", maintain_order=True)
        .agg(
            quantile_of_counts(pl.col(value), pl.col(n), q).alias(name)
            for name, q in quantiles.items()
        )
    )
    return ctx.grid().join(stats, on=["scope", "key"], how="left")


def rollup_whole(ctx: Context, lf: pl.LazyFrame, aggs: Sequence[pl.Expr]) -> pl.LazyFrame:
    """Additive aggregates per key for a site-less dataset: scope "all" only."""
    names = _names(aggs)
    agg = lf.group_by("key").agg(aggs).with_columns(scope=pl.lit(WHOLE_SCOPE, dtype=pl.String()))
    return _fill(ctx.grid(per_site=False), agg, names)


def pooled(ctx: Context, lf: pl.LazyFrame, aggs: Sequence[pl.Expr]) -> pl.LazyFrame:
    """Non-additive aggregates (median, quantiles) per (scope, key) from pooled rows.

    The whole-scope row is aggregated from all rows at once, never from site
    results. Missing groups stay null.
    """
    names = _names(aggs)
    scoped = ctx.in_scope(lf)
    parts = [scoped.group_by("key", "site").agg(aggs).rename({"site": "scope"})]
    if ctx.include_all:
        parts.append(
            scoped.group_by("key").agg(aggs).with_columns(scope=pl.lit(WHOLE_SCOPE, pl.String()))
        )
    return ctx.grid().join(_concat(parts, names), on=["scope", "key"], how="left")


def _concat(parts: list[pl.LazyFrame], names: list[str]) -> pl.LazyFrame:
    cols = [pl.col("scope").cast(pl.String()), pl.col("key").cast(pl.Int32()), *names]
    return pl.concat([p.select(cols) for p in parts], how="vertical_relaxed")


def _fill(grid: pl.LazyFrame, agg: pl.LazyFrame, names: list[str]) -> pl.LazyFrame:
    return grid.join(
        agg.select("scope", pl.col("key").cast(pl.Int32()), *names), on=["scope", "key"], how="left"
    ).with_columns(pl.col(names).cast(pl.Float64()).fill_null(0.0))


# --------------------------------------------------------------------------- KPI rows


def _rows(
    kpi: str,
    value: pl.Expr,
    numerator: pl.Expr,
    denominator: pl.Expr,
    note: pl.Expr,
) -> list[pl.Expr]:
    return [
        pl.lit(kpi, dtype=pl.String()).alias("kpi"),
        pl.col("scope").cast(pl.String()),
        pl.col("key").cast(pl.Int32()),
        value.cast(pl.Float64()).alias("value"),
        numerator.cast(pl.Float64()).alias("numerator"),
        denominator.cast(pl.Float64()).alias("denominator"),
        note.cast(pl.String()).alias("note"),
    ]


_NULL = pl.lit(None, dtype=pl.Float64())
_NO_NOTE = pl.lit(None, dtype=pl.String())


def value_rows(
    kpi: str,
    frame: pl.LazyFrame,
    value: pl.Expr,
    *,
    numerator: pl.Expr = _NULL,
    denominator: pl.Expr = _NULL,
    note: pl.Expr = _NO_NOTE,
) -> pl.LazyFrame:
    """KPI rows from arbitrary expressions over ``frame`` (which has ``scope`` and ``key``)."""
    return frame.select(_rows(kpi, value, numerator, denominator, note))


def count_rows(kpi: str, frame: pl.LazyFrame, col: str) -> pl.LazyFrame:
    """A count KPI: value = numerator = the count; no denominator."""
    return frame.select(_rows(kpi, pl.col(col), pl.col(col), _NULL, _NO_NOTE))


def ratio_rows(
    kpi: str,
    frame: pl.LazyFrame,
    num: str,
    den: str,
    *,
    empty_note: str,
    scale: float = 1.0,
) -> pl.LazyFrame:
    """value = num / den x scale, null with ``empty_note`` where den is 0 (never inf/NaN)."""
    ok = pl.col(den) > 0
    value = pl.when(ok).then(pl.col(num) / pl.col(den) * scale)
    note = pl.when(ok).then(_NO_NOTE).otherwise(pl.lit(empty_note))
    return frame.select(_rows(kpi, value, pl.col(num), pl.col(den), note))


def stat_rows(
    kpi: str, frame: pl.LazyFrame, value: str, n: str, *, empty_note: str
) -> pl.LazyFrame:
    """A statistic over n items: value, numerator null, denominator = n."""
    ok = pl.col(n).fill_null(0) > 0
    note = pl.when(ok).then(_NO_NOTE).otherwise(pl.lit(empty_note))
    return frame.select(
        _rows(kpi, pl.when(ok).then(pl.col(value)), _NULL, pl.col(n).fill_null(0), note)
    )


def days_between(start: str, end: str) -> pl.Expr:
    """Whole calendar days from ``start`` to ``end``."""
    return (pl.col(end) - pl.col(start)).dt.total_days()


Pushdown = Mapping[str, tuple[Level, ...]]
"""By dataset, the first levels a group reads (:func:`measured`, :func:`level_rows`)."""


def _no_pushdown(config: KpiConfig) -> Pushdown:
    return {}


@dataclass(frozen=True)
class Group:
    """KPIs computed together, by one function, from the same input datasets."""

    kpis: tuple[KpiDef, ...]
    compute: Callable[[Context], pl.LazyFrame]
    pushdown: Callable[[KpiConfig], Pushdown] = _no_pushdown
    """By dataset, the first levels this group reads (:func:`measured`, :func:`level_rows`)
    under a configuration (a day count of the config can be part of a measure): with
    first-level aggregates holding them, the group needs no rows of that dataset."""

    def reads_aggregates(self, ctx: Context, dataset: str) -> bool:
        """Whether ``ctx`` has first-level aggregates of ``dataset`` holding this group's."""
        levels = self.pushdown(ctx.config).get(dataset)
        return bool(levels) and all(held(ctx, dataset, lvl) is not None for lvl in levels or ())

    def runs_on(self, ctx: Context) -> bool:
        """Whether every input is there, as rows or as aggregates covering the group."""
        return all(d in ctx.frames or self.reads_aggregates(ctx, d) for d in self.datasets)

    @property
    def datasets(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for k in self.kpis:
            seen.update(dict.fromkeys(k.datasets))
        return tuple(seen)


PushdownSpec = Mapping[str, Level | Sequence[Level]]
"""What :func:`group` takes: by dataset, one first level or several."""


def group(
    *kpis: KpiDef,
    pushdown: PushdownSpec | Callable[[KpiConfig], PushdownSpec] | None = None,
) -> Callable[[Callable[[Context], pl.LazyFrame]], Group]:
    """Register a computing function for ``kpis``; their definitions join its docstring.

    The definition text lives once, in the :class:`KpiDef`; the decorator appends
    it to the function's docstring so ``help()`` and the docs show the same words.
    ``pushdown``: the first levels the function reads, by dataset, or a function of
    the KPI configuration giving them.
    """

    def levels(config: KpiConfig) -> Pushdown:
        spec = pushdown(config) if callable(pushdown) else pushdown or {}
        return {d: (v,) if isinstance(v, Level) else tuple(v) for d, v in spec.items()}

    def wrap(fn: Callable[[Context], pl.LazyFrame]) -> Group:
        lines = [(fn.__doc__ or "").rstrip(), "", "Definitions:", ""]
        for k in kpis:
            lines.append(f"- ``{k.id}`` (ISO 9001 {k.iso_clause}): {k.definition}")
        fn.__doc__ = "\n".join(lines)
        return Group(tuple(kpis), fn, levels)

    return wrap


def table_context(
    data: Mapping[str, pl.DataFrame],
    period: Period | str,
    scope: str,
    config: KpiConfig | None,
    aggregate: FirstLevel | Sequence[FirstLevel] | None,
    dataset: str,
    level: Level,
) -> Context:
    """The context of a table of one period reading ``dataset``: from ``aggregate`` when
    ``data`` has no rows of it (it must hold ``level``, else :class:`KpiError`)."""
    p = parse_period(period)
    pushed = {dataset: aggregate} if aggregate is not None and dataset not in data else None
    ctx, _ = make_context(data, [p], scope, config, asked=p, aggregates=pushed)
    if pushed is not None and held(ctx, dataset, level) is None:
        raise KpiError(
            f"the aggregate given is not this table's first level of {dataset} "
            f"(dated by {level.date_field}, by {', '.join(by_names(level.by)) or 'month and site'})"
        )
    return ctx
