"""A loaded dataset conformed to its canonical schema, ready for the checks.

Values that will not convert to the canonical type, and the rows the source
reader could not use, become *rejects*: they are quarantined under the reader's
rule (``type:<column>``), and the loader's own ledger is checked here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Protocol

import polars as pl

from qmskpi.contracts.report import MAX_VALUE_CHARS
from qmskpi.contracts.schema import WORD_OF_TYPE, Contract
from qmskpi.datasets import DATASETS, SOURCE_ROW, Field, FieldType
from qmskpi.errors import QmsKpiError

ROW = "__qmskpi_row"
"""Position of a row in :attr:`Prepared.frame` (0-based): lines masks up with the frame."""


class LoadedLike(Protocol):
    """What :func:`validate` needs of a loaded dataset (``sources.LoadedDataset`` fits)."""

    @property
    def dataset(self) -> str: ...

    @property
    def frame(self) -> pl.DataFrame: ...

    @property
    def rejects(self) -> pl.DataFrame: ...

    @property
    def origin(self) -> str: ...

    @property
    def sha256(self) -> str: ...

    @property
    def rows_in(self) -> int: ...


@dataclass
class Prepared:
    """One dataset, conformed to its canonical schema, ready for the checks."""

    name: str
    contract: Contract
    loaded: LoadedLike
    frame: pl.DataFrame
    """Canonical columns present (canonical dtypes) + source_row (+ file) + ROW."""
    rejects: pl.DataFrame
    """Reader rejects plus values qmskpi could not cast (QUARANTINE_SCHEMA minus severity)."""
    missing: tuple[str, ...]
    origin: str
    rows_rejected: int
    excluded: pl.DataFrame
    """The reader's excluded records (``where``, ``duplicate``) in the shape of ``rejects``."""


_REJECT_COLUMNS = ("file", SOURCE_ROW, "rule", "column", "value", "message")


def _cast_fields(
    frame: pl.DataFrame, present: list[Field], file_expr: pl.Expr, *, has_file: bool
) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """Cast ``present`` fields to their canonical dtype and add a row id.

    Rows with a value that will not cast leave the frame as ``type:<column>``
    rejects (one frame per column).
    """
    casts: list[pl.Expr] = []
    bad: dict[str, str] = {}
    for f in present:
        current = frame.schema[f.name]
        value = _cast_expr(pl.col(f.name), current, f.type, f.dtype)
        if f.type == "float":
            value = value.cast(pl.Float64).fill_nan(None)
        casts.append(value.alias(f"_cast_{f.name}"))
        if current != f.dtype:
            bad[f.name] = WORD_OF_TYPE[f.type]
    frame = frame.with_columns(casts)
    flags = {n: pl.col(n).is_not_null() & pl.col(f"_cast_{n}").is_null() for n in bad}
    conform_rejects = [
        frame.filter(expr).select(
            file_expr,
            pl.col(SOURCE_ROW),
            pl.lit(f"type:{n}").alias("rule"),
            pl.lit(n).alias("column"),
            pl.col(n).cast(pl.String).str.slice(0, MAX_VALUE_CHARS).alias("value"),
            pl.format("'{}' is not a {} value", pl.col(n).cast(pl.String), pl.lit(bad[n])).alias(
                "message"
            ),
        )
        for n, expr in flags.items()
    ]
    if flags:
        frame = frame.filter(~pl.any_horizontal(list(flags.values())))
    frame = frame.select(
        *[pl.col(f"_cast_{f.name}").alias(f.name) for f in present],
        pl.col(SOURCE_ROW),
        *([pl.col("file")] if has_file else []),
    )
    return frame.with_columns(_row_ids(frame)), conform_rejects


