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
   see :data:`_WINDOWED`).
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
"""

from __future__ import annotations

import codecs
import concurrent.futures
import csv
import datetime as dt
import decimal
import fnmatch
import functools
import glob
import hashlib
import io
import json
import math
import operator
import re
import warnings
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl

from qmskpi import _reprs, progress
from qmskpi.config import SITE_REGEX, SITE_RULE_TEXT, Config, SourceConfig
from qmskpi.datasets import DATASETS, SOURCE_ROW, Dataset, Field, empty_frame
from qmskpi.errors import ConfigError, HeaderError, SourceError, did_you_mean
from qmskpi.periods import Period, parse_period, trailing_months

__all__ = [
    "DUPLICATE_RULE",
    "OUTSIDE_WINDOW_RULE",
    "REJECT_SCHEMA",
    "SOURCE_FILE",
    "WHERE_RULE",
    "LoadedData",
    "LoadedDataset",
    "OnBadValue",
    "SourceFile",
    "load_all",
    "load_dataset",
    "sql_window",
]

OnBadValue = Literal["quarantine", "raise"]
"""What a value that cannot be parsed does: quarantine its row, or raise."""

REJECT_SCHEMA: dict[str, pl.DataType] = {
    SOURCE_ROW: pl.Int64(),
    "column": pl.String(),
    "value": pl.String(),
    "rule": pl.String(),
    "message": pl.String(),
    "file": pl.String(),
}
"""Columns of :attr:`LoadedDataset.rejects`, one row per bad value.

``column`` is the canonical column, ``rule`` is ``type:<column>`` for a value
that is not of the column's type (``shape:fields`` for a CSV row with more
fields than the header), ``file`` the file the row came from (``sql:NAME`` for
a query): with a glob, ``source_row`` counts per file.
"""

DUPLICATE_RULE = "duplicate"
"""Rule of an excluded row identical in every field to an earlier row (:attr:`LoadedDataset.excluded`)."""

WHERE_RULE = "where"
"""Rule of a row excluded by the source's ``where`` condition (:attr:`LoadedDataset.excluded`)."""

SOURCE_FILE = "source_file"
"""Extra frame column of a glob source: the file each row came from (``source_row`` counts per file)."""

SURROGATE_PREFIX = "sk-"
"""Prefix of derived keys (``surrogate_key = true``): ``sk-`` + 16 hex digits."""

_CANONICAL_TRUE = "true"
_CANONICAL_FALSE = "false"
_MAX_VALUE_CHARS = 200
_FORMATS: dict[str, Literal["csv", "parquet", "excel"]] = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "csv",
    ".tab": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "excel",
    ".xlsm": "excel",
}
_HEAD_BYTES = 8192
"""Leading bytes read to tell a binary file (and the format it really is) from text."""
_BOM_RESIDUE = ("\ufeff", "ï»¿", "ÿþ", "þÿ")
_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")
"""Bind parameters as SQLAlchemy's ``text()`` finds them."""


@dataclass(frozen=True)
class SourceFile:
    """One file read for a dataset (a glob reads several)."""

    path: str
    """Display path: relative to the config file's folder when inside it."""
    sha256: str
    """sha256 of the file's bytes, taken before parsing."""
    rows_in: int


@dataclass(frozen=True)
class LoadedDataset:
    """One dataset read from its source and mapped onto the canonical schema."""

    dataset: str
    frame: pl.DataFrame
    """Canonical columns (``DATASETS`` order, canonical dtypes) + ``source_row``.

    A glob source adds ``source_file`` (the file of each row), since ``source_row``
    then counts within each file.
    """
    rejects: pl.DataFrame
    """One row per value that could not be parsed (:data:`REJECT_SCHEMA`)."""
    origin: str
    """Where the data came from: a path relative to the config, a glob with its files, or ``sql:NAME``."""
    sha256: str
    rows_in: int
    """Data records read (title, header, footer and entirely blank rows excluded)."""
    files: tuple[SourceFile, ...] = ()
    """Each file read, with its own hash and row count (empty for SQL)."""

    @property
    def rows_rejected(self) -> int:
        """Records removed from ``frame`` because a value could not be parsed.

        ``rows_in == frame.height + rows_rejected + rows_excluded`` always. For one file (or a
        query) this is ``rejects["source_row"].n_unique()``; for a glob, rows
        are told apart by ``file`` too.
        """
        if self.rejects.is_empty():
            return 0
        return self.rejects.select(pl.struct("file", SOURCE_ROW).n_unique()).item()  # type: ignore[no-any-return]

    excluded: pl.DataFrame = field(default_factory=lambda: _empty_rejects())
    """Records set aside on purpose, not errors (:data:`REJECT_SCHEMA`, one row each).

    ``rule`` is ``where`` (the source's ``where`` condition was not true),
    ``duplicate`` (identical in every field to an earlier row, named in
    ``message``) or ``outside_window`` (wholly before the period's trend window).
    ``rows_in == frame.height + rows_rejected + rows_excluded``.
    """

    @property
    def rows_excluded(self) -> int:
        """Records left out by the ``where`` condition, as duplicates or outside the window."""
        return self.excluded.height

    @property
    def excluded_by(self) -> dict[str, int]:
        """Excluded records by rule (``where``, ``duplicate``), only rules that excluded any."""
        counts = Counter(self.excluded.get_column("rule").to_list()) if self.excluded.height else {}
        return dict(sorted(counts.items()))

    def __repr__(self) -> str:
        return (
            f"<LoadedDataset {self.dataset} from {_reprs.tail(self.origin)}: "
            f"{_reprs.count(self.rows_in, 'row')} in, {self.frame.height:,} read, "
            f"{self.rows_rejected:,} rejected, {self.rows_excluded:,} excluded>"
        )

    def _repr_html_(self) -> str:
        lines = [
            ("from", _reprs.tail(self.origin)),
            ("files", _reprs.names(f.path for f in self.files)),
            ("sha256", self.sha256[:16] + "…"),
            ("rows in", f"{self.rows_in:,}"),
            ("read", f"{self.frame.height:,}"),
            ("rejected (values not parsed)", f"{self.rows_rejected:,}"),
            ("excluded", ", ".join(f"{n:,} {r}" for r, n in self.excluded_by.items()) or "0"),
        ]
        return _reprs.html_summary(f"Loaded dataset: {self.dataset}", lines)


LoadedData = dict[str, LoadedDataset]
"""Every configured dataset, by name (what :func:`load_all` returns)."""


# --------------------------------------------------------------------------- public API


def load_dataset(
    config: Config,
    dataset: str,
    *,
    period: Period | str | None = None,
    trend_months: int | None = None,
    lookback_days: int | None = None,
    site: str | None = None,
    on_bad_value: OnBadValue = "quarantine",
) -> LoadedDataset:
    """Read the source of ``dataset`` and map it onto the canonical schema.

    For a Parquet file, ``period`` pushes the trend window into the scan:
    records no KPI of the period reads are excluded as ``outside_window``
    (``docs/sources.md``, "The trend window"). For a SQL source, ``period`` sets the window the
    query pulls (see :func:`sql_window`): ``:period_start`` is bound to the
    first day of the trend window (``trend_months`` months ending with the
    period's last month, default ``[review] trend_months``) minus
    ``lookback_days`` (default ``[kpis] repeat_window_days``, 90), and
    ``:period_end`` to the period's last day. ``:site`` is bound to ``site``
    (``None`` for the whole organisation). Only the parameters the query
    names are passed, always bound, never formatted into the SQL.
    """
    if on_bad_value not in ("quarantine", "raise"):
        raise ValueError(f"on_bad_value must be 'quarantine' or 'raise', got {on_bad_value!r}")
    if dataset not in config.sources:
        raise ConfigError(
            f"no [sources.{dataset}] table{did_you_mean(dataset, config.sources)}; "
            f"configured: {', '.join(config.sources) or 'none'}",
            path=config.path,
            key=f"sources.{dataset}",
        )
    src = config.sources[dataset]
    ds = DATASETS[dataset]
    _check_source(config, src, ds)
    if src.kind == "sql":
        return _load_sql(
            config,
            src,
            ds,
            period=period,
            trend_months=trend_months,
            lookback_days=lookback_days,
            site=site,
            on_bad_value=on_bad_value,
        )
    window = _window(config, ds, period) if period is not None else None
    return _load_files(config, src, ds, on_bad_value=on_bad_value, window=window)


