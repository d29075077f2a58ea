"""The first aggregation level of a KPI group, written once as data.

A :class:`Measure` is a count of rows or a sum of one column, over the rows
that match a few ``column == value`` conditions, optionally have a non-null
column, and optionally have two dates a number of days apart (:class:`Within`:
``received_date - promised_date`` from -7 to 0 days). That is all the first
level of the inspection and receipt KPIs needs: counts, passes and quantities
per stage, deliveries on time. A measure compiles to a polars
expression here (:func:`polars_agg`, what the engine runs on rows) and to SQL
in :mod:`qmskpi.kpis.sql` (what runs in the database with ``pushdown``): the
KPI is defined once, in the tuple of measures its group declares.

Both compile a measure the same way: a condition on a null value is not met
(polars: null in a boolean sum counts nothing; SQL: ``CASE WHEN NULL`` takes
the ``ELSE``), and a sum over no rows is 0.

Measures are additive, so they are computed once per (calendar month, site)
(:class:`FirstLevel`) and summed into any bucket (month, quarter, year, a run
of months) and into the whole scope without losing exactness. A breakdown
(``by`` a column, e.g. the defect Pareto's ``defect_code``) adds that column to
the groups and leaves out the rows where it is blank (:func:`nonblank`), or
keeps every value, blank and null included (``blanks``: receipts per
``supplier_id``). ``daily`` groups by the day too (receipts per supplier and
day, for the supplier's status on each receipt's day). A :class:`Level` names
one such first level (date, measures, breakdown, grain); a dataset may have
several (receipts by ``received_date`` and by ``promised_date``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl

from qmskpi.errors import KpiError

Value = str | bool
"""A condition's value: text, or a boolean (``first_pass`` of a lot)."""

AT_END = "at_end"
"""Column of an open-at-ends level's rows (:class:`Level` ``open_until``): the period end."""


@dataclass(frozen=True)
class Lots:
    """Records grouped into lots, each lot one row dated by its first record.

    A lot is ``key`` (e.g. site, stage, lot_id); a record whose last key column
    is null is a lot of its own (told apart by ``record``, its id). The lot's
    first day is the earliest ``date`` of its records; ``first_pass`` holds when
    every record of that day meets ``passed`` (a null result is ignored; no
    result at all counts as passed). Lot rows have the key columns, ``date``
    (the first day) and ``first_pass``.
    """

    key: tuple[str, ...]
    record: str
    date: str
    passed: tuple[str, str]


@dataclass(frozen=True)
class Within:
    """``column - ref`` in whole days from ``lo`` to ``hi`` (both included; None: no bound).

    Both columns are dates; a null in either is not met. ``received_date -
    promised_date <= 2`` is ``Within("received_date", "promised_date", None, 2)``.
    """

    column: str
    ref: str
    lo: int | None = None
    hi: int | None = None


@dataclass(frozen=True)
class Days:
    """A breakdown by whole days from ``ref`` to ``column`` (a histogram: one group per
    day count), in a column named ``name``; rows where either date is null are left out.
    ``per``: per value of that column too (every value, null included; before ``name``)."""

    column: str
    ref: str
    name: str = "days"
    per: str | None = None


@dataclass(frozen=True)
class Values:
    """A breakdown by the values of numeric ``columns``: a histogram with one group per
    distinct combination (a null is a value of its own), in Float64 columns of the same
    names. Survey responses per (scale_min, scale_max, score): every mean and share is then
    computed from the counts, exactly as from the rows (sums of scores in one order)."""

    columns: tuple[str, ...]


Breakdown = str | Days | Values
"""What a first level breaks down by: a column, a day difference (:class:`Days`), or the
values of numeric columns (:class:`Values`)."""


def by_names(by: Breakdown | None) -> tuple[str, ...]:
    """The columns a breakdown ``by`` takes in a first level's frame."""
    if by is None:
        return ()
    if isinstance(by, Values):
        return by.columns
    if isinstance(by, Days):
        return (*((by.per,) if by.per else ()), by.name)
    return (by,)


@dataclass(frozen=True)
class Earlier:
    """A row flag, named ``name``: another row with the same ``keys`` (none of them null)
    has its ``earlier`` date 1 to ``window`` days before this row's ``date``.

    A repeat complaint: another one *received* 1 to 90 days before this one was received
    (``Earlier("repeat", keys, "received_date", "received_date", 90)``; same-day
    complaints are 0 days apart, so not repeats of each other); a recurrence: another one
    *closed* 1 to 90 days before (``earlier="closed_date"``). Compiled to polars by
    :func:`with_flags` (an as-of join) and to SQL as ``EXISTS`` (:mod:`qmskpi.kpis.sql`).
    """

    name: str
    keys: tuple[str, ...]
    date: str
    earlier: str
    window: int