def _row_ids(frame: pl.DataFrame) -> pl.Series:
    """``0 .. height - 1`` in the chunks of ``frame``'s columns (the :data:`ROW` column).

    A loaded Parquet frame keeps a chunk per row group. A column in other chunks
    (``pl.int_range`` gives one) would make polars copy the whole frame into one chunk
    per column while the loaded frame is still held: +1.1 GB at 10M inspections.
    """
    lengths = frame.get_column(frame.columns[0]).chunk_lengths() if frame.width else []
    parts, start = [], 0
    for n in lengths or [frame.height]:
        parts.append(pl.int_range(start, start + n, dtype=pl.Int64, eager=True))
        start += n
    return pl.concat(parts, rechunk=False).alias(ROW)


def prepare(name: str, loaded: LoadedLike, contract: Contract) -> Prepared:
    """Canonical dtypes (values that will not cast become rejects), NaN as null, a row id.

    Frames from :mod:`qmskpi.sources` already carry canonical dtypes; a frame
    built by hand (a notebook) is cast here, and a value that will not cast
    quarantines its row under ``type:<column>``, as the reader would.
    """
    ds = DATASETS[name]
    origin = str(loaded.origin)
    frame = loaded.frame
    if SOURCE_ROW not in frame.columns:  # a frame built by hand: number rows as a CSV would
        frame = frame.with_columns(
            pl.int_range(2, frame.height + 2, dtype=pl.Int64).alias(SOURCE_ROW)
        )
    # The file a row came from: a ``source_file`` column when the frame has one,
    # else the origin (added only where rows are reported, not to every row).
    has_file = "source_file" in frame.columns
    frame = frame.with_columns(pl.col(SOURCE_ROW).cast(pl.Int64))
    if has_file:
        frame = frame.with_columns(pl.col("source_file").cast(pl.String).alias("file"))
    file_expr = pl.col("file") if has_file else pl.lit(origin, dtype=pl.String).alias("file")
    present = [f for f in ds.fields if f.name in frame.columns]
    missing = tuple(f.name for f in ds.fields if f.name not in frame.columns)

    frame, conform_rejects = _cast_fields(frame, present, file_expr, has_file=has_file)

    rejects = _reader_rejects(loaded.rejects, origin)
    rows_rejected = _distinct_rows(rejects)
    raw_excluded = getattr(loaded, "excluded", None)  # a hand-built LoadedLike may have none
    excluded = _reader_rejects(raw_excluded if raw_excluded is not None else pl.DataFrame(), origin)
    if loaded.rows_in != loaded.frame.height + rows_rejected + excluded.height:
        raise QmsKpiError(
            f"dataset '{name}' ({origin}): the loader's ledger does not balance: rows_in "
            f"{loaded.rows_in} != {loaded.frame.height} rows in the frame + {rows_rejected} "
            f"rejected rows + {excluded.height} excluded rows"
        )
    conform_rejects = [c for c in conform_rejects if c.height]
    if conform_rejects:
        rejects = pl.concat([rejects, *[c.select(_REJECT_COLUMNS) for c in conform_rejects]])
    return Prepared(
        name=name,
        contract=contract,
        loaded=loaded,
        frame=frame,
        rejects=rejects,
        missing=missing,
        origin=origin,
        rows_rejected=_distinct_rows(rejects),
        excluded=excluded,
    )