def load_all(
    config: Config,
    *,
    period: Period | str | None = None,
    site: str | None = None,
    on_bad_value: OnBadValue = "quarantine",
    skip: Collection[str] = (),
) -> LoadedData:
    """Every dataset in ``config.sources`` but those in ``skip``, in the order the config
    lists them (``skip``: sources with ``pushdown = true`` the caller validates and
    aggregates in their database instead, :mod:`qmskpi.pushdown`).

    Parquet and CSV files are read two at a time (:data:`_FILE_READERS`): much of a file's
    mapping (the text checks) runs on one core, and the next file's scan uses the other.
    Excel files and SQL sources are read one after the other, in this thread, meanwhile.
    The datasets, and the first error in the config's order, are those a one-by-one read
    gives.

    Reports each dataset, in the config's order, to :mod:`qmskpi.progress` as it is
    awaited (``load``, rows read so far).
    """
    names = [n for n in config.sources if n not in skip]

    def one(name: str) -> LoadedDataset:
        return load_dataset(config, name, period=period, site=site, on_bad_value=on_bad_value)

    files = [n for n in names if _concurrent(config.sources[n])]
    loaded: LoadedData = {}
    rows = 0
    with concurrent.futures.ThreadPoolExecutor(
        _FILE_READERS, thread_name_prefix="qmskpi-load"
    ) as pool:
        futures = {n: pool.submit(one, n) for n in files} if len(files) > 1 else {}
        try:
            for name in names:  # each dataset reported in the config's order, as it is awaited
                progress.emit("load", detail=name, rows=rows)
                loaded[name] = futures[name].result() if name in futures else one(name)
                rows += loaded[name].rows_in
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    progress.emit("load", detail="", rows=rows)
    return loaded


_FILE_READERS = 2
"""Files read at once by :func:`load_all` (polars' own threads work inside each)."""


def _concurrent(src: SourceConfig) -> bool:
    """May ``src`` be read beside another file? Parquet and CSV files: yes. Not Excel
    (openpyxl's warnings are silenced through the process-wide filters) nor SQL."""
    if src.kind != "file" or src.path is None:
        return False
    fmt = src.format or _FORMATS.get(Path(src.path).suffix.lower())
    return fmt in ("parquet", "csv")


def sql_window(
    period: Period | str, *, trend_months: int = 24, lookback_days: int = 90
) -> tuple[dt.date, dt.date]:
    """The dates a SQL source pulls for ``period``: ``(:period_start, :period_end)``.

    The start is the first day of the trend window (the ``trend_months``
    calendar months ending with the period's last month) minus
    ``lookback_days`` (for the repeat-complaint look-back); the end is the
    period's last day.

    >>> sql_window("2026-10", trend_months=24, lookback_days=90)
    (datetime.date(2024, 8, 3), datetime.date(2026, 10, 31))
    """
    p = parse_period(period)
    if lookback_days < 0:
        raise ValueError(f"lookback_days must be zero or more, got {lookback_days}")
    first = trailing_months(p, trend_months)[0].start
    return first - dt.timedelta(days=lookback_days), p.end


# --------------------------------------------------------------------------- checks


def _config_error(src: SourceConfig, key: str, message: str, config: Config) -> ConfigError:
    return ConfigError(message, path=config.path, key=f"sources.{src.dataset}.{key}")


def _check_source(config: Config, src: SourceConfig, ds: Dataset) -> None:
    """Mapping rules that need the dataset and the source kind together."""
    for name in ds.field_names:
        ways = [
            k
            for k, m in (
                ("columns", src.columns),
                ("positions", src.positions),
                ("constants", src.constants),
                ("derive", src.derive),
            )
            if name in m
        ]
        if len(ways) > 1:
            raise _config_error(
                src,
                ways[1],
                f"'{name}' is mapped twice ({' and '.join(ways)}): map it once",
                config,
            )
    for name in src.defaults:
        if name in src.constants:
            raise _config_error(
                src,
                f"defaults.{name}",
                f"'{name}' is a constant, so it is never blank: drop the default",
                config,
            )
        _typed_constant(name, src.defaults[name], ds.field(name), src, config, key="defaults")
    if src.surrogate_key and len(ds.key) != 1:
        raise _config_error(
            src,
            "surrogate_key",
            f"dataset '{ds.name}' is keyed by ({', '.join(ds.key)}): "
            "a surrogate key only replaces a single ID column",
            config,
        )
    if src.skip_footer_rows < 0:
        raise _config_error(src, "skip_footer_rows", "must be zero or more", config)
    if src.kind == "sql":
        return
    if not src.has_header and src.columns:
        raise _config_error(
            src,
            "columns",
            "has_header = false: a file without a header maps columns with positions",
            config,
        )
    if len(src.delimiter) != 1:
        raise _config_error(src, "delimiter", 'must be one character ("\\t" for a tab)', config)
    if len(src.quote_char) > 1:
        raise _config_error(src, "quote_char", 'must be one character, or "" for none', config)
    if isinstance(src.sheet, int) and src.sheet < 1:
        raise _config_error(src, "sheet", "sheet numbers are 1-based: 1 is the first sheet", config)
    try:
        codecs.lookup(src.encoding)
    except LookupError:
        raise _config_error(
            src,
            "encoding",
            f"unknown encoding {src.encoding!r}; use utf-8, utf-8-sig, cp1252 or latin-1",
            config,
        ) from None


# --------------------------------------------------------------------------- raw tables

_Column = pl.Series | list[Any]


@dataclass
class _Table:
    """A source as read: raw header, raw columns (text or native), row numbers."""

    display: str
    headers: list[str] | None
    columns: list[_Column]
    source_row: pl.Series
    problems: dict[int, tuple[str, str]] = field(default_factory=dict)
    """row index -> (rule, message) for rows broken as a whole (CSV field count)."""
    outside: pl.Series | None = None
    """Source rows left out of the scan as wholly before the trend window (Parquet)."""
    outside_note: str = ""

    @property
    def height(self) -> int:
        return len(self.source_row)


def _header_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    return _cell_text(value, None) or ""


def _norm_header(name: str) -> str:
    """Header as matched: surrounding whitespace removed, inner runs as one space."""
    return " ".join(name.split())


# --------------------------------------------------------------------------- CSV


class _Lines:
    """Line iterator over a text that remembers how many characters it handed out."""

    def __init__(self, text: str):
        self.text = text
        self.consumed = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        text, pos = self.text, self.consumed
        if pos >= len(text):
            raise StopIteration
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end + 1
        self.consumed = end
        return text[pos:end]


