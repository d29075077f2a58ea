"""The files a render reads and writes: notebooks, and the exports beside the pack.

:func:`write_csv`, :func:`write_xlsx` and :func:`write_json` give deterministic
bytes, formula injection neutralised, no hyperlinks; every file is written
through a temp file and a rename. openpyxl is imported here (lazily) and nowhere
else in the package.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import io
import json
import math
import os
import re
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any, Final

import polars as pl

from qmskpi.errors import RenderError


def _read_notebook(path: Path) -> Any:
    import nbformat

    read: Any = nbformat.read
    return read(str(path), as_version=4)


_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(text: str) -> str:
    """Prefix ``'`` to text a spreadsheet would run as a formula (``= + - @``, tab, CR)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _safe_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Neutralise formula-looking strings (headers too); leave numbers alone."""
    text_types = (pl.String, pl.Categorical, pl.Enum)
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if isinstance(dtype, text_types):
            s = col.cast(pl.String)
            exprs.append(
                pl.when(s.str.contains(r"^[=+\-@\t\r]"))
                .then(pl.lit("'") + s)
                .otherwise(s)
                .alias(neutralise_formula(name))
            )
        else:
            exprs.append(col.alias(neutralise_formula(name)))
    return frame.select(exprs)


def write_csv(frame: pl.DataFrame, path: Path) -> Path:
    """Write ``frame`` as UTF-8 CSV (``\\n`` line ends, ISO dates) with formulas neutralised.

    Same frame, same bytes. Numeric columns stay numeric; a string cell starting
    with ``= + - @``, tab or CR gets a leading ``'``.
    """
    buffer = io.BytesIO()
    _safe_frame(frame).write_csv(
        buffer, include_header=True, line_terminator="\n", date_format="%Y-%m-%d"
    )
    _write_atomic(Path(path), buffer.getvalue())
    return Path(path)


_SHEET_NAME_BAD: Final = re.compile(r"[\[\]:*?/\\]")
_FIXED_TIME: Final = dt.datetime(2000, 1, 1)  # Excel times are naive
_ZIP_TIME: Final = (1980, 1, 1, 0, 0, 0)


def _xlsx_value(value: object) -> object:
    if isinstance(value, str):
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        return neutralise_formula(ILLEGAL_CHARACTERS_RE.sub("", value))
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.timedelta):
        return value.total_seconds() / 86400
    if isinstance(value, list | dict | tuple):
        return neutralise_formula(json.dumps(value, sort_keys=True, default=str))
    return value


def write_xlsx(sheets: Mapping[str, pl.DataFrame], path: Path) -> Path:
    """Write one worksheet per frame (header row bold and frozen) to ``path``.

    Cells hold plain values: numbers as numbers, dates as dates, text with
    formulas neutralised (leading ``'``) and characters Excel refuses removed;
    no formulas, no hyperlinks. Workbook times and zip entry times are fixed, so
    the same frames give the same bytes.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter
    from openpyxl.writer.excel import ExcelWriter

    if not sheets:
        raise RenderError(f"{path}: no sheets to write")
    wb = Workbook(write_only=True)
    wb.properties.creator = "qmskpi"
    wb.properties.created = _FIXED_TIME
    wb.properties.modified = _FIXED_TIME
    bold = Font(bold=True)
    for name, frame in sheets.items():
        if not name or len(name) > 31 or _SHEET_NAME_BAD.search(name):
            raise RenderError(
                f"{path}: invalid sheet name {name!r} (1-31 characters, none of []:*?/\\)"
            )
        ws = wb.create_sheet(title=name)
        ws.freeze_panes = "A2"
        for i, column in enumerate(frame.columns, start=1):
            width = max([len(column), *(len(str(v)) for v in frame[column].head(200))])
            ws.column_dimensions[get_column_letter(i)].width = min(max(width + 2, 8), 60)
        header = []
        for column in frame.columns:
            cell = WriteOnlyCell(ws, value=_xlsx_value(column))
            cell.font = bold
            header.append(cell)
        ws.append(header)
        for row in frame.iter_rows():
            ws.append([_xlsx_value(v) for v in row])
    buffer = io.BytesIO()
    # ExcelWriter directly: Workbook.save() would stamp "modified" with the clock.
    ExcelWriter(wb, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, allowZip64=True)).save()
    _write_atomic(Path(path), _fix_zip_times(buffer.getvalue()))
    return Path(path)


def _fix_zip_times(data: bytes) -> bytes:
    """Re-pack a zip with every entry stamped 1980-01-01, in the same order."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=_ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            dst.writestr(fixed, src.read(info.filename))
    return out.getvalue()


def _to_json(value: object) -> object:
    """Plain JSON data from dataclasses, frames, dates, paths, sets, enums, numpy scalars."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    if isinstance(value, set | frozenset):
        items = [_to_json(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, pl.DataFrame):
        return [_to_json(row) for row in value.to_dicts()]
    if isinstance(value, pl.Series):
        return [_to_json(v) for v in value.to_list()]
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, PurePath):
        return value.as_posix()
    if isinstance(value, enum.Enum):
        return _to_json(value.value)
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return _to_json(item())
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist):
        return _to_json(tolist())
    raise RenderError(f"cannot write {type(value).__name__} as JSON: {value!r}")


def write_json(obj: object, path: Path) -> Path:
    """Write ``obj`` as deterministic JSON: sorted keys, UTF-8, 2-space indent, final newline.

    Dataclasses, polars frames, dates, paths, sets (sorted) and enums are
    converted; NaN and infinities become ``null`` (JSON has no NaN).
    """
    text = json.dumps(_to_json(obj), sort_keys=True, ensure_ascii=False, indent=2, allow_nan=False)
    _write_atomic(Path(path), (text + "\n").encode("utf-8"))
    return Path(path)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file and a rename (no half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
