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


def count(
    name: str,
    *equals: tuple[str, Value],
    present: str | None = None,
    lots: Lots | None = None,
    within: Within | None = None,
) -> Measure:
    """Rows (or lots) matching every ``(column, value)`` (and ``within``)."""
    return Measure(name, None, tuple(equals), present, lots, (within,) if within else ())


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
    grouped = (
        lf.filter(pl.col(last).is_not_null() & d.is_not_null())
        .filter(d == d.min().over(keys))
        .group_by(keys)
        .agg(d.first(), first_pass=passed.all())
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
    parts += [days_apart(w) for w in m.within]
    if not parts:
        return None
    cond = parts[0]
    for p in parts[1:]:
        cond = cond & p
    return cond


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
    it is blank are left out unless ``blanks``), one Float64 column per measure,
    and ``first``/``last`` (Date: the group's earliest and latest
    ``date_field``). Rows with a null ``date_field`` are not in it.
    """

    dataset: str
    date_field: str
    measures: tuple[Measure, ...]
    frame: pl.DataFrame
    by: str | None = None
    daily: bool = False
    blanks: bool = False

    @property
    def keys(self) -> tuple[str, ...]:
        """The group columns: ``month``, ``day`` when daily, ``site``, ``by`` when given."""
        return group_keys(self.by, daily=self.daily)

    @property
    def level(self) -> Level:
        """What this first level computes."""
        return Level(self.date_field, self.measures, self.by, self.daily, self.blanks)

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
    by: str | None = None
    daily: bool = False
    blanks: bool = False

    @property
    def shape(self) -> tuple[str, str | None, bool, bool]:
        """What tells two levels apart besides their measures."""
        return (self.date_field, self.by, self.daily, self.blanks)


Aggregates = Mapping[str, FirstLevel | Sequence[FirstLevel]]
"""First levels computed in the database, by dataset: one, or several (another date,
a breakdown, a daily grain)."""


def as_levels(aggregates: Aggregates | None) -> dict[str, tuple[FirstLevel, ...]]:
    """``aggregates`` with a tuple of first levels for every dataset."""
    return {
        name: (got,) if isinstance(got, FirstLevel) else tuple(got)
        for name, got in (aggregates or {}).items()
    }


def group_keys(by: str | None, *, daily: bool = False) -> tuple[str, ...]:
    """The group columns of a first level: ``month``, ``day`` when daily, ``site``, ``by``."""
    return (MONTH, *((DAY,) if daily else ()), "site", *((by,) if by else ()))


def first_level(
    lf: pl.LazyFrame,
    dataset: str,
    date_field: str,
    measures: Sequence[Measure],
    *,
    by: str | None = None,
    daily: bool = False,
    blanks: bool = False,
) -> FirstLevel:
    """The :class:`FirstLevel` of rows in polars (the reference the database must equal).

    Lot measures are counted in the (month, site) of each lot's first day; that
    group always has records too (the first day is a record's date). ``by``: a
    breakdown by that column too (record measures only), blank values left out
    unless ``blanks`` (then every value, null included, is a group). ``daily``:
    per day too (record measures only).
    """
    recs, lots, per_lot = split(measures)
    if (by is not None or daily) and lots is not None:
        raise KpiError("a breakdown or a daily level takes record measures only")
    d = pl.col(date_field)
    keep = d.is_not_null() if by is None or blanks else d.is_not_null() & nonblank(by)
    groups = [
        d.dt.truncate("1mo").alias(MONTH),
        *((d.alias(DAY),) if daily else ()),
        "site",
        *((by,) if by else ()),
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
    keys = list(group_keys(by, daily=daily))
    out = (
        frame.with_columns(pl.col(names).cast(pl.Float64()).fill_null(0.0))
        .select(*keys, *names, "first", "last")
        .sort(keys, nulls_last=True)
        .collect()
    )
    return FirstLevel(dataset, date_field, ordered, out, by, daily, blanks)


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
    )
