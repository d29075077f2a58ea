"""Data contracts: what each dataset must look like, checked with Great Expectations.

One YAML contract per dataset lives in ``data_contracts/`` (shipped inside the
package; the format is explained in ``docs/contracts.md``). :func:`validate`
loads and checks the contracts, compiles each to a Great Expectations 1.x
``ExpectationSuite`` (one per dataset), runs them on the loaded frames and
returns a frozen :class:`ValidationReport`::

    from qmskpi import contracts, sources
    data = sources.load_all(cfg, period="2026-10")
    report = contracts.validate(data, period="2026-10", config=cfg)
    report.clean["complaints"]        # rows used: canonical columns + source_row
    report.quarantine                 # rows set aside, one line per broken rule
    report.unsound_datasets           # datasets that failed an ``error`` rule

How a row is judged:

* a value the reader could not parse (``LoadedDataset.rejects``) quarantines
  its row under the reader's rule, e.g. ``type:received_date``;
* a row failing an ``error`` rule is quarantined (even when the rule passes
  thanks to ``mostly``); a row failing only ``warn`` rules is kept and reported;
* nothing is dropped silently: ``rows_in == rows_used + rows_quarantined`` for
  every dataset, checked here on every run.

Great Expectations does the checking and produces the per-rule results; the
failing *rows* come from the same contract evaluated in polars, and the two
must agree on every rule's unexpected count (a disagreement raises). That
split was measured (``benchmarks/bench_validation.py``, 1M inspections, 19
rules): GX with ``COMPLETE`` unexpected index lists took 1.6-1.9x (1 % failing
rows) and 3.7-4.4x (5 %) the time of GX with ``BASIC`` counts, and more than
this whole function (GX ``BASIC`` + polars masks + quarantine) takes.

Great Expectations is imported only when :func:`validate` or
:func:`build_suites` runs: ``import qmskpi.contracts`` stays light.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.resources
import json
import os
import re
import tempfile
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

import polars as pl

from qmskpi.datasets import DATASETS, SOURCE_ROW, FieldType
from qmskpi.errors import ContractError, QmsKpiError, did_you_mean
from qmskpi.periods import Period, parse_period

if TYPE_CHECKING:
    from qmskpi.config import Config

__all__ = [
    "QUARANTINE_SCHEMA",
    "Check",
    "Condition",
    "Contract",
    "ContractField",
    "DatasetValidation",
    "LoadedLike",
    "Rule",
    "RuleResult",
    "RuleSource",
    "Severity",
    "ValidationReport",
    "build_suites",
    "contracts_root",
    "load_contract",
    "load_contracts",
    "validate",
    "write_quarantine_csv",
    "write_validation_json",
]

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

_WORD_OF_TYPE: dict[FieldType, str] = {v: k for k, v in TYPE_WORDS.items()}
_SPECIAL_BOUNDS = ("as_of", "period_start", "period_end")
_GX_SEVERITY = {"error": "critical", "warn": "warning"}
_RULE_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_RESERVED_IDS = ("columns_present", "dataset_present")
_ROW = "__qmskpi_row"
_MAX_VALUE_CHARS = 200
_SAMPLE_SIZE = 5
_DEFAULT_STALE_DAYS = 45

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


class LoadedLike(Protocol):
    """What :func:`validate` needs of a loaded dataset (``sources.LoadedDataset`` fits)."""

    @property
    def dataset(self) -> str: ...

    @property
    def frame(self) -> pl.DataFrame: ...

    @property
    def rejects(self) -> pl.DataFrame: ...

    @property
    def origin(self) -> str: ...

    @property
    def sha256(self) -> str: ...

    @property
    def rows_in(self) -> int: ...


# --------------------------------------------------------------------------- contract model


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


# --------------------------------------------------------------------------- loading contracts


def contracts_root(contracts_dir: Path | str | None = None) -> Traversable:
    """The folder contracts are read from: ``contracts_dir``, else the packaged ``data_contracts``."""
    if contracts_dir is not None:
        return Path(contracts_dir)
    return importlib.resources.files("qmskpi") / "data_contracts"


def load_contracts(
    contracts_dir: Path | str | None = None, *, datasets: Iterable[str] | None = None
) -> dict[str, Contract]:
    """Read and check the contract of every dataset (or of ``datasets``).

    A file that is not named after a dataset, a missing contract, malformed
    YAML or a wrong key raises :class:`~qmskpi.errors.ContractError` naming
    the file and the key.
    """
    root = contracts_root(contracts_dir)
    if not root.is_dir():
        raise ContractError(f"{root}: contracts folder not found")
    for entry in root.iterdir():
        stem, dot, suffix = entry.name.rpartition(".")
        if dot and suffix in ("yaml", "yml") and stem not in DATASETS:
            raise ContractError(
                f"{_shown(entry)}: no dataset named {stem!r}{did_you_mean(stem, DATASETS)}; "
                f"a contract is named after its dataset: {', '.join(DATASETS)}"
            )
    wanted = list(DATASETS) if datasets is None else list(dict.fromkeys(datasets))
    out: dict[str, Contract] = {}
    for name in wanted:
        if name not in DATASETS:
            raise ContractError(f"unknown dataset {name!r}{did_you_mean(name, DATASETS)}")
        entry = root / f"{name}.yaml"
        if not entry.is_file():
            raise ContractError(f"{_shown(entry)}: contract for dataset '{name}' not found")
        out[name] = load_contract(entry, dataset=name)
    return out


def _shown(entry: Traversable | Path) -> str:
    return str(entry)


def load_contract(path: Traversable | Path | str, *, dataset: str | None = None) -> Contract:
    """Read and check one contract file (``dataset`` defaults to the file's stem)."""
    import yaml

    entry: Traversable = Path(path) if isinstance(path, str) else path
    shown = _shown(entry)
    try:
        text = entry.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContractError(f"{shown}: contract file not found") from None
    except UnicodeDecodeError:
        raise ContractError(f"{shown}: not UTF-8 text") from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ContractError(f"{shown}: not valid YAML{where}: {problem}") from None
    name = dataset or entry.name.rpartition(".")[0]
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return _parse_contract(data, name, shown, sha)


class _Where:
    """Builds ContractErrors that name the file and the dotted key."""

    def __init__(self, source: str):
        self.source = source

    def err(self, key: str, message: str) -> ContractError:
        return ContractError(f"{self.source}: key '{key}': {message}")


def _only(w: _Where, table: Mapping[str, Any], allowed: Iterable[str], prefix: str) -> None:
    allowed = tuple(allowed)
    for k in table:
        if k not in allowed:
            raise w.err(
                f"{prefix}{k}",
                f"unknown key{did_you_mean(str(k), allowed)}; allowed here: "
                f"{', '.join(sorted(allowed))}",
            )


def _text(w: _Where, table: Mapping[str, Any], key: str, prefix: str, *, required: bool) -> str:
    value = table.get(key)
    if value is None:
        if required:
            raise w.err(f"{prefix}{key}", "is required")
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise w.err(f"{prefix}{key}", f"must be a non-empty text, got {value!r}")
    return value.strip()


def _parse_contract(data: Any, name: str, source: str, sha: str) -> Contract:
    w = _Where(source)
    if not isinstance(data, Mapping):
        raise ContractError(
            f"{source}: a contract is a YAML mapping with dataset, fields and rules"
        )
    _only(w, data, ("dataset", "title", "description", "fields", "rules"), "")
    declared = data.get("dataset")
    if declared != name:
        raise w.err("dataset", f"must be {name!r} (the file name), got {declared!r}")
    ds = DATASETS[name]
    title = _text(w, data, "title", "", required=False) or ds.title
    description = _text(w, data, "description", "", required=False)

    raw_fields = data.get("fields")
    if not isinstance(raw_fields, Mapping):
        raise w.err("fields", "must be a mapping of field name -> {type, description}")
    fields: list[ContractField] = []
    for fname, spec in raw_fields.items():
        key = f"fields.{fname}"
        if fname not in ds.field_names:
            raise w.err(
                key,
                f"dataset '{name}' has no field {fname!r}{did_you_mean(str(fname), ds.field_names)}; "
                f"fields: {', '.join(ds.field_names)}",
            )
        if not isinstance(spec, Mapping):
            raise w.err(key, "must be a mapping with 'type' (and 'description')")
        _only(w, spec, ("type", "description"), f"{key}.")
        word = spec.get("type")
        if word not in TYPE_WORDS:
            raise w.err(
                f"{key}.type",
                f"unknown type {word!r}{did_you_mean(str(word), TYPE_WORDS)}; "
                f"use one of {', '.join(TYPE_WORDS)}",
            )
        ftype = TYPE_WORDS[word]
        canonical = ds.field(str(fname)).type
        if ftype != canonical:
            raise w.err(
                f"{key}.type",
                f"is {_WORD_OF_TYPE[canonical]} in the canonical dataset, not {word}",
            )
        fields.append(
            ContractField(
                str(fname), ftype, _text(w, spec, "description", f"{key}.", required=False)
            )
        )
    missing = [f for f in ds.field_names if f not in raw_fields]
    if missing:
        raise w.err("fields", f"missing field(s) {', '.join(missing)} of dataset '{name}'")
    types = {f.name: f.type for f in fields}

    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise w.err("rules", "must be a list of rules")
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_rules):
        rule = _parse_rule(w, raw, i, name, types)
        if rule.id in seen:
            raise w.err(f"rules[{i}].id", f"rule id {rule.id!r} is used twice")
        seen.add(rule.id)
        rules.append(rule)
    needed = [
        f
        for f in ds.required_fields
        if not any(r.check == "required" and r.columns == (f,) and r.when is None for r in rules)
    ]
    if needed:
        raise w.err(
            "rules",
            f"no 'required' rule (without 'when') for {', '.join(needed)}: the KPIs rely on "
            "these fields; keep a rule for each (severity warn is allowed)",
        )
    return Contract(name, title, description, tuple(fields), tuple(rules), source, sha)