_MAGIC: tuple[tuple[bytes, str, str, str], ...] = (
    # (leading bytes, what the file is, the format qmskpi reads it as ("" none), what to do)
    (b"\x1f\x8b", "a gzip-compressed file", "", "decompress it first (gunzip)"),
    (b"BZh", "a bzip2-compressed file", "", "decompress it first (bunzip2)"),
    (b"\xfd7zXZ\x00", "an xz-compressed file", "", "decompress it first (unxz)"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file", "", "decompress it first (unzstd)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "", "extract the CSV first"),
    (
        b"PK\x03\x04",
        "a ZIP archive (an .xlsx workbook is one)",
        "excel",
        'if it is a workbook set format = "excel", else extract the CSV first',
    ),
    (
        b"\xd0\xcf\x11\xe0",
        "an old binary Excel .xls (or other OLE) file",
        "",
        "save it as .xlsx or CSV",
    ),
    (b"PAR1", "a Parquet file", "parquet", 'set format = "parquet"'),
    (b"\x89PNG", "a PNG image", "", "point the source at the data export"),
    (b"\xff\xd8\xff", "a JPEG image", "", "point the source at the data export"),
    (b"%PDF", "a PDF document", "", "export the data as CSV or Excel instead"),
)


def _check_not_binary(data: bytes, fmt: str, src: SourceConfig, display: str) -> None:
    """A compressed, image, PDF or other binary file read as ``fmt`` is named for what it is."""
    for magic, what, readable_as, todo in _MAGIC:
        if data.startswith(magic):
            if readable_as == fmt:
                return
            raise SourceError(
                f"this is {what}, not {_FORMAT_WORDS[fmt]}: {todo}",
                path=display,
                dataset=src.dataset,
            )
    utf16 = src.encoding.lower().startswith("utf-16") or data[:2] in (b"\xff\xfe", b"\xfe\xff")
    if fmt == "csv" and b"\x00" in data[:_HEAD_BYTES] and not utf16:
        raise SourceError(
            "this is binary data (it holds NUL bytes), not CSV text; export the data as CSV",
            path=display,
            dataset=src.dataset,
        )


_FORMAT_WORDS = {"csv": "CSV text", "parquet": "a Parquet file", "excel": "an .xlsx workbook"}