def known_on(prep: Prepared, as_of: date) -> Prepared:
    """The dataset as it was known on ``as_of`` (a backfill on a later export).

    The record's own date is the field of the contract's first ``range`` rule
    bounded by ``max: as_of`` (``received_date``, ``opened_date``, ``month``...).
    A row whose record date is after ``as_of`` did not exist yet: it is left
    out, excluded under rule ``after_as_of`` (not quarantined by the
    ``*_not_future`` rules). Later dates bounded the same way (``closed_date``)
    that fall after ``as_of`` had not happened yet: the date becomes empty, a
    ``status`` becomes ``open`` and ``effectiveness_verified`` false.
    """
    dated = [
        c
        for c in prep.contract.dated_by_as_of
        if c in prep.frame.columns and prep.frame.schema[c] == pl.Date
    ]
    if not dated:
        return prep
    record, later = dated[0], dict.fromkeys(dated[1:])
    known = (pl.col(record) <= as_of).fill_null(True)
    after = prep.frame.filter(~known).select(
        pl.col("file") if "file" in prep.frame.columns else pl.lit(prep.origin).alias("file"),
        pl.col(SOURCE_ROW),
        pl.lit("after_as_of").alias("rule"),
        pl.lit(record).alias("column"),
        pl.col(record).cast(pl.String).alias("value"),
        pl.format("{} is after the as-of date {}", pl.col(record), pl.lit(str(as_of))).alias(
            "message"
        ),
    )
    frame = prep.frame.filter(known)
    for col in later:
        late = (pl.col(col) > as_of).fill_null(False)
        undo = [pl.when(late).then(None).otherwise(pl.col(col)).alias(col)]
        if "status" in frame.columns:
            undo.append(
                pl.when(late).then(pl.lit("open")).otherwise(pl.col("status")).alias("status")
            )
        if "effectiveness_verified" in frame.columns:
            undo.append(
                pl.when(late)
                .then(pl.lit(False))
                .otherwise(pl.col("effectiveness_verified"))
                .alias("effectiveness_verified")
            )
        frame = frame.with_columns(undo)
    frame = frame.with_columns(_row_ids(frame))
    excluded = (
        pl.concat([prep.excluded, after.cast(prep.excluded.schema)])
        if after.height
        else prep.excluded
    )
    return replace(prep, frame=frame, excluded=excluded)


def _cast_expr(col: pl.Expr, current: pl.DataType, ftype: FieldType, dtype: pl.DataType) -> pl.Expr:
    """``col`` as the canonical type; a value that does not convert becomes null."""
    if current == dtype:
        return col
    if ftype == "date" and current == pl.String:
        return col.str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
    if ftype == "date" and isinstance(current, pl.Datetime):
        return col.dt.date()
    if ftype == "bool" and current == pl.String:
        low = col.str.strip_chars().str.to_lowercase()
        return (
            pl.when(low.is_in(["true", "yes", "y", "1", "t"]))
            .then(pl.lit(True))
            .when(low.is_in(["false", "no", "n", "0", "f"]))
            .then(pl.lit(False))
            .otherwise(pl.lit(None, dtype=pl.Boolean))
        )
    if ftype == "int" and current.is_float():
        return pl.when(col == col.floor()).then(col).otherwise(None).cast(pl.Int64, strict=False)
    if ftype == "int" and current == pl.String:
        return col.str.strip_chars().cast(pl.Int64, strict=False)
    if ftype == "float" and current == pl.String:
        return col.str.strip_chars().cast(pl.Float64, strict=False)
    if ftype == "str":
        return col.cast(pl.String)
    return col.cast(dtype, strict=False)


def _reader_rejects(rejects: pl.DataFrame, origin: str) -> pl.DataFrame:
    """The reader's rejects in a fixed shape; ``file`` filled with the origin when absent."""
    cols = rejects.columns
    if rejects.height and (SOURCE_ROW not in cols or "rule" not in cols):
        raise QmsKpiError(
            f"rejects of {origin} need columns source_row, column, value, rule, message; "
            f"got {', '.join(cols)}"
        )
    exprs = [
        (pl.col("file") if "file" in cols else pl.lit(origin)).cast(pl.String).alias("file"),
        (pl.col(SOURCE_ROW) if SOURCE_ROW in cols else pl.lit(None))
        .cast(pl.Int64)
        .alias(SOURCE_ROW),
    ]
    for c in ("rule", "column", "value", "message"):
        exprs.append((pl.col(c) if c in cols else pl.lit(None)).cast(pl.String).alias(c))
    return rejects.select(exprs).with_columns(pl.col("column").fill_null(""))


def _distinct_rows(rejects: pl.DataFrame) -> int:
    if rejects.is_empty():
        return 0
    return int(rejects.select(pl.struct("file", SOURCE_ROW).n_unique()).item())


# --------------------------------------------------------------------------- row masks (polars)