_COMMON_KEYS = ("id", "description", "severity", "mostly", "when", "check")
_CHECK_KEYS: dict[str, tuple[str, ...]] = {
    "required": ("field",),
    "empty": ("field",),
    "unique": ("field", "fields"),
    "allowed": ("field", "values"),
    "range": ("field", "min", "max"),
    "pattern": ("field", "regex"),
    "compare": ("expression",),
    "reference": ("field", "in"),
    "freshness": ("field", "within_days"),
}
_NO_WHEN = ("unique", "reference", "freshness")
_COMPARE = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s*(>=|<=|>|<)\s*([a-z_][a-z0-9_]*)\s*$")
_WHEN_NULL = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s+is\s+(present|missing)\s*$")
_WHEN_CMP = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s*(==|=|!=|>=|<=|>|<)\s*(.+?)\s*$")


def _parse_rule(w: _Where, raw: Any, i: int, dataset: str, types: Mapping[str, FieldType]) -> Rule:
    prefix = f"rules[{i}]"
    if not isinstance(raw, Mapping):
        raise w.err(prefix, "a rule is a mapping with id, description, severity and check")
    rid = raw.get("id")
    if not isinstance(rid, str) or not _RULE_ID.match(rid):
        raise w.err(
            f"{prefix}.id", f"must be a lower-case name such as closed_after_received, got {rid!r}"
        )
    if rid in _RESERVED_IDS:
        raise w.err(f"{prefix}.id", f"{rid!r} is reserved for a rule qmskpi adds itself")
    prefix = f"rules[{i}] ({rid})"
    check = raw.get("check")
    if check not in _CHECK_KEYS:
        raise w.err(
            f"{prefix}.check",
            f"unknown check {check!r}{did_you_mean(str(check), _CHECK_KEYS)}; "
            f"use one of {', '.join(_CHECK_KEYS)}",
        )
    _only(w, raw, (*_COMMON_KEYS, *_CHECK_KEYS[check]), f"{prefix}.")
    description = _text(w, raw, "description", f"{prefix}.", required=True)
    severity = raw.get("severity")
    if severity not in ("error", "warn"):
        raise w.err(f"{prefix}.severity", f"must be error or warn, got {severity!r}")
    mostly = raw.get("mostly")
    if mostly is not None:
        if isinstance(mostly, bool) or not isinstance(mostly, int | float) or not 0 < mostly <= 1:
            raise w.err(
                f"{prefix}.mostly", f"must be a share above 0 and at most 1, got {mostly!r}"
            )
        mostly = float(mostly)

    def column(key: str = "field") -> str:
        value = raw.get(key)
        if not isinstance(value, str):
            raise w.err(f"{prefix}.{key}", f"must name a field of '{dataset}', got {value!r}")
        if value not in types:
            raise w.err(
                f"{prefix}.{key}",
                f"dataset '{dataset}' has no field {value!r}{did_you_mean(value, types)}",
            )
        return value

    when: Condition | None = None
    if raw.get("when") is not None:
        if check in _NO_WHEN:
            raise w.err(f"{prefix}.when", f"a {check} rule cannot have a condition")
        when = _parse_when(w, raw["when"], f"{prefix}.when", dataset, types)
    kwargs: dict[str, Any] = {}
    columns: tuple[str, ...]
    if check in ("required", "empty"):
        columns = (column(),)
        if check == "empty" and when is None:
            raise w.err(f"{prefix}.when", "an 'empty' rule needs a condition, e.g. status = open")
    elif check == "unique":
        if ("field" in raw) == ("fields" in raw):
            raise w.err(f"{prefix}.fields", "give 'field' (one column) or 'fields' (a list)")
        if "field" in raw:
            columns = (column(),)
        else:
            names = raw.get("fields")
            if not isinstance(names, list) or not names:
                raise w.err(f"{prefix}.fields", "must be a list of fields")
            for n in names:
                if n not in types:
                    raise w.err(
                        f"{prefix}.fields",
                        f"dataset '{dataset}' has no field {n!r}{did_you_mean(str(n), types)}",
                    )
            columns = tuple(str(n) for n in names)
    elif check == "allowed":
        columns = (column(),)
        values = raw.get("values")
        if values == "sites":
            kwargs["values_from"] = "sites"
        elif isinstance(values, list) and values:
            kwargs["values"] = tuple(
                _typed_value(w, v, types[columns[0]], f"{prefix}.values") for v in values
            )
        else:
            raise w.err(
                f"{prefix}.values", "must be a list of values, or 'sites' (the configured sites)"
            )
    elif check == "range":
        columns = (column(),)
        ftype = types[columns[0]]
        if ftype == "bool":
            raise w.err(f"{prefix}.field", "a range needs a number, date or YYYY-MM month field")
        if raw.get("min") is None and raw.get("max") is None:
            raise w.err(f"{prefix}.min", "give 'min', 'max' or both")
        for key in ("min", "max"):
            if raw.get(key) is not None:
                # A text field in a range is a YYYY-MM month, bounded by dates.
                kind: FieldType = "date" if ftype == "str" else ftype
                kwargs[f"{key}_value"] = _bound(w, raw[key], kind, f"{prefix}.{key}")
    elif check == "pattern":
        columns = (column(),)
        if types[columns[0]] != "str":
            raise w.err(f"{prefix}.field", "a pattern applies to a text field")
        kwargs["regex"] = _regex(w, raw.get("regex"), f"{prefix}.regex")
    elif check == "compare":
        expr = raw.get("expression")
        m = _COMPARE.match(expr) if isinstance(expr, str) else None
        if m is None:
            raise w.err(
                f"{prefix}.expression",
                f"must read '<field> <op> <field>' with op >=, >, <= or <, got {expr!r}",
            )
        a, op, b = m.group(1), m.group(2), m.group(3)
        for n in (a, b):
            if n not in types:
                raise w.err(
                    f"{prefix}.expression",
                    f"dataset '{dataset}' has no field {n!r}{did_you_mean(n, types)}",
                )
        kinds = {"int": "number", "float": "number", "date": "date"}
        if kinds.get(types[a]) is None or kinds.get(types[a]) != kinds.get(types[b]):
            raise w.err(
                f"{prefix}.expression",
                f"compares {a} ({_WORD_OF_TYPE[types[a]]}) with {b} ({_WORD_OF_TYPE[types[b]]}): "
                "compare two dates or two numbers",
            )
        columns = (a, b)
        kwargs["op"] = op
    elif check == "reference":
        columns = (column(),)
        target = raw.get("in")
        parts = target.split(".") if isinstance(target, str) else []
        if len(parts) != 2 or parts[0] not in DATASETS:
            raise w.err(
                f"{prefix}.in",
                f"must read '<dataset>.<field>', e.g. suppliers.supplier_id, got {target!r}",
            )
        if parts[1] not in DATASETS[parts[0]].field_names:
            raise w.err(
                f"{prefix}.in",
                f"dataset '{parts[0]}' has no field {parts[1]!r}"
                f"{did_you_mean(parts[1], DATASETS[parts[0]].field_names)}",
            )
        kwargs["target"] = (parts[0], parts[1])
    else:  # freshness
        columns = (column(),)
        if types[columns[0]] not in ("date", "str"):
            raise w.err(f"{prefix}.field", "freshness needs a date field or a YYYY-MM month field")
        days = raw.get("within_days")
        if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 0):
            raise w.err(
                f"{prefix}.within_days", f"must be a whole number of days >= 0, got {days!r}"
            )
        kwargs["within_days"] = days
    return Rule(
        id=rid,
        description=description,
        severity=cast(Severity, severity),
        check=cast(Check, check),
        columns=columns,
        mostly=mostly,
        when=when,
        **kwargs,
    )