def _decode(data: bytes, src: SourceConfig, display: str) -> str:
    enc = codecs.lookup(src.encoding).name
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") and not enc.startswith("utf-16"):
        raise HeaderError(
            'the file starts with a UTF-16 byte-order mark; set encoding = "utf-16"',
            path=display,
            dataset=src.dataset,
        )
    try:
        return data.decode(src.encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        hint = (
            'the file may be Windows-1252: set encoding = "cp1252"'
            if enc.startswith("utf-8")
            else "check the file's encoding"
        )
        raise SourceError(
            f"byte 0x{data[exc.start]:02x} at offset {exc.start} (line {line}) is not valid "
            f"{src.encoding}; {hint}",
            path=display,
            dataset=src.dataset,
        ) from None


def _csv_kwargs(src: SourceConfig) -> dict[str, Any]:
    if src.quote_char:
        return {"delimiter": src.delimiter, "quotechar": src.quote_char, "doublequote": True}
    return {"delimiter": src.delimiter, "quoting": csv.QUOTE_NONE}


def _read_csv(data: bytes, src: SourceConfig, ds: Dataset, display: str) -> _Table:
    table = _read_csv_utf8(data, src, ds, display)
    if table is not None:
        return table
    text = _decode(data, src, display)
    if not text or text.isspace():  # (no stripped copy of the whole text)
        raise SourceError("empty file", path=display, dataset=src.dataset)
    if text.startswith(_BOM_RESIDUE):
        raise HeaderError(
            f"the file starts with byte-order-mark residue "
            f"{next(b for b in _BOM_RESIDUE if text.startswith(b))!r} (read as {src.encoding}); "
            'set encoding = "utf-8-sig"',
            path=display,
            dataset=src.dataset,
        )
    same_bytes = codecs.lookup(src.encoding).name == "utf-8"  # text is exactly ``data``
    if "\r" in text:  # CRLF and CR-only line endings (and line breaks inside quotes) become \n
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        same_bytes = False
    kwargs = _csv_kwargs(src)
    lines = _Lines(text)
    reader = csv.reader(lines, **kwargs)
    skip = src.header_row if src.has_header else src.header_row - 1
    head: list[list[str]] = []
    try:
        for _ in range(skip):
            head.append(next(reader))
    except StopIteration:
        raise SourceError(
            f"header row {src.header_row} not found: the file has only {len(head)} rows",
            path=display,
            dataset=src.dataset,
        ) from None
    except csv.Error as exc:
        raise SourceError(
            f"cannot read CSV row {len(head) + 1}: {exc}", path=display, dataset=src.dataset
        ) from None
    headers = head[-1] if src.has_header else None
    if headers is not None and not any(h.strip() for h in headers):
        raise HeaderError(
            f"header row {src.header_row} is empty; set header_row to the row that holds the "
            "column names",
            path=display,
            dataset=src.dataset,
        )
    offset = lines.consumed
    body = text[offset:]
    first_row = skip + 1
    if headers is not None:
        ncols = len(headers)
    else:
        first = next(csv.reader(_Lines(body), **kwargs), [])
        ncols = max(len(first), 1)
    table = None
    if not body or body.isspace():  # no record
        table = _Table(display, headers, [pl.Series([], dtype=pl.String)] * ncols, _rows(0, 0))
    elif src.delimiter.isascii() and src.quote_char.isascii():
        encoded = data if same_bytes else text.encode("utf-8")
        lines_before, at = text.count("\n", 0, offset), len(text[:offset].encode("utf-8"))
        table = _read_csv_body_polars(
            encoded, at, lines_before, ncols, src, display, first_row, headers
        )
    if table is None:
        first_line = text.count("\n", 0, offset) + 1
        table = _read_csv_body_python(body, ncols, src, display, first_row, headers, first_line)
    return table


_PREFIX_BYTES = 1 << 16
"""Leading bytes decoded for the header rows on the fast path (more up to the next line end)."""
_NOT_SPACE = re.compile(rb"\S")


def _read_csv_utf8(data: bytes, src: SourceConfig, ds: Dataset, display: str) -> _Table | None:
    """A UTF-8 file with a header row, its body read by polars from the file's own bytes.

    Only the first rows are decoded (for the header checks); polars checks that the
    rest is UTF-8 as it reads, and reads the columns of int and float fields as numbers
    (:func:`_csv_numbers`). ``None`` hands the file to the full path (decoded as a
    whole, the csv module for what polars refuses), which gives every problem its exact
    message: an encoding error, byte-order mark, empty file or header row, ragged rows.
    """
    if codecs.lookup(src.encoding).name != "utf-8" or not src.has_header:
        return None
    if not src.delimiter.isascii() or not src.quote_char.isascii():
        return None
    if b"\r" in data:  # CRLF and CR-only line endings become \n, as on the full path
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    end = data.find(b"\n", _PREFIX_BYTES)
    try:
        text = (data if end < 0 else data[: end + 1]).decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text.startswith(_BOM_RESIDUE):
        return None
    lines = _Lines(text)
    reader = csv.reader(lines, **_csv_kwargs(src))
    try:
        headers = [next(reader) for _ in range(src.header_row)][-1]
    except (StopIteration, csv.Error):
        return None
    if not any(h.strip() for h in headers) or (end >= 0 and lines.consumed == len(text)):
        return None  # (a header row running past the decoded lines: the full path reads it)
    at = len(text[: lines.consumed].encode("utf-8"))
    if not _NOT_SPACE.search(data, at):
        return None  # no record: the full path says so
    skip = text.count("\n", 0, lines.consumed)
    first_row = src.header_row + 1
    numbers = _csv_numbers(headers, src, ds)
    return _read_csv_body_polars(
        data, at, skip, len(headers), src, display, first_row, headers, numbers
    )


def _csv_numbers(headers: Sequence[str], src: SourceConfig, ds: Dataset) -> dict[int, pl.DataType]:
    """Columns polars' CSV reader reads as numbers: those of int and float fields taken as written.

    A column qualifies when exactly one field reads it, by position or by its one
    matching header, and no text rule could change a value first: no value map, no
    null values, no ``na_values`` word a number could be written as, no ``derive`` or
    ``where`` reading it (they see the text). Polars reads an int column as ``[+-]digits``
    (surrounding spaces allowed) and a float column as a decimal or exponent number,
    both a subset of what the text path reads, to the same values (a test compares them
    cell by cell); any other cell fails the read and the file is read as text
    (:func:`_read_csv_body_polars`). Dates are not given to the CSV reader: it guesses a
    format per column (day first for ``01-10-2026``), and a date format is never guessed.
    """
    names = [_norm_header(h) for h in headers]
    column: dict[str, int] = {}
    for f in ds.fields:
        if f.name in src.constants or f.name in src.derive:
            continue
        if f.name in src.positions:
            column[f.name] = src.positions[f.name] - 1
            continue
        target = _norm_header(src.columns.get(f.name, f.name))
        hits = [j for j, n in enumerate(names) if n == target]
        if len(hits) == 1:  # none or several: the header check names the problem
            column[f.name] = hits[0]
    readers = Counter(column.values())
    referenced = _expression_names(src) if src.derive or src.where is not None else set()
    numbers: dict[int, pl.DataType] = {}
    for f in ds.fields:
        j = column.get(f.name)
        if j is None or f.type not in ("int", "float") or readers[j] > 1 or j >= len(names):
            continue
        if f.name in src.value_maps or f.name in src.null_values or _na_could_match(f, src):
            continue
        if f.name in referenced or names[j] in referenced:
            continue
        numbers[j] = pl.Int64() if f.type == "int" else pl.Float64()
    return numbers


def _read_csv_body_polars(
    data: bytes,
    at: int,
    skip: int,
    ncols: int,
    src: SourceConfig,
    display: str,
    first_row: int,
    headers: list[str] | None,
    numbers: Mapping[int, pl.DataType] | None = None,
) -> _Table | None:
    """The body of ``data`` (from byte ``at``, after ``skip`` lines) read by polars.

    Columns in ``numbers`` are read as numbers; when one holds any other cell (or a
    float column an infinite or NaN value) the body is read again with every column
    text, so the text path reads and reports each cell. ``None`` when polars refuses it
    (ragged rows, odd quoting, a byte that is not UTF-8) or a quoted field runs over
    several lines: the csv module reads it then.
    """
    quote = src.quote_char.encode("ascii")
    quoted = bool(quote) and data.find(quote, at) >= 0
    if quoted and data.count(quote, at) % 2:
        return None  # an unclosed quote: polars may drop the last record, the csv module keeps it
    names = [f"c{j}" for j in range(ncols)]
    numbers = numbers or {}
    for typed in [numbers, {}] if numbers else [{}]:
        try:
            frame = pl.read_csv(
                data,
                has_header=False,
                skip_lines=skip,
                infer_schema=False,
                schema={n: typed.get(j, pl.String()) for j, n in enumerate(names)},
                separator=src.delimiter,
                quote_char=src.quote_char or None,
                eol_char="\n",
                raise_if_empty=False,
                truncate_ragged_lines=False,
            )
        except Exception:  # noqa: S112 (not a number, ragged rows, odd quoting: the next read decides)
            continue
        floats = [pl.col(names[j]).is_finite().all() for j, t in typed.items() if t.is_float()]
        if not floats or all(frame.select(floats).row(0)):
            break
    else:  # every column as text refused too: the csv module decides
        return None
    # Polars makes a record of every line (a blank one too), so as many records as lines
    # means no field runs over several lines; only otherwise are the values looked at.
    lines = data.count(b"\n", at) + (not data.endswith(b"\n"))
    if quoted and frame.height != lines:
        text = [n for n in names if frame.schema[n] == pl.String]
        spans = [pl.col(n).str.contains("\n", literal=True).any() for n in text]
        if text and any(frame.select(spans).row(0)):
            return None  # a quoted field spans lines: the csv module checks where each record runs
    return _Table(
        display,
        headers,
        [frame.get_column(n) for n in names],
        _rows(first_row, frame.height),
    )


def _read_csv_body_python(
    body: str,
    ncols: int,
    src: SourceConfig,
    display: str,
    first_row: int,
    headers: list[str] | None,
    first_line: int = 1,
) -> _Table:
    records: list[list[str]] = []
    lines = _Lines(body)
    reader = csv.reader(lines, **_csv_kwargs(src))
    try:
        start = done = 0  # characters and lines of the body read so far
        for record in reader:
            records.append(record)
            if reader.line_num - done > 1:  # the record runs over several physical lines
                _check_record_span(
                    body[start : lines.consumed],
                    record,
                    ncols if headers is not None else None,
                    src,
                    display,
                    row=first_row + len(records) - 1,
                    line=first_line + done,
                )
            start, done = lines.consumed, reader.line_num
    except csv.Error as exc:
        raise SourceError(
            f"cannot read CSV near row {first_row + len(records)}: {exc}; "
            "look for an unclosed quote",
            path=display,
            dataset=src.dataset,
        ) from None
    problems: dict[int, tuple[str, str]] = {}
    if headers is None:
        ncols = max([ncols, *(len(r) for r in records)])
    else:
        for i, r in enumerate(records):
            if len(r) > ncols and any(v.strip() for v in r[ncols:]):
                problems[i] = (
                    "shape:fields",
                    f"row has {len(r)} fields, the header has {ncols}",
                )
    columns: list[_Column] = [
        pl.Series([r[j] if j < len(r) else None for r in records], dtype=pl.String)
        for j in range(ncols)
    ]
    return _Table(display, headers, columns, _rows(first_row, len(records)), problems)


def _check_record_span(
    raw: str,
    record: list[str],
    ncols: int | None,
    src: SourceConfig,
    display: str,
    *,
    row: int,
    line: int,
) -> None:
    """A record running over several physical lines must be a real multi-line field.

    A quote opened and never closed (``...,open,"Customer says: box crushed,,,``)
    makes the record swallow the lines after it, up to the next quote or the end
    of the file. It is told from a genuine multi-line field because its text
    holds an odd number of quotes (never closed), or the record has a different
    number of fields from the header, or a line inside a multi-line field holds
    a whole record's worth of fields, at least half of them filled. Such a file is refused, naming the line where
    the record began and the lines it swallowed: no record disappears unnamed.
    """
    body = raw.rstrip("\n")
    span = body.count("\n")
    if not span or not src.quote_char:
        return
    d = src.delimiter
    width = ncols if ncols is not None else len(record)
    unclosed = raw.count(src.quote_char) % 2 == 1
    wrong_width = ncols is not None and len(record) != ncols
    inner = [part for value in record if "\n" in value for part in value.split("\n")[1:]]
    recordlike = width >= 3 and any(_looks_like_record(part, d, width) for part in inner)
    if not (unclosed or wrong_width or recordlike):
        return
    first, last = line, line + span
    why = (
        "is never closed"
        if unclosed
        else f"gives {len(record)} fields, the header has {ncols}"
        if wrong_width
        else "runs over lines that look like records of their own"
    )
    raise SourceError(
        f"line {first}: a quoted field that opens in this record {why}; the record runs "
        f"over lines {first}-{last} and swallows {span} line(s), which would be lost. "
        f"Fix the quote in the export (a quote inside a quoted field is written twice: "
        f'""), or set quote_char = "" if the file uses no quoting',
        path=display,
        dataset=src.dataset,
        row=row,
    )


def _looks_like_record(line: str, delimiter: str, ncols: int) -> bool:
    """A whole record's worth of fields, at least half of them filled."""
    parts = line.split(delimiter)
    return len(parts) >= ncols and sum(bool(p.strip()) for p in parts) * 2 >= ncols


def _rows(first: int, n: int) -> pl.Series:
    return pl.Series(SOURCE_ROW, range(first, first + n), dtype=pl.Int64)


# --------------------------------------------------------------------------- Parquet


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


# --------------------------------------------------------------------------- trend window

_WINDOWED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # dataset: (date fields all before the window start, fields all empty)
    "complaints": (("received_date", "closed_date"), ()),
    "inspections": (("inspection_date",), ("lot_id",)),
    "receipts": (("received_date", "promised_date"), ()),
    "surveys": (("response_date",), ()),
}
"""Records that no KPI of a period reads once they lie wholly before its trend window.

A complaint counts for its received month, its closing month, the months it is
open at and the 90-day repeat look-back (inside the window's look-back); a
receipt for its received and promised months; a survey response for its
month; an inspection without a lot for its day (a lot's first inspection may
lie before the window, so inspections of a lot are always read). CAPAs are
never left out: a complaint inside the window may name one.
"""

