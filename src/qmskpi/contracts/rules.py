"""Rules evaluated in polars: the rows each rule fails, and the freshness of a dataset.

Great Expectations counts the failing rows of each rule
(:mod:`qmskpi.contracts.gx`); these masks find *which* rows fail, so they must
mean exactly what the GX expectation means (pandas ``query`` semantics for
``when``, Python ``re.search`` for patterns). :mod:`qmskpi.contracts.judge`
checks that the two counts agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Literal

import polars as pl

from qmskpi.contracts.prepare import Prepared
from qmskpi.contracts.report import MAX_VALUE_CHARS
from qmskpi.contracts.schema import Condition, Contract, Rule, Run


def _when_expr(c: Condition) -> pl.Expr:
    col = pl.col(c.column)
    if c.op == "present":
        return col.is_not_null()
    if c.op == "missing":
        return col.is_null()
    # The semantics of pandas' DataFrame.query, which GX uses: a missing value is
    # unequal to everything and fails every ordering.
    if c.op == "=":
        return col.eq_missing(pl.lit(c.value))
    if c.op == "!=":
        return col.ne_missing(pl.lit(c.value))
    ops = {">": col > c.value, ">=": col >= c.value, "<": col < c.value, "<=": col <= c.value}
    return ops[c.op].fill_null(False)


def _regex_fails(col: pl.Expr, regex: str) -> pl.Expr:
    """Rows whose text does not match ``regex`` the way Python's ``re.search`` (GX) decides.

    Python's ``$`` also matches before a final newline; polars' does not, so a
    value ending in one newline is tried again without it.
    """
    hit = col.str.contains(regex)
    hit_nl = (
        pl.when(col.str.ends_with("\n"))
        .then(col.str.strip_suffix("\n").str.contains(regex))
        .otherwise(pl.lit(False))
    )
    return col.is_not_null() & ~(hit | hit_nl)


def month_first(column: str) -> pl.Expr:
    """First day of a ``YYYY-MM`` text month (null when it is not one)."""
    return (pl.col(column) + "-01").str.to_date("%Y-%m-%d", strict=False)


def month_helper(column: str, which: Literal["first", "last"]) -> str:
    """Name of the date column GX sees for a ``YYYY-MM`` month column."""
    return f"{column}__{which}_day"


def mask_expr(rule: Rule, contract: Contract, run: Run) -> pl.Expr | None:
    """The rows ``rule`` fails, or None when it has no row-level polars form."""
    cols = [pl.col(c) for c in rule.columns]
    col = cols[0]
    if rule.check == "range" and contract.field_type(rule.columns[0]) == "str":
        col = month_first(rule.columns[0])
    expr: pl.Expr
    if rule.check == "required":
        expr = col.is_null()
    elif rule.check == "empty":
        expr = col.is_not_null()
    elif rule.check == "unique":
        if len(cols) == 1:
            expr = col.is_duplicated() & col.is_not_null()
        else:
            expr = pl.struct(cols).is_duplicated() & ~pl.all_horizontal([c.is_null() for c in cols])
    elif rule.check == "allowed":
        values = list(run.sites) if rule.values_from == "sites" else list(rule.values or ())
        expr = col.is_not_null() & ~col.is_in(pl.Series(values).implode())
    elif rule.check == "range":
        out = pl.lit(False)
        if rule.min_value is not None:
            out = out | (col < pl.lit(run.bound(rule.min_value)))
        if rule.max_value is not None:
            out = out | (col > pl.lit(run.bound(rule.max_value)))
        expr = col.is_not_null() & out
    elif rule.check == "pattern":
        assert rule.regex is not None
        expr = _regex_fails(col, rule.regex)
    elif rule.check == "compare":
        a, b = cols
        ok = {">=": a >= b, ">": a > b, "<=": a <= b, "<": a < b}[rule.op or ">="]
        expr = a.is_not_null() & b.is_not_null() & ~ok
    else:
        return None
    if rule.when is not None:
        expr = _when_expr(rule.when) & expr
    return expr.fill_null(False)


def value_expr(columns: Sequence[str]) -> pl.Expr:
    def text(c: str) -> pl.Expr:
        return pl.col(c).cast(pl.String)

    if len(columns) == 1:
        out = text(columns[0]).fill_null("")
    else:
        out = pl.concat_str(
            [pl.format("{}={}", pl.lit(c), text(c).fill_null("")) for c in columns], separator="; "
        )
    return out.str.slice(0, MAX_VALUE_CHARS)


def freshness(rule: Rule, prep: Prepared, run: Run) -> tuple[str | None, date, bool]:
    """(newest value as text, the date it must reach, fresh?) computed in polars."""
    col = rule.columns[0]
    days = rule.within_days if rule.within_days is not None else run.stale_days
    bound = run.period.end - timedelta(days=days)
    if prep.contract.field_type(col) == "date":
        newest_day = prep.frame.get_column(col).max()
        shown = newest_day.isoformat() if isinstance(newest_day, date) else None
    else:
        ends = prep.frame.select(month_first(col).dt.month_end().max()).item()
        newest_day = ends
        shown = ends.strftime("%Y-%m") if isinstance(ends, date) else None
    fresh = isinstance(newest_day, date) and newest_day >= bound
    return shown, bound, fresh
