"""What config and contract files may hold, as pydantic models, and their errors in words.

:mod:`qmskpi.config` (``qmskpi.toml``) and :mod:`qmskpi.contracts.loader`
(``data_contracts/*.yaml``) state each table's keys and types as pydantic v2 models
derived from :class:`StrictTable` (unknown keys forbidden, no coercion), which also
give the JSON Schema editors use (``qmskpi schema config|contract``).
:func:`schema_error_text` turns the first problem pydantic finds into the dotted key
and one sentence: an unknown key with a did-you-mean among the keys allowed there,
the type expected and the value given, a range, the closest allowed word.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from qmskpi.errors import did_you_mean

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class StrictTable(BaseModel):
    """One table of a file: only the keys declared, each of its declared type (no coercion)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def problem(message: str) -> PydanticCustomError:
    """A validation error whose text is ``message`` as written (a validator raises it)."""
    return PydanticCustomError("qmskpi", "{detail}", {"detail": message})


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON Schema (draft 2020-12), as an editor reads it."""
    schema: dict[str, Any] = {"$schema": JSON_SCHEMA_DIALECT, **model.model_json_schema()}
    return schema


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "a table",
    "model_type": "a table",
    "list_type": "a list",
    "date_type": "a date",
}
_BOUND_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def schema_error_text(
    exc: ValidationError,
    root: type[BaseModel],
    *,
    extras: Mapping[type[BaseModel], Any] | None = None,
    hints: Mapping[str, str] | None = None,
    table: str = "a table",
) -> tuple[str, str]:
    """The dotted key and the message of the first problem pydantic found.

    ``extras`` maps a model that allows extra keys to the type of those keys' values;
    ``hints`` adds a sentence to a wrong type, by pydantic error type (``date_type``);
    ``table`` is the word for a mapping (``"a mapping"`` in YAML).
    """
    extras, hints = extras or {}, hints or {}
    expected = {**_EXPECTED, "dict_type": table, "model_type": table}
    # A misspelt key explains the "missing" error of the key it meant: report it first.
    errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    loc = tuple(first["loc"])
    value = first.get("input")
    kind = first["type"]
    owner, ann, meta, keys, used = _walk(root, loc, extras)
    key = _dotted(keys)
    if kind == "extra_forbidden" and owner is not None:
        allowed = [f.alias or name for name, f in owner.model_fields.items()]
        name = str(loc[-1])
        return _dotted([*keys, name]), (
            f"unknown key{did_you_mean(name, allowed)}; allowed here: {', '.join(sorted(allowed))}"
        )
    ctx = first.get("ctx") or {}
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag_key = str(ctx.get("discriminator", "")).strip("'\"")
        tags = _tags(ann, tag_key)
        tag = ctx.get("tag")
        if tag is None:
            for k in value if isinstance(value, Mapping) else ():
                if did_you_mean(str(k), [tag_key]):  # ``chekc: range``
                    return _dotted([*keys, str(k)]), f"unknown key{did_you_mean(str(k), [tag_key])}"
            return _dotted([*keys, tag_key]), f"is required: one of {', '.join(tags)}"
        return _dotted([*keys, tag_key]), (
            f"unknown {tag_key} {tag!r}{did_you_mean(str(tag), tags)}; use one of {', '.join(tags)}"
        )
    if kind == "qmskpi":
        return key, str(first["msg"])
    if kind == "missing":
        return key, "is required"
    if used < len(loc):  # a member of a union (``sheet``: a name or a number) failed each
        words = [_member_word(e, expected) for e in errors if tuple(e["loc"])[:used] == loc[:used]]
        return key, f"must be {' or '.join(dict.fromkeys(words))}, got {_got(value)}"
    if kind == "literal_error":
        choices = [str(c) for c in get_args(ann)]
        return key, (
            f"must be {_one_of(choices)}, got {value!r}{did_you_mean(str(value), choices)}"
        )
    if kind in _BOUND_ERRORS:
        return key, _bounds_text(meta, value) or str(first["msg"])
    if kind in expected:
        return key, f"must be {expected[kind]}, got {_got(value)}{hints.get(kind, '')}"
    return key, str(first["msg"])


def _tags(ann: Any, tag_key: str) -> list[str]:
    """The words a discriminated union's members accept in their ``tag_key``."""
    tags: list[str] = []
    for m in get_args(ann):
        f = (
            m.model_fields.get(tag_key)
            if isinstance(m, type) and issubclass(m, BaseModel)
            else None
        )
        if f is not None and get_origin(f.annotation) is Literal:
            tags += [str(t) for t in get_args(f.annotation)]
    return tags


