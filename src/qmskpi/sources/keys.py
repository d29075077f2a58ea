"""Keys: rows identical in every field to an earlier row excluded as duplicates, and
surrogate keys (``sk-`` + 16 hex digits of the row's content) for an export with no ID.
"""

from __future__ import annotations

import hashlib
from typing import Any

import polars as pl

from qmskpi.config import SourceConfig
from qmskpi.datasets import SOURCE_ROW, Dataset
from qmskpi.sources.header import _surrogate
from qmskpi.sources.model import (
    DUPLICATE_RULE,
    REJECT_SCHEMA,
    SOURCE_FILE,
    SURROGATE_PREFIX,
    _empty_rejects,
)
from qmskpi.sources.table import _norm_header, _Table


def _drop_duplicates(
    frame: pl.DataFrame, ds: Dataset, display: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows identical in every field to an earlier row -> (kept rows, excluded ``duplicate`` rows).

    "Earlier" is source order: file by file (a glob's files sorted by path),
    row by row. The message names the row that is kept. Identical rows share
    their key, so only the rows whose key repeats are compared field by field.
    """
    fields = [f.name for f in ds.fields]
    key = list(ds.key)
    if frame.height < 2 or not _may_repeat(frame, key):
        return frame, _empty_rejects()
    has_file = SOURCE_FILE in frame.columns
    file_col = pl.col(SOURCE_FILE) if has_file else pl.lit(display, dtype=pl.String)
    same_key = pl.struct(key).is_duplicated() if len(key) > 1 else pl.col(key[0]).is_duplicated()
    marked = (
        frame.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("_i"))
        .filter(same_key)
        .with_columns(file_col.alias("_file"), pl.col("_i").min().over(fields).alias("_first"))
    )
    dup = pl.col("_i") != pl.col("_first")
    dups = marked.filter(dup)
    if not dups.height:
        return frame, _empty_rejects()
    first = marked.select(
        pl.col("_i").alias("_first"),
        pl.col(SOURCE_ROW).alias("_first_row"),
        pl.col("_file").alias("_first_file"),
    )
    dups = dups.join(first, on="_first", how="left").sort("_i")
    message = pl.format(
        "identical in every field to row {} of {}: kept once",
        pl.col("_first_row"),
        pl.col("_first_file"),
    )
    excluded = dups.select(
        pl.col(SOURCE_ROW),
        pl.lit("(row)").alias("column"),
        pl.lit(None, dtype=pl.String).alias("value"),
        pl.lit(DUPLICATE_RULE).alias("rule"),
        message.alias("message"),
        pl.col("_file").alias("file"),
    ).cast(REJECT_SCHEMA)  # type: ignore[arg-type]
    drop = pl.repeat(False, frame.height, dtype=pl.Boolean, eager=True).scatter(dups["_i"], True)
    return frame.filter(~drop), excluded


def _may_repeat(frame: pl.DataFrame, columns: list[str]) -> bool:
    """Could two rows be equal in ``columns``? False only when no two rows can be.

    A single key column without nulls whose values rise strictly from row to row
    (an export sorted by its ID) cannot repeat: one comparison per row, no
    hashing. Otherwise, no two rows are equal when no two rows' hashes are.
    """
    if len(columns) == 1:
        s = frame.get_column(columns[0])
        if not s.null_count() and _rising(s):
            return False
    return frame.select(columns).hash_rows().n_unique() < frame.height


def _rising(s: pl.Series) -> bool:
    """Does every value of ``s`` (no nulls) exceed the one before?

    Chunk by chunk (a Parquet frame keeps one chunk per row group): a column compared
    with itself shifted by a row would line up the chunks with a copy of the column.
    """
    last: Any = None
    for chunk in s.get_chunks():
        if not len(chunk):
            continue
        if last is not None and not chunk[0] > last:
            return False
        if not bool((chunk.slice(1) > chunk.slice(0, len(chunk) - 1)).all()):
            return False
        last = chunk[-1]
    return True


def _with_surrogate(
    frame: pl.DataFrame, src: SourceConfig, ds: Dataset, has_key: bool
) -> pl.DataFrame:
    """Fill a missing single-column key with ``sk-`` + 16 hex digits of the row's content.

    The content is every other canonical column, as text (dates ISO, nulls
    marked), in the canonical order; a second identical row gets ``-2``, a
    third ``-3`` (in source order). The same rows give the same keys on every
    run; a row whose content changes gets a new key.
    """
    if has_key or not _surrogate(src, ds, ds.key[0]):
        return frame
    key = ds.key[0]
    others = [f.name for f in ds.fields if f.name != key]
    parts = frame.select(
        pl.concat_str(
            [pl.col(c).cast(pl.String).fill_null("\x00") for c in others], separator="\x1f"
        ).alias("content")
    ).with_columns((pl.int_range(pl.len()).over("content") + 1).alias("n"))
    content, nth = parts.get_column("content"), parts.get_column("n")
    ids = [
        SURROGATE_PREFIX
        + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        + ("" if n == 1 else f"-{n}")
        for text, n in zip(content.to_list(), nth.to_list(), strict=True)
    ]
    return frame.with_columns(pl.Series(key, ids, dtype=pl.String))


def _key_mapped(table: _Table, src: SourceConfig, ds: Dataset) -> bool:
    """Did the source provide the (single) key column itself?"""
    if len(ds.key) != 1:
        return True
    key = ds.key[0]
    if key in src.positions or key in src.constants:
        return True
    if table.headers is None:
        return False
    names = {_norm_header(h) for h in table.headers}
    if key in src.columns:
        return _norm_header(src.columns[key]) in names
    return key in names
