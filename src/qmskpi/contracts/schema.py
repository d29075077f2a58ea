"""The contract model: what a rule says, what a contract holds, the run a rule is judged in.

Frozen dataclasses only; :mod:`qmskpi.contracts.loader` builds them from YAML
and the rest of the package reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from qmskpi.datasets import FieldType
from qmskpi.periods import Period

Severity = Literal["error", "warn"]
"""``error``: failing rows are quarantined and the dataset is unsound; ``warn``: reported only."""

RuleSource = Literal["gx", "reader", "reference"]
"""Who checked a rule: Great Expectations, the source reader, or a cross-dataset reference check."""

Check = Literal[
    "required",
    "empty",
    "unique",
    "allowed",
    "range",
    "pattern",
    "compare",
    "reference",
    "freshness",
]
"""The kinds of rule a contract can state (``docs/contracts.md``)."""

CompareOp = Literal[">=", ">", "<=", "<"]
ConditionOp = Literal["=", "!=", ">", ">=", "<", "<=", "present", "missing"]
Scalar = str | int | float | bool
Bound = int | float | date | str
"""A range bound: a number, a date, or one of ``as_of``, ``period_start``, ``period_end``."""

TYPE_WORDS: dict[str, FieldType] = {
    "text": "str",
    "date": "date",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
}
"""Type names a contract uses, and the canonical type each stands for."""

WORD_OF_TYPE: dict[FieldType, str] = {v: k for k, v in TYPE_WORDS.items()}
DEFAULT_STALE_DAYS = 45
"""Freshness window (days) when no config gives ``[review] stale_after_days``."""


@dataclass(frozen=True)
class Condition:
    """``when:`` of a rule: the rule looks only at rows where this holds."""

    column: str
    op: ConditionOp
    value: Scalar | None
    text: str
    """As written in the contract, e.g. ``status = closed``."""


@dataclass(frozen=True)
class Rule:
    """One rule of a contract (see ``docs/contracts.md`` for each ``check``)."""

    id: str
    description: str
    severity: Severity
    check: Check
    columns: tuple[str, ...]
    """The column(s) the rule looks at; ``compare`` is ``columns[0] op columns[1]``."""
    mostly: float | None = None
    """Share of rows (0-1] that must pass for the rule to count as passed."""
    when: Condition | None = None
    values: tuple[Scalar, ...] | None = None
    values_from: Literal["sites"] | None = None
    min_value: Bound | None = None
    max_value: Bound | None = None
    regex: str | None = None
    op: CompareOp | None = None
    target: tuple[str, str] | None = None
    """``reference``: (dataset, column) the value must exist in."""
    within_days: int | None = None
    """``freshness``: newest date at most this many days before the period end."""

    @property
    def source(self) -> RuleSource:
        return "reference" if self.check == "reference" else "gx"

    @property
    def row_level(self) -> bool:
        """Does the rule judge single rows (and so quarantine them)?"""
        return self.check != "freshness"

    @property
    def needed_columns(self) -> tuple[str, ...]:
        extra = (self.when.column,) if self.when is not None else ()
        return tuple(dict.fromkeys((*self.columns, *extra)))


@dataclass(frozen=True)
class ContractField:
    name: str
    type: FieldType
    description: str = ""


@dataclass(frozen=True)
class Contract:
    """A dataset's contract, read from ``data_contracts/<dataset>.yaml`` and checked."""

    dataset: str
    title: str
    description: str
    fields: tuple[ContractField, ...]
    rules: tuple[Rule, ...]
    source: str
    """The file it was read from (for messages)."""
    sha256: str
    """sha256 of the file's text: which version of the contract judged the data."""

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    def field_type(self, name: str) -> FieldType:
        for f in self.fields:
            if f.name == name:
                return f.type
        raise KeyError(name)

    @property
    def dated_by_as_of(self) -> tuple[str, ...]:
        """Fields of ``range`` rules bounded by ``max: as_of``, in rule order: the first is
        the record's own date (what a backfill's ``as_of`` cuts on), the others later events
        (a closure) that had not happened yet on ``as_of``."""
        return tuple(
            dict.fromkeys(
                r.columns[0] for r in self.rules if r.check == "range" and r.max_value == "as_of"
            )
        )


# --------------------------------------------------------------------------- loading contracts


@dataclass(frozen=True)
class Run:
    """What a rule is judged against besides the data: the period, the as-of day, the sites."""

    period: Period
    as_of: date
    sites: tuple[str, ...]
    stale_days: int

    def bound(self, value: Bound) -> int | float | date:
        """A range bound as a value: ``as_of``, ``period_start`` and ``period_end`` resolved."""
        if value == "as_of":
            return self.as_of
        if value == "period_start":
            return self.period.start
        if value == "period_end":
            return self.period.end
        assert not isinstance(value, str)
        return value
