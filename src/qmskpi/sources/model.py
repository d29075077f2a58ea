"""What loading returns: :class:`LoadedDataset` and :class:`SourceFile`, the reject
schema, the rules of excluded records, and the config error every mapping check raises.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import polars as pl

from qmskpi import _reprs
from qmskpi.config import Config, SourceConfig
from qmskpi.datasets import SOURCE_ROW
from qmskpi.errors import ConfigError

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

OUTSIDE_WINDOW_RULE = "outside_window"
"""Rule of a record dated wholly before the period's trend window (:attr:`LoadedDataset.excluded`)."""

SOURCE_FILE = "source_file"
"""Extra frame column of a glob source: the file each row came from (``source_row`` counts per file)."""

SURROGATE_PREFIX = "sk-"
"""Prefix of derived keys (``surrogate_key = true``): ``sk-`` + 16 hex digits."""


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


def _empty_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECT_SCHEMA)


def _config_error(src: SourceConfig, key: str, message: str, config: Config) -> ConfigError:
    """The error of a mapping key of ``[sources.DATASET]`` (``sources.DATASET.KEY``)."""
    return ConfigError(message, path=config.path, key=f"sources.{src.dataset}.{key}")