OUTSIDE_WINDOW_RULE = "outside_window"
"""Rule of a record dated wholly before the period's trend window (:attr:`LoadedDataset.excluded`)."""


@dataclass(frozen=True)
class _Window:
    """The first day a period's KPIs read, for one dataset."""

    start: dt.date
    dates: tuple[str, ...]
    empty: tuple[str, ...]

    @property
    def note(self) -> str:
        return (
            f"{' and '.join(self.dates)} before {self.start.isoformat()}, the start of the "
            "trend window and its look-back: no KPI of the period reads it"
        )


def _window(config: Config, ds: Dataset, period: Period | str) -> _Window | None:
    spec = _WINDOWED.get(ds.name)
    if spec is None:
        return None
    start, _ = sql_window(
        period,
        trend_months=config.review.trend_months,
        lookback_days=config.kpis.repeat_window_days,
    )
    return _Window(start, *spec)


def _outside_window(
    window: _Window | None,
    headers: Sequence[str],
    schema: Mapping[str, pl.DataType],
    src: SourceConfig,
    ds: Dataset,
) -> pl.Expr | None:
    """True for rows wholly before the window, read from the stored values; None if it cannot be told.

    Only fields read straight from a typed date column (no value map, null
    value, default, constant or derivation in between) decide; a source whose
    fields need parsing first is read whole.
    """
    if window is None or src.skip_footer_rows:
        return None
    tests: list[pl.Expr] = []
    for name in (*window.dates, *window.empty):
        rewritten = (src.constants, src.derive, src.value_maps, src.null_values, src.defaults)
        if any(name in m for m in rewritten):
            return None
        header = _stored_column(name, headers, src)
        if header is None:
            if name in window.empty:
                continue  # absent: empty in every row
            return None
        dtype = schema[header]
        if name in window.empty:
            tests.append(pl.col(header).is_null())
        elif dtype == pl.Date:
            tests.append(pl.col(header) < window.start)
        elif isinstance(dtype, pl.Datetime):
            tests.append(pl.col(header).dt.date() < window.start)
        else:
            return None
    return pl.all_horizontal(tests).fill_null(False) if tests else None


def _stored_column(name: str, headers: Sequence[str], src: SourceConfig) -> str | None:
    """The file column a field is read from (by position, mapped name or its own name)."""
    if name in src.positions:
        return headers[src.positions[name] - 1] if src.positions[name] <= len(headers) else None
    target = _norm_header(src.columns.get(name, name))
    return next((h for h in headers if _norm_header(h) == target), None)


# --------------------------------------------------------------------------- Excel


def _read_excel(path: Path, src: SourceConfig, display: str) -> _Table:
    import openpyxl

    if not path.stat().st_size:
        raise SourceError("empty file", path=display, dataset=src.dataset)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl's notes on styles and extensions
            wb = openpyxl.load_workbook(path, data_only=True, read_only=False)
    except Exception as exc:
        raise SourceError(
            f"not a readable .xlsx workbook ({type(exc).__name__}: {exc}); "
            "an old .xls must be saved as .xlsx",
            path=display,
            dataset=src.dataset,
        ) from None
    try:
        ws = _pick_sheet(wb, src, display)
        grid = [list(r) for r in ws.iter_rows(values_only=True)]
        cell = _uncached_formula(path, ws, src.header_row)
        if cell is not None:
            raise SourceError(
                f"cell {cell} holds a formula with no saved result (the workbook was written "
                "by a program and never calculated), so its value cannot be read; open the "
                "file in Excel and save it, or export values instead of formulas",
                path=display,
                dataset=src.dataset,
            )
        _fill_merged(grid, ws)
    finally:
        wb.close()
    while grid and all(v is None or (isinstance(v, str) and not v.strip()) for v in grid[-1]):
        grid.pop()
    if not grid:
        raise SourceError("empty sheet", path=display, dataset=src.dataset)
    skip = src.header_row if src.has_header else src.header_row - 1
    if len(grid) < skip:
        raise SourceError(
            f"header row {src.header_row} not found: the sheet has only {len(grid)} rows",
            path=display,
            dataset=src.dataset,
        )
    ncols = max(len(r) for r in grid)
    headers = None
    if src.has_header:
        hrow = grid[src.header_row - 1]
        headers = [_header_text(hrow[j] if j < len(hrow) else None) for j in range(ncols)]
        if not any(h.strip() for h in headers):
            raise HeaderError(
                f"header row {src.header_row} is empty; set header_row to the row that holds "
                "the column names",
                path=display,
                dataset=src.dataset,
            )
    body = grid[skip:]
    columns: list[_Column] = [[r[j] if j < len(r) else None for r in body] for j in range(ncols)]
    return _Table(display, headers, columns, _rows(skip + 1, len(body)))


def _pick_sheet(wb: Any, src: SourceConfig, display: str) -> Any:
    """The worksheet ``src.sheet`` names (a name, a 1-based tab number, or the first worksheet)."""
    # Sheet numbers count every sheet in tab order (chart and hidden sheets too),
    # as Excel's tabs and Sheets(N) do; the default is the first worksheet.
    names = list(wb.sheetnames)
    if src.sheet is None:
        if not wb.worksheets:
            raise SourceError(
                f"the workbook has no worksheet, only chart sheets: {', '.join(names)}",
                path=display,
                dataset=src.dataset,
            )
        ws = wb.worksheets[0]
    elif isinstance(src.sheet, int):
        if src.sheet > len(names):
            raise SourceError(
                f"sheet {src.sheet} not found: the workbook has {len(names)} sheet(s): "
                f"{', '.join(names)}",
                path=display,
                dataset=src.dataset,
            )
        ws = wb[names[src.sheet - 1]]
    else:
        if src.sheet not in names:
            raise SourceError(
                f"sheet {src.sheet!r} not found{did_you_mean(src.sheet, names)}; "
                f"sheets: {', '.join(names)}",
                path=display,
                dataset=src.dataset,
            )
        ws = wb[src.sheet]
    if ws not in wb.worksheets:
        label = f"{src.sheet} ({ws.title!r})" if isinstance(src.sheet, int) else repr(ws.title)
        raise SourceError(
            f"sheet {label} is a chart sheet, not a table of data; "
            f"worksheets: {', '.join(w.title for w in wb.worksheets) or 'none'}",
            path=display,
            dataset=src.dataset,
        )
    return ws