@dataclass(frozen=True)
class Measure:
    """``count`` of rows (``column`` None) or ``sum`` of ``column``, over matching rows."""

    name: str
    column: str | None = None
    equals: tuple[tuple[str, Value], ...] = ()
    """Conditions ``column == value``; all must hold (a null never matches)."""
    present: str | None = None
    """Only rows where this column is not null."""
    lots: Lots | None = None
    """Count lot rows (:class:`Lots`) instead of records."""
    within: tuple[Within, ...] = ()
    """Date differences that must hold too (:class:`Within`)."""
    absent: str | None = None
    """Only rows where this column is null."""
    other: tuple[str, tuple[str, ...]] | None = None
    """``(column, values)``: only rows where the column is null or none of the values."""
    flag: Earlier | None = None
    """Only rows with this flag (:class:`Earlier`)."""


def count(
    name: str,
    *equals: tuple[str, Value],
    present: str | None = None,
    lots: Lots | None = None,
    within: Within | None = None,
    absent: str | None = None,
    other: tuple[str, tuple[str, ...]] | None = None,
    flag: Earlier | None = None,
) -> Measure:
    """Rows (or lots) matching every ``(column, value)`` (and the other conditions)."""
    return Measure(
        name,
        None,
        tuple(equals),
        present,
        lots,
        (within,) if within else (),
        absent,
        other,
        flag,
    )


def total(name: str, column: str, *equals: tuple[str, str], present: str | None = None) -> Measure:
    """Sum of ``column`` over rows matching every ``(column, value)``."""
    return Measure(name, column, tuple(equals), present)


def lot_rows(lf: pl.LazyFrame, lots: Lots) -> pl.LazyFrame:
    """One row per lot: its key columns, first day (as ``lots.date``) and ``first_pass``.

    A record without a lot (last key column null) is its own lot and needs no
    grouping: only records with a lot go through the window and group-by (on
    real data most records may have no lot, and grouping them by their record
    id cost as much as all the rest).
    """
    last = lots.key[-1]
    keys = list(lots.key)
    d = pl.col(lots.date)
    col, value = lots.passed
    passed = pl.col(col) == value
    # The first day, and the first day a record failed (a null result fails nothing): the
    # lot passed first time unless they are the same day. One group-by with plain
    # aggregations (a window for the first day, then a group-by of its records, took 5x
    # as long at 10M inspections and held ~1 GB more).
    failed = pl.when(~passed).then(d).min().alias("_failed")
    grouped = (
        lf.filter(pl.col(last).is_not_null() & d.is_not_null())
        .group_by(keys)
        .agg(d.min(), failed)
        .select(*keys, d, first_pass=pl.col("_failed").is_null() | (pl.col("_failed") > d))
    )
    alone = lf.filter(pl.col(last).is_null() & d.is_not_null()).select(
        *keys,
        d,
        first_pass=passed.fill_null(True),  # a null result is ignored: passed
    )
    return pl.concat([grouped, alone], how="vertical_relaxed")


def split(
    measures: Sequence[Measure],
) -> tuple[tuple[Measure, ...], Lots | None, tuple[Measure, ...]]:
    """(record measures, the lot grouping, lot measures); one grouping per call."""
    recs = tuple(m for m in measures if m.lots is None)
    per_lot = tuple(m for m in measures if m.lots is not None)
    kinds = {m.lots for m in per_lot}
    if len(kinds) > 1:
        raise KpiError("measures over lots must share one lot grouping")
    return recs, (per_lot[0].lots if per_lot else None), per_lot


def days_apart(w: Within) -> pl.Expr:
    """:class:`Within` in polars: whole days from ``w.ref`` to ``w.column`` within the bounds."""
    diff = (pl.col(w.column) - pl.col(w.ref)).dt.total_days()
    parts = [diff >= w.lo] if w.lo is not None else []
    parts += [diff <= w.hi] if w.hi is not None else []
    return pl.all_horizontal(parts) if parts else diff.is_not_null()


