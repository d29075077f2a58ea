"""The first aggregation level in the database: :class:`~qmskpi.kpis.firstlevel.Measure` as SQL.

Built with SQLAlchemy Core (no SQL text is formatted from values: conditions
are bound parameters, column names come from the canonical schema), over the
source's own query as a subquery; record measures in one statement::

    SELECT EXTRACT(year FROM d), EXTRACT(month FROM d), site,
           SUM(CASE WHEN stage = :p1 AND result = :p2 THEN 1 ELSE 0 END) AS passes_final,
           COALESCE(SUM(CASE WHEN stage = :p1 THEN qty_inspected END), 0) AS qi_final,
           ..., MIN(d), MAX(d)
    FROM (<source query>) AS src WHERE d IS NOT NULL
    GROUP BY EXTRACT(year FROM d), EXTRACT(month FROM d), site

and lot measures (:class:`~qmskpi.kpis.firstlevel.Lots`) in a second one
(:func:`lot_statement`: a window for each lot's first day). Rows validation
quarantined are left out by key (:class:`Exclude`). Only months x sites rows
leave the database. The dialect renders ``EXTRACT``, ``CASE`` and the window
(tested on PostgreSQL, DuckDB and SQLite; docs/pushdown.md for the others).
A :class:`~qmskpi.kpis.firstlevel.Within` condition is a difference of two
dates in days (:class:`days_between`: ``a - b`` where the dialect subtracts
dates to whole days, PostgreSQL and DuckDB; ``julianday(a) - julianday(b)`` on
SQLite, which keeps dates as ISO text), compared with bound day counts.
SQLAlchemy is this module's one heavy dependency.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import polars as pl
from sqlalchemy import (
    Date,
    Integer,
    String,
    and_,
    bindparam,
    case,
    column,
    create_engine,
    exists,
    extract,
    func,
    literal,
    or_,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.engine import URL, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from qmskpi.errors import KpiError
from qmskpi.kpis.firstlevel import (
    AT_END,
    DAY,
    MONTH,
    Breakdown,
    Days,
    Earlier,
    FirstLevel,
    Level,
    Measure,
    Values,
    Within,
    by_names,
    group_keys,
    split,
)
from qmskpi.sources import read_only_kwargs

SOURCE_BINDS: dict[str, Any] = {"period_start": Date(), "period_end": Date(), "site": String()}
"""Types of the binds a SQL source's query may name (as :mod:`qmskpi.sources` binds them)."""


class days_between(FunctionElement[int]):  # noqa: N801 (a SQL function, named as one)
    """Whole days from the second date to the first (``a - b``), compiled per dialect."""

    type = Integer()
    name = "days_between"
    inherit_cache = True


def _days_args(element: days_between, compiler: SQLCompiler, **kw: Any) -> tuple[str, str]:
    a, b = list(element.clauses)
    return compiler.process(a, **kw), compiler.process(b, **kw)


