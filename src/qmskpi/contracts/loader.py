"""Reading contracts: YAML files -> checked :class:`~qmskpi.contracts.schema.Contract` objects.

Every mistake raises :class:`~qmskpi.errors.ContractError` naming the file and
the dotted key (``rules[3] (closed_after_received).expression``), with a
did-you-mean where a name is close to a known one. Each ``check`` has its own
parser in :data:`_CHECK_PARSERS`.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import polars as pl

from qmskpi.contracts.schema import (
    TYPE_WORDS,
    WORD_OF_TYPE,
    Bound,
    Check,
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
    title = _text(w, data, "title", "", required=False) or DATASETS[name].title
    description = _text(w, data, "description", "", required=False)
    fields = _parse_fields(w, data.get("fields"), name)
    rules = _parse_rules(w, data.get("rules"), name, {f.name: f.type for f in fields})
    return Contract(name, title, description, fields, rules, source, sha)


def _parse_fields(w: _Where, raw_fields: Any, name: str) -> tuple[ContractField, ...]:
    ds = DATASETS[name]
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
                f"is {WORD_OF_TYPE[canonical]} in the canonical dataset, not {word}",
            )
        fields.append(
            ContractField(
                str(fname), ftype, _text(w, spec, "description", f"{key}.", required=False)
            )
        )
    missing = [f for f in ds.field_names if f not in raw_fields]
    if missing:
        raise w.err("fields", f"missing field(s) {', '.join(missing)} of dataset '{name}'")
    return tuple(fields)


def _parse_rules(
    w: _Where, raw_rules: Any, name: str, types: Mapping[str, FieldType]
) -> tuple[Rule, ...]:
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


_COMMON_KEYS = ("id", "description", "severity", "mostly", "when", "check")
_NO_WHEN = ("unique", "reference", "freshness")
_COMPARE = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s*(>=|<=|>|<)\s*([a-z_][a-z0-9_]*)\s*$")
_WHEN_NULL = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s+is\s+(present|missing)\s*$")
_WHEN_CMP = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s*(==|=|!=|>=|<=|>|<)\s*(.+?)\s*$")


@dataclass(frozen=True)
class _RuleText:
    """One rule as written, with what its parser needs to name a key in an error."""

    w: _Where
    raw: Mapping[str, Any]
    prefix: str
    """``rules[3] (closed_after_received)``."""
    dataset: str
    types: Mapping[str, FieldType]
    check: str
    when: Condition | None

    def err(self, key: str, message: str) -> ContractError:
        return self.w.err(f"{self.prefix}.{key}", message)

    def column(self, key: str = "field") -> str:
        value = self.raw.get(key)
        if not isinstance(value, str):
            raise self.err(key, f"must name a field of '{self.dataset}', got {value!r}")
        if value not in self.types:
            raise self.err(
                key,
                f"dataset '{self.dataset}' has no field {value!r}{did_you_mean(value, self.types)}",
            )
        return value


_Parsed = tuple[tuple[str, ...], dict[str, Any]]
"""A check's parser returns the rule's columns and its check-specific Rule arguments."""


def _parse_rule(w: _Where, raw: Any, i: int, dataset: str, types: Mapping[str, FieldType]) -> Rule:
    prefix = f"rules[{i}]"
    if not isinstance(raw, Mapping):
        raise w.err(prefix, "a rule is a mapping with id, description, severity and check")
    rid = raw.get("id")
    if not isinstance(rid, str) or not _RULE_ID.match(rid):
        raise w.err(
            f"{prefix}.id", f"must be a lower-case name such as closed_after_received, got {rid!r}"
        )
    if rid in RESERVED_IDS:
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
    mostly = parse_mostly(raw.get("mostly"), lambda m: w.err(f"{prefix}.mostly", m))
    when: Condition | None = None
    if raw.get("when") is not None:
        if check in _NO_WHEN:
            raise w.err(f"{prefix}.when", f"a {check} rule cannot have a condition")
        when = _parse_when(w, raw["when"], f"{prefix}.when", dataset, types)
    text = _RuleText(w, raw, prefix, dataset, types, check, when)
    columns, kwargs = _CHECK_PARSERS[check](text)
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


def parse_mostly(value: Any, err: Callable[[str], Exception]) -> float | None:
    """A ``mostly`` share (0, 1] as a float; ``err(message)`` builds the error to raise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise err(f"must be a share above 0 and at most 1, got {value!r}")
    return float(value)