def _condition(m: Measure) -> pl.Expr | None:
    parts = [pl.col(c) == pl.lit(v) for c, v in m.equals]
    if m.present is not None:
        parts.append(pl.col(m.present).is_not_null())
    if m.absent is not None:
        parts.append(pl.col(m.absent).is_null())
    if m.other is not None:
        col, values = m.other
        parts.append(pl.col(col).is_null() | ~pl.col(col).is_in(list(values)))
    if m.flag is not None:
        parts.append(pl.col(m.flag.name))
    parts += [days_apart(w) for w in m.within]
    if not parts:
        return None
    cond = parts[0]
    for p in parts[1:]:
        cond = cond & p
    return cond


def with_flags(lf: pl.LazyFrame, measures: Sequence[Measure]) -> pl.LazyFrame:
    """``lf`` with a boolean column for each :class:`Earlier` flag ``measures`` count.

    One as-of join per flag: per row with every key (and its date), the latest
    ``earlier`` date of a row with the same keys on or before the day before its
    ``date``; the flag holds when that date is at most ``window`` days before (an
    older one cannot be, and a later one is not "before"). A join on the keys alone
    would pair every row with every other of its keys (quadratic).
    """
    flags = list(dict.fromkeys(m.flag for m in measures if m.flag is not None))
    if not flags:
        return lf
    lf = lf.with_row_index("_row")
    for f in flags:
        keyed = pl.all_horizontal([pl.col(k).is_not_null() for k in f.keys])
        probe = (
            lf.filter(keyed & pl.col(f.date).is_not_null())
            .select("_row", *f.keys, _d=pl.col(f.date), _probe=pl.col(f.date) - pl.duration(days=1))
            .sort("_probe")
        )
        before = (
            lf.filter(keyed & pl.col(f.earlier).is_not_null())
            .select(*f.keys, _prev=pl.col(f.earlier))
            .sort("_prev")
        )
        hits = (
            probe.join_asof(
                before,
                left_on="_probe",
                right_on="_prev",
                by=list(f.keys),
                strategy="backward",
                check_sortedness=False,  # both sides sorted; polars cannot check within `by`
            )
            .filter((pl.col("_d") - pl.col("_prev")).dt.total_days() <= f.window)
            .select("_row", pl.lit(True).alias(f.name))
        )
        lf = lf.join(hits, on="_row", how="left", maintain_order="left").with_columns(
            pl.col(f.name).fill_null(False)
        )
    return lf.drop("_row")


def open_rows(lf: pl.LazyFrame, start: str, until: str, ends: Sequence[date]) -> pl.LazyFrame:
    """One row per (row, end of ``ends``) at which the row is open, the end as ``at_end``.

    Open at ``end``: ``start <= end`` and (``until`` is null or ``until > end``). Cost is
    the number of (row, end) pairs open, not rows x ends."""
    ends_s = pl.Series("ends", sorted(set(ends)), dtype=pl.Date())
    n = len(ends_s)
    if n == 0:
        raise KpiError("an open-at-ends level needs at least one end")
    lo = pl.lit(ends_s).search_sorted(pl.col(start), side="left").cast(pl.Int32)
    hi = (
        pl.when(pl.col(until).is_null())
        .then(pl.lit(n, dtype=pl.Int32))
        .otherwise(pl.lit(ends_s).search_sorted(pl.col(until), side="left").cast(pl.Int32))
    )
    return (
        lf.filter(pl.col(start).is_not_null() & (pl.col(start) <= ends_s[-1]))
        .with_columns(_lo=lo, _hi=hi)
        .filter(pl.col("_lo") < pl.col("_hi"))
        .with_columns(_at=pl.int_ranges("_lo", "_hi", dtype=pl.Int32))
        .explode("_at")
        .with_columns(pl.lit(ends_s).gather(pl.col("_at")).alias(AT_END))
        .drop("_lo", "_hi", "_at")
    )


def quantile_of_counts(value: pl.Expr, n: pl.Expr, q: float) -> pl.Expr:
    """The ``q`` quantile (linear interpolation, numpy's default and polars'
    ``quantile(q, "linear")``) of the values ``value`` repeated ``n`` times each, as an
    aggregation over rows sorted by ``value`` (inside ``group_by().agg``): exactly the
    quantile of the expanded values. Null when the counts add up to 0.

    Position ``q x (N - 1)`` in the sorted values (N the total count); the values at its
    floor and ceiling are the first whose running count exceeds those positions.
    """
    total = n.sum()
    pos = (total - 1).cast(pl.Float64()) * q
    lower, upper = pos.floor(), pos.ceil()
    running = n.cum_sum()
    low = value.filter(running > lower).first().cast(pl.Float64())
    high = value.filter(running > upper).first().cast(pl.Float64())
    return pl.when(total > 0).then((pos - lower) * (high - low) + low)


