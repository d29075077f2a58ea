"""Values as text and text cleaning.

Native cells (Excel, SQL) and typed columns (Parquet) are rendered as the text the
mapping expects; text columns are trimmed, ``na_values``/``null_values`` become null,
value maps and defaults apply (:func:`_clean_text`), each step only on the columns
whose values need it (:func:`_text_facts`).
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import math
import operator
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from qmskpi.config import SourceConfig
from qmskpi.datasets import Field
from qmskpi.errors import SourceError
from qmskpi.sources.table import _Column

_CANONICAL_TRUE = "true"

_CANONICAL_FALSE = "false"


def _cell_text(value: Any, fld: Field | None, src: SourceConfig | None = None) -> str | None:
    """A native cell (Excel, SQL) as the text the mapping expects for ``fld``."""
    if value is None or isinstance(value, str):
        return value
    kind = fld.type if fld is not None else None
    if isinstance(value, bool):
        if kind == "bool" and src is not None:
            pool = src.true_values if value else src.false_values
            return pool[0] if pool else (_CANONICAL_TRUE if value else _CANONICAL_FALSE)
        return _CANONICAL_TRUE if value else _CANONICAL_FALSE
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
            return str(int(value))
        return repr(value)
    if isinstance(value, decimal.Decimal):
        if value.is_finite() and value == value.to_integral_value():
            return str(int(value))
        return str(value)
    if isinstance(value, dt.date):
        stamp = value if isinstance(value, dt.datetime) else dt.datetime.combine(value, dt.time())
        if kind == "date" and fld is not None and src is not None:
            return stamp.strftime(src.date_formats.get(fld.name, "%Y-%m-%d"))
        if fld is not None and fld.name == "month":
            return stamp.strftime("%Y-%m")
        if stamp.time() == dt.time():
            return stamp.date().isoformat()
        return stamp.isoformat(sep=" ")
    if isinstance(value, dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _list_text(values: list[Any], fld: Field | None, src: SourceConfig) -> pl.Series:
    if all(v is None or type(v) is str for v in values):
        return pl.Series(values, dtype=pl.String)
    return pl.Series([_cell_text(v, fld, src) for v in values], dtype=pl.String)


def _series_text(
    s: pl.Series, fld: Field | None, src: SourceConfig, display: str, header: str
) -> pl.Series:
    """A typed column (Parquet) as the text the mapping expects for ``fld``."""
    dtype = s.dtype
    kind = fld.type if fld is not None else None
    if dtype == pl.String:
        return s
    if dtype == pl.Null:
        return pl.Series(s.name, [None] * len(s), dtype=pl.String)
    if isinstance(dtype, pl.Categorical | pl.Enum) or dtype.is_integer() or dtype.is_decimal():
        if dtype.is_decimal():
            return pl.Series([_cell_text(v, fld, src) for v in s.to_list()], dtype=pl.String)
        return s.cast(pl.String)
    if dtype.is_float():
        whole = s.is_finite() & (s == s.round(0)) & (s.abs() < 2**53)
        return (
            pl.select(
                pl.when(whole)
                .then(s.cast(pl.Int64, strict=False).cast(pl.String))
                .otherwise(s.cast(pl.String))
            )
            .to_series()
            .rename(s.name)
        )
    if dtype == pl.Boolean:
        t, f = _CANONICAL_TRUE, _CANONICAL_FALSE
        if kind == "bool":
            t = src.true_values[0] if src.true_values else t
            f = src.false_values[0] if src.false_values else f
        return (
            pl.select(pl.when(s).then(pl.lit(t)).otherwise(pl.lit(f)))
            .to_series()
            .rename(s.name)
            .set(
                s.is_null(),
                None,  # type: ignore[arg-type]
            )
        )
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        if kind == "date" and fld is not None:
            fmt = src.date_formats.get(fld.name, "%Y-%m-%d")
        elif fld is not None and fld.name == "month":
            fmt = "%Y-%m"
        elif dtype == pl.Date:
            fmt = "%Y-%m-%d"
        else:
            fmt = "%Y-%m-%d %H:%M:%S"
        return s.dt.to_string(fmt)
    if dtype == pl.Time:
        return s.cast(pl.String)
    raise SourceError(
        f"column {header!r} holds {dtype} values, which qmskpi cannot read as a field",
        path=display,
        dataset=src.dataset,
        column=fld.name if fld is not None else header,
    )


def _column_text(
    col: _Column, fld: Field | None, src: SourceConfig, display: str, header: str
) -> pl.Series:
    if isinstance(col, pl.Series):
        return _series_text(col, fld, src, display, header)
    return _list_text(col, fld, src)


def _blank_mask(col: _Column) -> pl.Series:
    if isinstance(col, pl.Series):
        if col.dtype == pl.String:
            # A value starting with printable ASCII has a value; only the others are trimmed.
            maybe = (~_starts_printable_ascii(col)).fill_null(True)
            if not maybe.any():
                return maybe
            sub = col.filter(maybe)
            return maybe.scatter(maybe.arg_true(), sub.is_null() | (sub.str.strip_chars() == ""))
        return col.is_null()
    return pl.Series(
        [v is None or (isinstance(v, str) and not v.strip()) for v in col], dtype=pl.Boolean
    )


def _clean_text(frame: pl.DataFrame, names: Sequence[str], src: SourceConfig) -> pl.DataFrame:
    """Add ``_clean_NAME`` for each text column ``NAME``.

    Trim; ``na_values`` and the column's ``null_values`` become null; the value
    map applies (a map to "" means null); a blank becomes null and takes the
    column's default. A step no value of the column needs is skipped: each is
    a pass over the whole column, as costly as reading it. What each column
    needs is found in one ``select`` over all of them (:func:`_text_facts`).
    """
    if not names:
        return frame
    nulls = {n: [*src.na_values, *src.null_values.get(n, ())] for n in names}
    found = _text_facts(frame, names, nulls)
    trimmed: list[pl.Series] = []
    for n in names:  # one column at a time: at most one extra copy of the text in memory
        cut = frame.get_column(n)
        if found[f"trim:{n}"]:
            cut = cut.str.strip_chars()
            found.update(_value_facts(cut.to_frame(n), [n], nulls))  # as trimmed
        trimmed.append(cut.rename(f"_clean_{n}"))
    frame = frame.with_columns(trimmed)
    exprs: list[pl.Expr] = []
    for n in names:
        e = pl.col(f"_clean_{n}")
        steps = 0
        if found[f"nulls:{n}"]:
            e, steps = pl.when(e.is_in(nulls[n])).then(None).otherwise(e), steps + 1
        vmap = src.value_maps.get(n)
        if vmap:
            e, steps = e.replace(dict(vmap)), steps + 1
        if vmap or found[f"blank:{n}"]:
            e, steps = pl.when(e == "").then(None).otherwise(e), steps + 1
        if n in src.defaults:  # a blank cell (after nulls and value maps) takes the default
            e, steps = e.fill_null(pl.lit(_constant_text(src.defaults[n]))), steps + 1
        if steps:
            exprs.append(e.alias(f"_clean_{n}"))
    return frame.with_columns(exprs) if exprs else frame


def _value_checks(n: str, nulls: Sequence[str]) -> list[pl.Expr]:
    """Does any value of column ``n`` stand for null (``nulls:``), is any the empty text (``blank:``)?"""
    e = pl.col(n)
    blank = (e == "").any()
    words = [w for w in nulls if w != ""]
    some = e.is_in(words).any() if words else pl.lit(False)
    return [
        (some | blank if "" in nulls else some).alias(f"nulls:{n}"),
        blank.alias(f"blank:{n}"),
    ]


def _value_facts(
    frame: pl.DataFrame, names: Sequence[str], nulls: Mapping[str, Sequence[str]]
) -> dict[str, bool]:
    checks = [c for n in names for c in _value_checks(n, nulls[n])]
    return dict(frame.select(checks).row(0, named=True))


def _text_facts(
    frame: pl.DataFrame, names: Sequence[str], nulls: Mapping[str, Sequence[str]]
) -> dict[str, bool]:
    """What the text columns ``names`` need, keyed ``trim:``, ``nulls:``, ``blank:`` + name.

    Each is a question about a column's distinct values, so a column holding few (a site,
    a code, a status) is asked through them (:func:`_few_values`), the others through
    every value (:func:`_value_facts_of`).
    """
    few = _few_values(frame, names)
    rest = [n for n in names if n not in few]
    found = _value_facts_of(frame, rest, nulls) if rest else {}
    for n, values in few.items():
        found.update(_value_facts_of(values.to_frame(n), [n], nulls))
    return found


_FEW_VALUES = 256
"""At most this many distinct values in a column's sample make it a column of few values."""