def _typed_value(w: _Where, value: Any, ftype: FieldType, key: str) -> Scalar:
    if ftype == "str":
        if isinstance(value, bool):
            raise w.err(
                key, f"{value!r} was read as a yes/no value: put text in quotes, e.g. 'yes'"
            )
        if isinstance(value, str | int | float):
            return str(value)
    elif ftype == "bool":
        if isinstance(value, bool):
            return value
    elif ftype in ("int", "float") and _is_number(value):
        return cast(int | float, value)
    raise w.err(key, f"{value!r} is not a {_WORD_OF_TYPE[ftype]} value")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _bound(w: _Where, value: Any, ftype: FieldType, key: str) -> Bound:
    if ftype == "date":
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            if value in _SPECIAL_BOUNDS:
                return value
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise w.err(
            key,
            f"must be a date (2000-01-01) or one of {', '.join(_SPECIAL_BOUNDS)}, got {value!r}",
        )
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    raise w.err(key, f"must be a number, got {value!r}")


def _regex(w: _Where, value: Any, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise w.err(key, "must be a regular expression in quotes")
    try:
        re.compile(value)
    except re.error as exc:
        raise w.err(key, f"not a valid regular expression: {exc}") from None
    try:
        pl.select(pl.lit("").str.contains(value))
    except Exception as exc:  # polars' regex engine refuses look-arounds and back-references
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise w.err(
            key, f"pattern not supported (no look-arounds or back-references): {first}"
        ) from None
    return value


def _parse_when(
    w: _Where, value: Any, key: str, dataset: str, types: Mapping[str, FieldType]
) -> Condition:
    if not isinstance(value, str):
        raise w.err(key, f"must be a condition such as 'status = closed', got {value!r}")
    m = _WHEN_NULL.match(value)
    if m:
        col, op = m.group(1), cast(ConditionOp, m.group(2))
        parsed: Scalar | None = None
    else:
        m = _WHEN_CMP.match(value)
        if m is None:
            raise w.err(
                key,
                "must read '<field> = <value>' (or !=, >, >=, <, <=) or '<field> is present' / "
                f"'<field> is missing', got {value!r}",
            )
        col = m.group(1)
        op = cast(ConditionOp, "=" if m.group(2) == "==" else m.group(2))
        parsed = None
    if col not in types:
        raise w.err(key, f"dataset '{dataset}' has no field {col!r}{did_you_mean(col, types)}")
    if op not in ("present", "missing"):
        assert m is not None
        ftype = types[col]
        raw = m.group(3)
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
            raw = raw[1:-1]
        if ftype == "str":
            if op not in ("=", "!="):
                raise w.err(key, f"text field {col} can only be compared with = or !=")
            parsed = raw
        elif ftype == "bool":
            if raw.lower() not in ("true", "false") or op not in ("=", "!="):
                raise w.err(key, f"yes/no field {col} compares with = true or = false")
            parsed = raw.lower() == "true"
        elif ftype in ("int", "float"):
            try:
                parsed = int(raw)
            except ValueError:
                try:
                    parsed = float(raw)
                except ValueError:
                    raise w.err(key, f"{raw!r} is not a number") from None
        else:
            raise w.err(
                key, f"date field {col} can only be tested with 'is present' / 'is missing'"
            )
    return Condition(col, op, parsed, value.strip())


# --------------------------------------------------------------------------- report model


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

    @property
    def errors_failed(self) -> int:
        return sum(r.failed_error for r in self.rules)

    @property
    def warnings_failed(self) -> int:
        return sum(r.failed_warning for r in self.rules)

    @property
    def sound(self) -> bool:
        """No ``error`` rule failed (and the dataset was supplied)."""
        return self.loaded and self.errors_failed == 0

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
            "sound": self.sound,
            "errors_failed": self.errors_failed,
            "warnings_failed": self.warnings_failed,
            "rules": [r.to_dict() for r in self.rules],
        }


SummaryRow = tuple[str, int, int, int, int, int]


@dataclass(frozen=True, eq=False)
class ValidationReport:
    """Everything :func:`validate` found, for the KPIs, the pack and ``validation.json``.

    The KPI layer uses :attr:`unsound_datasets` (or :meth:`sound`) to mark every
    KPI computed from an unsound dataset ``sound=False``: its rows failed an
    ``error`` rule (beyond its ``mostly`` allowance) or the dataset is missing.
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
    """The checking engine and its version, e.g. ``great_expectations 1.24.1``."""

    def sound(self, dataset: str) -> bool:
        """Was ``dataset`` supplied and did it pass every ``error`` rule?"""
        if dataset not in DATASETS:
            raise QmsKpiError(f"unknown dataset {dataset!r}{did_you_mean(dataset, DATASETS)}")
        return dataset in self.datasets and dataset not in self.unsound_datasets

    @property
    def rows_quarantined(self) -> int:
        return sum(d.rows_quarantined for d in self.datasets.values())

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
        if self.unsound_datasets:
            return 2
        if strict and any(d.warnings_failed for d in self.datasets.values()):
            return 1
        return 0

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


@dataclass(frozen=True)
class _Run:
    period: Period
    as_of: date
    sites: tuple[str, ...]
    stale_days: int

    def bound(self, value: Bound) -> int | float | date:
        if value == "as_of":
            return self.as_of
        if value == "period_start":
            return self.period.start
        if value == "period_end":
            return self.period.end
        assert not isinstance(value, str)
        return value


@dataclass
class _Prepared:
    """One dataset, conformed to its canonical schema, ready for the checks."""

    name: str
    contract: Contract
    loaded: LoadedLike
    frame: pl.DataFrame
    """Canonical columns present (canonical dtypes) + source_row (+ file) + _ROW."""
    rejects: pl.DataFrame
    """Reader rejects plus values qmskpi could not cast (QUARANTINE_SCHEMA minus severity)."""
    missing: tuple[str, ...]
    origin: str
    rows_rejected: int


@dataclass
class _Outcome:
    """What the checks found for one rule."""

    rule: Rule
    success: bool
    unexpected_count: int
    unexpected_share: float
    checked: bool = True
    observed: str | None = None
    mask: str | None = None
    """Column of the mask frame that flags the rule's failing rows."""
    message: pl.Expr | None = None
    """Per-row finding message (reference rules); else the rule's description."""