@compiles(days_between)
def _days_subtract(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    """PostgreSQL, DuckDB (and Oracle, Snowflake, ...): a date minus a date is days."""
    a, b = _days_args(element, compiler, **kw)
    return f"({a} - {b})"


@compiles(days_between, "sqlite")
def _days_sqlite(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    """SQLite keeps dates as ISO text: the difference of their Julian day numbers."""
    a, b = _days_args(element, compiler, **kw)
    return f"CAST(julianday({a}) - julianday({b}) AS INTEGER)"


@compiles(days_between, "mysql")
@compiles(days_between, "mariadb")
def _days_mysql(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = _days_args(element, compiler, **kw)
    return f"DATEDIFF({a}, {b})"


@compiles(days_between, "mssql")
def _days_mssql(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = _days_args(element, compiler, **kw)
    return f"DATEDIFF(day, {b}, {a})"


def _within(w: Within, src: Any) -> list[ColumnElement[bool]]:
    """:class:`~qmskpi.kpis.firstlevel.Within` as SQL (the day counts are bound parameters;
    a null date makes the difference null: not met)."""
    diff = days_between(src.c[w.column], src.c[w.ref])
    parts = [diff >= literal(w.lo)] if w.lo is not None else []
    parts += [diff <= literal(w.hi)] if w.hi is not None else []
    return parts or [diff.is_not(None)]


def _condition(m: Measure, src: Any) -> ColumnElement[bool] | None:
    parts: list[ColumnElement[bool]] = [src.c[c] == literal(v) for c, v in m.equals]
    if m.present is not None:
        parts.append(src.c[m.present].is_not(None))
    if m.absent is not None:
        parts.append(src.c[m.absent].is_(None))
    if m.other is not None:
        col, values = m.other
        parts.append(or_(src.c[col].is_(None), src.c[col].not_in(list(values))))
    if m.flag is not None:
        parts.append(src.c[m.flag.name] == 1)
    for w in m.within:
        parts += _within(w, src)
    if not parts:
        return None
    return and_(*parts)


def sql_agg(m: Measure, src: Any) -> ColumnElement[Any]:
    """The measure as a SQL aggregate over the subquery ``src`` (labelled with its name)."""
    cond = _condition(m, src)
    if m.column is None:
        expr: ColumnElement[Any] = (
            func.count() if cond is None else func.sum(case((cond, 1), else_=0))
        )
    else:
        col = src.c[m.column]
        expr = func.sum(col if cond is None else case((cond, col)))
    return func.coalesce(expr, 0).label(m.name)


def _source(
    query: str,
    names: Sequence[str],
    bind_types: Mapping[str, Any] | None,
    exclude: Exclude | None,
) -> Any:
    """The source query as a subquery with ``names`` (and the key), minus excluded rows."""
    wanted = list(dict.fromkeys(([exclude.key] if exclude is not None else []) + list(names)))
    inner = text(query)
    if bind_types:
        inner = inner.bindparams(*(bindparam(k, type_=t) for k, t in bind_types.items()))
    src = inner.columns(*(column(n) for n in wanted)).subquery("src")
    if exclude is None:
        return src
    return select(src).where(exclude.condition(src.c[exclude.key])).subquery("kept")


def _columns(measures: Sequence[Measure]) -> list[str]:
    return [
        c
        for c in (
            [m.column for m in measures if m.column]
            + [c for m in measures for c, _ in m.equals if c != "first_pass"]
            + [m.present for m in measures if m.present]
            + [m.absent for m in measures if m.absent]
            + [m.other[0] for m in measures if m.other]
            + [c for m in measures if m.flag for c in (*m.flag.keys, m.flag.date, m.flag.earlier)]
            + [c for m in measures for w in m.within for c in (w.column, w.ref)]
        )
        if c != AT_END
    ]


def _flagged(src: Any, measures: Sequence[Measure]) -> Any:
    """``src`` with a 0/1 column per :class:`~qmskpi.kpis.firstlevel.Earlier` flag the
    measures count: ``EXISTS`` another row of ``src`` with the same keys (a null key
    equals nothing) whose ``earlier`` date is 1 to ``window`` days before the row's date."""
    flags = list(dict.fromkeys(m.flag for m in measures if m.flag is not None))
    if not flags:
        return src

    def flag(f: Earlier) -> ColumnElement[int]:
        other = src.alias(f"_{f.name}")
        gap = days_between(src.c[f.date], other.c[f.earlier])
        found = exists(
            select(literal(1))
            .select_from(other)
            .where(*(other.c[k] == src.c[k] for k in f.keys), gap >= literal(1))
            .where(gap <= literal(f.window))
        )
        return case((found, 1), else_=0).label(f.name)

    return select(src, *(flag(f) for f in flags)).subquery("flagged")


def _open_at(src: Any, start: str, until: str, ends: Sequence[date]) -> Any:
    """The rows of ``src`` open at each end (bound values, one SELECT each, UNION ALL),
    with the end as ``at_end``: ``start <= end`` and (``until`` null or after it)."""
    if not ends:
        raise KpiError("an open-at-ends level needs at least one end")
    at = union_all(*(select(literal(e, Date()).label(AT_END)) for e in sorted(set(ends)))).subquery(
        "ends"
    )
    end = at.c[AT_END]
    return (
        select(src, end)
        .select_from(src.join(at, true()))
        .where(src.c[start].is_not(None), src.c[start] <= end)
        .where(or_(src.c[until].is_(None), src.c[until] > end))
        .subquery("open")
    )


def _by_exprs(rows: Any, by: Breakdown) -> list[Any]:
    """A breakdown's group expressions: the column, a day difference, or the columns."""
    if isinstance(by, Days):
        per = [rows.c[by.per]] if by.per else []
        return [*per, days_between(rows.c[by.column], rows.c[by.ref])]
    if isinstance(by, Values):
        return [rows.c[c] for c in by.columns]
    return [rows.c[by]]


def _per_month(
    rows: Any,
    date_field: str,
    aggs: Sequence[Any],
    by: Breakdown | None = None,
    *,
    daily: bool = False,
    blanks: bool = False,
) -> Any:
    d = rows.c[date_field]
    year = extract("year", d).cast(Integer)
    mon = extract("month", d).cast(Integer)
    days = (d,) if daily else ()
    split_by = _by_exprs(rows, by) if by is not None else []
    groups = [year, mon, *days, rows.c.site, *split_by]
    keep = d.is_not(None)
    if isinstance(by, Days):
        keep = and_(keep, split_by[-1].is_not(None))
    elif isinstance(by, str) and not blanks:  # firstlevel.nonblank
        keep = and_(keep, func.length(func.trim(rows.c[by])) > 0)
    return (
        select(
            year.label("_year"),
            mon.label("_month"),
            *(x.label("_day") for x in days),
            rows.c.site.label("site"),
            *(x.label(name) for x, name in zip(split_by, by_names(by), strict=True)),
            *aggs,
        )
        .where(keep)
        .group_by(*groups)
    )


def statement(
    query: str,
    date_field: str,
    measures: Sequence[Measure],
    *,
    bind_types: Mapping[str, Any] | None = None,
    exclude: Exclude | None = None,
    by: Breakdown | None = None,
    daily: bool = False,
    blanks: bool = False,
    open_until: str | None = None,
    ends: Sequence[date] = (),
) -> Any:
    """The SELECT of :mod:`this module's <qmskpi.kpis.sql>` docstring over ``query``
    (record measures only; :func:`lot_statement` for lot measures), ``by`` a column too
    (blank values left out unless ``blanks``), per day too when ``daily``; the rows
    open at each of ``ends`` (grouped by the end) when ``open_until``."""
    recs, _, _ = split(measures)
    by_cols = (
        [by]
        if isinstance(by, str)
        else [by.column, by.ref, *([by.per] if by.per else [])]
        if isinstance(by, Days)
        else list(by.columns)
        if by is not None
        else []
    )
    names = [date_field, "site", *by_cols, *([open_until] if open_until else []), *_columns(recs)]
    src = _flagged(_source(query, names, bind_types, exclude), recs)
    if open_until is not None:
        src = _open_at(src, date_field, open_until, ends)
        date_field = AT_END
    d = src.c[date_field]
    aggs = [sql_agg(m, src) for m in recs]
    return _per_month(
        src,
        date_field,
        [*aggs, func.min(d).label("first"), func.max(d).label("last")],
        by,
        daily=daily,
        blanks=blanks,
    )


def lot_statement(
    query: str,
    measures: Sequence[Measure],
    *,
    bind_types: Mapping[str, Any] | None = None,
    exclude: Exclude | None = None,
) -> Any:
    """Lot measures per (month of the lot's first day, site), as ``firstlevel.lot_rows``:

    each record's lot's first day by a window (``MIN(date) OVER (PARTITION BY key,
    record-if-no-lot)``, nulls one partition as in polars), the records of that
    day grouped per lot, ``first_pass`` = no record of that day with another
    result (nulls ignored, as polars' ``all``).
    """
    _, lots, per_lot = split(measures)
    assert lots is not None
    col, value = lots.passed
    names = [*lots.key, lots.record, lots.date, col, *_columns(per_lot)]
    src = _source(query, names, bind_types, exclude)
    record = case((src.c[lots.key[-1]].is_(None), src.c[lots.record])).label("_record")
    group = [*(src.c[k] for k in lots.key), record]
    recs = select(
        *(src.c[k] for k in dict.fromkeys([*lots.key, col, *_columns(per_lot)])),
        record,
        src.c[lots.date],
        func.min(src.c[lots.date]).over(partition_by=group).label("_first"),
    ).subquery("recs")
    passed = case((recs.c[col] == literal(value), 1), (recs.c[col].is_(None), None), else_=0)
    first_day = (
        select(
            *(recs.c[k] for k in lots.key),
            func.min(recs.c[lots.date]).label(lots.date),
            (func.coalesce(func.min(passed), 1) == 1).label("first_pass"),
        )
        .where(recs.c[lots.date] == recs.c["_first"])
        .group_by(*(recs.c[k] for k in lots.key), recs.c["_record"])
        .subquery("lots")
    )
    return _per_month(first_day, lots.date, [sql_agg(m, first_day) for m in per_lot])


@dataclass(frozen=True)
class Exclude:
    """Rows left out of the aggregates: those whose ``key`` is in ``values`` (quarantined),
    and the rows without a key when ``null`` (the key's ``required`` rule quarantined them)."""

    key: str
    values: tuple[str, ...]
    null: bool = False

    def condition(self, col: Any) -> ColumnElement[bool]:
        """True for the rows kept (never formats a value into the SQL: an expanding bind)."""
        if not self.values:
            return col.is_not(None) if self.null else true()
        inside = col.in_(bindparam("_excluded", list(self.values), expanding=True))
        if self.null:
            return and_(col.is_not(None), ~inside)
        return or_(col.is_(None), ~inside)


def first_level_sql(
    db: str | URL | Engine,
    query: str,
    dataset: str,
    date_field: str,
    measures: Sequence[Measure],
    *,
    params: Mapping[str, Any] | None = None,
    bind_types: Mapping[str, Any] | None = None,
    exclude: Exclude | None = None,
    by: Breakdown | None = None,
    daily: bool = False,
    blanks: bool = False,
    open_until: str | None = None,
    ends: Sequence[date] = (),
) -> FirstLevel:
    """Run the first level of ``measures`` in the database behind ``db`` over ``query``.

    ``query`` must return the canonical columns it is asked for (``date_field``
    as a date, ``site``, the measured columns) under their canonical names;
    ``params`` are bound, never formatted in. ``exclude``: the rows validation
    quarantined (by key), left out so that the aggregates are those of the rows used.
    ``by``, ``daily``, ``blanks``: a breakdown by that column, per day (record
    measures only; as :func:`~qmskpi.kpis.firstlevel.first_level`). ``date_field``
    must hold dates (not timestamps) for ``daily``. ``open_until``, ``ends``: the rows
    open at each end instead (:class:`~qmskpi.kpis.firstlevel.Level`; the ends are bound
    values).
    """
    if bind_types is None:  # the source's binds; any other (a backfill's as-of day) by value
        bind_types = {
            k: SOURCE_BINDS.get(k, Date() if isinstance(v, date) else String())
            for k, v in (params or {}).items()
        }
    recs, lots, per_lot = split(measures)
    if (by is not None or daily or open_until) and lots is not None:
        raise KpiError("a breakdown, daily or open-at-ends level takes record measures only")
    stmt = statement(
        query,
        date_field,
        recs,
        bind_types=bind_types,
        exclude=exclude,
        by=by,
        daily=daily,
        blanks=blanks,
        open_until=open_until,
        ends=ends,
    )
    engine = db if isinstance(db, Engine) else create_engine(db, **read_only_kwargs(db))
    try:
        with engine.connect() as conn:
            rows = conn.execute(stmt, dict(params or {})).fetchall()
            lot_rows: Sequence[Any] = []
            if lots is not None:
                if lots.date != date_field:
                    raise KpiError("lot measures must be dated by the same field")
                lstmt = lot_statement(query, per_lot, bind_types=bind_types, exclude=exclude)
                lot_rows = conn.execute(lstmt, dict(params or {})).fetchall()
            conn.rollback()
    finally:
        if not isinstance(db, Engine):
            engine.dispose()
    held = tuple(sorted(set(ends))) if open_until is not None else ()
    level = Level(date_field, (*recs, *per_lot), by, daily, blanks, open_until, held)
    return _frame(rows, lot_rows, dataset, level)


def level_sql(
    db: str | URL | Engine,
    query: str,
    dataset: str,
    level: Level,
    *,
    params: Mapping[str, Any] | None = None,
    exclude: Exclude | None = None,
) -> FirstLevel:
    """:func:`first_level_sql` of ``level`` (its date, measures, breakdown and grain)."""
    return first_level_sql(
        db,
        query,
        dataset,
        level.date_field,
        level.measures,
        params=params,
        exclude=exclude,
        by=level.by,
        daily=level.daily,
        blanks=level.blanks,
        open_until=level.open_until,
        ends=level.ends,
    )


def _as_date(v: Any) -> date | None:
    """A date from what the driver returns: date, datetime (PostgreSQL's MIN of a date
    stays a date; some dialects give timestamps) or ISO text (SQLite)."""
    if v is None:
        return None
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    return date.fromisoformat(str(v)[:10])


def _key_value(v: Any, dtype: pl.DataType) -> Any:
    """A group key from what the driver returns, as the frame's column ``dtype`` holds it
    (a Decimal or an integer score as a float, a date from ISO text)."""
    if v is None:
        return None
    if dtype == pl.Date():
        return _as_date(v)
    if dtype == pl.Int64():
        return int(v)
    return float(v) if dtype == pl.Float64() else str(v)


def _frame(rows: Sequence[Any], lot_rows: Sequence[Any], dataset: str, level: Level) -> FirstLevel:
    """Driver rows -> the FirstLevel frame; lot counts joined on (month, site), 0 where none.

    A row is year, month, [day,] site, [by,] the record measures, first, last."""
    recs = [m for m in level.measures if m.lots is None]
    per_lot = [m for m in level.measures if m.lots is not None]
    keys = list(group_keys(by_names(level.by), daily=level.daily))
    days = (level.by.name,) if isinstance(level.by, Days) else ()
    values = by_names(level.by) if isinstance(level.by, Values) else ()
    schema: dict[str, pl.DataType] = {
        k: pl.Date()
        if k in (MONTH, DAY)
        else pl.Int64()
        if k in days
        else pl.Float64()
        if k in values
        else pl.String()
        for k in keys
    }
    main: dict[str, list[Any]] = {**{k: [] for k in schema}, "first": [], "last": []}
    main.update({m.name: [] for m in recs})
    at = len(schema) + 1  # the first measure's position: year, month, [day,] site[, by] come first
    for r in rows:
        main[MONTH].append(date(int(r[0]), int(r[1]), 1))
        for i, k in enumerate(keys[1:], start=2):
            main[k].append(_key_value(r[i], schema[k]))
        for i, m in enumerate(recs):
            main[m.name].append(float(r[at + i]))
        main["first"].append(_as_date(r[at + len(recs)]))
        main["last"].append(_as_date(r[at + 1 + len(recs)]))
    frame = pl.DataFrame(
        main,
        schema={
            **schema,
            "first": pl.Date(),
            "last": pl.Date(),
            **{m.name: pl.Float64() for m in recs},
        },
    )
    if per_lot:
        lots: dict[str, list[Any]] = {MONTH: [], "site": [], **{m.name: [] for m in per_lot}}
        for r in lot_rows:
            lots[MONTH].append(date(int(r[0]), int(r[1]), 1))
            lots["site"].append(None if r[2] is None else str(r[2]))
            for i, m in enumerate(per_lot):
                lots[m.name].append(float(r[3 + i]))
        lot_frame = pl.DataFrame(lots, schema={**schema, **{m.name: pl.Float64() for m in per_lot}})
        frame = frame.join(lot_frame, on=[MONTH, "site"], how="left", nulls_equal=True)
    names = [m.name for m in (*recs, *per_lot)]
    frame = frame.with_columns(pl.col(names).fill_null(0.0)).select(*keys, *names, "first", "last")
    return FirstLevel(
        dataset,
        level.date_field,
        level.measures,
        frame.sort(keys, nulls_last=True),
        level.by,
        level.daily,
        level.blanks,
        level.open_until,
        level.ends,
    )
