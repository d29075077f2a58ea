"""Reading contracts: YAML files -> checked :class:`~qmskpi.contracts.schema.Contract` objects.

Every mistake raises :class:`~qmskpi.errors.ContractError` naming the file and
the dotted key (``rules[3] (closed_after_received).expression``), with a
did-you-mean where a name is close to a known one. The file's shape (keys, types,
words) is stated by the pydantic models :class:`ContractSpec` and one model per
``check`` (the JSON Schema of ``qmskpi schema contract``); what needs the dataset
(its fields and their types, a condition, a comparison) is checked after.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

import polars as pl
from pydantic import ConfigDict, Field, ValidationError

from qmskpi.contracts.schema import (
    TYPE_WORDS,
    WORD_OF_TYPE,
    Bound,
    Condition,
    ConditionOp,
    Contract,
    ContractField,
    Rule,
    Scalar,
    Severity,
)
from qmskpi.datasets import DATASETS, FieldType
from qmskpi.errors import ConfigError, ContractError, did_you_mean
from qmskpi.schemas import StrictTable, json_schema, schema_error_text

if TYPE_CHECKING:
    from qmskpi.config import Config, RuleOverride

_SPECIAL_BOUNDS = ("as_of", "period_start", "period_end")
_RULE_ID = re.compile(r"^[a-z][a-z0-9_]*$")
RESERVED_IDS = ("columns_present", "dataset_present")
"""Rule ids qmskpi adds itself; a contract cannot use them."""


def contracts_root(contracts_dir: Path | str | None = None) -> Traversable:
    """The folder contracts are read from: ``contracts_dir``, else the packaged ``data_contracts``."""
    if contracts_dir is not None:
        return Path(contracts_dir)
    return importlib.resources.files("qmskpi") / "data_contracts"


def load_contracts(
    contracts_dir: Path | str | None = None,
    *,
    datasets: Iterable[str] | None = None,
    fallback: bool = False,
) -> dict[str, Contract]:
    """Read and check the contract of every dataset (or of ``datasets``).

    A file that is not named after a dataset, a missing contract, malformed
    YAML or a wrong key raises :class:`~qmskpi.errors.ContractError` naming
    the file and the key. With ``fallback``, a dataset that has no file in
    ``contracts_dir`` uses the shipped contract instead.
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
        if fallback and not entry.is_file():
            entry = contracts_root() / f"{name}.yaml"
        if not entry.is_file():
            raise ContractError(f"{_shown(entry)}: contract for dataset '{name}' not found")
        out[name] = load_contract(entry, dataset=name)
    return out


def configured_contracts(
    config: Config | None, contracts_dir: Path | str | None = None
) -> dict[str, Contract]:
    """The contracts a run uses: ``contracts_dir``, else the config's ``[contracts]``.

    ``[contracts] dir`` (relative to the config file) holds your own contracts;
    a dataset without a file there uses the shipped one. Then each
    ``[contracts.<dataset>.<rule_id>]`` override changes that rule's severity
    or ``mostly``; an unknown rule id raises :class:`~qmskpi.errors.ConfigError`
    naming the config file and the key, with a did-you-mean.
    """
    if contracts_dir is not None or config is None:
        contracts = load_contracts(contracts_dir)
    elif config.contracts.dir is None:
        contracts = load_contracts()
    else:
        folder = config.resolve(config.contracts.dir)
        if not folder.is_dir():
            raise ConfigError(
                f"contracts folder {folder} not found", path=config.path, key="contracts.dir"
            )
        contracts = load_contracts(folder, fallback=True)
    if config is None:
        return contracts
    for ds, overrides in config.contracts.overrides.items():
        contracts[ds] = _overridden(contracts[ds], overrides, config)
    return contracts


def _overridden(
    contract: Contract, overrides: Mapping[str, RuleOverride], config: Config
) -> Contract:
    ids = [r.id for r in contract.rules]
    for rule_id in overrides:
        if rule_id not in ids:
            raise ConfigError(
                f"the {contract.dataset} contract ({contract.source}) has no rule "
                f"{rule_id!r}{did_you_mean(rule_id, ids)}; its rules: {', '.join(ids)}",
                path=config.path,
                key=f"contracts.{contract.dataset}.{rule_id}",
            )
    rules = []
    for rule in contract.rules:
        o = overrides.get(rule.id)
        if o is not None:
            rule = replace(
                rule,
                severity=o.severity if o.severity is not None else rule.severity,
                mostly=o.mostly if o.mostly is not None else rule.mostly,
            )
        rules.append(rule)
    return replace(contract, rules=tuple(rules))


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