def validate(
    data: Mapping[str, LoadedLike],
    *,
    period: Period | str,
    config: Config | None = None,
    as_of: date | None = None,
    contracts_dir: Path | None = None,
) -> ValidationReport:
    """Check every loaded dataset against its contract; quarantine what breaks ``error`` rules.

    ``as_of`` (default ``config.review.as_of``, else today) is the day the data
    was taken: no event may be dated after it. Rows dated after the period end
    but not after ``as_of`` are fine (a later extract of the same records).
    ``config`` supplies the sites (``values: sites``), the default freshness
    window (``[review] stale_after_days``) and the configured datasets: one
    configured but missing from ``data`` is reported and unsound.
    """
    p = parse_period(period)
    run = _Run(
        period=p,
        as_of=as_of or (config.review.as_of if config is not None else None) or date.today(),
        sites=tuple(config.sites) if config is not None else (),
        stale_days=config.review.stale_after_days if config is not None else _DEFAULT_STALE_DAYS,
    )
    for name in data:
        if name not in DATASETS:
            raise QmsKpiError(f"unknown dataset {name!r}{did_you_mean(name, DATASETS)}")
    contracts = load_contracts(contracts_dir)
    prepared = {
        name: _prepare(name, data[name], contracts[name]) for name in DATASETS if name in data
    }

    gx_outcomes, engine = _run_gx(prepared, run)
    judged = _judge_all(prepared, gx_outcomes, run)
    results: dict[str, DatasetValidation] = {n: judged[n][0] for n in prepared}
    clean: dict[str, pl.DataFrame] = {n: judged[n][1] for n in prepared}
    findings_parts: list[pl.DataFrame] = [judged[n][2] for n in prepared]
    configured = tuple(config.sources) if config is not None else ()
    for name in DATASETS:
        if name in configured and name not in data:
            results[name] = _missing_dataset(name, contracts[name])
    results = {n: results[n] for n in DATASETS if n in results}

    findings_schema = {**QUARANTINE_SCHEMA, "quarantined": pl.Boolean()}
    findings = (
        pl.concat(findings_parts, how="vertical")
        if findings_parts
        else pl.DataFrame(schema=findings_schema)
    ).sort("dataset", "file", SOURCE_ROW, "rule", "column")
    quarantine = findings.filter(pl.col("quarantined")).drop("quarantined")
    unsound = frozenset(n for n, d in results.items() if not d.sound)
    return ValidationReport(
        period=p,
        as_of=run.as_of,
        datasets=results,
        clean=clean,
        quarantine=quarantine,
        findings=findings,
        unsound_datasets=unsound,
        engine=engine,
    )


def _referenced(prep: _Prepared) -> list[str]:
    """Datasets ``prep``'s reference rules point at."""
    return [r.target[0] for r in prep.contract.rules if r.check == "reference" and r.target]


def _judge_all(
    prepared: Mapping[str, _Prepared], gx: Mapping[str, Mapping[str, _GxResult]], run: _Run
) -> dict[str, tuple[DatasetValidation, pl.DataFrame, pl.DataFrame]]:
    """Judge every dataset; a reference matches only the rows the other dataset USES.

    A row quarantined in the referenced dataset (a supplier with an unknown
    approval status) is not there for its referrers (the receipts naming it).
    Referenced datasets are judged first; a dataset whose used rows shrink
    after a referrer was judged (a cycle of references) has that referrer
    judged again. Used rows only ever shrink, so this ends.
    """
    order: list[str] = []

    def visit(name: str, seen: set[str]) -> None:
        if name in seen or name not in prepared:
            return
        seen.add(name)
        for target in _referenced(prepared[name]):
            visit(target, seen)
        order.append(name)

    seen: set[str] = set()
    for name in prepared:
        visit(name, seen)
    referrers = {n: [m for m in prepared if n in _referenced(prepared[m])] for n in prepared}
    used: dict[str, pl.DataFrame] = {n: p.frame for n, p in prepared.items()}
    judged: dict[str, tuple[DatasetValidation, pl.DataFrame, pl.DataFrame]] = {}
    pending = list(order)
    while pending:
        name = pending.pop(0)
        judged[name] = _judge(prepared[name], gx[name], prepared, used, run)
        rows_used = judged[name][1]
        if rows_used.height != used[name].height:
            used[name] = rows_used
            pending.extend(m for m in referrers[name] if m in judged and m not in pending)
    return judged


def _missing_dataset(name: str, contract: Contract) -> DatasetValidation:
    rule = RuleResult(
        rule_id="dataset_present",
        description=f"The configured source of {name} was loaded.",
        columns=(),
        severity="error",
        success=False,
        unexpected_count=0,
        unexpected_share=0.0,
        sample_values=(),
        source="reader",
        check="dataset_present",
        observed="not loaded",
    )
    return DatasetValidation(
        dataset=name,
        origin="(not loaded)",
        rows_in=0,
        rows_used=0,
        rows_quarantined=0,
        rules=(rule,),
        contract_sha256=contract.sha256,
        loaded=False,
    )


_REJECT_COLUMNS = ("file", SOURCE_ROW, "rule", "column", "value", "message")


