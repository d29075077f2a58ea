"""One raw table mapped onto the canonical schema (:func:`_map_table`).

Blank and footer rows left out, the header checked, derived fields and ``where``
applied, values cleaned and parsed; each bad value becomes a reject (or, with
``on_bad_value="raise"``, the first one an error naming file, column and row).
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from qmskpi.config import Config, SourceConfig
from qmskpi.datasets import SOURCE_ROW, Dataset
from qmskpi.errors import SourceError
from qmskpi.sources.expressions import (
    _check_expression_names,
    _declared_mapping,
    _derived_columns,
    _environment,
    _expression_frame,
    _where_mask,
)
from qmskpi.sources.header import _drop_trailing_blank, _plan
from qmskpi.sources.model import (
    OUTSIDE_WINDOW_RULE,
    REJECT_SCHEMA,
    WHERE_RULE,
    OnBadValue,
    _empty_rejects,
)
from qmskpi.sources.parse import _native, _native_parser, _Parsed, _parser, _typed_constant
from qmskpi.sources.table import _norm_header, _Table
from qmskpi.sources.text import _blank_mask, _clean_text, _column_text

_MAX_VALUE_CHARS = 200


def _excluded_rows(frame: pl.DataFrame, rule: str, message: pl.Expr, display: str) -> pl.DataFrame:
    return frame.select(
        pl.col(SOURCE_ROW),
        pl.lit("(row)").alias("column"),
        pl.lit(None, dtype=pl.String).alias("value"),
        pl.lit(rule).alias("rule"),
        message.alias("message"),
        pl.lit(display).alias("file"),
    ).cast(REJECT_SCHEMA)  # type: ignore[arg-type]


def _map_table(
    table: _Table, src: SourceConfig, ds: Dataset, config: Config, on_bad_value: OnBadValue
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, int]:
    """One table -> (frame without derived keys, rejects, excluded by ``where``, rows_in)."""
    _drop_trailing_blank(table)
    if src.derive or src.where is not None:  # before the header check: it names the key
        _check_expression_names(
            _environment(table, _declared_mapping(table, src)),
            src,
            config,
            table.display,
            list(src.derive),
        )
    mapping = _plan(table, src, ds)
    headers = table.headers
    keep, problem, problem_text = _record_rows(table, src)
    rows_in = int(keep.sum())
    in_cols: dict[str, pl.Series] = {}
    typed: dict[str, pl.DataType] = {}  # fields read from typed values, no text round trip
    for name, j in mapping.items():
        native = _native(table.columns[j], ds.field(name), src)
        if native is not None:
            typed[name] = native.dtype
            in_cols[name] = native.rename(name)
            continue
        header = headers[j] if headers is not None else f"#{j + 1}"
        in_cols[name] = _column_text(
            table.columns[j], ds.field(name), src, table.display, header
        ).rename(name)
    # Only columns chunked alike: one column chunked otherwise (a flag column made whole)
    # would make every later ``with_columns`` copy the frame into single chunks.
    broken = [problem.rename("_problem"), *problem_text] if table.problems else []
    raw = pl.DataFrame([table.source_row, *in_cols.values(), *broken])
    if rows_in < table.height:
        raw = raw.filter(keep)
    raw, excluded = _apply_expressions(raw, table, src, config, mapping, keep)
    if table.outside is not None and len(table.outside):
        message = pl.lit(table.outside_note)
        outside = pl.DataFrame([table.outside])
        excluded = pl.concat(
            [excluded, _excluded_rows(outside, OUTSIDE_WINDOW_RULE, message, table.display)]
        )
        rows_in += len(table.outside)
    parsers: dict[str, _Parsed] = {}
    read = set(mapping) | set(src.derive)
    for name in (f.name for f in ds.fields if f.name in read):  # canonical order
        fld = ds.field(name)
        if name in typed:
            default = (
                _typed_constant(name, src.defaults[name], fld, src, config, key="defaults")
                if name in src.defaults
                else None
            )
            p = _native_parser(fld, typed[name], pl.col(f"_clean_{name}"), default)
        else:
            p = _parser(fld, src, pl.col(f"_clean_{name}"), site_names=not config.sites)
        parsers[name] = p
    work = raw.with_columns(pl.col(n).alias(f"_clean_{n}") for n in parsers if n in typed)
    work = _clean_text(work, [n for n in parsers if n not in typed], src)
    bad_exprs = []
    val_exprs = []
    for name, p in parsers.items():
        c = pl.col(f"_clean_{name}")
        bad_exprs.append((c.is_not_null() & ~p.ok.fill_null(False)).alias(f"_bad_{name}"))
        val_exprs.append(p.value.alias(f"_val_{name}"))
    work = work.with_columns(bad_exprs + val_exprs) if parsers else work
    rejects = _rejects(work, parsers, table.display)
    bad_any = [pl.col(f"_bad_{n}") for n in parsers]
    bad_any += [pl.col("_problem")] if table.problems else []
    good = work.filter(~pl.any_horizontal(bad_any)) if rejects.height else work
    if on_bad_value == "raise" and not rejects.is_empty():
        _raise_first_reject(rejects, mapping, table, ds)
    cols = _canonical_columns(ds, parsers, src, config)
    cols.append(pl.col(SOURCE_ROW))
    frame = good.select(cols)
    return frame, rejects, excluded, rows_in


def _record_rows(table: _Table, src: SourceConfig) -> tuple[pl.Series, pl.Series, list[pl.Series]]:
    """Which rows are records (not entirely blank, not footer), and the reader's row problems.

    Returns (keep, problem, [problem_rule, problem_msg]), one entry per table row; the
    rule and message columns only when a row is broken (CSV field count).
    """
    # which rows are records: not entirely blank, not footer
    blank = _blank_rows(table)
    n = table.height
    problem = pl.repeat(False, n, dtype=pl.Boolean, eager=True)
    problem_rule: list[pl.Series] = []  # rule and message columns, only when a row is broken
    if table.problems:
        rows = list(table.problems)
        problem = problem.scatter(rows, True)
        problem_rule = [
            pl.Series("_problem_rule", dtype=pl.String)
            .extend_constant(None, n)
            .scatter(rows, [r for r, _ in table.problems.values()]),
            pl.Series("_problem_msg", dtype=pl.String)
            .extend_constant(None, n)
            .scatter(rows, [m for _, m in table.problems.values()]),
        ]
    keep = ~blank | problem  # a row whose only values lie beyond the header is still a record
    if src.skip_footer_rows:
        footer = keep.arg_true().tail(src.skip_footer_rows)
        keep = keep.scatter(footer, False) if len(footer) else keep
    return keep, problem, problem_rule


def _blank_rows(table: _Table) -> pl.Series:
    """True for each row with no value in any column."""
    if not table.columns:
        return pl.repeat(True, table.height, dtype=pl.Boolean, eager=True)
    typed = [c for c in table.columns if isinstance(c, pl.Series) and c.dtype != pl.String]
    if typed:  # a value in a typed column settles it, with no pass over the text columns
        empty = pl.select(pl.all_horizontal([c.is_null() for c in typed])).to_series()
    else:
        empty = pl.repeat(True, table.height, dtype=pl.Boolean, eager=True)
    # Column by column, only the rows still without a value: usually the first column
    # (an ID) settles every row, and the rest are never scanned.
    undecided = empty.arg_true()
    for col in table.columns:
        if not len(undecided):
            break
        if isinstance(col, pl.Series):
            if col.dtype != pl.String:
                continue  # already counted above
            whole = len(undecided) == table.height
            part = _blank_mask(col if whole else col.gather(undecided))
        else:
            part = _blank_mask([col[i] for i in undecided.to_list()])
        undecided = undecided.filter(part)
    blank = pl.repeat(False, table.height, dtype=pl.Boolean, eager=True)
    return blank.scatter(undecided, True) if len(undecided) else blank


def _raise_first_reject(
    rejects: pl.DataFrame, mapping: Mapping[str, int], table: _Table, ds: Dataset
) -> None:
    """``on_bad_value = "raise"``: the first reject as one error naming file, column and row."""
    headers = table.headers
    first = rejects.row(0, named=True)
    col = first["column"] if first["column"] != "(row)" else None
    label = ""
    if col is not None and col in mapping and headers is not None:
        header = _norm_header(headers[mapping[col]])
        label = f" (file column {header!r})" if header != col else ""
    raise SourceError(
        f"{first['message']}{label}",
        path=table.display,
        dataset=ds.name,
        column=col,
        row=first[SOURCE_ROW],
    )


def _canonical_columns(
    ds: Dataset, parsers: Mapping[str, _Parsed], src: SourceConfig, config: Config
) -> list[pl.Expr]:
    """The dataset's fields in order: parsed values, typed constants, or nulls."""
    cols: list[pl.Expr] = []
    for f in ds.fields:
        if f.name in parsers:
            cols.append(pl.col(f"_val_{f.name}").cast(f.dtype).alias(f.name))
        elif f.name in src.constants:
            value = _typed_constant(f.name, src.constants[f.name], f, src, config)
            cols.append(pl.lit(value, dtype=f.dtype).alias(f.name))
        else:
            cols.append(pl.lit(None, dtype=f.dtype).alias(f.name))
    return cols