_SAMPLE_ROWS = 10_000
"""Rows sampled, evenly spread, to tell a column of few values."""


def _few_values(frame: pl.DataFrame, names: Sequence[str]) -> dict[str, pl.Series]:
    """Every distinct value (and maybe some repeats) of each text column in ``names`` that holds few.

    The values seen in rows sampled evenly over the column, if at most :data:`_FEW_VALUES`,
    and every value not among them: one pass per column testing membership in that small
    set (~6 ns a value at 10M rows, against 10-17 ns for ``str.contains_any``), with no
    string built. IDs and free text show more values in the sample and are left out, as
    are frames too small for a sample to save anything.
    """
    if frame.height <= 4 * _SAMPLE_ROWS:
        return {}
    step = frame.height // _SAMPLE_ROWS
    seen: dict[str, pl.Series] = {}
    for n in names:
        column = frame.get_column(n)
        if column.dtype != pl.String:
            continue
        values = column.gather_every(step).drop_nulls().unique()
        if len(values) <= _FEW_VALUES:
            seen[n] = values
    if not seen:
        return {}
    others = frame.select(
        pl.col(n).filter(pl.col(n).is_not_null() & ~_among(pl.col(n), v)).implode()
        for n, v in seen.items()
    )
    return {n: pl.concat([v, others.get_column(n).explode()]) for n, v in seen.items()}