def _prepare(name: str, loaded: LoadedLike, contract: Contract) -> _Prepared:
    """Canonical dtypes (values that will not cast become rejects), NaN as null, a row id.

    Frames from :mod:`qmskpi.sources` already carry canonical dtypes; a frame
    built by hand (a notebook) is cast here, and a value that will not cast
    quarantines its row under ``type:<column>``, as the reader would.
    """
    ds = DATASETS[name]
    origin = str(loaded.origin)
    frame = loaded.frame
    if SOURCE_ROW not in frame.columns:  # a frame built by hand: number rows as a CSV would
        frame = frame.with_columns(
            pl.int_range(2, frame.height + 2, dtype=pl.Int64).alias(SOURCE_ROW)
        )
    # The file a row came from: a ``source_file`` column when the frame has one,
    # else the origin (added only where rows are reported, not to every row).
    has_file = "source_file" in frame.columns
    frame = frame.with_columns(pl.col(SOURCE_ROW).cast(pl.Int64))
    if has_file:
        frame = frame.with_columns(pl.col("source_file").cast(pl.String).alias("file"))
    file_expr = pl.col("file") if has_file else pl.lit(origin, dtype=pl.String).alias("file")
    present = [f for f in ds.fields if f.name in frame.columns]
    missing = tuple(f.name for f in ds.fields if f.name not in frame.columns)

    casts: list[pl.Expr] = []
    bad: dict[str, str] = {}
    for f in present:
        current = frame.schema[f.name]
        value = _cast_expr(pl.col(f.name), current, f.type, f.dtype)
        if f.type == "float":
            value = value.cast(pl.Float64).fill_nan(None)
        casts.append(value.alias(f"_cast_{f.name}"))
        if current != f.dtype:
            bad[f.name] = _WORD_OF_TYPE[f.type]
    frame = frame.with_columns(casts)
    flags = {n: pl.col(n).is_not_null() & pl.col(f"_cast_{n}").is_null() for n in bad}
    conform_rejects = [
        frame.filter(expr).select(
            file_expr,
            pl.col(SOURCE_ROW),
            pl.lit(f"type:{n}").alias("rule"),
            pl.lit(n).alias("column"),
            pl.col(n).cast(pl.String).str.slice(0, _MAX_VALUE_CHARS).alias("value"),
            pl.format("'{}' is not a {} value", pl.col(n).cast(pl.String), pl.lit(bad[n])).alias(
                "message"
            ),
        )
        for n, expr in flags.items()
    ]
    if flags:
        frame = frame.filter(~pl.any_horizontal(list(flags.values())))
    frame = frame.select(
        *[pl.col(f"_cast_{f.name}").alias(f.name) for f in present],
        pl.col(SOURCE_ROW),
        *([pl.col("file")] if has_file else []),
        pl.int_range(pl.len(), dtype=pl.Int64).alias(_ROW),
    )

    rejects = _reader_rejects(loaded.rejects, origin)
    rows_rejected = _distinct_rows(rejects)
    if loaded.rows_in != loaded.frame.height + rows_rejected:
        raise QmsKpiError(
            f"dataset '{name}' ({origin}): the loader's ledger does not balance: rows_in "
            f"{loaded.rows_in} != {loaded.frame.height} rows in the frame + {rows_rejected} "
            "rejected rows"
        )
    conform_rejects = [c for c in conform_rejects if c.height]
    if conform_rejects:
        rejects = pl.concat([rejects, *[c.select(_REJECT_COLUMNS) for c in conform_rejects]])
    return _Prepared(
        name=name,
        contract=contract,
        loaded=loaded,
        frame=frame,
        rejects=rejects,
        missing=missing,
        origin=origin,
        rows_rejected=_distinct_rows(rejects),
    )


def _cast_expr(col: pl.Expr, current: pl.DataType, ftype: FieldType, dtype: pl.DataType) -> pl.Expr:
    """``col`` as the canonical type; a value that does not convert becomes null."""
    if current == dtype:
        return col
    if ftype == "date" and current == pl.String:
        return col.str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
    if ftype == "date" and isinstance(current, pl.Datetime):
        return col.dt.date()
    if ftype == "bool" and current == pl.String:
        low = col.str.strip_chars().str.to_lowercase()
        return (
            pl.when(low.is_in(["true", "yes", "y", "1", "t"]))
            .then(pl.lit(True))
            .when(low.is_in(["false", "no", "n", "0", "f"]))
            .then(pl.lit(False))
            .otherwise(pl.lit(None, dtype=pl.Boolean))
        )
    if ftype == "int" and current.is_float():
        return pl.when(col == col.floor()).then(col).otherwise(None).cast(pl.Int64, strict=False)
    if ftype == "int" and current == pl.String:
        return col.str.strip_chars().cast(pl.Int64, strict=False)
    if ftype == "float" and current == pl.String:
        return col.str.strip_chars().cast(pl.Float64, strict=False)
    if ftype == "str":
        return col.cast(pl.String)
    return col.cast(dtype, strict=False)


def _reader_rejects(rejects: pl.DataFrame, origin: str) -> pl.DataFrame:
    """The reader's rejects in a fixed shape; ``file`` filled with the origin when absent."""
    cols = rejects.columns
    if rejects.height and (SOURCE_ROW not in cols or "rule" not in cols):
        raise QmsKpiError(
            f"rejects of {origin} need columns source_row, column, value, rule, message; "
            f"got {', '.join(cols)}"
        )
    exprs = [
        (pl.col("file") if "file" in cols else pl.lit(origin)).cast(pl.String).alias("file"),
        (pl.col(SOURCE_ROW) if SOURCE_ROW in cols else pl.lit(None))
        .cast(pl.Int64)
        .alias(SOURCE_ROW),
    ]
    for c in ("rule", "column", "value", "message"):
        exprs.append((pl.col(c) if c in cols else pl.lit(None)).cast(pl.String).alias(c))
    return rejects.select(exprs).with_columns(pl.col("column").fill_null(""))


def _distinct_rows(rejects: pl.DataFrame) -> int:
    if rejects.is_empty():
        return 0
    return int(rejects.select(pl.struct("file", SOURCE_ROW).n_unique()).item())


# --------------------------------------------------------------------------- row masks (polars)


def _when_expr(c: Condition) -> pl.Expr:
    col = pl.col(c.column)
    if c.op == "present":
        return col.is_not_null()
    if c.op == "missing":
        return col.is_null()
    # The semantics of pandas' DataFrame.query, which GX uses: a missing value is
    # unequal to everything and fails every ordering.
    if c.op == "=":
        return col.eq_missing(pl.lit(c.value))
    if c.op == "!=":
        return col.ne_missing(pl.lit(c.value))
    ops = {">": col > c.value, ">=": col >= c.value, "<": col < c.value, "<=": col <= c.value}
    return ops[c.op].fill_null(False)


def _regex_fails(col: pl.Expr, regex: str) -> pl.Expr:
    """Rows whose text does not match ``regex`` the way Python's ``re.search`` (GX) decides.

    Python's ``$`` also matches before a final newline; polars' does not, so a
    value ending in one newline is tried again without it.
    """
    hit = col.str.contains(regex)
    hit_nl = (
        pl.when(col.str.ends_with("\n"))
        .then(col.str.strip_suffix("\n").str.contains(regex))
        .otherwise(pl.lit(False))
    )
    return col.is_not_null() & ~(hit | hit_nl)


def _month_first(column: str) -> pl.Expr:
    """First day of a ``YYYY-MM`` text month (null when it is not one)."""
    return (pl.col(column) + "-01").str.to_date("%Y-%m-%d", strict=False)


def _month_helper(column: str, which: Literal["first", "last"]) -> str:
    """Name of the date column GX sees for a ``YYYY-MM`` month column."""
    return f"{column}__{which}_day"


def _mask_expr(rule: Rule, contract: Contract, run: _Run) -> pl.Expr | None:
    """The rows ``rule`` fails, or None when it has no row-level polars form."""
    cols = [pl.col(c) for c in rule.columns]
    col = cols[0]
    if rule.check == "range" and contract.field_type(rule.columns[0]) == "str":
        col = _month_first(rule.columns[0])
    expr: pl.Expr
    if rule.check == "required":
        expr = col.is_null()
    elif rule.check == "empty":
        expr = col.is_not_null()
    elif rule.check == "unique":
        if len(cols) == 1:
            expr = col.is_duplicated() & col.is_not_null()
        else:
            expr = pl.struct(cols).is_duplicated() & ~pl.all_horizontal([c.is_null() for c in cols])
    elif rule.check == "allowed":
        values = list(run.sites) if rule.values_from == "sites" else list(rule.values or ())
        expr = col.is_not_null() & ~col.is_in(pl.Series(values).implode())
    elif rule.check == "range":
        out = pl.lit(False)
        if rule.min_value is not None:
            out = out | (col < pl.lit(run.bound(rule.min_value)))
        if rule.max_value is not None:
            out = out | (col > pl.lit(run.bound(rule.max_value)))
        expr = col.is_not_null() & out
    elif rule.check == "pattern":
        assert rule.regex is not None
        expr = _regex_fails(col, rule.regex)
    elif rule.check == "compare":
        a, b = cols
        ok = {">=": a >= b, ">": a > b, "<=": a <= b, "<": a < b}[rule.op or ">="]
        expr = a.is_not_null() & b.is_not_null() & ~ok
    else:
        return None
    if rule.when is not None:
        expr = _when_expr(rule.when) & expr
    return expr.fill_null(False)