def _fill_merged(grid: list[list[Any]], ws: Any) -> None:
    """Give every cell of a merged range the range's value, as Excel shows it."""
    for rng in ws.merged_cells.ranges:  # a merged cell's value fills every cell it spans
        value = grid[rng.min_row - 1][rng.min_col - 1] if rng.min_row <= len(grid) else None
        for r in range(rng.min_row - 1, min(rng.max_row, len(grid))):
            row = grid[r]
            for c in range(rng.min_col - 1, rng.max_col):
                if c < len(row):
                    row[c] = value


def _uncached_formula(path: Path, ws: Any, first_row: int) -> str | None:
    """The first formula cell (from ``first_row`` on) with no saved result, else None.

    With ``data_only=True`` openpyxl gives a formula's last calculated value; a
    workbook written by a program (openpyxl, some ERP exports) and never opened
    in Excel has none, and the cell reads as empty, which would silently null
    a value or drop an all-formula row. Such a cell is a value-less numeric
    cell (``t="n"``); a formula whose saved result is an empty string is
    ``t="str"`` and is fine. Only when such value-less cells exist is the
    workbook read again (read-only) for its formulas.
    """
    import openpyxl

    suspects = {
        (r, c)
        for (r, c), cell in ws._cells.items()  # openpyxl has no public map of stored cells
        if r >= first_row and cell.value is None and cell.data_type == "n"
    }
    if not suspects:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wb = openpyxl.load_workbook(path, data_only=False, read_only=True)
    try:
        for row in wb[ws.title].iter_rows(min_row=first_row):
            for cell in row:
                if getattr(cell, "data_type", None) == "f" and (cell.row, cell.column) in suspects:
                    return str(cell.coordinate)
    finally:
        wb.close()
    return None


# --------------------------------------------------------------------------- values as text


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


# --------------------------------------------------------------------------- header check


def _is_ignored(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _drop_trailing_blank(table: _Table) -> None:
    """Trailing columns with no header and no value (a trailing delimiter, Excel formatting)."""
    if table.headers is None:
        return
    while (
        table.columns
        and not table.headers[len(table.columns) - 1].strip()
        and bool(_blank_mask(table.columns[-1]).all())
    ):
        table.columns.pop()
        table.headers = table.headers[: len(table.columns)]


def _plan(table: _Table, src: SourceConfig, ds: Dataset) -> dict[str, int]:
    """Check the raw header and map canonical fields to column indices.

    Fields filled by a constant, a surrogate key or (optional, absent) nulls
    are not in the result.
    """
    where: dict[str, Any] = {"path": table.display, "dataset": ds.name}
    ncols = len(table.columns)
    raw = table.headers
    _check_bom(raw, src, where)
    positional = _positional(src, ncols, where)
    pos_cols = set(positional.values())
    mapping: dict[str, int] = dict(positional)
    if raw is None:
        _check_headerless(src, ds, positional, where)
        return mapping
    names = [_norm_header(h) for h in raw]
    # A column with no header and no value anywhere (an empty column, as a trailing
    # one is) is not a column; it keeps its place so positions still count the file's.
    empty_cols = {
        j
        for j, n in enumerate(names)
        if not n and j not in pos_cols and bool(_blank_mask(table.columns[j]).all())
    }
    skipped = pos_cols | empty_cols  # not checked by name
    for j, n in enumerate(names):
        if not n and j not in skipped:
            raise HeaderError(
                f"column {j + 1} has a blank header; name it in the export, or map it by "
                f"position (positions = {{ FIELD = {j + 1} }})",
                column=f"#{j + 1}",
                **where,
            )
    wanted = {_norm_header(v): k for k, v in src.columns.items()}
    referenced = _expression_names(src)
    by_name_fields = {
        f.name
        for f in ds.fields
        if f.name not in src.columns
        and f.name not in positional
        and f.name not in src.constants
        and f.name not in src.derive
    }
    counts = Counter(n for j, n in enumerate(names) if j not in skipped)
    for n, c in counts.items():
        if c < 2:
            continue
        read = n in wanted or n in by_name_fields or n in referenced
        if read or not _is_ignored(n, src.ignore_columns):
            cols = [str(j + 1) for j, m in enumerate(names) if m == n and j not in skipped]
            raise HeaderError(
                f"duplicate header {n!r} (columns {', '.join(cols)}); rename one in the export, "
                "or map them by position",
                column=n,
                **where,
            )
    index = {n: j for j, n in enumerate(names) if j not in skipped}
    missing_msgs = _map_named(src, ds, positional, index, names, mapping)
    if missing_msgs:
        hint = _delimiter_hint(names, src)
        message = hint or "; ".join(m for _, m in missing_msgs)  # one column: only the delimiter
        raise HeaderError(message, column=missing_msgs[0][0], **where)
    _check_unknown(names, skipped, wanted, referenced, src, ds, where)
    return mapping


def _check_bom(raw: Sequence[str] | None, src: SourceConfig, where: dict[str, Any]) -> None:
    """A header that starts with byte-order-mark residue means the wrong encoding."""
    for h in raw or ():
        if h.startswith(_BOM_RESIDUE) or "\ufeff" in h:
            raise HeaderError(
                f"header {h!r} carries byte-order-mark residue (the file was read as "
                f'{src.encoding}); set encoding = "utf-8-sig"',
                column=h,
                **where,
            )


def _positional(src: SourceConfig, ncols: int, where: dict[str, Any]) -> dict[str, int]:
    """``positions`` as 0-based column indices, each inside the file."""
    positional: dict[str, int] = {}
    for name, pos in src.positions.items():
        if pos > ncols:
            raise HeaderError(
                f"positions.{name} = {pos}, but the file has {ncols} column(s)",
                column=name,
                **where,
            )
        positional[name] = pos - 1
    return positional


def _check_headerless(
    src: SourceConfig, ds: Dataset, positional: Mapping[str, int], where: dict[str, Any]
) -> None:
    """A file without a header must map every required field by position (or fill it)."""
    missing = [
        f.name
        for f in ds.fields
        if f.required
        and f.name not in positional
        and f.name not in src.constants
        and f.name not in src.derive
        and not _surrogate(src, ds, f.name)
    ]
    if missing:
        raise HeaderError(
            "no position for required field(s) "
            + ", ".join(repr(m) for m in missing)
            + "; a file without a header maps every required field in positions",
            column=missing[0],
            **where,
        )


def _map_named(
    src: SourceConfig,
    ds: Dataset,
    positional: Mapping[str, int],
    index: Mapping[str, int],
    names: Sequence[str],
    mapping: dict[str, int],
) -> list[tuple[str, str]]:
    """Add fields found by header name (mapped or canonical) to ``mapping``.

    Returns (field, message) for each field whose column is missing.
    """
    used_names: set[str] = set()
    missing_msgs: list[tuple[str, str]] = []
    for f in ds.fields:
        if f.name in positional or f.name in src.constants or f.name in src.derive:
            continue
        if f.name in src.columns:
            h = _norm_header(src.columns[f.name])
            if h in index:
                mapping[f.name] = index[h]
                used_names.add(h)
                continue
            missing_msgs.append(
                (f.name, f"missing column {h!r} (mapped to '{f.name}'){did_you_mean(h, names)}")
            )
            continue
        if f.name in index:
            mapping[f.name] = index[f.name]
            used_names.add(f.name)
            continue
        if _surrogate(src, ds, f.name) or not f.required:
            continue
        unused = [n for n in names if n not in used_names and n not in ds.field_names] or names
        hint = did_you_mean(f.name, unused)
        extra = (
            " (or set surrogate_key = true: the export has no ID column)"
            if f.name in ds.key and len(ds.key) == 1
            else ""
        )
        missing_msgs.append(
            (
                f.name,
                f"missing column '{f.name}'{hint}; map the file's column in "
                f'[sources.{ds.name}] columns = {{ {f.name} = "..." }}{extra}',
            )
        )
    return missing_msgs


def _check_unknown(
    names: Sequence[str],
    skipped: set[int],
    wanted: Mapping[str, str],
    referenced: set[str],
    src: SourceConfig,
    ds: Dataset,
    where: dict[str, Any],
) -> None:
    """A column that no field, expression or ``ignore_columns`` pattern accounts for is an error."""
    unknown = [
        n
        for j, n in enumerate(names)
        if j not in skipped
        and n not in wanted
        and n not in referenced
        and (n not in ds.field_names or n in src.derive)
        and not _is_ignored(n, src.ignore_columns)
    ]
    if unknown:
        hint = _delimiter_hint(names, src)
        listed = ", ".join(f"{n!r}{did_you_mean(n, ds.field_names)}" for n in unknown)
        raise HeaderError(
            f"{hint + '. ' if hint else ''}unexpected column{'s' if len(unknown) > 1 else ''} {listed}: map "
            f"{'them' if len(unknown) > 1 else 'it'} in [sources.{ds.name}] columns, or list "
            f'{"them" if len(unknown) > 1 else "it"} in ignore_columns (ignore_columns = ["*"] '
            "accepts any extra column)",
            column=unknown[0],
            **where,
        )


_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def _delimiter_hint(names: Sequence[str], src: SourceConfig) -> str:
    """When the whole header was read as one column, say so and name the likely delimiter."""
    real = [n for n in names if n]
    if len(real) != 1:
        return ""
    counts = {d: real[0].count(d) for d in _DELIMITERS if d != src.delimiter}
    best = max(counts, key=lambda d: counts[d])
    if not counts[best]:
        return ""
    shown = "\\t" if best == "\t" else best
    return (
        f"the whole header was read as one column ({real[0][:80]!r}): the file looks "
        f"{_DELIMITERS[best]}-separated, not {src.delimiter!r}-separated; "
        f'set delimiter = "{shown}"'
    )


def _surrogate(src: SourceConfig, ds: Dataset, name: str) -> bool:
    return src.surrogate_key and len(ds.key) == 1 and name == ds.key[0]


# --------------------------------------------------------------------------- parsing

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
    trues = sorted({v.lower() for v in (*src.true_values, _CANONICAL_TRUE)})
    falses = sorted({v.lower() for v in (*src.false_values, _CANONICAL_FALSE)} - set(trues))
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


# --------------------------------------------------------------------------- derive, where, duplicates
#
# Derived fields and the ``where`` condition are polars SQL expressions
# (``pl.sql_expr``) over the source's columns AS TEXT: each cell trimmed, with
# ``na_values`` and blank cells as NULL, before any value map, date format or
# type parsing. A derived field's result is then text like any mapped column:
# its own ``null_values``, ``value_maps``, ``defaults``, ``date_formats`` and
# type parsing apply to it. ``where`` sees the derived fields too (under their
# canonical names, unless the file has a column of that name).


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


def _excluded_rows(frame: pl.DataFrame, rule: str, message: pl.Expr, display: str) -> pl.DataFrame:
    return frame.select(
        pl.col(SOURCE_ROW),
        pl.lit("(row)").alias("column"),
        pl.lit(None, dtype=pl.String).alias("value"),
        pl.lit(rule).alias("rule"),
        message.alias("message"),
        pl.lit(display).alias("file"),
    ).cast(REJECT_SCHEMA)  # type: ignore[arg-type]


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


def _empty_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECT_SCHEMA)


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