def _parse_required(r: _RuleText) -> _Parsed:
    columns = (r.column(),)
    if r.check == "empty" and r.when is None:
        raise r.err("when", "an 'empty' rule needs a condition, e.g. status = open")
    return columns, {}


def _parse_unique(r: _RuleText) -> _Parsed:
    if ("field" in r.raw) == ("fields" in r.raw):
        raise r.err("fields", "give 'field' (one column) or 'fields' (a list)")
    if "field" in r.raw:
        return (r.column(),), {}
    names = r.raw.get("fields")
    if not isinstance(names, list) or not names:
        raise r.err("fields", "must be a list of fields")
    for n in names:
        if n not in r.types:
            raise r.err(
                "fields",
                f"dataset '{r.dataset}' has no field {n!r}{did_you_mean(str(n), r.types)}",
            )
    return tuple(str(n) for n in names), {}


def _parse_allowed(r: _RuleText) -> _Parsed:
    col = r.column()
    values = r.raw.get("values")
    if values == "sites":
        return (col,), {"values_from": "sites"}
    if isinstance(values, list) and values:
        key = f"{r.prefix}.values"
        return (col,), {"values": tuple(_typed_value(r.w, v, r.types[col], key) for v in values)}
    raise r.err("values", "must be a list of values, or 'sites' (the configured sites)")


def _parse_range(r: _RuleText) -> _Parsed:
    col = r.column()
    ftype = r.types[col]
    if ftype == "bool":
        raise r.err("field", "a range needs a number, date or YYYY-MM month field")
    if r.raw.get("min") is None and r.raw.get("max") is None:
        raise r.err("min", "give 'min', 'max' or both")
    kwargs: dict[str, Any] = {}
    for key in ("min", "max"):
        if r.raw.get(key) is not None:
            # A text field in a range is a YYYY-MM month, bounded by dates.
            kind: FieldType = "date" if ftype == "str" else ftype
            kwargs[f"{key}_value"] = _bound(r.w, r.raw[key], kind, f"{r.prefix}.{key}")
    return (col,), kwargs


def _parse_pattern(r: _RuleText) -> _Parsed:
    col = r.column()
    if r.types[col] != "str":
        raise r.err("field", "a pattern applies to a text field")
    return (col,), {"regex": _regex(r.w, r.raw.get("regex"), f"{r.prefix}.regex")}


def _parse_compare(r: _RuleText) -> _Parsed:
    expr = r.raw.get("expression")
    m = _COMPARE.match(expr) if isinstance(expr, str) else None
    if m is None:
        raise r.err(
            "expression",
            f"must read '<field> <op> <field>' with op >=, >, <= or <, got {expr!r}",
        )
    a, op, b = m.group(1), m.group(2), m.group(3)
    for n in (a, b):
        if n not in r.types:
            raise r.err(
                "expression",
                f"dataset '{r.dataset}' has no field {n!r}{did_you_mean(n, r.types)}",
            )
    kinds = {"int": "number", "float": "number", "date": "date"}
    ta, tb = r.types[a], r.types[b]
    if kinds.get(ta) is None or kinds.get(ta) != kinds.get(tb):
        raise r.err(
            "expression",
            f"compares {a} ({WORD_OF_TYPE[ta]}) with {b} ({WORD_OF_TYPE[tb]}): "
            "compare two dates or two numbers",
        )
    return (a, b), {"op": op}


def _parse_reference(r: _RuleText) -> _Parsed:
    col = r.column()
    target = r.raw.get("in")
    parts = target.split(".") if isinstance(target, str) else []
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
    return (col,), {"target": (parts[0], parts[1])}


def _parse_freshness(r: _RuleText) -> _Parsed:
    col = r.column()
    if r.types[col] not in ("date", "str"):
        raise r.err("field", "freshness needs a date field or a YYYY-MM month field")
    days = r.raw.get("within_days")
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 0):
        raise r.err("within_days", f"must be a whole number of days >= 0, got {days!r}")
    return (col,), {"within_days": days}


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
"""The keys each check takes besides :data:`_COMMON_KEYS`."""

_CHECK_PARSERS: dict[str, Callable[[_RuleText], _Parsed]] = {
    "required": _parse_required,
    "empty": _parse_required,
    "unique": _parse_unique,
    "allowed": _parse_allowed,
    "range": _parse_range,
    "pattern": _parse_pattern,
    "compare": _parse_compare,
    "reference": _parse_reference,
    "freshness": _parse_freshness,
}


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