# --------------------------------------------------------------------------- the file's schema
#
# pydantic models state what a contract file may hold: its keys (extra="forbid"; each check
# takes its own keys besides the common ones), their types (strict) and the words allowed.
# They give the JSON Schema editors use (``qmskpi schema contract``). What needs the dataset
# (a field it has, the field's type, a condition or comparison that reads) is checked after.

TypeWord = Literal["text", "date", "integer", "number", "boolean"]
PositiveShare = Annotated[float, Field(gt=0, le=1)]
BoundValue = int | float | date | datetime | str
"""A range bound as written: a number, a date, or as_of / period_start / period_end."""


class FieldSpec(StrictTable):
    """``fields.<name>``: the field's type (it must match the canonical dataset's)."""

    type: TypeWord
    description: str = ""


class _RuleSpec(StrictTable):
    """The keys every rule takes."""

    id: str = Field(description="A lower-case name, e.g. closed_after_received.")
    description: str = Field(description="What the rule asks, in words (shown in the pack).")
    severity: Severity = Field(description="error: failing rows are quarantined; warn: reported.")
    mostly: PositiveShare | None = Field(
        default=None, description="Share of rows (0-1] that must pass."
    )
    when: str | None = Field(
        default=None, description="Only rows where this holds, e.g. 'status = closed'."
    )


class RequiredSpec(_RuleSpec):
    """``required``: the field has a value (``empty``: has none, with a ``when``)."""

    check: Literal["required", "empty"]
    field: str


class UniqueSpec(_RuleSpec):
    """``unique``: one ``field``, or a list of ``fields`` taken together."""

    check: Literal["unique"]
    field: str | None = None
    fields: list[str] | None = None


class AllowedSpec(_RuleSpec):
    """``allowed``: a list of values, or ``sites`` (the configured sites)."""

    check: Literal["allowed"]
    field: str
    values: list[str | int | float | bool] | Literal["sites"]


class RangeSpec(_RuleSpec):
    """``range``: ``min`` and/or ``max``, numbers or dates (or as_of, period_start, period_end)."""

    check: Literal["range"]
    field: str
    min: BoundValue | None = None
    max: BoundValue | None = None


class PatternSpec(_RuleSpec):
    """``pattern``: a regular expression every text value matches."""

    check: Literal["pattern"]
    field: str
    regex: str


class CompareSpec(_RuleSpec):
    """``compare``: ``<field> <op> <field>``, op >=, >, <= or <."""

    check: Literal["compare"]
    expression: str


class ReferenceSpec(_RuleSpec):
    """``reference``: the value exists in ``<dataset>.<field>``."""

    check: Literal["reference"]
    field: str
    in_: str = Field(alias="in", description="<dataset>.<field>, e.g. suppliers.supplier_id")


class FreshnessSpec(_RuleSpec):
    """``freshness``: the newest date is at most ``within_days`` before the period end."""

    check: Literal["freshness"]
    field: str
    within_days: Annotated[int, Field(ge=0)] | None = None


RuleSpec = Annotated[
    RequiredSpec
    | UniqueSpec
    | AllowedSpec
    | RangeSpec
    | PatternSpec
    | CompareSpec
    | ReferenceSpec
    | FreshnessSpec,
    Field(discriminator="check"),
]


class ContractSpec(StrictTable):
    """``data_contracts/<dataset>.yaml``, as read."""

    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, title="qmskpi data contract"
    )

    dataset: str = Field(description="The dataset, as in the file's name.")
    title: str = ""
    description: str = ""
    fields: dict[str, FieldSpec] = Field(description="Every field of the dataset, with its type.")
    rules: list[RuleSpec]


def contract_json_schema() -> dict[str, Any]:
    """The JSON Schema of a contract file (for editors: YAML language server, VS Code)."""
    return json_schema(ContractSpec)


# --------------------------------------------------------------------------- checking


class _Where:
    """Builds ContractErrors that name the file and the dotted key."""

    def __init__(self, source: str):
        self.source = source

    def err(self, key: str, message: str) -> ContractError:
        return ContractError(f"{self.source}: key '{key}': {message}")


def _parse_contract(data: Any, name: str, source: str, sha: str) -> Contract:
    w = _Where(source)
    if not isinstance(data, Mapping):
        raise ContractError(
            f"{source}: a contract is a YAML mapping with dataset, fields and rules"
        )
    try:
        spec = ContractSpec.model_validate(data)
    except ValidationError as exc:
        key, message = schema_error_text(exc, ContractSpec, table="a mapping")
        raise w.err(_with_rule_id(key, data), message) from None
    if spec.dataset != name:
        raise w.err("dataset", f"must be {name!r} (the file name), got {spec.dataset!r}")
    title = spec.title.strip() or DATASETS[name].title
    fields = _parse_fields(w, spec.fields, name)
    rules = _parse_rules(w, spec.rules, name, {f.name: f.type for f in fields})
    return Contract(name, title, spec.description.strip(), fields, rules, source, sha)