def _member_word(error: Any, expected: Mapping[str, str]) -> str:
    """What one member of a union expected: ``a list``, ``'sites'``."""
    if error["type"] == "literal_error":
        return str((error.get("ctx") or {}).get("expected", error["loc"][-1]))
    return expected.get(error["type"], str(error["loc"][-1]))


def _walk(
    root: type[BaseModel], loc: tuple[Any, ...], extras: Mapping[type[BaseModel], Any]
) -> tuple[type[BaseModel] | None, Any, list[Any], list[str | int], int]:
    """Follow ``loc`` through the model's annotations.

    Returns the last model passed (whose keys an unknown key is compared with), the
    annotation and constraints (``Field(ge=...)``) reached, the parts of ``loc`` that
    name keys, and how many parts of ``loc`` were followed (the rest are pydantic's
    names for the members of a union that each failed).
    """
    ann: Any = root
    owner: type[BaseModel] | None = None
    meta: list[Any] = []
    keys: list[str | int] = []
    for used, part in enumerate(loc):
        ann, meta = _unwrap(ann, meta)
        member = _tagged_member(ann, part)
        if member is not None:  # a discriminated union: pydantic names the member by its tag
            ann = member
            continue
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            owner = ann
            field = _field(ann, str(part))
            if field is not None:
                ann, meta = field.annotation, list(field.metadata)
            elif ann in extras:
                ann, meta = extras[ann], []
            else:
                return owner, ann, meta, keys, used
        elif get_origin(ann) is dict:
            ann, meta = get_args(ann)[1], []
        elif get_origin(ann) is list:
            ann, meta = get_args(ann)[0], []
        else:
            return owner, ann, meta, keys, used
        keys.append(part)
    ann, meta = _unwrap(ann, meta)
    return owner, ann, meta, keys, len(loc)


def _field(model: type[BaseModel], name: str) -> FieldInfo | None:
    for attr, f in model.model_fields.items():
        if (f.alias or attr) == name:
            return f
    return None


def _tagged_member(ann: Any, part: Any) -> type[BaseModel] | None:
    """The member of a union of models whose ``Literal`` tag is ``part``, if any."""
    if get_origin(ann) not in (Union, UnionType) or not isinstance(part, str):
        return None
    for m in get_args(ann):
        if isinstance(m, type) and issubclass(m, BaseModel):
            for f in m.model_fields.values():
                if get_origin(f.annotation) is Literal and part in get_args(f.annotation):
                    return m
    return None


def _unwrap(ann: Any, meta: list[Any]) -> tuple[Any, list[Any]]:
    """``Annotated[X, ...]`` -> X (constraints kept), ``X | None`` -> X."""
    while True:
        if get_origin(ann) is Annotated:
            base, *extra = get_args(ann)
            for m in extra:
                meta = [*meta, *(m.metadata if isinstance(m, FieldInfo) else [m])]
            ann = base
            continue
        if get_origin(ann) in (Union, UnionType):
            members = [a for a in get_args(ann) if a is not type(None)]
            if len(members) == 1:
                ann = members[0]
                continue
        return ann, meta


def _dotted(keys: list[str | int]) -> str:
    out = ""
    for part in keys:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _got(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Mapping):
        return "a table"
    return f"{type(value).__name__} {value!r}"


def _one_of(choices: list[str]) -> str:
    return choices[0] if len(choices) == 1 else f"{', '.join(choices[:-1])} or {choices[-1]}"


def _bounds_text(meta: list[Any], value: Any) -> str | None:
    """A bound broken, in words: a share, a range, zero or more, 1-based."""
    ge = next((m.ge for m in meta if getattr(m, "ge", None) is not None), None)
    gt = next((m.gt for m in meta if getattr(m, "gt", None) is not None), None)
    le = next((m.le for m in meta if getattr(m, "le", None) is not None), None)
    if le == 1 and (ge == 0 or gt == 0):
        low = "0" if ge == 0 else "above 0"
        return f"must be a share from {low} to 1 (e.g. 0.05 for 5 %), got {value}"
    if ge is not None and le is not None:
        return f"must be between {ge} and {le}, got {value}"
    if ge == 0:
        return f"must be zero or more, got {value}"
    if ge == 1:
        return f"is 1-based: the first row or column is 1, got {value}"
    return None
