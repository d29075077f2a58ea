"""Derived fields and the ``where`` condition.

Both are polars SQL expressions (``pl.sql_expr``) over the source's columns AS TEXT:
each cell trimmed, with ``na_values`` and blank cells as NULL, before any value map,
date format or type parsing. A derived field's result is then text like any mapped
column: its own ``null_values``, ``value_maps``, ``defaults``, ``date_formats`` and
type parsing apply to it. ``where`` sees the derived fields too (under their
canonical names, unless the file has a column of that name).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from qmskpi.config import Config, SourceConfig
from qmskpi.errors import did_you_mean
from qmskpi.sources.model import _config_error
from qmskpi.sources.table import _norm_header, _Table
from qmskpi.sources.text import _CANONICAL_FALSE, _CANONICAL_TRUE, _column_text


def _expressions(src: SourceConfig) -> dict[str, str]:
    """Config key (``derive.severity``, ``where``) -> expression text."""
    out = {f"derive.{name}": text for name, text in src.derive.items()}
    if src.where is not None:
        out["where"] = src.where
    return out


def _expression_names(src: SourceConfig) -> set[str]:
    """Every column name the source's expressions read."""
    names: set[str] = set()
    for text in _expressions(src).values():
        names.update(pl.sql_expr(text).meta.root_names())
    return names


def _environment(table: _Table, mapping: Mapping[str, int]) -> dict[str, int]:
    """Names an expression may use -> column index.

    Every column by its header (``column_N`` in a file without a header),
    then every field mapped by ``columns`` or ``positions`` by its canonical
    name, when no column already has that name.
    """
    if table.headers is None:
        env = {f"column_{j + 1}": j for j in range(len(table.columns))}
    else:
        env = {}
        for j, h in enumerate(table.headers):
            n = _norm_header(h)
            if n and n not in env:
                env[n] = j
    for name, j in mapping.items():
        env.setdefault(name, j)
    return env


def _declared_mapping(table: _Table, src: SourceConfig) -> dict[str, int]:
    """Fields mapped by ``positions`` or by ``columns`` to a header the file has."""
    out = {name: pos - 1 for name, pos in src.positions.items() if pos <= len(table.columns)}
    if table.headers is not None:
        index: dict[str, int] = {}
        for j, h in enumerate(table.headers):
            index.setdefault(_norm_header(h), j)
        for name, header in src.columns.items():
            if _norm_header(header) in index:
                out[name] = index[_norm_header(header)]
    return out


def _check_expression_names(
    env: Mapping[str, int], src: SourceConfig, config: Config, display: str, extra: Sequence[str]
) -> None:
    """Every column an expression names must be in the source; else name the key and column."""
    for key, text in _expressions(src).items():
        allowed = [*env, *(extra if key == "where" else ())]
        for n in pl.sql_expr(text).meta.root_names():
            if n in allowed:
                continue
            quote = (
                ' (a name with spaces or capitals is written in double quotes: "Date closed")'
                if n.lower() in {a.lower() for a in allowed} or " " in n
                else ""
            )
            raise _config_error(
                src,
                key,
                f"column {n!r} is not in {display}{did_you_mean(n, allowed)}{quote}; "
                f"columns: {', '.join(repr(a) for a in env)}",
                config,
            )


def _expression_frame(
    table: _Table, src: SourceConfig, mapping: Mapping[str, int], keep: pl.Series
) -> pl.DataFrame:
    """The columns the expressions read, as cleaned text, one row per record."""
    env = _environment(table, mapping)
    wanted = _expression_names(src)
    cols: list[pl.Series] = []
    for name in sorted(wanted & set(env)):
        j = env[name]
        header = table.headers[j] if table.headers is not None else name
        text = _column_text(table.columns[j], None, src, table.display, header).rename(name)
        cols.append(text)
    nulls = [*src.na_values, ""]
    cleaned = [
        pl.when(pl.col(c.name).str.strip_chars().is_in(nulls))
        .then(None)
        .otherwise(pl.col(c.name).str.strip_chars())
        .alias(c.name)
        for c in cols
    ]
    # A record index keeps the frame's height even when no column is read ("'x'").
    frame = pl.DataFrame([pl.Series("__record", range(table.height), dtype=pl.Int64), *cols])
    return frame.filter(keep).with_columns(cleaned)


def _evaluate(
    env: pl.DataFrame, key: str, text: str, src: SourceConfig, config: Config
) -> pl.Series:
    """One expression over ``env``; a failure names the config key."""
    try:
        return env.with_columns(pl.sql_expr(text).alias("_out")).get_column("_out")
    except Exception as exc:  # polars: ComputeError, InvalidOperationError, SQLInterfaceError ...
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _config_error(src, key, f"cannot evaluate {text!r}: {detail}", config) from None


def _derived_columns(env: pl.DataFrame, src: SourceConfig, config: Config) -> list[pl.Series]:
    """Each derived field as text (booleans as ``true``/``false``, dates ISO)."""
    out = []
    for name, text in src.derive.items():
        value = _evaluate(env, f"derive.{name}", text, src, config)
        if value.dtype == pl.Boolean:
            value = value.replace_strict(
                {True: _CANONICAL_TRUE, False: _CANONICAL_FALSE}, return_dtype=pl.String
            )
        out.append(value.cast(pl.String).rename(name))
    return out


def _where_mask(
    env: pl.DataFrame, derived: Sequence[pl.Series], src: SourceConfig, config: Config
) -> pl.Series | None:
    """True for the records the ``where`` condition keeps (NULL counts as not kept)."""
    if src.where is None:
        return None
    extra = [d for d in derived if d.name not in env.columns]
    frame = env.with_columns(extra) if extra else env
    mask = _evaluate(frame, "where", src.where, src, config)
    if mask.dtype != pl.Boolean:
        raise _config_error(
            src,
            "where",
            f"{src.where!r} gives {mask.dtype} values, not true/false: write a condition, "
            'e.g. "outcome IS NOT NULL"',
            config,
        )
    return mask.fill_null(False)