def _value_expr(columns: Sequence[str]) -> pl.Expr:
    def text(c: str) -> pl.Expr:
        return pl.col(c).cast(pl.String)

    if len(columns) == 1:
        out = text(columns[0]).fill_null("")
    else:
        out = pl.concat_str(
            [pl.format("{}={}", pl.lit(c), text(c).fill_null("")) for c in columns], separator="; "
        )
    return out.str.slice(0, _MAX_VALUE_CHARS)


def _reference_outcome(
    rule: Rule,
    prep: _Prepared,
    prepared: Mapping[str, _Prepared],
    used: Mapping[str, pl.DataFrame],
) -> tuple[_Outcome, pl.Expr | None]:
    assert rule.target is not None
    target_ds, target_col = rule.target
    col = rule.columns[0]
    if col in prep.missing:
        return _not_checked(rule, f"column '{col}' is missing"), None
    target = prepared.get(target_ds)
    if target is None:
        return _skipped(rule, f"not checked: dataset '{target_ds}' was not supplied"), None
    if target_col in target.missing:
        return _not_checked(rule, f"column '{target_ds}.{target_col}' is missing"), None
    # Only the rows the other dataset uses count: a quarantined row is not there.
    known = used[target_ds].get_column(target_col).drop_nulls().unique()
    every = target.frame.get_column(target_col).drop_nulls().unique()
    expr = pl.col(col).is_not_null() & ~pl.col(col).is_in(known.implode())
    value = pl.col(col).cast(pl.String)
    message = pl.concat_str(
        pl.lit(f"{rule.description} ({target_ds}.{target_col} '"),
        value,
        pl.when(pl.col(col).is_in(every.implode()))
        .then(pl.lit(f"' is only on {target_ds} rows that were quarantined)"))
        .otherwise(pl.lit(f"' is missing from {target_ds})")),
    )
    return _Outcome(rule, True, 0, 0.0, mask=rule.id, message=message), expr.fill_null(False)


def _not_checked(rule: Rule, why: str) -> _Outcome:
    return _Outcome(rule, False, 0, 0.0, checked=False, observed=f"not checked: {why}")


def _skipped(rule: Rule, why: str) -> _Outcome:
    return _Outcome(rule, True, 0, 0.0, checked=False, observed=why)


# --------------------------------------------------------------------------- judging one dataset


def _judge(
    prep: _Prepared,
    gx: Mapping[str, _GxResult],
    prepared: Mapping[str, _Prepared],
    used_rows: Mapping[str, pl.DataFrame],
    run: _Run,
) -> tuple[DatasetValidation, pl.DataFrame, pl.DataFrame]:
    """Row masks + GX results -> rule results, clean rows, findings; checks the ledger."""
    frame = prep.frame
    outcomes: list[_Outcome] = []
    masks: dict[str, pl.Expr] = {}
    for rule in prep.contract.rules:
        if rule.check == "reference":
            outcome, expr = _reference_outcome(rule, prep, prepared, used_rows)
            if expr is not None:
                masks[rule.id] = expr
            outcomes.append(outcome)
            continue
        result = gx.get(rule.id)
        if result is None:  # not sent to GX: skipped
            outcomes.append(_skipped(rule, "not checked: no sites configured"))
            continue
        if result.exception is not None or any(c in prep.missing for c in rule.needed_columns):
            gone = [c for c in rule.needed_columns if c in prep.missing]
            why = (
                f"column {', '.join(repr(c) for c in gone)} is missing"
                if gone
                else f"Great Expectations raised: {result.exception}"
            )
            outcomes.append(
                _Outcome(rule, False, 0, 0.0, checked=False, observed=f"not checked: {why}")
            )
            continue
        outcome = _Outcome(
            rule,
            result.success,
            result.unexpected_count or 0,
            result.unexpected_share,
            observed=result.observed,
        )
        if rule.check == "freshness":
            newest, bound, fresh = _freshness(rule, prep, run)
            if fresh != result.success:
                raise QmsKpiError(
                    f"dataset '{prep.name}', rule '{rule.id}': Great Expectations and qmskpi "
                    f"disagree on freshness (newest {newest}, needed {bound} or later)"
                )
            outcome.observed = (
                f"newest {rule.columns[0]} {newest or 'none (no rows)'}; "
                f"needs {bound.isoformat()} or later"
            )
        expr = _mask_expr(rule, prep.contract, run) if rule.row_level else None
        if expr is not None:
            masks[rule.id] = expr
            outcome.mask = rule.id
        outcomes.append(outcome)

    flagged = frame.select(_ROW, *[e.alias(k) for k, e in masks.items()])
    counts = (
        flagged.select([pl.col(k).sum().alias(k) for k in masks]).row(0, named=True)
        if masks
        else {}
    )
    for o in outcomes:
        if o.mask is None:
            continue
        n = int(counts[o.mask] or 0)
        if o.rule.source == "gx":
            gx_count = gx[o.rule.id].unexpected_count
            if gx_count != n:
                raise QmsKpiError(
                    f"dataset '{prep.name}', rule '{o.rule.id}': Great Expectations counted "
                    f"{gx_count} failing rows, qmskpi's row mask {n}; the quarantine would not "
                    "match the report, so validation stops (please report this)"
                )
        else:  # reference: counted and judged here
            looked_at = int(frame.select(pl.col(o.rule.columns[0]).is_not_null().sum()).item())
            share = n / looked_at if looked_at else 0.0
            o.unexpected_count = n
            o.unexpected_share = share
            o.success = n == 0 if o.rule.mostly is None else (1 - share) >= o.rule.mostly - 1e-12

    error_masks = [pl.col(o.mask) for o in outcomes if o.mask and o.rule.severity == "error"]
    any_error = pl.any_horizontal(error_masks) if error_masks else pl.lit(False)
    # The mask frame is row-aligned with ``frame``: put them side by side (no join).
    combined = pl.concat(
        [frame, flagged.drop(_ROW).with_columns(any_error.alias("_quarantined"))],
        how="horizontal",
    )
    n_quarantined = int(combined.get_column("_quarantined").sum())

    parts: list[pl.LazyFrame] = []
    lazy = combined.lazy()
    file_expr = (
        pl.col("file")
        if "file" in frame.columns
        else pl.lit(prep.origin, dtype=pl.String).alias("file")
    )
    for o in outcomes:
        if o.mask is None:
            continue
        parts.append(
            lazy.filter(pl.col(o.mask)).select(
                pl.lit(prep.name).alias("dataset"),
                file_expr,
                pl.col(SOURCE_ROW),
                pl.lit(o.rule.id).alias("rule"),
                pl.lit(",".join(o.rule.columns)).alias("column"),
                _value_expr(o.rule.columns).alias("value"),
                pl.lit(o.rule.severity).alias("severity"),
                (o.message if o.message is not None else pl.lit(o.rule.description)).alias(
                    "message"
                ),
                pl.col("_quarantined").alias("quarantined"),
            )
        )
    row_findings = pl.concat(pl.collect_all(parts)) if parts else None
    reader_findings = prep.rejects.select(
        pl.lit(prep.name).alias("dataset"),
        pl.col("file"),
        pl.col(SOURCE_ROW),
        pl.col("rule"),
        pl.col("column"),
        pl.col("value").fill_null(""),
        pl.lit("error").alias("severity"),
        pl.col("message").fill_null(""),
        pl.lit(True).alias("quarantined"),
    )
    schema = {**QUARANTINE_SCHEMA, "quarantined": pl.Boolean()}
    found = pl.concat(
        [f.cast(schema) for f in (row_findings, reader_findings) if f is not None],  # type: ignore[arg-type]
        how="vertical",
    )

    samples = _samples(found)
    results: list[RuleResult] = _reader_results(prep, samples)
    columns_rule = gx.get("columns_present")
    if columns_rule is not None:
        results.append(
            RuleResult(
                rule_id="columns_present",
                description="Every column of the canonical dataset is present.",
                columns=(),
                severity="error",
                success=columns_rule.success,
                unexpected_count=0,
                unexpected_share=0.0,
                sample_values=tuple(prep.missing[:_SAMPLE_SIZE]),
                source="gx",
                check="columns_present",
                observed=(f"missing: {', '.join(prep.missing)}" if prep.missing else None),
            )
        )
    for o in outcomes:
        results.append(
            RuleResult(
                rule_id=o.rule.id,
                description=o.rule.description,
                columns=o.rule.columns,
                severity=o.rule.severity,
                success=o.success,
                unexpected_count=o.unexpected_count,
                unexpected_share=round(o.unexpected_share, 6),
                sample_values=samples.get(o.rule.id, ()),
                source=o.rule.source,
                check=o.rule.check,
                mostly=o.rule.mostly,
                checked=o.checked,
                observed=o.observed,
            )
        )

    used = frame.filter(~combined.get_column("_quarantined")).drop(_ROW, "file", strict=False)
    used = _canonical_columns(prep.name, used)
    rows_quarantined = prep.rows_rejected + n_quarantined
    dv = DatasetValidation(
        dataset=prep.name,
        origin=prep.origin,
        rows_in=int(prep.loaded.rows_in),
        rows_used=used.height,
        rows_quarantined=rows_quarantined,
        rules=tuple(results),
        sha256=str(prep.loaded.sha256) if prep.loaded.sha256 is not None else None,
        contract_sha256=prep.contract.sha256,
    )
    if dv.rows_in != dv.rows_used + dv.rows_quarantined:
        raise QmsKpiError(
            f"dataset '{prep.name}': the row ledger does not balance: rows_in {dv.rows_in} != "
            f"used {dv.rows_used} + quarantined {dv.rows_quarantined}"
        )
    return dv, used, found


