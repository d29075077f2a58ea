"""The first aggregation level in the database: :class:`~qmskpi.kpis.firstlevel.Measure` as SQL.

One statement per dataset, built with SQLAlchemy Core (no SQL text is
formatted from values: conditions are bound parameters, column names come
from the canonical schema), over the source's own query as a subquery::

    SELECT EXTRACT(year FROM d), EXTRACT(month FROM d), site,
           SUM(CASE WHEN stage = :p1 AND result = :p2 THEN 1 ELSE 0 END) AS passes_final,
           COALESCE(SUM(CASE WHEN stage = :p1 THEN qty_inspected END), 0) AS qi_final,
           ..., MIN(d), MAX(d)
    FROM (<source query>) AS src WHERE d IS NOT NULL
    GROUP BY EXTRACT(year FROM d), EXTRACT(month FROM d), site

Only this small frame (months x sites rows) leaves the database. The
dialect renders ``EXTRACT`` and ``CASE`` (tested on PostgreSQL and DuckDB;
see docs/pushdown.md for the others). SQLAlchemy is this module's one heavy
dependency.
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
    extract,
    func,
    literal,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.engine import URL, Engine
from sqlalchemy.sql.elements import ColumnElement

from qmskpi.kpis.firstlevel import MONTH, FirstLevel, Measure

SOURCE_BINDS: dict[str, Any] = {"period_start": Date(), "period_end": Date(), "site": String()}
"""Types of the binds a SQL source's query may name (as :mod:`qmskpi.sources` binds them)."""


def _condition(m: Measure, src: Any) -> ColumnElement[bool] | None:
    parts: list[ColumnElement[bool]] = [src.c[c] == literal(v) for c, v in m.equals]
    if m.present is not None:
        parts.append(src.c[m.present].is_not(None))
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


def statement(
    query: str,
    date_field: str,
    measures: Sequence[Measure],
    *,
    bind_types: Mapping[str, Any] | None = None,
    exclude: Exclude | None = None,
) -> Any:
    """The SELECT of :mod:`this module's <qmskpi.kpis.sql>` docstring over ``query``."""
    names = dict.fromkeys(
        ([exclude.key] if exclude is not None else [])
        + [date_field, "site"]
        + [m.column for m in measures if m.column]
        + [c for m in measures for c, _ in m.equals]
        + [m.present for m in measures if m.present]
    )
    inner = text(query)
    if bind_types:
        inner = inner.bindparams(*(bindparam(k, type_=t) for k, t in bind_types.items()))
    src = inner.columns(*(column(n) for n in names)).subquery("src")
    d = src.c[date_field]
    keep: list[ColumnElement[bool]] = [d.is_not(None)]
    if exclude is not None:
        keep.append(exclude.condition(src.c[exclude.key]))
    year = extract("year", d).cast(Integer).label("_year")
    mon = extract("month", d).cast(Integer).label("_month")
    return (
        select(
            year,
            mon,
            src.c.site.label("site"),
            *(sql_agg(m, src) for m in measures),
            func.min(d).label("first"),
            func.max(d).label("last"),
        )
        .where(and_(*keep))
        .group_by(extract("year", d).cast(Integer), extract("month", d).cast(Integer), src.c.site)
    )


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
) -> FirstLevel:
    """Run the first level of ``measures`` in the database behind ``db`` over ``query``.

    ``query`` must return the canonical columns it is asked for (``date_field``
    as a date, ``site``, the measured columns) under their canonical names;
    ``params`` are bound, never formatted in. ``exclude``: the rows validation
    quarantined (by key), left out so that the aggregates are those of the rows used.
    """
    if bind_types is None:
        bind_types = {k: SOURCE_BINDS[k] for k in params or {} if k in SOURCE_BINDS}
    stmt = statement(query, date_field, measures, bind_types=bind_types, exclude=exclude)
    engine = db if isinstance(db, Engine) else create_engine(db)
    try:
        with engine.connect() as conn:
            rows = conn.execute(stmt, dict(params or {})).fetchall()
            conn.rollback()
    finally:
        if not isinstance(db, Engine):
            engine.dispose()
    return _frame(rows, dataset, date_field, measures)


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


def _frame(
    rows: Sequence[Any], dataset: str, date_field: str, measures: Sequence[Measure]
) -> FirstLevel:
    data: dict[str, list[Any]] = {MONTH: [], "site": [], "first": [], "last": []}
    for m in measures:
        data[m.name] = []
    for r in rows:
        data[MONTH].append(date(int(r[0]), int(r[1]), 1))
        data["site"].append(None if r[2] is None else str(r[2]))
        for i, m in enumerate(measures):
            data[m.name].append(float(r[3 + i]))
        data["first"].append(_as_date(r[3 + len(measures)]))
        data["last"].append(_as_date(r[4 + len(measures)]))
    schema: dict[str, pl.DataType] = {
        MONTH: pl.Date(),
        "site": pl.String(),
        "first": pl.Date(),
        "last": pl.Date(),
    }
    schema.update({m.name: pl.Float64() for m in measures})
    frame = pl.DataFrame(data, schema=schema).select(
        MONTH, "site", *(m.name for m in measures), "first", "last"
    )
    return FirstLevel(dataset, date_field, tuple(measures), frame.sort(MONTH, "site"))
