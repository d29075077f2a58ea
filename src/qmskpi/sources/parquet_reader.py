"""Parquet files read into a :class:`~qmskpi.sources.table._Table`: only the columns
the mapping reads, typed as stored, with the period's trend window pushed into the scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from qmskpi.config import SourceConfig
from qmskpi.datasets import SOURCE_ROW, Dataset
from qmskpi.errors import HeaderError, SourceError
from qmskpi.sources.expressions import _expression_names
from qmskpi.sources.table import _Column, _norm_header, _Table
from qmskpi.sources.window import _outside_window, _Window

_ROW_INDEX = "\x00row"
"""Row index column of a Parquet scan (a name no export uses)."""


def _read_parquet(
    path: Path, src: SourceConfig, ds: Dataset, display: str, window: _Window | None
) -> _Table:
    """Only the columns the mapping reads, typed as stored; the trend window pushed into the scan.

    A Parquet file has no header row of its own; rows are numbered as the same
    data exported to CSV would be (column names in row 1, first record in row 2).
    Columns nothing reads (ignored or unknown: the header check names those)
    are never decoded: they stand in the table as all-null columns.
    """
    if not path.stat().st_size:
        raise SourceError("empty file", path=display, dataset=src.dataset)
    try:
        schema = pl.read_parquet_schema(path)
        headers = list(schema)
        _check_parquet_names(path, headers)
        read = _parquet_columns(headers, src, ds)
        outside = _outside_window(window, headers, schema, src, ds)
        # With the window, the date (and lot) columns are read first and only the rows
        # inside it are decoded from the others (measured faster at 10M rows, the same at 1M).
        scan = pl.scan_parquet(
            path,
            row_index_name=_ROW_INDEX,
            row_index_offset=2,
            parallel="auto" if outside is None else "prefiltered",
        ).select(pl.col(_ROW_INDEX).cast(pl.Int64), *(headers[j] for j in read))
        if outside is None:
            frame, total = scan.collect(), None
        else:  # one filtered scan; the rows left out are the row numbers it did not return
            both = pl.collect_all([scan.filter(~outside), pl.scan_parquet(path).select(pl.len())])
            total = both.pop()
            frame = both.pop()
    except (SourceError, HeaderError):
        raise
    except pl.exceptions.DuplicateError as exc:
        raise HeaderError(
            f"duplicate header: {str(exc).strip().splitlines()[0]}; rename one in the export",
            path=display,
            dataset=src.dataset,
        ) from None
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(
            f"not a readable Parquet file (truncated or corrupt?): {first}",
            path=display,
            dataset=src.dataset,
        ) from None
    n = frame.height
    unread = pl.Series(dtype=pl.Null).extend_constant(None, n)
    columns: list[_Column] = [
        frame.get_column(headers[j]) if j in read else unread for j in range(len(headers))
    ]
    rows = frame.get_column(_ROW_INDEX).rename(SOURCE_ROW)
    table = _Table(display, headers, columns, rows)
    if total is not None and window is not None:
        table.outside = _missing_rows(rows, total.item() + 2)
        table.outside_note = window.note
    return table


def _missing_rows(rows: pl.Series, end: int) -> pl.Series:
    """The row numbers from 2 up to ``end`` (excluded) that ``rows`` (rising) lacks.

    From the gaps between consecutive rows: one comparison per row, no mask of the
    whole file.
    """
    row = pl.col(SOURCE_ROW)
    gaps = (
        pl.DataFrame([rows.extend_constant(end, 1)])
        .lazy()
        .select(start=row.shift(1, fill_value=1) + 1, end=row)
        .filter(pl.col("end") > pl.col("start"))
    )
    return (
        gaps.select(pl.int_ranges("start", "end").explode().alias(SOURCE_ROW)).collect().to_series()
    )


_POLARS_DEDUPS_PARQUET = tuple(int(p) for p in pl.__version__.split(".")[:2]) < (2, 0)
"""Polars 1.x reads a Parquet file with a repeated column name as if it had one (the last):
its schema has one entry. Polars 2 raises :class:`polars.exceptions.DuplicateError`."""


def _check_parquet_names(path: Path, headers: Sequence[str]) -> None:
    """A column name repeated in the file's own schema is a duplicate header, whichever
    polars reads it (the file's footer, read by pyarrow, lists every column)."""
    if not _POLARS_DEDUPS_PARQUET:
        return
    import pyarrow.parquet as pq

    names = pq.read_schema(path).names
    if len(names) != len(headers):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise pl.exceptions.DuplicateError(
            f"column with name {repeated[0]!r} has more than one occurrence"
        )


def _parquet_columns(headers: Sequence[str], src: SourceConfig, ds: Dataset) -> set[int]:
    """Indices of the columns the mapping reads (and blank-named ones, which the header check needs)."""
    wanted = {_norm_header(v) for v in src.columns.values()}
    wanted |= set(ds.field_names) | _expression_names(src)
    positions = {p - 1 for p in src.positions.values()}
    return {
        j
        for j, h in enumerate(headers)
        if j in positions or not _norm_header(h) or _norm_header(h) in wanted
    }