def _freshness(rule: Rule, prep: _Prepared, run: _Run) -> tuple[str | None, date, bool]:
    """(newest value as text, the date it must reach, fresh?) computed in polars."""
    col = rule.columns[0]
    days = rule.within_days if rule.within_days is not None else run.stale_days
    bound = run.period.end - timedelta(days=days)
    if prep.contract.field_type(col) == "date":
        newest_day = prep.frame.get_column(col).max()
        shown = newest_day.isoformat() if isinstance(newest_day, date) else None
    else:
        ends = prep.frame.select(_month_first(col).dt.month_end().max()).item()
        newest_day = ends
        shown = ends.strftime("%Y-%m") if isinstance(ends, date) else None
    fresh = isinstance(newest_day, date) and newest_day >= bound
    return shown, bound, fresh


def _canonical_columns(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Canonical columns in canonical order (a missing one as nulls) + source_row."""
    ds = DATASETS[name]
    cols = [
        pl.col(f.name) if f.name in frame.columns else pl.lit(None, dtype=f.dtype).alias(f.name)
        for f in ds.fields
    ]
    return frame.select(*cols, pl.col(SOURCE_ROW))


def _samples(found: pl.DataFrame) -> dict[str, tuple[str, ...]]:
    """Up to five distinct offending values per rule, in (file, source_row) order."""
    if found.is_empty():
        return {}
    firsts = (
        found.sort("file", SOURCE_ROW)
        .filter(pl.col("value").is_not_null())
        .unique(subset=["rule", "value"], keep="first", maintain_order=True)
        .group_by("rule", maintain_order=True)
        .agg(pl.col("value").head(_SAMPLE_SIZE))
    )
    return {r: tuple(v) for r, v in firsts.iter_rows()}


def _reader_results(prep: _Prepared, samples: Mapping[str, tuple[str, ...]]) -> list[RuleResult]:
    """One failed ``error`` rule per reader rule found in the rejects (e.g. ``type:received_date``)."""
    if prep.rejects.is_empty():
        return []
    out: list[RuleResult] = []
    grouped = (
        prep.rejects.group_by("rule")
        .agg(
            pl.struct("file", SOURCE_ROW).n_unique().alias("rows"),
            pl.col("column").unique().sort().alias("columns"),
            pl.col("message").first().alias("message"),
        )
        .sort("rule")
    )
    rows_in = max(int(prep.loaded.rows_in), 1)
    for rule_id, rows, columns, message in grouped.iter_rows():
        out.append(
            RuleResult(
                rule_id=str(rule_id),
                description=_reader_description(prep.name, str(rule_id), message),
                columns=tuple(str(c) for c in columns if c),
                severity="error",
                success=False,
                unexpected_count=int(rows),
                unexpected_share=round(int(rows) / rows_in, 6),
                sample_values=samples.get(str(rule_id), ()),
                source="reader",
                check=str(rule_id).partition(":")[0],
            )
        )
    return out


def _reader_description(dataset: str, rule_id: str, message: str | None) -> str:
    kind, _, col = rule_id.partition(":")
    if kind == "type" and col in DATASETS[dataset].field_names:
        word = _WORD_OF_TYPE[DATASETS[dataset].field(col).type]
        return f"Values of {col} that could not be read as a {word}: the row cannot be used."
    if rule_id == "shape:fields":
        return "Rows with more fields than the header: the row cannot be used."
    return f"The reader could not use these rows ({message or rule_id})."


# --------------------------------------------------------------------------- Great Expectations


@dataclass(frozen=True)
class _GxResult:
    success: bool
    unexpected_count: int | None
    unexpected_share: float
    observed: str | None
    exception: str | None


def _import_gx() -> Any:
    os.environ["GX_ANALYTICS_ENABLED"] = "False"  # no telemetry, ever (DESIGN §8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import great_expectations as gx
    return gx


def _gx_value(value: int | float | date) -> int | float | datetime:
    """GX compares pandas timestamps: dates go in as midnight datetimes."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time())
    return value


def _gx_condition(c: Condition) -> Any:
    from great_expectations.expectations.row_conditions import Column

    col = Column(c.column)
    if c.op == "present":
        return col.is_not_null()
    if c.op == "missing":
        return col.is_null()
    return {
        "=": lambda: col == c.value,
        "!=": lambda: col != c.value,
        ">": lambda: col > c.value,
        ">=": lambda: col >= c.value,
        "<": lambda: col < c.value,
        "<=": lambda: col <= c.value,
    }[c.op]()


def _expectation(rule: Rule, contract: Contract, run: _Run) -> Any | None:
    """The GX expectation of ``rule`` (None for rules GX does not check)."""
    gx = _import_gx()
    gxe = gx.expectations
    common: dict[str, Any] = {
        "meta": {"rule_id": rule.id, "check": rule.check, "severity": rule.severity},
        "description": rule.description,
        "severity": _GX_SEVERITY[rule.severity],
    }
    if rule.mostly is not None and rule.row_level:
        common["mostly"] = rule.mostly
    if rule.when is not None:
        common["row_condition"] = _gx_condition(rule.when)
    col = rule.columns[0]
    if rule.check == "required":
        return gxe.ExpectColumnValuesToNotBeNull(column=col, **common)
    if rule.check == "empty":
        return gxe.ExpectColumnValuesToBeNull(column=col, **common)
    if rule.check == "unique":
        if len(rule.columns) == 1:
            return gxe.ExpectColumnValuesToBeUnique(column=col, **common)
        return gxe.ExpectCompoundColumnsToBeUnique(
            column_list=list(rule.columns), ignore_row_if="all_values_are_missing", **common
        )
    if rule.check == "allowed":
        if rule.values_from == "sites":
            if not run.sites:
                return None
            values: list[Scalar] = list(run.sites)
        else:
            values = list(rule.values or ())
        return gxe.ExpectColumnValuesToBeInSet(column=col, value_set=values, **common)
    if rule.check == "range":
        bounds = {
            k: _gx_value(run.bound(v))
            for k, v in (("min_value", rule.min_value), ("max_value", rule.max_value))
            if v is not None
        }
        if contract.field_type(col) == "str":
            col = _month_helper(col, "first")
        return gxe.ExpectColumnValuesToBeBetween(column=col, **bounds, **common)
    if rule.check == "pattern":
        return gxe.ExpectColumnValuesToMatchRegex(column=col, regex=rule.regex, **common)
    if rule.check == "compare":
        a, b = rule.columns
        if rule.op in ("<=", "<"):
            a, b = b, a
        return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=a,
            column_B=b,
            or_equal=rule.op in (">=", "<="),
            ignore_row_if="either_value_is_missing",
            **common,
        )
    if rule.check == "freshness":
        days = rule.within_days if rule.within_days is not None else run.stale_days
        bound = run.period.end - timedelta(days=days)
        target = col if contract.field_type(col) == "date" else _month_helper(col, "last")
        return gxe.ExpectColumnMaxToBeBetween(column=target, min_value=_gx_value(bound), **common)
    return None  # reference: checked across datasets in polars