# --------------------------------------------------------------------------- files


def _display(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)


def _format_of(path: Path, src: SourceConfig, display: str) -> str:
    if src.format is not None:
        return src.format
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SourceError(
            f"cannot tell the format from the suffix {path.suffix!r}; set format = "
            '"csv", "parquet" or "excel"',
            path=display,
            dataset=src.dataset,
        )
    return fmt


def _hash_file(path: Path, display: str, dataset: str) -> tuple[str, bytes]:
    """The file's sha256, streamed (no copy of the whole file), and its first bytes."""
    try:
        with path.open("rb") as fh:
            head = fh.read(_HEAD_BYTES)
            fh.seek(0)
            return hashlib.file_digest(fh, "sha256").hexdigest(), head
    except FileNotFoundError:
        raise SourceError("file not found", path=display, dataset=dataset) from None
    except OSError as exc:
        raise SourceError(
            f"cannot read the file: {exc.strerror}", path=display, dataset=dataset
        ) from None


def _read_bytes(path: Path, display: str, dataset: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceError(
            f"cannot read the file: {exc.strerror}", path=display, dataset=dataset
        ) from None


def _load_files(
    config: Config,
    src: SourceConfig,
    ds: Dataset,
    *,
    on_bad_value: OnBadValue,
    window: _Window | None = None,
) -> LoadedDataset:
    assert src.path is not None
    pattern = src.path
    is_glob = any(ch in pattern for ch in "*?[")
    if is_glob:
        full = str(config.resolve(pattern))
        paths = sorted(
            (Path(p) for p in glob.glob(full, recursive=True) if Path(p).is_file()),
            key=lambda p: _display(p, config.base_dir),
        )
        if not paths:
            raise SourceError(
                f"no file matches {pattern!r} (in {config.base_dir})",
                path=pattern,
                dataset=ds.name,
            )
    else:
        paths = [config.resolve(pattern)]
    frames: list[pl.DataFrame] = []
    rejects: list[pl.DataFrame] = []
    excluded: list[pl.DataFrame] = []
    files: list[SourceFile] = []
    rows_in = 0
    has_key = True
    for path in paths:
        display = _display(path, config.base_dir)
        sha, head = _hash_file(path, display, ds.name)
        fmt = _format_of(path, src, display)
        _check_not_binary(head, fmt, src, display)
        if fmt == "csv":
            table = _read_csv(_read_bytes(path, display, ds.name), src, ds, display)
        elif fmt == "parquet":
            table = _read_parquet(path, src, ds, display, window)
        else:
            table = _read_excel(path, src, display)
        frame, rej, out, n = _map_table(table, src, ds, config, on_bad_value)
        if is_glob:
            frame = frame.with_columns(pl.lit(display, dtype=pl.String).alias(SOURCE_FILE))
        has_key = has_key and _key_mapped(table, src, ds)
        frames.append(frame)
        rejects.append(rej)
        excluded.append(out)
        files.append(SourceFile(display, sha, n))
        rows_in += n
    frame = pl.concat(frames, how="vertical") if frames else empty_frame(ds.name)
    if src.drop_duplicates:
        frame, dups = _drop_duplicates(frame, ds, files[0].path)
        excluded.append(dups)
    frame = _with_surrogate(frame, src, ds, has_key)
    if is_glob:
        blob = "".join(f"{f.path}\t{f.sha256}\n" for f in files).encode("utf-8")
        sha256 = hashlib.sha256(blob).hexdigest()
        origin = f"{pattern} [{', '.join(f.path for f in files)}]"
    else:
        sha256 = files[0].sha256
        origin = files[0].path
    return LoadedDataset(
        dataset=ds.name,
        frame=_lined_up(frame),
        rejects=pl.concat(rejects, how="vertical") if rejects else _empty_rejects(),
        origin=origin,
        sha256=sha256,
        rows_in=rows_in,
        files=tuple(files),
        excluded=pl.concat(excluded, how="vertical"),
    )


def _lined_up(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame``, its columns in the same chunks.

    A Parquet file's columns come in a chunk per row group, and every step of the
    mapping keeps them so: they are left so (one chunk per column would copy the whole
    frame, about as long as reading it: 0.5 s and +1.2 GB at 10M inspections). Steps
    after loading keep the chunks lined up too (``contracts.prepare``); polars would
    otherwise copy the whole frame. A frame whose columns are chunked differently (a
    column added whole) is made one chunk per column.
    """
    if frame.width and len({tuple(c.chunk_lengths()) for c in frame.get_columns()}) > 1:
        return frame.rechunk()
    return frame


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


# --------------------------------------------------------------------------- SQL


def read_only_kwargs(url: Any) -> dict[str, Any]:
    """``create_engine`` arguments that open a DuckDB file read-only (none for any other
    database, nor for DuckDB in memory).

    DuckDB lets one process write a file, or many read it: pushdown only reads (its GX
    temporary tables live in memory), so scopes rendered in parallel (``--jobs``, Dask
    workers) can all query the same file, as pulling does."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    memory = parsed.database in (None, "", ":memory:")
    if parsed.get_backend_name() != "duckdb" or memory:
        return {}
    return {"connect_args": {"read_only": True}}


def db_url(config: Config, name: str) -> Any:
    """The SQLAlchemy URL of ``[databases.NAME]`` (relative SQLite/DuckDB files beside the config)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    db = config.databases[name]
    raw = db.resolve_url(config_path=config.path)
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError(
            "not a database URL (expected e.g. sqlite:///qms.db, duckdb:///qms.duckdb, "
            "postgresql+psycopg://user@host/db)",
            path=config.path,
            key=f"databases.{name}.{'url_env' if db.url_env else 'url'}",
        ) from None
    backend = url.get_backend_name()
    database = url.database
    if (
        backend in ("sqlite", "duckdb")
        and database
        and database != ":memory:"
        and not database.startswith("file:")
        and not Path(database).is_absolute()
    ):
        url = url.set(database=str(config.base_dir / database))
    if url.drivername == "postgresql":
        try:
            import psycopg2  # type: ignore[import-not-found,import-untyped,unused-ignore]  # noqa: F401
        except ImportError:
            url = url.set(drivername="postgresql+psycopg")
    return url


def _load_sql(
    config: Config,
    src: SourceConfig,
    ds: Dataset,
    *,
    period: Period | str | None,
    trend_months: int | None,
    lookback_days: int | None,
    site: str | None,
    on_bad_value: OnBadValue,
) -> LoadedDataset:
    from sqlalchemy import Date, String, bindparam, create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    assert src.query is not None
    assert src.database is not None
    origin = f"sql:{src.database}"
    query = src.query
    params = sql_params(
        config,
        ds,
        query,
        origin,
        period=period,
        trend_months=trend_months,
        lookback_days=lookback_days,
        site=site,
    )
    url = db_url(config, src.database)
    # Typed binds: PostgreSQL can then type ":site IS NULL", SQLite gets ISO date text.
    types: dict[str, Any] = {"period_start": Date(), "period_end": Date(), "site": String()}
    statement = text(query).bindparams(*(bindparam(k, type_=types[k]) for k in params))
    try:
        engine = create_engine(url, **read_only_kwargs(url))
    except Exception as exc:
        raise SourceError(
            f"cannot open database '{src.database}': {type(exc).__name__}: {exc}",
            path=origin,
            dataset=ds.name,
        ) from None
    try:
        with engine.connect() as conn:
            result = conn.execute(statement, params)
            headers = [str(k) for k in result.keys()]  # noqa: SIM118
            rows = [tuple(r) for r in result.fetchall()]
            conn.rollback()
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise SourceError(
            f"query failed: {detail[0] if detail else type(exc).__name__}",
            path=origin,
            dataset=ds.name,
        ) from None
    finally:
        engine.dispose()
    sha256 = _sql_digest(query, params, headers, rows)
    columns: list[_Column] = [[r[j] for r in rows] for j in range(len(headers))]
    table = _Table(origin, headers, columns, _rows(1, len(rows)))
    frame, rejects, excluded, rows_in = _map_table(table, src, ds, config, on_bad_value)
    if src.drop_duplicates:
        frame, dups = _drop_duplicates(frame, ds, origin)
        excluded = pl.concat([excluded, dups], how="vertical")
    frame = _with_surrogate(frame, src, ds, _key_mapped(table, src, ds))
    return LoadedDataset(
        dataset=ds.name,
        frame=frame,
        rejects=rejects,
        origin=origin,
        sha256=sha256,
        rows_in=rows_in,
        excluded=excluded,
    )


def sql_params(
    config: Config,
    ds: Dataset,
    query: str,
    origin: str,
    *,
    period: Period | str | None,
    trend_months: int | None,
    lookback_days: int | None,
    site: str | None,
) -> dict[str, Any]:
    """Values for the binds the query names (:period_start, :period_end, :site; no others)."""
    named = list(dict.fromkeys(_BIND.findall(query)))
    available = ("period_start", "period_end", "site")
    unknown = [n for n in named if n not in available]
    if unknown:
        raise ConfigError(
            f"the query names :{unknown[0]}{did_you_mean(unknown[0], available)}; "
            f"qmskpi binds :period_start, :period_end and :site",
            path=config.path,
            key=f"sources.{ds.name}.query",
        )
    params: dict[str, Any] = {}
    if "period_start" in named or "period_end" in named:
        if period is None:
            raise SourceError(
                "the query uses :period_start/:period_end: give a period",
                path=origin,
                dataset=ds.name,
            )
        start, end = sql_window(
            period,
            trend_months=trend_months if trend_months is not None else config.review.trend_months,
            lookback_days=lookback_days
            if lookback_days is not None
            else config.kpis.repeat_window_days,
        )
        if "period_start" in named:
            params["period_start"] = start
        if "period_end" in named:
            params["period_end"] = end
    if "site" in named:
        params["site"] = None if site in (None, "all") else site
    return params


def _sql_digest(
    query: str, params: Mapping[str, Any], headers: list[str], rows: list[tuple[Any, ...]]
) -> str:
    """sha256 of the query, its bound parameters and the result as canonical CSV."""
    h = hashlib.sha256()
    h.update(query.encode("utf-8"))
    h.update(b"\n")
    h.update(
        json.dumps({k: _cell_text(v, None) for k, v in params.items()}, sort_keys=True).encode(
            "utf-8"
        )
    )
    h.update(b"\n")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(headers)
    for i, r in enumerate(rows):
        writer.writerow(["" if v is None else _cell_text(v, None) for v in r])
        if i % 10_000 == 9_999:
            h.update(buf.getvalue().encode("utf-8"))
            buf.seek(0)
            buf.truncate()
    h.update(buf.getvalue().encode("utf-8"))
    return h.hexdigest()
