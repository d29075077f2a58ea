"""Excel workbooks (.xlsx, .xlsm) read into a :class:`~qmskpi.sources.table._Table`
with openpyxl: the sheet the source names, merged cells filled, formulas without a saved
result refused.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path
from typing import Any

from qmskpi.config import SourceConfig
from qmskpi.errors import HeaderError, SourceError, did_you_mean
from qmskpi.sources.table import _Column, _rows, _Table
from qmskpi.sources.text import _cell_text


def _header_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    return _cell_text(value, None) or ""


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
