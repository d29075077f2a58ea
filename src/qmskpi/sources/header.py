"""The raw header checked before any library can rename a column, and the canonical
fields mapped to column indices (:func:`_plan`): BOM residue, blank and duplicate
headers, missing required fields and unknown columns raise
:class:`~qmskpi.errors.HeaderError` with a did-you-mean hint.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from qmskpi.config import SourceConfig
from qmskpi.datasets import Dataset
from qmskpi.errors import HeaderError, did_you_mean
from qmskpi.sources.expressions import _expression_names
from qmskpi.sources.table import _BOM_RESIDUE, _norm_header, _Table
from qmskpi.sources.text import _blank_mask


def _is_ignored(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _drop_trailing_blank(table: _Table) -> None:
    """Trailing columns with no header and no value (a trailing delimiter, Excel formatting)."""
    if table.headers is None:
        return
    while (
        table.columns
        and not table.headers[len(table.columns) - 1].strip()
        and bool(_blank_mask(table.columns[-1]).all())
    ):
        table.columns.pop()
        table.headers = table.headers[: len(table.columns)]


def _plan(table: _Table, src: SourceConfig, ds: Dataset) -> dict[str, int]:
    """Check the raw header and map canonical fields to column indices.

    Fields filled by a constant, a surrogate key or (optional, absent) nulls
    are not in the result.
    """
    where: dict[str, Any] = {"path": table.display, "dataset": ds.name}
    ncols = len(table.columns)
    raw = table.headers
    _check_bom(raw, src, where)
    positional = _positional(src, ncols, where)
    pos_cols = set(positional.values())
    mapping: dict[str, int] = dict(positional)
    if raw is None:
        _check_headerless(src, ds, positional, where)
        return mapping
    names = [_norm_header(h) for h in raw]
    # A column with no header and no value anywhere (an empty column, as a trailing
    # one is) is not a column; it keeps its place so positions still count the file's.
    empty_cols = {
        j
        for j, n in enumerate(names)
        if not n and j not in pos_cols and bool(_blank_mask(table.columns[j]).all())
    }
    skipped = pos_cols | empty_cols  # not checked by name
    for j, n in enumerate(names):
        if not n and j not in skipped:
            raise HeaderError(
                f"column {j + 1} has a blank header; name it in the export, or map it by "
                f"position (positions = {{ FIELD = {j + 1} }})",
                column=f"#{j + 1}",
                **where,
            )
    wanted = {_norm_header(v): k for k, v in src.columns.items()}
    referenced = _expression_names(src)
    by_name_fields = {
        f.name
        for f in ds.fields
        if f.name not in src.columns
        and f.name not in positional
        and f.name not in src.constants
        and f.name not in src.derive
    }
    counts = Counter(n for j, n in enumerate(names) if j not in skipped)
    for n, c in counts.items():
        if c < 2:
            continue
        read = n in wanted or n in by_name_fields or n in referenced
        if read or not _is_ignored(n, src.ignore_columns):
            cols = [str(j + 1) for j, m in enumerate(names) if m == n and j not in skipped]
            raise HeaderError(
                f"duplicate header {n!r} (columns {', '.join(cols)}); rename one in the export, "
                "or map them by position",
                column=n,
                **where,
            )
    index = {n: j for j, n in enumerate(names) if j not in skipped}
    missing_msgs = _map_named(src, ds, positional, index, names, mapping)
    if missing_msgs:
        hint = _delimiter_hint(names, src)
        message = hint or "; ".join(m for _, m in missing_msgs)  # one column: only the delimiter
        raise HeaderError(message, column=missing_msgs[0][0], **where)
    _check_unknown(names, skipped, wanted, referenced, src, ds, where)
    return mapping


def _check_bom(raw: Sequence[str] | None, src: SourceConfig, where: dict[str, Any]) -> None:
    """A header that starts with byte-order-mark residue means the wrong encoding."""
    for h in raw or ():
        if h.startswith(_BOM_RESIDUE) or "\ufeff" in h:
            raise HeaderError(
                f"header {h!r} carries byte-order-mark residue (the file was read as "
                f'{src.encoding}); set encoding = "utf-8-sig"',
                column=h,
                **where,
            )


def _positional(src: SourceConfig, ncols: int, where: dict[str, Any]) -> dict[str, int]:
    """``positions`` as 0-based column indices, each inside the file."""
    positional: dict[str, int] = {}
    for name, pos in src.positions.items():
        if pos > ncols:
            raise HeaderError(
                f"positions.{name} = {pos}, but the file has {ncols} column(s)",
                column=name,
                **where,
            )
        positional[name] = pos - 1
    return positional


def _check_headerless(
    src: SourceConfig, ds: Dataset, positional: Mapping[str, int], where: dict[str, Any]
) -> None:
    """A file without a header must map every required field by position (or fill it)."""
    missing = [
        f.name
        for f in ds.fields
        if f.required
        and f.name not in positional
        and f.name not in src.constants
        and f.name not in src.derive
        and not _surrogate(src, ds, f.name)
    ]
    if missing:
        raise HeaderError(
            "no position for required field(s) "
            + ", ".join(repr(m) for m in missing)
            + "; a file without a header maps every required field in positions",
            column=missing[0],
            **where,
        )


def _map_named(
    src: SourceConfig,
    ds: Dataset,
    positional: Mapping[str, int],
    index: Mapping[str, int],
    names: Sequence[str],
    mapping: dict[str, int],
) -> list[tuple[str, str]]:
    """Add fields found by header name (mapped or canonical) to ``mapping``.

    Returns (field, message) for each field whose column is missing.
    """
    used_names: set[str] = set()
    missing_msgs: list[tuple[str, str]] = []
    for f in ds.fields:
        if f.name in positional or f.name in src.constants or f.name in src.derive:
            continue
        if f.name in src.columns:
            h = _norm_header(src.columns[f.name])
            if h in index:
                mapping[f.name] = index[h]
                used_names.add(h)
                continue
            missing_msgs.append(
                (f.name, f"missing column {h!r} (mapped to '{f.name}'){did_you_mean(h, names)}")
            )
            continue
        if f.name in index:
            mapping[f.name] = index[f.name]
            used_names.add(f.name)
            continue
        if _surrogate(src, ds, f.name) or not f.required:
            continue
        unused = [n for n in names if n not in used_names and n not in ds.field_names] or names
        hint = did_you_mean(f.name, unused)
        extra = (
            " (or set surrogate_key = true: the export has no ID column)"
            if f.name in ds.key and len(ds.key) == 1
            else ""
        )
        missing_msgs.append(
            (
                f.name,
                f"missing column '{f.name}'{hint}; map the file's column in "
                f'[sources.{ds.name}] columns = {{ {f.name} = "..." }}{extra}',
            )
        )
    return missing_msgs


def _check_unknown(
    names: Sequence[str],
    skipped: set[int],
    wanted: Mapping[str, str],
    referenced: set[str],
    src: SourceConfig,
    ds: Dataset,
    where: dict[str, Any],
) -> None:
    """A column that no field, expression or ``ignore_columns`` pattern accounts for is an error."""
    unknown = [
        n
        for j, n in enumerate(names)
        if j not in skipped
        and n not in wanted
        and n not in referenced
        and (n not in ds.field_names or n in src.derive)
        and not _is_ignored(n, src.ignore_columns)
    ]
    if unknown:
        hint = _delimiter_hint(names, src)
        listed = ", ".join(f"{n!r}{did_you_mean(n, ds.field_names)}" for n in unknown)
        raise HeaderError(
            f"{hint + '. ' if hint else ''}unexpected column{'s' if len(unknown) > 1 else ''} {listed}: map "
            f"{'them' if len(unknown) > 1 else 'it'} in [sources.{ds.name}] columns, or list "
            f'{"them" if len(unknown) > 1 else "it"} in ignore_columns (ignore_columns = ["*"] '
            "accepts any extra column)",
            column=unknown[0],
            **where,
        )


_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def _delimiter_hint(names: Sequence[str], src: SourceConfig) -> str:
    """When the whole header was read as one column, say so and name the likely delimiter."""
    real = [n for n in names if n]
    if len(real) != 1:
        return ""
    counts = {d: real[0].count(d) for d in _DELIMITERS if d != src.delimiter}
    best = max(counts, key=lambda d: counts[d])
    if not counts[best]:
        return ""
    shown = "\\t" if best == "\t" else best
    return (
        f"the whole header was read as one column ({real[0][:80]!r}): the file looks "
        f"{_DELIMITERS[best]}-separated, not {src.delimiter!r}-separated; "
        f'set delimiter = "{shown}"'
    )


def _surrogate(src: SourceConfig, ds: Dataset, name: str) -> bool:
    return src.surrogate_key and len(ds.key) == 1 and name == ds.key[0]
