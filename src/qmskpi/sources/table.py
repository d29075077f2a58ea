"""A source as read, before any mapping: :class:`_Table` (raw header, raw columns as
text or native values, source row numbers) and the header normalisation every check
matches names with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from qmskpi.datasets import SOURCE_ROW

_BOM_RESIDUE = ("\ufeff", "ï»¿", "ÿþ", "þÿ")

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


def _norm_header(name: str) -> str:
    """Header as matched: surrounding whitespace removed, inner runs as one space."""
    return " ".join(name.split())


def _rows(first: int, n: int) -> pl.Series:
    return pl.Series(SOURCE_ROW, range(first, first + n), dtype=pl.Int64)