def build_suites(
    *,
    period: Period | str,
    as_of: date,
    config: Config | None = None,
    contracts_dir: Path | None = None,
) -> dict[str, Any]:
    """The GX ``ExpectationSuite`` of every contract, as :func:`validate` runs them.

    Bounds such as ``as_of`` and the freshness date depend on the run, so a
    suite belongs to one period and as-of date. ``suite.to_json_dict()`` shows
    it in GX's own terms.
    """
    gx = _import_gx()
    run = _Run(
        parse_period(period),
        as_of,
        tuple(config.sites) if config is not None else (),
        config.review.stale_after_days if config is not None else _DEFAULT_STALE_DAYS,
    )
    suites: dict[str, Any] = {}
    for name, contract in load_contracts(contracts_dir).items():
        suites[name] = gx.ExpectationSuite(name=name, expectations=_expectations(contract, run))
    return suites


def _expectations(contract: Contract, run: _Run) -> list[Any]:
    gx = _import_gx()
    ds = DATASETS[contract.dataset]
    out = [
        gx.expectations.ExpectTableColumnsToMatchSet(
            column_set=[*ds.field_names, SOURCE_ROW],
            exact_match=False,
            meta={"rule_id": "columns_present", "check": "columns_present", "severity": "error"},
            description="Every column of the canonical dataset is present.",
            severity="critical",
        )
    ]
    for rule in contract.rules:
        exp = _expectation(rule, contract, run)
        if exp is not None:
            out.append(exp)
    return out


def _gx_exception(info: Any) -> str | None:
    """The message of an exception GX caught, in either shape GX reports it.

    Flat: ``{"raised_exception": True, "exception_message": ...}``; keyed by
    metric (a missing column): ``{"MetricConfigurationID(...)": {"raised_exception": ...}}``.
    """
    if not isinstance(info, Mapping) or not info:
        return None
    if "raised_exception" in info:
        if not info.get("raised_exception"):
            return None
        return str(info.get("exception_message") or "an exception")
    messages = sorted(
        {
            str(v.get("exception_message") or "an exception")
            for v in info.values()
            if isinstance(v, Mapping) and v.get("raised_exception")
        }
    )
    return "; ".join(messages) or None


def _observed(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    if text in ("NaT", "nan", "None"):
        return "no rows"
    return text.removesuffix("T00:00:00")


_NS_MIN, _NS_MAX = date(1678, 1, 1), date(2261, 12, 31)


def _for_gx(frame: pl.DataFrame) -> Any:
    """The pandas frame GX checks.

    Dates go over as ``datetime64[ns]`` when every value fits that range: only
    then does GX compare them vectorised (``datetime64[ms]``, what polars gives,
    takes a per-value Python path, 7.6 s instead of 0.1 s on 1M rows). A
    column holding e.g. ``9999-12-31`` stays in ms: slower, still right.
    """
    casts = []
    for name, dtype in frame.schema.items():
        if dtype == pl.Date:
            lo, hi = frame.select(
                pl.col(name).min().alias("lo"), pl.col(name).max().alias("hi")
            ).row(0)
            if (lo is None or lo >= _NS_MIN) and (hi is None or hi <= _NS_MAX):
                casts.append(pl.col(name).cast(pl.Datetime("ns")))
    return (frame.with_columns(casts) if casts else frame).to_pandas()


def _run_gx(
    prepared: Mapping[str, _Prepared], run: _Run
) -> tuple[dict[str, dict[str, _GxResult]], str]:
    """Run each dataset's suite in one ephemeral context; results by dataset and rule id."""
    if not prepared:
        return {}, ""
    gx = _import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = ctx.data_sources.add_pandas("qmskpi")
    out: dict[str, dict[str, _GxResult]] = {}
    for name, prep in prepared.items():
        expectations = _expectations(prep.contract, run)
        bd = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("whole")
        suite = ctx.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
        vd = ctx.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=bd, suite=suite)
        )
        months = {
            r.columns[0]
            for r in prep.contract.rules
            if r.check in ("freshness", "range")
            and prep.contract.field_type(r.columns[0]) == "str"
            and r.columns[0] in prep.frame.columns
        }
        helpers = [
            e
            for m in sorted(months)
            for e in (
                _month_first(m).alias(_month_helper(m, "first")),
                _month_first(m).dt.month_end().alias(_month_helper(m, "last")),
            )
        ]
        pdf = _for_gx(prep.frame.drop(_ROW, "file", strict=False).with_columns(helpers))
        with warnings.catch_warnings():
            # Warnings raised inside GX's metric code would otherwise turn into
            # caught exceptions (and failed rules) wherever warnings are errors.
            warnings.simplefilter("ignore")
            res = vd.run(batch_parameters={"dataframe": pdf}, result_format="BASIC")
        del pdf
        by_rule: dict[str, _GxResult] = {}
        for r in res.results:
            rule_id = str((r.expectation_config.meta or {}).get("rule_id"))
            result = r.result or {}
            count = result.get("unexpected_count")
            percent = result.get("unexpected_percent")
            by_rule[rule_id] = _GxResult(
                success=bool(r.success),
                unexpected_count=int(count) if count is not None else None,
                unexpected_share=float(percent) / 100 if percent is not None else 0.0,
                observed=_observed(result.get("observed_value"))
                if "observed_value" in result and not isinstance(result["observed_value"], list)
                else None,
                exception=_gx_exception(r.exception_info),
            )
        out[name] = by_rule
    return out, f"great_expectations {gx.__version__}"


# --------------------------------------------------------------------------- writers

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

    Every text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
    return gets a leading apostrophe, so it shows as text and never runs. The
    file is written to a temporary name and renamed into place.
    """
    target = Path(path)
    frame = report.quarantine

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
