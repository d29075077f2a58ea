"""What validation found: rule results, each dataset's row ledger, the report and its files.

:class:`ValidationReport` is what :func:`qmskpi.contracts.validate` returns;
:func:`write_quarantine_csv` and :func:`write_validation_json` write it out
(atomically; the CSV safe to open in a spreadsheet).
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from qmskpi import _reprs
from qmskpi.contracts.schema import RuleSource, Severity
from qmskpi.datasets import DATASETS, SOURCE_ROW
from qmskpi.errors import QmsKpiError, did_you_mean
from qmskpi.periods import Period

MAX_VALUE_CHARS = 200
"""An offending value is cut to this many characters in the quarantine."""

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "dataset": pl.String(),
    "file": pl.String(),
    SOURCE_ROW: pl.Int64(),
    "rule": pl.String(),
    "column": pl.String(),
    "value": pl.String(),
    "severity": pl.String(),
    "message": pl.String(),
}
"""Columns of :attr:`ValidationReport.quarantine` (and of ``quarantine.csv``).

``file`` is the file the row came from (the reader's ``file`` for a value it
could not parse, else the dataset's origin); ``column`` is the column the rule
looks at (``a,b`` for a rule over two columns); ``value`` the offending value as
text (``a=...; b=...`` for two columns).
"""


@dataclass(frozen=True)
class RuleResult:
    """The outcome of one rule on one dataset."""

    rule_id: str
    description: str
    columns: tuple[str, ...]
    severity: Severity
    success: bool
    unexpected_count: int
    """Rows that broke the rule (0 for a rule on the whole table, such as freshness)."""
    unexpected_share: float
    """unexpected_count / rows the rule looked at (rows with a value, rows meeting ``when``), 0-1."""
    sample_values: tuple[str, ...]
    """Up to five offending values, as text, in source-row order."""
    source: RuleSource
    check: str = ""
    mostly: float | None = None
    checked: bool = True
    """False when the rule could not be applied (a column missing, no sites configured, ...)."""
    observed: str | None = None
    """What a table-level rule saw (e.g. the newest date), or why a rule was not checked."""
    engine: str = ""
    """Who judged the rule: ``polars`` (the default engine, and every ``reference`` rule),
    ``great_expectations`` (``[contracts] engine = "gx"``), or ``reader`` (a value the
    source reader could not use, a dataset not loaded)."""

    @property
    def column(self) -> str:
        """The column(s) as one text (``a,b`` for a pair)."""
        return ",".join(self.columns)

    @property
    def failed_error(self) -> bool:
        return not self.success and self.severity == "error"

    @property
    def failed_warning(self) -> bool:
        return not self.success and self.severity == "warn"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "description": self.description,
            "columns": list(self.columns),
            "severity": self.severity,
            "success": self.success,
            "unexpected_count": self.unexpected_count,
            "unexpected_share": self.unexpected_share,
            "sample_values": list(self.sample_values),
            "source": self.source,
            "check": self.check,
            "mostly": self.mostly,
            "checked": self.checked,
            "observed": self.observed,
            "engine": self.engine,
        }


@dataclass(frozen=True)
class DatasetValidation:
    """The ledger and rule results of one dataset."""

    dataset: str
    origin: str
    rows_in: int
    rows_used: int
    rows_quarantined: int
    rules: tuple[RuleResult, ...]
    sha256: str | None = None
    contract_sha256: str | None = None
    loaded: bool = True
    """False when the dataset is configured but was not supplied to :func:`validate`."""
    set_aside: tuple[tuple[str, int], ...] = ()
    """(rule id, quarantined rows that broke it), most rows first; a row can break several."""
    max_quarantined_share: float | None = None
    """Above this share of rows set aside the dataset is unsound; None: any failed error rule."""

    excluded_by: Mapping[str, int] = field(default_factory=dict)
    """Records set aside on purpose, by rule: the reader's ``where`` and ``duplicate``, and
    ``after_as_of`` (a backfill: dated after ``as_of``)."""

    @property
    def rows_excluded(self) -> int:
        return sum(self.excluded_by.values())

    @property
    def rows_considered(self) -> int:
        """Rows that are records of this dataset: rows_in less those excluded on purpose."""
        return self.rows_in - self.rows_excluded

    @property
    def quarantined_share(self) -> float:
        """rows_quarantined / rows_considered (0 when no record came in).

        Rows excluded on purpose (a mapping's ``where``, exact duplicates) are not
        records of the dataset, so they count neither way.
        """
        considered = self.rows_considered
        return self.rows_quarantined / considered if considered else 0.0

    @property
    def errors_failed(self) -> int:
        return sum(r.failed_error for r in self.rules)

    @property
    def warnings_failed(self) -> int:
        return sum(r.failed_warning for r in self.rules)

    @property
    def sound(self) -> bool:
        """Can the KPIs reading this dataset be trusted?

        Sound when every ``error`` rule passed (a rule with ``mostly`` passes
        while few enough rows break it). Otherwise unsound when the dataset was
        not supplied or an ``error`` rule on the whole table failed (freshness, a
        missing column, a rule that could not be checked); when only row rules
        failed, their rows are set aside and the dataset stays sound while the
        share set aside is at most :attr:`max_quarantined_share` (None: no
        allowance).
        """
        if not self.loaded:
            return False
        if self.errors_failed == 0:
            return True
        if self.max_quarantined_share is None:
            return False
        if any(r.failed_error and not _quarantines(r) for r in self.rules):
            return False
        return self.quarantined_share <= self.max_quarantined_share + 1e-12

    def based_on(self) -> str | None:
        """``based on 5,022 of 5,300 complaints (278 set aside: blank customer 214, ...)``.

        None when no row was set aside. The reasons are the rules the
        quarantined rows broke, most rows first (a row can break several).
        """
        if not self.rows_quarantined:
            return None
        by_id = {r.rule_id: r for r in self.rules}
        reasons = ", ".join(
            f"{_reason(by_id[rule_id]) if rule_id in by_id else rule_id} {rows:,}"
            for rule_id, rows in self.set_aside
        )
        noun = _NOUNS.get(self.dataset, self.dataset.replace("_", " "))
        return (
            f"based on {self.rows_used:,} of {self.rows_considered:,} {noun} "
            f"({self.rows_quarantined:,} set aside: {reasons})"
        )

    def rule(self, rule_id: str) -> RuleResult:
        for r in self.rules:
            if r.rule_id == rule_id:
                return r
        raise KeyError(f"{self.dataset}: no rule {rule_id!r}{did_you_mean(rule_id, self.rule_ids)}")

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(r.rule_id for r in self.rules)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "origin": self.origin,
            "sha256": self.sha256,
            "contract_sha256": self.contract_sha256,
            "loaded": self.loaded,
            "rows_in": self.rows_in,
            "rows_used": self.rows_used,
            "rows_quarantined": self.rows_quarantined,
            "rows_excluded": self.rows_excluded,
            "excluded_by": dict(sorted(self.excluded_by.items())),
            "sound": self.sound,
            "quarantined_share": round(self.quarantined_share, 6),
            "max_quarantined_share": self.max_quarantined_share,
            "set_aside": dict(self.set_aside),
            "errors_failed": self.errors_failed,
            "warnings_failed": self.warnings_failed,
            "rules": [r.to_dict() for r in self.rules],
        }


_TABLE_CHECKS = ("freshness", "columns_present", "dataset_present")
_NOUNS = {"capa": "CAPAs", "surveys": "survey responses"}


def _quarantines(r: RuleResult) -> bool:
    """Does a failure of ``r`` set rows aside (rather than condemn the whole table)?"""
    return r.checked and r.check not in _TABLE_CHECKS


def _reason(r: RuleResult) -> str:
    """A few words for why a rule set a row aside: ``blank customer``, ``unknown site``."""
    col = r.column
    words = {
        "required": f"blank {col}",
        "empty": f"{col} not empty",
        "unique": f"duplicate {col}",
        "allowed": f"unknown {col}",
        "reference": f"unknown {col}",
        "range": f"{col} out of range",
        "pattern": f"malformed {col}",
        "type": f"unreadable {col}",
    }
    return words.get(r.check, r.rule_id) if col else r.rule_id


SummaryRow = tuple[str, int, int, int, int, int]


@dataclass(frozen=True, eq=False)
class ValidationReport:
    """Everything :func:`validate` found, for the KPIs, the pack and ``validation.json``.

    The KPI layer uses :attr:`unsound_datasets` (or :meth:`sound`) to mark every
    KPI computed from an unsound dataset ``sound=False``: the dataset is missing,
    failed a table-level ``error`` rule, or had more than its
    ``max_quarantined_share`` of rows set aside (see :attr:`DatasetValidation.sound`).
    """

    period: Period
    as_of: date
    datasets: dict[str, DatasetValidation]
    """By dataset name, in canonical order."""
    clean: dict[str, pl.DataFrame]
    """Rows used, per dataset: canonical columns (canonical dtypes) + ``source_row``."""
    quarantine: pl.DataFrame
    """Quarantined rows (:data:`QUARANTINE_SCHEMA`), one line per broken rule per row, sorted."""
    findings: pl.DataFrame
    """Every broken row-level rule, kept rows included (:data:`QUARANTINE_SCHEMA` + ``quarantined``)."""
    unsound_datasets: frozenset[str]
    engine: str = ""
    """The engine that judged the contracts' rules and its version, e.g. ``polars 2.1.0``
    or ``great_expectations 1.24.1`` (each rule says its own: :attr:`RuleResult.engine`)."""
    excluded: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=QUARANTINE_SCHEMA))
    """Records the reader set aside on purpose (``where``, ``duplicate``), severity ``excluded``."""

    def sound(self, dataset: str) -> bool:
        """Was ``dataset`` supplied and did it pass every ``error`` rule?"""
        if dataset not in DATASETS:
            raise QmsKpiError(f"unknown dataset {dataset!r}{did_you_mean(dataset, DATASETS)}")
        return dataset in self.datasets and dataset not in self.unsound_datasets

    @property
    def rows_quarantined(self) -> int:
        return sum(d.rows_quarantined for d in self.datasets.values())

    def set_aside_notes(self) -> dict[str, str]:
        """``based on ... of ...`` (:meth:`DatasetValidation.based_on`) of each sound dataset
        that had rows set aside, by dataset."""
        return {
            n: note
            for n, d in self.datasets.items()
            if d.sound and (note := d.based_on()) is not None
        }

    def summary_rows(self) -> list[SummaryRow]:
        """Per dataset: (dataset, rows in, used, quarantined, errors failed, warnings failed)."""
        return [
            (
                d.dataset,
                d.rows_in,
                d.rows_used,
                d.rows_quarantined,
                d.errors_failed,
                d.warnings_failed,
            )
            for d in self.datasets.values()
        ]

    def exit_code(self, strict: bool = False) -> int:
        """0 clean; 2 when an ``error`` rule failed; 1 when only warnings failed and ``strict``."""
        if any(not d.loaded or d.errors_failed for d in self.datasets.values()):
            return 2
        if strict and any(d.warnings_failed for d in self.datasets.values()):
            return 1
        return 0

    def __repr__(self) -> str:
        ds = self.datasets.values()
        failed = sum(d.errors_failed + d.warnings_failed for d in ds)
        return (
            f"<ValidationReport {self.period.label} as of {self.as_of}: "
            f"{_reprs.count(len(self.datasets), 'dataset')}, "
            f"{len(self.datasets) - len(self.unsound_datasets)} sound, "
            f"unsound: {_reprs.names(sorted(self.unsound_datasets))}; "
            f"{_reprs.count(sum(d.rows_in for d in ds), 'row')} in, "
            f"{sum(d.rows_used for d in ds):,} used, {self.rows_quarantined:,} quarantined; "
            f"{_reprs.count(failed, 'rule')} failed>"
        )

    def _repr_html_(self) -> str:
        lines = [
            ("period", f"{self.period.label} (as of {self.as_of})"),
            ("unsound datasets", _reprs.names(sorted(self.unsound_datasets))),
            ("rows quarantined", f"{self.rows_quarantined:,}"),
            ("engine", self.engine or "-"),
        ]
        header = ("dataset", "rows in", "used", "quarantined", "errors failed", "warnings failed")
        return _reprs.html_summary(
            "Validation report",
            lines,
            header=(*header, "sound"),
            rows=[
                (*r, "yes" if r[0] not in self.unsound_datasets else "NO")
                for r in self.summary_rows()
            ],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "qmskpi.validation/1",
            "period": self.period.label,
            "as_of": self.as_of.isoformat(),
            "engine": self.engine,
            "sound": not self.unsound_datasets,
            "unsound_datasets": sorted(self.unsound_datasets),
            "rows_quarantined": self.rows_quarantined,
            "quarantine_entries": self.quarantine.height,
            "datasets": {name: d.to_dict() for name, d in self.datasets.items()},
        }

    def to_json(self) -> str:
        """Deterministic JSON: sorted keys, no timestamps, no GX run ids."""
        return json.dumps(
            self.to_dict(), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False
        )


# --------------------------------------------------------------------------- validate


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _neutralise(cell: Any) -> Any:
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe."""
    if isinstance(cell, str) and cell.startswith(_FORMULA_START):
        return "'" + cell
    return cell


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_quarantine_csv(report: ValidationReport, path: Path | str) -> Path:
    """Write ``report.quarantine`` as CSV (UTF-8), safe to open in a spreadsheet.

    Duplicates the reader set aside (rule ``duplicate``, severity ``excluded``)
    follow the quarantined rows, so each copy left out is named by file and row.

    Every text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
    return gets a leading apostrophe, so it shows as text and never runs. The
    file is written to a temporary name and renamed into place.
    """
    target = Path(path)
    dups = report.excluded.filter(pl.col("rule") == "duplicate")
    frame = (
        pl.concat([report.quarantine, dups], how="vertical") if dups.height else report.quarantine
    )

    def write(fh: Any) -> None:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(frame.columns)
        for row in frame.iter_rows():
            out.writerow(["" if v is None else _neutralise(v) for v in row])

    _atomic_write(target, write)
    return target


def write_validation_json(report: ValidationReport, path: Path | str) -> Path:
    """Write ``report.to_json()`` (deterministic) to ``path``, atomically."""
    target = Path(path)
    text = report.to_json() + "\n"
    _atomic_write(target, lambda fh: fh.write(text))
    return target
