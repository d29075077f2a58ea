"""Rules evaluated in polars: the rows each rule fails, the rows it looks at, freshness.

The default engine (``[contracts] engine = "polars"``) judges every rule from
these expressions alone. They mean exactly what the rule's Great Expectations
expectation means (pandas ``query`` semantics for ``when``, Python
``re.search`` for patterns, GX's denominators and ``mostly``), so that the
``gx`` engine (:mod:`qmskpi.contracts.gx`) gives the same results; the test
suite runs both engines on the fixtures and the sample data and compares them
rule by rule. Under the ``gx`` engine the masks still find *which* rows fail,
and :mod:`qmskpi.contracts.judge` checks their counts against GX's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import polars as pl

from qmskpi.contracts.prepare import Prepared
from qmskpi.contracts.report import MAX_VALUE_CHARS
from qmskpi.contracts.schema import Condition, Contract, Rule, Run


@dataclass(frozen=True)
class Counted:
    """What an engine other than polars found for one rule (GX today; a SQL engine may add one).

    :func:`qmskpi.contracts.judge.judge_all` takes these per dataset and rule id;
    the rows are still found by :func:`mask_expr`, and a count that differs from
    the mask's stops the run.
    """

    success: bool
    unexpected_count: int | None
    unexpected_share: float
    observed: str | None
    exception: str | None
    engine: str = "great_expectations"
    """Who judged the rule, as ``validation.json`` names it."""


def passes(unexpected: int, looked_at: int, mostly: float | None) -> bool:
    """Does a row rule pass? Great Expectations' rule: every row, or at least ``mostly`` of
    the rows it looked at (no rows looked at: passes)."""
    if mostly is None:
        return unexpected == 0
    return looked_at == 0 or (looked_at - unexpected) / looked_at >= mostly


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


def _keys_distinct(frame: pl.DataFrame, columns: Sequence[str]) -> bool:
    """Is every non-empty key of ``frame`` surely distinct? (False: maybe not.)

    Equal keys have equal hashes, so all hashes distinct proves the keys are;
    counting distinct 64-bit hashes is ~15x faster than ``is_duplicated`` on a
    text column (1M ids: 0.05 s against 0.7 s), and a key column is nearly
    always distinct. A hash collision only sends the rule the exact way.
    """
    key = pl.col(columns[0]) if len(columns) == 1 else pl.struct(list(columns))
    present = ~pl.all_horizontal([pl.col(c).is_null() for c in columns])
    n, distinct = (
        frame.lazy().filter(present).select(pl.len(), key.hash().n_unique()).collect().row(0)
    )
    return bool(n == distinct)


def mask_expr(
    rule: Rule, contract: Contract, run: Run, frame: pl.DataFrame | None = None
) -> pl.Expr | None:
    """The rows ``rule`` fails, or None when it has no row-level polars form.

    With ``frame`` (the rows it will be applied to), a ``unique`` rule whose keys
    are surely distinct there becomes a constant ``False`` (:func:`_keys_distinct`).
    """
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
        if frame is not None and _keys_distinct(frame, rule.columns):
            expr = pl.repeat(False, pl.len())
        elif len(cols) == 1:
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


def domain_expr(rule: Rule, contract: Contract) -> pl.Expr:
    """The rows ``rule`` looks at (the denominator of its share), as GX counts them.

    ``required`` and ``empty`` look at every row; ``unique`` over several columns
    skips rows whose key is entirely empty; ``compare`` skips rows with either
    value missing; the others skip rows whose value is missing. ``when`` narrows
    each of them.
    """
    cols = [pl.col(c) for c in rule.columns]
    if rule.check in ("required", "empty"):
        expr = pl.repeat(True, pl.len())  # every row (a bare literal would count once)
    elif rule.check == "unique" and len(cols) > 1:
        expr = ~pl.all_horizontal([c.is_null() for c in cols])
    elif rule.check == "compare":
        expr = cols[0].is_not_null() & cols[1].is_not_null()
    elif rule.check == "range" and contract.field_type(rule.columns[0]) == "str":
        expr = month_first(rule.columns[0]).is_not_null()
    else:
        expr = cols[0].is_not_null()
    if rule.when is not None:
        expr = _when_expr(rule.when) & expr
    return expr


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
