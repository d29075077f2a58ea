"""Parsing: each canonical field's text (or typed values of its kind) to its type.

Dates only with the format declared for the column (ISO when none is); a value that
does not parse is bad, never guessed. Constants and defaults are parsed the same way.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import polars as pl

from qmskpi.config import SITE_REGEX, SITE_RULE_TEXT, Config, SourceConfig
from qmskpi.datasets import Field
from qmskpi.sources.model import _config_error
from qmskpi.sources.table import _Column
from qmskpi.sources.text import _CANONICAL_FALSE, _CANONICAL_TRUE, _constant_text

_DIRECTIVE = re.compile(r"%(.)")

_FLEX = {"m", "d", "H", "I", "e"}

_FIXED: dict[str, str] = {
    "Y": r"\d{4}",
    "y": r"\d{2}",
    "M": r"\d{2}",
    "S": r"\d{2}",
    "f": r"\d{1,9}",
    "j": r"\d{1,3}",
    "b": r"[A-Za-z]{3}",
    "h": r"[A-Za-z]{3}",
    "a": r"[A-Za-z]{3}",
    "B": r"[A-Za-z]+",
    "A": r"[A-Za-z]+",
    "p": r"[AaPp][Mm]",
    "z": r"(?:Z|[+-]\d{2}:?\d{2})",
    "Z": r"[A-Za-z]+",
    "T": r"\d{2}:\d{2}:\d{2}",
    "F": r"\d{4}-\d{2}-\d{2}",
    "D": r"\d{2}/\d{2}/\d{2}",
    "%": "%",
}


def _date_pattern(fmt: str) -> str:
    """A regex the text must match for ``fmt``: stricter than strptime.

    ``%Y`` wants four digits (no ``26`` for 2026); ``%m``/``%d`` may drop the
    leading zero only between separators, so ``%Y%m%d`` wants exactly eight
    digits (``2026105`` is refused rather than guessed).
    """
    tokens: list[tuple[bool, str]] = []  # (is_directive, text)
    pos = 0
    for m in _DIRECTIVE.finditer(fmt):
        if m.start() > pos:
            tokens.append((False, fmt[pos : m.start()]))
        tokens.append((True, m.group(1)))
        pos = m.end()
    if pos < len(fmt):
        tokens.append((False, fmt[pos:]))
    out = []
    for i, (is_dir, tok) in enumerate(tokens):
        if not is_dir:
            out.append(re.escape(tok))
        elif tok in _FLEX:
            before = i == 0 or not tokens[i - 1][0]
            after = i == len(tokens) - 1 or not tokens[i + 1][0]
            out.append(r"\d{1,2}" if before and after else r"\d{2}")
        else:
            out.append(_FIXED.get(tok, ".+?"))
    return "^" + "".join(out) + "$"


@dataclass(frozen=True)
class _Parsed:
    value: pl.Expr
    ok: pl.Expr
    message: str
    """Text after the quoted value in a reject message."""


def bool_words(src: SourceConfig) -> tuple[list[str], list[str]]:
    """The lower-case words a bool field of ``src`` reads as true, and as false (a word in
    both is true): ``true_values``/``false_values`` and the canonical ``true``/``false``.
    A value is compared trimmed and lower-cased (pushdown reads them the same way)."""
    trues = sorted({v.lower() for v in (*src.true_values, _CANONICAL_TRUE)})
    falses = sorted({v.lower() for v in (*src.false_values, _CANONICAL_FALSE)} - set(trues))
    return trues, falses


def _parser(fld: Field, src: SourceConfig, e: pl.Expr, *, site_names: bool = False) -> _Parsed:
    """How ``fld`` is parsed from the text ``e``.

    ``site_names``: check a ``site`` value against the site-name rule here; when the
    config lists its sites the ``site_known`` contract rule checks the value
    against that list instead (every listed name obeys the same rule).
    """
    if fld.type == "str" and fld.name == "site" and site_names:
        ok = e.str.contains(f"^(?:{SITE_REGEX})$")
        return _Parsed(e, ok, f" is not a site name ({SITE_RULE_TEXT})")
    if fld.type == "str":
        return _Parsed(e, pl.lit(True), "")
    if fld.type == "date":
        fmt = src.date_formats.get(fld.name, "%Y-%m-%d")
        parsed = e.str.strptime(pl.Date, fmt, strict=False)
        ok = e.str.contains(_date_pattern(fmt)) & parsed.is_not_null()
        declared = "" if fld.name in src.date_formats else " (no date_formats entry: ISO only)"
        return _Parsed(parsed, ok, f" is not a date in format {fmt}{declared}")
    if fld.type == "int":
        ok_text = e.str.contains(r"^[+-]?\d+(?:\.0*)?$")
        parsed = e.str.replace(r"\.0*$", "").cast(pl.Int64, strict=False)
        return _Parsed(parsed, ok_text & parsed.is_not_null(), " is not a whole number")
    if fld.type == "float":
        parsed = e.cast(pl.Float64, strict=False)
        return _Parsed(parsed, parsed.is_finite().fill_null(False), " is not a number")
    trues, falses = bool_words(src)
    low = e.str.to_lowercase()
    parsed = pl.when(low.is_in(trues)).then(True).when(low.is_in(falses)).then(False)
    return _Parsed(
        parsed,
        low.is_in(trues) | low.is_in(falses),
        f" is not a true value ({', '.join(trues)}) or a false value ({', '.join(falses)})",
    )


def _native(col: _Column, fld: Field, src: SourceConfig) -> pl.Series | None:
    """``col`` as typed values for ``fld`` when they need no text round trip, else None.

    A typed column (Parquet, or Excel/SQL cells all of one Python type) of the
    field's kind is used as it is: dates (and date-times, as their date) for a
    date field, numbers for an int or float field, booleans for a bool field.
    A text column (CSV) of an int or float field whose every cell is a plain
    number is read as numbers in one pass (``_text_numbers``).
    Text mapping rules that could change such a value (a value map or null
    values for the field, an ``na_values`` entry a value could be written as)
    send the column through the text path instead, so the result is the same.
    """
    if fld.type not in ("date", "int", "float", "bool"):
        return None
    if fld.name in src.value_maps or fld.name in src.null_values:
        return None
    s = col if isinstance(col, pl.Series) else _list_series(col)
    if s is not None and s.dtype == pl.String and fld.type in ("int", "float"):
        s = _text_numbers(s, fld.type)
    if s is None or not _kind_fits(s.dtype, fld.type):
        return None
    if _na_could_match(fld, src):
        return None
    return s


def _text_numbers(s: pl.Series, kind: str) -> pl.Series | None:
    """Text cells (CSV) of an int or float field as numbers, when every cell is a plain one.

    Polars' strict cast reads the cells in one vectorised pass: ``[+-]digits``
    for an int, a finite decimal or exponent number for a float, null for a
    missing cell. Anything else in the column (a blank written as ``""``,
    surrounding spaces, ``12.0`` for an int, ``n/a``, ``inf``) sends the whole
    column through the text path, which reads and reports every cell as before.
    """
    try:
        out = s.cast(pl.Int64 if kind == "int" else pl.Float64, strict=True)
    except pl.exceptions.InvalidOperationError:
        return None
    if kind == "float" and not bool(out.is_finite().fill_null(True).all()):
        return None
    return out


def _kind_fits(dtype: pl.DataType, kind: str) -> bool:
    if kind == "date":
        return dtype == pl.Date or isinstance(dtype, pl.Datetime)
    if kind in ("int", "float"):
        return dtype.is_integer() or dtype.is_float()
    return kind == "bool" and dtype == pl.Boolean


_LIST_DTYPES: dict[type, pl.DataType] = {
    int: pl.Int64(),
    float: pl.Float64(),
    bool: pl.Boolean(),
    dt.date: pl.Date(),
    dt.datetime: pl.Datetime("us"),
}


def _list_series(values: list[Any]) -> pl.Series | None:
    """Native cells (Excel, SQL) as one typed series when all share one type, else None.

    Mixed cells (ints and floats, dates and text), a whole number beyond 64 bits
    and a date-time with a time zone are left to the text path, which reads them
    exactly as before.
    """
    kinds = {type(v) for v in values if v is not None}
    if len(kinds) != 1:
        return None
    kind = kinds.pop()
    dtype = _LIST_DTYPES.get(kind)
    if dtype is None or (kind is dt.datetime and any(v.tzinfo for v in values if v is not None)):
        return None
    try:
        return pl.Series(values, dtype=dtype, strict=True)
    except (OverflowError, TypeError, ValueError, pl.exceptions.PolarsError):
        return None


def _na_could_match(fld: Field, src: SourceConfig) -> bool:
    """Could a typed value of ``fld``, written as text, be one of ``na_values``?"""
    words = [v.strip() for v in src.na_values if v.strip()]
    if not words:
        return False
    if fld.type in ("int", "float"):
        for w in words:
            try:
                float(w)  # numbers, nan, inf
                return True
            except ValueError:
                pass
        return False
    ok = _parser(fld, src, pl.col("v")).ok
    return bool(pl.DataFrame({"v": words}).select(ok.any()).item())


def _native_parser(fld: Field, dtype: pl.DataType, e: pl.Expr, default: Any) -> _Parsed:
    """How ``fld`` is taken from typed values ``e``; a value that does not fit is bad."""
    if fld.type == "date":
        value = e.dt.date() if isinstance(dtype, pl.Datetime) else e
        ok: pl.Expr = pl.lit(True)
        message = ""
    elif fld.type == "int" and dtype.is_float():
        ok = e.is_finite() & (e == e.round(0)) & (e.abs() < 2.0**63)
        value = pl.when(ok).then(e).cast(pl.Int64, strict=False)
        message = " is not a whole number"
    elif fld.type == "int":
        value = e.cast(pl.Int64, strict=False)
        ok, message = value.is_not_null(), " is not a whole number"
    elif fld.type == "float":
        value = e.cast(pl.Float64)
        ok, message = value.is_finite(), " is not a number"
    else:
        value, ok, message = e, pl.lit(True), ""
    if default is not None:
        value = value.fill_null(pl.lit(default, dtype=fld.dtype))
    return _Parsed(value, ok, message)


def _typed_constant(
    name: str,
    value: Any,
    fld: Field,
    src: SourceConfig,
    config: Config,
    *,
    key: str = "constants",
) -> Any:
    text = _constant_text(value)
    p = _parser(fld, src, pl.col("v"), site_names=not config.sites)
    row = pl.DataFrame({"v": [text]}).select(p.value.alias("value"), p.ok.alias("ok")).row(0)
    if not row[1]:
        raise _config_error(src, f"{key}.{name}", f"{text!r}{p.message}", config)
    return row[0]