def polars_agg(m: Measure) -> pl.Expr:
    """The measure as a polars aggregation (inside ``group_by().agg``)."""
    cond = _condition(m)
    if m.column is None:
        out = pl.len() if cond is None else cond.fill_null(False).sum()
    else:
        col = pl.col(m.column)
        out = (col if cond is None else col.filter(cond.fill_null(False))).sum()
    return out.alias(m.name)


MONTH = "month"
"""Column of a :class:`FirstLevel` frame: the first day of the calendar month (Date)."""
DAY = "day"
"""Column of a daily :class:`FirstLevel` frame: the day itself (Date)."""


def nonblank(column: str) -> pl.Expr:
    """Rows whose ``column`` holds text other than whitespace (null is blank).

    SQL's ``LENGTH(TRIM(column)) > 0`` (:mod:`qmskpi.kpis.sql`) trims spaces
    only; a value made of tabs or line breaks alone would count there."""
    return pl.col(column).str.strip_chars().str.len_chars() > 0


@dataclass(frozen=True)
class FirstLevel:
    """A dataset's measures per (calendar month, site), computed where the data lives.

    ``frame`` has ``month`` (Date, first day), ``day`` (Date) when ``daily``,
    ``site`` (String), the ``by`` column when there is one (String; rows where
    it is blank are left out unless ``blanks``; Int64 for a :class:`Days` breakdown,
    Float64 columns for a :class:`Values` one),
    one Float64 column per measure, and ``first``/``last`` (Date: the group's earliest
    and latest ``date_field``). Rows with a null ``date_field`` are not in it.

    An open-at-ends level (``open_until``): ``month`` is that of each end in ``ends``,
    the rows counted those open at that end (:func:`open_rows`), ``first``/``last`` the
    end itself; only the ends in ``ends`` are held.
    """

    dataset: str
    date_field: str
    measures: tuple[Measure, ...]
    frame: pl.DataFrame
    by: Breakdown | None = None
    daily: bool = False
    blanks: bool = False
    open_until: str | None = None
    ends: tuple[date, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        """The group columns: ``month``, ``day`` when daily, ``site``, ``by`` when given."""
        return group_keys(by_names(self.by), daily=self.daily)

    @property
    def level(self) -> Level:
        """What this first level computes."""
        return Level(
            self.date_field,
            self.measures,
            self.by,
            self.daily,
            self.blanks,
            self.open_until,
            self.ends,
        )

    def holds(self, level: Level) -> bool:
        """Whether this is ``level``'s first level (same date, breakdown and grain; every
        measure of ``level`` here, with the same definition)."""
        return self.level.shape == level.shape and self.covers(level.measures)

    def __post_init__(self) -> None:
        want = {*self.keys, "first", "last", *(m.name for m in self.measures)}
        missing = sorted(want - set(self.frame.columns))
        if missing:
            raise KpiError(
                f"first-level aggregates of {self.dataset!r} lack column(s) {', '.join(missing)}"
            )

    def covers(self, measures: Sequence[Measure]) -> bool:
        """Whether every measure in ``measures`` is in this frame (same definition)."""
        have = set(self.measures)
        return all(m in have for m in measures)

    @property
    def sites(self) -> tuple[str, ...]:
        return tuple(sorted(s for s in self.frame["site"].unique().to_list() if s is not None))

    @property
    def first(self) -> date | None:
        value = self.frame["first"].min()
        return value if isinstance(value, date) else None

    @property
    def last(self) -> date | None:
        value = self.frame["last"].max()
        return value if isinstance(value, date) else None

    @property
    def months(self) -> frozenset[str]:
        return frozenset(self.frame[MONTH].dt.strftime("%Y-%m").unique().to_list())


@dataclass(frozen=True)
class Level:
    """One first level of a dataset: ``measures`` per (month[, day], site[, ``by``]),
    dated by ``date_field`` (:func:`first_level`'s arguments)."""

    date_field: str
    measures: tuple[Measure, ...]
    by: Breakdown | None = None
    daily: bool = False
    blanks: bool = False
    open_until: str | None = None
    """The rows open at each end of ``ends`` instead of those dated in each month:
    ``date_field <= end`` and (``open_until`` null or after the end); the measures see
    the end as column ``at_end`` (:data:`AT_END`), grouped by its month."""
    ends: tuple[date, ...] = ()
    """The period ends an open-at-ends level counts at: a run's parameter, not part of
    the definition (:attr:`shape` leaves it out); the KPI engine checks that the ends it
    needs are held."""

    @property
    def shape(self) -> tuple[object, ...]:
        """What tells two levels apart besides their measures (and ends)."""
        base = (self.date_field, self.by, self.daily, self.blanks)
        return base if self.open_until is None else (*base, self.open_until)


Aggregates = Mapping[str, FirstLevel | Sequence[FirstLevel]]
"""First levels computed in the database, by dataset: one, or several (another date,
a breakdown, a daily grain)."""


def as_levels(aggregates: Aggregates | None) -> dict[str, tuple[FirstLevel, ...]]:
    """``aggregates`` with a tuple of first levels for every dataset."""
    return {
        name: (got,) if isinstance(got, FirstLevel) else tuple(got)
        for name, got in (aggregates or {}).items()
    }


def group_keys(by: Sequence[str] = (), *, daily: bool = False) -> tuple[str, ...]:
    """The group columns of a first level: ``month``, ``day`` when daily, ``site``, ``by``'s."""
    return (MONTH, *((DAY,) if daily else ()), "site", *by)


def first_level(
    lf: pl.LazyFrame,
    dataset: str,
    date_field: str,
    measures: Sequence[Measure],
    *,
    by: Breakdown | None = None,
    daily: bool = False,
    blanks: bool = False,
    open_until: str | None = None,
    ends: Sequence[date] = (),
) -> FirstLevel:
    """The :class:`FirstLevel` of rows in polars (the reference the database must equal).

    Lot measures are counted in the (month, site) of each lot's first day; that
    group always has records too (the first day is a record's date). ``by``: a
    breakdown by that column too (record measures only), blank values left out
    unless ``blanks`` (then every value, null included, is a group). ``daily``:
    per day too (record measures only). ``open_until``: the rows open at each of
    ``ends`` instead (:class:`Level`).
    """
    recs, lots, per_lot = split(measures)
    if (by is not None or daily or open_until) and lots is not None:
        raise KpiError("a breakdown, daily or open-at-ends level takes record measures only")
    lf = with_flags(lf, recs)
    if open_until is not None:
        lf = open_rows(lf, date_field, open_until, ends)
    d = pl.col(AT_END if open_until is not None else date_field)
    keep = d.is_not_null()
    group_by: list[pl.Expr | str] = []
    if isinstance(by, Days):
        diff = (pl.col(by.column) - pl.col(by.ref)).dt.total_days()
        keep = keep & diff.is_not_null()
        group_by += [*((by.per,) if by.per else ()), diff.alias(by.name)]
    elif isinstance(by, Values):
        group_by += [pl.col(c).cast(pl.Float64()) for c in by.columns]
    elif by is not None:
        keep = keep if blanks else keep & nonblank(by)
        group_by.append(by)
    groups = [
        d.dt.truncate("1mo").alias(MONTH),
        *((d.alias(DAY),) if daily else ()),
        "site",
        *group_by,
    ]
    frame = (
        lf.filter(keep)
        .group_by(groups)
        .agg(
            *[polars_agg(m) for m in recs],
            d.min().alias("first"),
            d.max().alias("last"),
        )
    )
    if lots is not None:
        by_lot = (
            lot_rows(lf, lots)
            .filter(d.is_not_null())
            .group_by(d.dt.truncate("1mo").alias(MONTH), "site")
            .agg(polars_agg(m) for m in per_lot)
        )
        frame = frame.join(by_lot, on=[MONTH, "site"], how="left", nulls_equal=True)
    ordered = (*recs, *per_lot)
    names = [m.name for m in ordered]
    keys = list(group_keys(by_names(by), daily=daily))
    out = (
        frame.with_columns(pl.col(names).cast(pl.Float64()).fill_null(0.0))
        .select(*keys, *names, "first", "last")
        .sort(keys, nulls_last=True)
        .collect()
    )
    held = tuple(sorted(set(ends))) if open_until is not None else ()
    return FirstLevel(dataset, date_field, ordered, out, by, daily, blanks, open_until, held)


def level_of(lf: pl.LazyFrame, dataset: str, level: Level) -> FirstLevel:
    """:func:`first_level` of ``level`` (its date, measures, breakdown and grain)."""
    return first_level(
        lf,
        dataset,
        level.date_field,
        level.measures,
        by=level.by,
        daily=level.daily,
        blanks=level.blanks,
        open_until=level.open_until,
        ends=level.ends,
    )