def _apply_expressions(
    raw: pl.DataFrame,
    table: _Table,
    src: SourceConfig,
    config: Config,
    mapping: Mapping[str, int],
    keep: pl.Series,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Add the derived fields as text columns; split off the rows ``where`` excludes."""
    if not src.derive and src.where is None:
        return raw, _empty_rejects()
    env = _expression_frame(table, src, mapping, keep)
    derived = _derived_columns(env, src, config)
    if derived:
        raw = raw.with_columns(derived)
    mask = _where_mask(env, derived, src, config)
    if mask is None:
        return raw, _empty_rejects()
    if "_problem" in raw.columns:  # a broken row is quarantined, never filtered
        mask = mask | raw.get_column("_problem")
    out = ~mask
    message = pl.lit(f"excluded by where = {src.where}")
    excluded = _excluded_rows(raw.filter(out), WHERE_RULE, message, table.display)
    return raw.filter(~out), excluded


def _rejects(work: pl.DataFrame, parsers: Mapping[str, _Parsed], display: str) -> pl.DataFrame:
    """One row per bad value, ordered by source row, then canonical column order."""
    parts: list[pl.DataFrame] = []
    bad = work.select(pl.col(f"_bad_{n}").any() for n in parsers).row(0) if parsers else ()
    for k, (name, p) in enumerate(parsers.items()):
        if not bad[k]:
            continue  # no bad value in this column: no pass over the frame
        raw_value = pl.col(name).cast(pl.String).str.strip_chars()  # a typed value as text
        mapped = pl.col(f"_clean_{name}").cast(pl.String)
        shown = (
            pl.when(raw_value == mapped)
            .then(pl.concat_str([pl.lit("'"), mapped, pl.lit("'")]))
            .otherwise(
                pl.concat_str(
                    [pl.lit("'"), raw_value, pl.lit("' (mapped to '"), mapped, pl.lit("')")]
                )
            )
        )
        part = work.filter(pl.col(f"_bad_{name}")).select(
            pl.col(SOURCE_ROW),
            pl.lit(name).alias("column"),
            raw_value.str.slice(0, _MAX_VALUE_CHARS).alias("value"),
            pl.lit(f"type:{name}").alias("rule"),
            pl.concat_str([shown, pl.lit(p.message)]).alias("message"),
            pl.lit(display).alias("file"),
            pl.lit(k + 1, dtype=pl.Int64).alias("_order"),
        )
        parts.append(part)
    if "_problem_rule" in work.columns:
        parts.append(
            work.filter(pl.col("_problem")).select(
                pl.col(SOURCE_ROW),
                pl.lit("(row)").alias("column"),
                pl.lit(None, dtype=pl.String).alias("value"),
                pl.col("_problem_rule").alias("rule"),
                pl.col("_problem_msg").alias("message"),
                pl.lit(display).alias("file"),
                pl.lit(0, dtype=pl.Int64).alias("_order"),
            )
        )
    if not parts:
        return _empty_rejects()
    out = pl.concat(parts, how="vertical")
    return out.sort(SOURCE_ROW, "_order").drop("_order").cast(REJECT_SCHEMA)  # type: ignore[arg-type]