def _among(e: pl.Expr, values: pl.Series) -> pl.Expr:
    """Is ``e`` one of ``values``: up to four compared one by one (cheaper than a hash per value)."""
    if len(values) <= 4:
        return functools.reduce(operator.or_, (e == v for v in values.to_list()), pl.lit(False))
    return e.is_in(values.implode())


def _value_facts_of(
    frame: pl.DataFrame, names: Sequence[str], nulls: Mapping[str, Sequence[str]]
) -> dict[str, bool]:
    """:func:`_text_facts` from every value of the columns ``names``.

    One ``select`` over every column, none building a string: whether a value holds
    whitespace anywhere (``str.contains_any`` over the characters ``str.strip_chars()``
    removes, :data:`_WHITE_SPACE`), stands for null, or is empty. Only a column holding
    whitespace is checked value by value for whitespace at an edge (:func:`_may_need_trim`):
    IDs, codes and dates hold none, and the exact check builds a trimmed copy of every
    value, which costs about as much as reading the column.
    """
    checks = [pl.col(n).str.contains_any(_WHITE_SPACE).any().alias(f"trim:{n}") for n in names]
    checks += [c for n in names for c in _value_checks(n, nulls[n])]
    found: dict[str, bool] = dict(frame.select(checks).row(0, named=True))
    spaced = [n for n in names if found[f"trim:{n}"]]
    trim = _may_need_trim(frame, spaced) if spaced else set()
    found.update({f"trim:{n}": n in trim for n in names})
    return found


_WHITE_SPACE = [*"\t\n\x0b\x0c\r ", "\x85", "\xa0", "\u1680"]
_WHITE_SPACE += [chr(c) for c in range(0x2000, 0x200B)]
_WHITE_SPACE += ["\u2028", "\u2029", "\u202f", "\u205f", "\u3000"]
"""Every character ``str.strip_chars()`` removes (Unicode White_Space; a test checks it)."""


def _may_need_trim(frame: pl.DataFrame, names: Sequence[str]) -> set[str]:
    """The text columns among ``names`` holding a value that ``str.strip_chars()`` shortens.

    One pass per column, the cheapest exact test measured (polars 1.30 to 2.1): the
    trimmed value's byte length against the value's, no trimmed column kept (an edge-byte
    test through ``str.head``/``str.tail`` costs three times as much, it builds a string per
    value).
    """
    checks = [
        (pl.col(n).str.strip_chars().str.len_bytes() != pl.col(n).str.len_bytes()).any().alias(n)
        for n in names
    ]
    found = frame.select(checks).row(0, named=True)
    return {n for n in names if found[n]}


def _starts_printable_ascii(text: pl.Series) -> pl.Series:
    """Whether each value's first byte is printable ASCII (0x21-0x7E), compared as text.

    Strings compare byte by byte, so ``"!" <= value < "\x7f"`` reads only the first
    byte, with no string built per value (``str.head(1)`` builds one). Every character
    ``str.strip_chars()`` removes starts with a byte outside that range (a test checks
    every Unicode character), so such a value is not blank. The empty string is not
    (``"" < "!"``); null stays null.
    """
    return (text >= "!") & (text < "\x7f")


def _constant_text(value: Any) -> str:
    return _CANONICAL_TRUE if value is True else _CANONICAL_FALSE if value is False else str(value)