def _with_rule_id(key: str, data: Mapping[str, Any]) -> str:
    """``rules[3].field`` -> ``rules[3] (closed_after_received).field``: the rule's id helps."""
    m = re.match(r"rules\[(\d+)\]", key)
    raw = data.get("rules")
    if m is None or not isinstance(raw, list) or int(m.group(1)) >= len(raw):
        return key
    rule = raw[int(m.group(1))]
    rid = rule.get("id") if isinstance(rule, Mapping) else None
    return key.replace(m.group(0), f"{m.group(0)} ({rid})", 1) if isinstance(rid, str) else key


def _parse_fields(
    w: _Where, specs: Mapping[str, FieldSpec], name: str
) -> tuple[ContractField, ...]:
    ds = DATASETS[name]
    fields: list[ContractField] = []
    for fname, spec in specs.items():
        key = f"fields.{fname}"
        if fname not in ds.field_names:
            raise w.err(
                key,
                f"dataset '{name}' has no field {fname!r}{did_you_mean(fname, ds.field_names)}; "
                f"fields: {', '.join(ds.field_names)}",
            )
        ftype = TYPE_WORDS[spec.type]
        canonical = ds.field(fname).type
        if ftype != canonical:
            raise w.err(
                f"{key}.type",
                f"is {WORD_OF_TYPE[canonical]} in the canonical dataset, not {spec.type}",
            )
        fields.append(ContractField(fname, ftype, spec.description.strip()))
    missing = [f for f in ds.field_names if f not in specs]
    if missing:
        raise w.err("fields", f"missing field(s) {', '.join(missing)} of dataset '{name}'")
    return tuple(fields)


def _parse_rules(
    w: _Where, specs: list[RuleSpec], name: str, types: Mapping[str, FieldType]
) -> tuple[Rule, ...]:
    if not specs:
        raise w.err("rules", "must be a list of rules")
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        rule = _parse_rule(w, spec, i, name, types)
        if rule.id in seen:
            raise w.err(f"rules[{i}].id", f"rule id {rule.id!r} is used twice")
        seen.add(rule.id)
        rules.append(rule)
    needed = [
        f
        for f in DATASETS[name].required_fields
        if not any(r.check == "required" and r.columns == (f,) and r.when is None for r in rules)
    ]
    if needed:
        raise w.err(
            "rules",
            f"no 'required' rule (without 'when') for {', '.join(needed)}: the KPIs rely on "
            "these fields; keep a rule for each (severity warn is allowed)",
        )
    return tuple(rules)


_NO_WHEN = ("unique", "reference", "freshness")
_COMPARE = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s*(>=|<=|>|<)\s*([a-z_][a-z0-9_]*)\s*$")
_WHEN_NULL = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s+is\s+(present|missing)\s*$")
_WHEN_CMP = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s*(==|=|!=|>=|<=|>|<)\s*(.+?)\s*$")


@dataclass(frozen=True)
class _RuleText:
    """One rule as read, with what its parser needs to name a key in an error."""

    w: _Where
    prefix: str
    """``rules[3] (closed_after_received)``."""
    dataset: str
    types: Mapping[str, FieldType]
    when: Condition | None

    def err(self, key: str, message: str) -> ContractError:
        return self.w.err(f"{self.prefix}.{key}", message)

    def column(self, value: str, key: str = "field") -> str:
        if value not in self.types:
            raise self.err(
                key,
                f"dataset '{self.dataset}' has no field {value!r}{did_you_mean(value, self.types)}",
            )
        return value


_Parsed = tuple[tuple[str, ...], dict[str, Any]]
"""A check's parser returns the rule's columns and its check-specific Rule arguments."""


def _parse_rule(
    w: _Where, spec: RuleSpec, i: int, dataset: str, types: Mapping[str, FieldType]
) -> Rule:
    if not _RULE_ID.match(spec.id):
        raise w.err(
            f"rules[{i}].id",
            f"must be a lower-case name such as closed_after_received, got {spec.id!r}",
        )
    if spec.id in RESERVED_IDS:
        raise w.err(f"rules[{i}].id", f"{spec.id!r} is reserved for a rule qmskpi adds itself")
    prefix = f"rules[{i}] ({spec.id})"
    if not spec.description.strip():
        raise w.err(f"{prefix}.description", "must be a non-empty text")
    when: Condition | None = None
    if spec.when is not None:
        if spec.check in _NO_WHEN:
            raise w.err(f"{prefix}.when", f"a {spec.check} rule cannot have a condition")
        when = _parse_when(w, spec.when, f"{prefix}.when", dataset, types)
    text = _RuleText(w, prefix, dataset, types, when)
    columns, kwargs = _check_parsed(text, spec)
    return Rule(
        id=spec.id,
        description=spec.description.strip(),
        severity=spec.severity,
        check=spec.check,
        columns=columns,
        mostly=spec.mostly,
        when=when,
        **kwargs,
    )


