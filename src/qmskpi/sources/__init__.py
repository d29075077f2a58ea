"""Reading sources: files and SQL queries mapped onto the canonical datasets.

Every source named in ``[sources.DATASET]`` of ``qmskpi.toml`` is read here and
mapped onto the canonical schema of :mod:`qmskpi.datasets`::

    from qmskpi import config, sources
    cfg = config.load_config("qmskpi.toml")
    complaints = sources.load_dataset(cfg, "complaints", period="2026-10")
    complaints.frame      # canonical columns + source_row, canonical dtypes
    complaints.rejects    # values that could not be parsed, one row per bad value

How a source is read, in order (``docs/sources.md`` has every mapping key):

1. The file is hashed (``sha256``, streamed) before anything parses it.
2. CSV is read by polars, the columns of int and float fields as numbers and
   every other column as a string (a cell it refuses: every column a string;
   the :mod:`csv` module takes over for rows polars refuses). Parquet is
   scanned for the mapped columns only, with the period's trend window pushed
   into the scan (rows wholly before it are excluded as ``outside_window``,
   see :data:`~qmskpi.sources.window._WINDOWED`).
   Typed values (Parquet, Excel cells, SQL values all of one type) of a
   field's kind stay typed; others are rendered as text in the form the
   mapping expects (a native date in the column's declared date format, a
   native boolean as the first of ``true_values``/``false_values``).
3. The raw header is checked before any library can rename a column: BOM
   residue, blank and duplicate headers, required fields with no column,
   and headers that are neither mapped, canonical nor ignored all raise
   :class:`~qmskpi.errors.HeaderError` with a did-you-mean hint.
4. Values are trimmed; ``na_values`` and per-column ``null_values`` become
   null; ``value_maps`` apply; then each column is parsed to its canonical
   type. Dates are parsed only with the format declared for the column (ISO
   ``%Y-%m-%d`` when none is declared): day-first versus month-first is never
   guessed.
5. A row with any value that cannot be parsed is removed from ``frame`` and
   each bad value is listed in ``rejects`` (``on_bad_value="quarantine"``), or
   the first one raises :class:`~qmskpi.errors.SourceError`
   (``on_bad_value="raise"``). Nothing is dropped silently: ``rows_in ==
   frame.height + rows_rejected`` always.

Rows that are entirely empty (every cell blank) are not records: they are
skipped and not counted in ``rows_in``, but they keep their place in the
``source_row`` numbering, which follows the rows a spreadsheet shows.

The modules, in the order a source goes through them (imports run the other way;
the contract is in ``pyproject.toml``):

* ``model``: what loading returns (:class:`LoadedDataset`, :class:`SourceFile`,
  :data:`REJECT_SCHEMA`, the rules of excluded records);
* ``table``: a source as read (raw header, raw columns, row numbers), header names as matched;
* ``text``: native and typed values as text; trimming, null words, value maps, defaults;
* ``parse``: text (or typed values) to each field's type; constants and defaults;
* ``expressions``: ``derive`` and ``where`` (polars SQL over the columns as text);
* ``window``: the period's trend window (:func:`sql_window`), pushed into Parquet scans;
* ``header``: the raw header checked, fields mapped to columns;
* ``csv_reader``, ``parquet_reader``, ``excel_reader``: one reader per file format;
* ``mapping``: one raw table mapped onto the canonical schema, rejects and exclusions;
* ``keys``: duplicate rows and surrogate keys;
* ``files`` and ``sql``: a file source (hashed, checked, read, mapped; globs) and a SQL source;
* ``load``: :func:`load_dataset` and :func:`load_all`.
"""

from __future__ import annotations

from qmskpi.sources.load import load_all, load_dataset
from qmskpi.sources.model import (
    DUPLICATE_RULE,
    OUTSIDE_WINDOW_RULE,
    REJECT_SCHEMA,
    SOURCE_FILE,
    SURROGATE_PREFIX,
    WHERE_RULE,
    LoadedData,
    LoadedDataset,
    OnBadValue,
    SourceFile,
)
from qmskpi.sources.parse import bool_words
from qmskpi.sources.sql import db_url, read_only_kwargs, sql_params
from qmskpi.sources.window import sql_window

__all__ = [
    "DUPLICATE_RULE",
    "OUTSIDE_WINDOW_RULE",
    "REJECT_SCHEMA",
    "SOURCE_FILE",
    "SURROGATE_PREFIX",
    "WHERE_RULE",
    "LoadedData",
    "LoadedDataset",
    "OnBadValue",
    "SourceFile",
    "bool_words",
    "db_url",
    "load_all",
    "load_dataset",
    "read_only_kwargs",
    "sql_params",
    "sql_window",
]
