"""CSV files read into a :class:`~qmskpi.sources.table._Table`.

A UTF-8 file with a header row is read by polars from its own bytes, the columns of
int and float fields as numbers (:func:`_read_csv_utf8`); otherwise the file is
decoded whole and polars reads the body, the :mod:`csv` module taking over for what
polars refuses. A quote that swallows records is refused, naming the lines.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import polars as pl

from qmskpi.config import SourceConfig
from qmskpi.datasets import Dataset
from qmskpi.errors import HeaderError, SourceError
from qmskpi.sources.expressions import _expression_names
from qmskpi.sources.parse import _na_could_match
from qmskpi.sources.table import _BOM_RESIDUE, _Column, _norm_header, _rows, _Table


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
