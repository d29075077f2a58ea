"""Model tables and polars frames as escaped HTML tables, and the "and N more" links.

:func:`table_html` formats each cell by its column's format (:func:`format_cell`);
a cut table or list links to the registers by constants and checked ids only,
never by data (:data:`LIST_MAX`). :func:`frame_html` shows any frame. No plotly here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Final

import polars as pl

from qmskpi.charts.base import Fragment, _html, _num, div_id
from qmskpi.charts.icons import _ASSURANCE_TEXT, _VARIATION_TEXT, assurance_icon, variation_icon
from qmskpi.review import (
    REGISTERS_XLSX,
    Scalar,
    Table,
    format_value,
    register_file,
)
from qmskpi.templating import esc, trusted


def format_cell(value: Scalar, fmt: str) -> str:
    """A table cell as escaped HTML, by the column's format."""
    if value is None or value == "":
        return ""
    if fmt == "icon":
        text = _VARIATION_TEXT.get(str(value)) or _ASSURANCE_TEXT.get(str(value), str(value))
        icon = (
            variation_icon(str(value), size=20)
            if str(value) in _VARIATION_TEXT
            else (assurance_icon(str(value), size=20))
        )
        return _html("icon_cell", icon=trusted(icon), text=text)
    if fmt == "bool":
        return "yes" if value is True else "no" if value is False else esc(value)
    num = _num(value)
    if num is not None:
        if fmt == "int":
            return f"{num:,.0f}"
        if fmt in ("share", "ppm", "days"):
            return esc(format_value(num, fmt))
        if fmt == "float":
            return esc(_g(num))
    return esc(value)


def _g(x: float) -> str:
    if float(x).is_integer() and abs(x) < 1e9:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:,.1f}"
    return f"{x:.4g}"


def table_html(
    table: Table,
    *,
    table_class: str = "",
    hide: Iterable[str] = (),
    highlight: str | None = None,
) -> str:
    """A model table as an escaped HTML table (``highlight``: a bool column marking rows)."""
    hidden = set(hide)
    cols = [(i, c) for i, c in enumerate(table.columns) if c.id not in hidden]
    ids = [c.id for c in table.columns]
    hi = ids.index(highlight) if highlight in ids else None
    rows = [
        (
            hi is not None and row[hi] is True,
            [(c.format, trusted(format_cell(row[i], c.format))) for i, c in cols],
        )
        for row in table.rows
    ]
    return _html(
        "table",
        anchor=div_id("table", table.id),
        title=table.title,
        empty_text=table.empty_text,
        table_class=table_class,
        heads=[(c.format, c.label) for _, c in cols],
        rows=rows,
        note=table.note,
        more=trusted(_more_html(table)),
    )


_TABLE_ID: Final = re.compile(r"^[a-z0-9_]{1,64}$")


def _more_html(table: Table) -> str:
    """The ranking rule and, for a cut table, "and N more" with relative links to the registers.

    The links are built from constants and the table id (a model id, checked),
    never from data: the pack folder works offline as a unit.
    """
    cut = bool(table.more and table.register)
    return _html(
        "more",
        order=table.order if table.order and (table.more or table.rows) else "",
        count=f"{table.more:,}" if cut else "",
        register=table.register,
        xlsx=REGISTERS_XLSX,
        csv=register_file(table.id) if cut and _TABLE_ID.match(table.id) else "",
    )


LIST_MAX: Final = 15
"""Items of the exceptions and opportunities lists the pack prints; all are in the registers."""


def _more_list(total: int, sheet: str, table_id: str, order: str) -> str:
    """ "and N more" under a list cut at :data:`LIST_MAX` (links from constants only)."""
    if total <= LIST_MAX:
        return ""
    return _html(
        "more_list",
        shown=LIST_MAX,
        order=order,
        count=f"{total - LIST_MAX:,}",
        xlsx=REGISTERS_XLSX,
        sheet=sheet,
        csv=register_file(table_id),
    )


def frame_html(frame: pl.DataFrame, *, title: str = "", max_rows: int = 200) -> Fragment:
    """Any polars frame as an escaped HTML table (for the analysts' deep-dive notebooks)."""
    shown = frame.head(max_rows)
    rows = [
        [_g(v) if isinstance(v, float) and math.isfinite(v) else v for v in r]
        for r in shown.iter_rows()
    ]
    cut = frame.height > max_rows
    return Fragment(
        _html(
            "frame",
            title=title,
            columns=shown.columns,
            rows=rows,
            shown=f"{max_rows:,}" if cut else "",
            total=f"{frame.height:,}",
        )
    )