def _check_parsed(r: _RuleText, spec: RuleSpec) -> _Parsed:
    """The columns and check-specific arguments of one rule, checked against the dataset."""
    if isinstance(spec, RequiredSpec):
        if spec.check == "empty" and r.when is None:
            raise r.err("when", "an 'empty' rule needs a condition, e.g. status = open")
        return (r.column(spec.field),), {}
    if isinstance(spec, UniqueSpec):
        return _parse_unique(r, spec), {}
    if isinstance(spec, AllowedSpec):
        return _parse_allowed(r, spec)
    if isinstance(spec, RangeSpec):
        return _parse_range(r, spec)
    if isinstance(spec, PatternSpec):
        col = r.column(spec.field)
        if r.types[col] != "str":
            raise r.err("field", "a pattern applies to a text field")
        return (col,), {"regex": _regex(r.w, spec.regex, f"{r.prefix}.regex")}
    if isinstance(spec, CompareSpec):
        return _parse_compare(r, spec.expression)
    if isinstance(spec, ReferenceSpec):
        return (r.column(spec.field),), {"target": _reference(r, spec.in_)}
    col = r.column(spec.field)
    if r.types[col] not in ("date", "str"):
        raise r.err("field", "freshness needs a date field or a YYYY-MM month field")
    return (col,), {"within_days": spec.within_days}


def _parse_unique(r: _RuleText, spec: UniqueSpec) -> tuple[str, ...]:
    if (spec.field is None) == (spec.fields is None):
        raise r.err("fields", "give 'field' (one column) or 'fields' (a list)")
    if spec.field is not None:
        return (r.column(spec.field),)
    assert spec.fields is not None
    if not spec.fields:
        raise r.err("fields", "must be a list of fields")
    return tuple(r.column(n, "fields") for n in spec.fields)


def _parse_allowed(r: _RuleText, spec: AllowedSpec) -> _Parsed:
    col = r.column(spec.field)
    if spec.values == "sites":
        return (col,), {"values_from": "sites"}
    if not spec.values:
        raise r.err("values", "must be a list of values, or 'sites' (the configured sites)")
    key = f"{r.prefix}.values"
    return (col,), {"values": tuple(_typed_value(r.w, v, r.types[col], key) for v in spec.values)}


def _parse_range(r: _RuleText, spec: RangeSpec) -> _Parsed:
    col = r.column(spec.field)
    ftype = r.types[col]
    if ftype == "bool":
        raise r.err("field", "a range needs a number, date or YYYY-MM month field")
    if spec.min is None and spec.max is None:
        raise r.err("min", "give 'min', 'max' or both")
    kwargs: dict[str, Any] = {}
    for key, value in (("min", spec.min), ("max", spec.max)):
        if value is not None:
            # A text field in a range is a YYYY-MM month, bounded by dates.
            kind: FieldType = "date" if ftype == "str" else ftype
            kwargs[f"{key}_value"] = _bound(r.w, value, kind, f"{r.prefix}.{key}")
    return (col,), kwargs


def _parse_compare(r: _RuleText, expr: str) -> _Parsed:
    m = _COMPARE.match(expr)
    if m is None:
        raise r.err(
            "expression",
            f"must read '<field> <op> <field>' with op >=, >, <= or <, got {expr!r}",
        )
    a, op, b = m.group(1), m.group(2), m.group(3)
    for n in (a, b):
        r.column(n, "expression")
    kinds = {"int": "number", "float": "number", "date": "date"}
    ta, tb = r.types[a], r.types[b]
    if kinds.get(ta) is None or kinds.get(ta) != kinds.get(tb):
        raise r.err(
            "expression",
            f"compares {a} ({WORD_OF_TYPE[ta]}) with {b} ({WORD_OF_TYPE[tb]}): "
            "compare two dates or two numbers",
        )
    return (a, b), {"op": op}


def _reference(r: _RuleText, target: str) -> tuple[str, str]:
    parts = target.split(".")
    if len(parts) != 2 or parts[0] not in DATASETS:
        raise r.err(
            "in", f"must read '<dataset>.<field>', e.g. suppliers.supplier_id, got {target!r}"
        )
    if parts[1] not in DATASETS[parts[0]].field_names:
        raise r.err(
            "in",
            f"dataset '{parts[0]}' has no field {parts[1]!r}"
            f"{did_you_mean(parts[1], DATASETS[parts[0]].field_names)}",
        )
    return parts[0], parts[1]


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
    raise w.err(key, f"{value!r} is not a {WORD_OF_TYPE[ftype]} value")


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
