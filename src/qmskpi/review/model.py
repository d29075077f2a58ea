"""The review model: the frozen dataclasses the pack shows, and their JSON.

:class:`ReviewModel` is JSON-serialisable: ``to_json()`` is deterministic
(sorted keys, floats rounded to :data:`FLOAT_DIGITS` decimals, no timestamps)
and :meth:`ReviewModel.from_json` reads it back exactly. Nothing here computes
anything: the other modules of :mod:`qmskpi.review` fill it in.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from os import PathLike
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import numpy as np

from qmskpi.errors import QmsKpiError, did_you_mean

SCHEMA = "qmskpi.review/1"
"""Format tag of ``review-inputs.json``; bump when the model's shape changes."""


REGISTERS_XLSX = "registers.xlsx"
"""The workbook in the pack folder with one sheet per register (every row of a bounded table)."""


def register_file(table_id: str) -> str:
    """The CSV in the pack folder with every row of table ``table_id`` (a model id, not data)."""
    return f"register-{table_id.replace('_', '-')}.csv"


FLOAT_DIGITS = 6
"""Decimals every float in the model is rounded to (so JSON round-trips exactly)."""


Scalar = str | int | float | bool | None
CoverageStatus = Literal["evidenced", "missing", "stale", "failed"]
SignalClass = Literal["improvement", "concern", "neutral", "none"]
Role = Literal["front", "input", "output", "back"]
ExceptionKind = Literal["concern", "assurance_fail", "unsound", "overdue", "coverage"]
AnalystKey = Literal["changes", "resources", "risks"]


# ============================================================== the model


@dataclass(frozen=True)
class Meta:
    organisation: str
    period: str
    period_start: str
    period_end: str
    granularity: str
    scope: str
    scope_label: str
    sites: tuple[str, ...]
    clause_map: str
    clause_map_title: str
    trend_months: int
    stale_after_days: int
    validated: bool
    """False when no validation report was given (rows not checked against contracts)."""
    clause_map_edition: str = ""
    """The edition of the standard the clause map describes (amendments included)."""
    clause_map_provisional: bool = False
    """The clause map is taken from a draft: the pack is labelled provisional on every page."""


@dataclass(frozen=True)
class Section:
    id: str
    ref: str
    title: str
    wording: str
    role: str
    status: CoverageStatus | None
    """Coverage status of a 9.3.2 input (None for cover, summary, decisions, ...)."""
    kpis: tuple[str, ...]
    """KPI ids shown in this section (values in :attr:`ReviewModel.kpis`)."""
    trends: tuple[str, ...]
    """Trend ids (:attr:`Trend.id`) charted in this section."""
    tables: tuple[str, ...]
    """Table ids (:attr:`Table.id`) shown in this section (when present)."""
    analyst: str | None
    notes: tuple[str, ...]
    page_break: bool


@dataclass(frozen=True)
class KpiValue:
    """One KPI for the period, for the whole scope or one site."""

    kpi: str
    scope: str
    title: str
    section: str
    value: float | None
    numerator: float | None
    denominator: float | None
    unit: str
    display: str
    """The value formatted for its unit (``"93.4 %"``, ``"1,250 ppm"``, ``"n/a"``)."""
    target: float | None
    target_display: str
    direction: str
    sound: bool
    note: str


@dataclass(frozen=True)
class Trend:
    """A monthly SPC series of one KPI for one scope (whole organisation or a site)."""

    id: str
    kpi: str
    scope: str
    title: str
    section: str
    unit: str
    direction: str
    kind: str
    chart: str
    """Chart used: ``xmr``, ``p``, ``laney_p``, ``u``, ``c`` (from the KPI's kind)."""
    months: tuple[str, ...]
    values: tuple[float | None, ...]
    center: tuple[float | None, ...]
    ucl: tuple[float | None, ...]
    lcl: tuple[float | None, ...]
    signals: tuple[tuple[str, ...], ...]
    """Rule names that flag each point (empty: common cause)."""
    classes: tuple[SignalClass, ...]
    """Each point: improvement / concern / neutral special cause, or none."""
    variation: str | None
    """MDC variation icon of the last point (``spc.variation``)."""
    assurance: str | None
    """MDC assurance icon against the target (``spc.assurance``), None without a target."""
    target: float | None
    rebase: tuple[int, ...]
    """Indices of points where the limits were recalculated (none by default)."""
    sound: bool
    explanation: tuple[str, ...]
    """Plain sentences shown next to the chart: what the signals are."""
    status: str = "limits"
    """``limits`` (a control chart), ``run_chart`` (too few months for process limits:
    median and run rules only) or ``rare_events`` (too few events a month for a chart:
    the values are stated without a signal)."""
    baseline: str = ""
    """Where the centre line and limits come from (months used, frozen or recalculated,
    rebases, gaps left out), or why there are none."""
    numerators: tuple[float | None, ...] = ()
    denominators: tuple[float | None, ...] = ()
    numerator_label: str = ""
    denominator_label: str = ""
    variation_basis: str = ""
    """The rule behind the variation icon, e.g. "beyond_limits in 2026-10"."""
    assurance_basis: str = ""
    """The comparison behind the assurance icon, e.g. "target 95 % below the lower limit 96.1 %"."""


@dataclass(frozen=True)
class Column:
    id: str
    label: str
    format: str = "text"
    """How to show a cell: text, longtext (free text, wraps anywhere), value (a formatted
    value, kept on one line), int, float, share, ppm, days, date, bool, icon (an MDC icon)."""


@dataclass(frozen=True)
class Table:
    id: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Scalar, ...], ...]
    note: str = ""
    empty_text: str = "None."
    order: str = ""
    """The rule the rows are ranked by (stated under the table); "" when not ranked."""
    more: int = 0
    """Rows of the register left out of the pack (the pack shows the first ``rows``)."""
    register: str = ""
    """Sheet of ``registers.xlsx`` (and file ``register-<id>.csv``) holding every row;
    "" when the table has no register."""

    def column(self, column_id: str) -> tuple[Scalar, ...]:
        i = [c.id for c in self.columns].index(column_id)
        return tuple(r[i] for r in self.rows)

    def records(self) -> list[dict[str, Scalar]]:
        ids = [c.id for c in self.columns]
        return [dict(zip(ids, r, strict=True)) for r in self.rows]


@dataclass(frozen=True)
class KpiTile:
    kpi: str
    scope: str
    title: str
    section: str
    value: float | None
    display: str
    unit: str
    target: float | None
    target_display: str
    variation: str | None
    assurance: str | None
    sound: bool
    exception: bool
    """Shown first: a concern signal, failed assurance or unsound data."""
    note: str


@dataclass(frozen=True)
class ExceptionItem:
    kind: ExceptionKind
    rank: int
    """0 = most serious; the list is sorted by rank, then section order."""
    section: str
    kpi: str | None
    scope: str | None
    text: str


@dataclass(frozen=True)
class Opportunity:
    section: str
    kpi: str | None
    scope: str | None
    text: str
    basis: str
    """The evidence: which signal or table suggested it."""


@dataclass(frozen=True)
class DatasetCoverage:
    dataset: str
    status: CoverageStatus
    newest: str | None
    rows: int
    detail: str


@dataclass(frozen=True)
class CoverageRow:
    section: str
    ref: str
    title: str
    status: CoverageStatus
    evidence: tuple[DatasetCoverage, ...]
    detail: str


@dataclass(frozen=True)
class AnalystInput:
    section: str
    key: str
    markdown: str
    """Untrusted markdown, kept as text; render through ``charts.safe_markdown``."""
    status: CoverageStatus


@dataclass(frozen=True)
class ReviewModel:
    """Everything the management-review pack shows, in ISO 9001:2015 9.3.2 order."""

    schema: str
    meta: Meta
    sections: tuple[Section, ...]
    tiles: tuple[KpiTile, ...]
    exceptions: tuple[ExceptionItem, ...]
    narrative: tuple[str, ...]
    kpis: tuple[KpiValue, ...]
    trends: tuple[Trend, ...]
    tables: tuple[Table, ...]
    opportunities: tuple[Opportunity, ...]
    coverage: tuple[CoverageRow, ...]
    analyst: tuple[AnalystInput, ...]

    # ---------------------------------------------------------------- look-ups

    def section(self, section_id: str) -> Section:
        for s in self.sections:
            if s.id == section_id:
                return s
        raise QmsKpiError(
            f"no section {section_id!r}{did_you_mean(section_id, self.section_ids)}; "
            f"sections: {', '.join(self.section_ids)}"
        )

    @property
    def section_ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.sections)

    def table(self, table_id: str) -> Table | None:
        for t in self.tables:
            if t.id == table_id:
                return t
        return None

    def trend(self, trend_id: str) -> Trend | None:
        for t in self.trends:
            if t.id == trend_id:
                return t
        return None

    def kpi(self, kpi_id: str, scope: str | None = None) -> KpiValue | None:
        want = scope if scope is not None else self.meta.scope
        for k in self.kpis:
            if k.kpi == kpi_id and k.scope == want:
                return k
        return None

    def analyst_input(self, section_id: str) -> AnalystInput | None:
        for a in self.analyst:
            if a.section == section_id:
                return a
        return None

    def __repr__(self) -> str:
        m = self.meta
        name = m.organisation if len(m.organisation) <= 40 else m.organisation[:39] + "…"
        return (
            f"<ReviewModel {m.period} {m.scope!r} of {name!r}: {len(self.sections)} sections, "
            f"{len(self.kpis)} KPI values, {len(self.trends)} trends, {len(self.tables)} tables, "
            f"{len(self.exceptions)} exceptions>"
        )

    # ---------------------------------------------------------------- JSON

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = _encode(self)
        return out

    def to_json(self) -> str:
        """Deterministic JSON: sorted keys, rounded floats, no timestamps, newline at end."""
        return _dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReviewModel:
        schema = data.get("schema")
        if schema != SCHEMA:
            raise QmsKpiError(
                f"not a review model of format {SCHEMA!r} (found {schema!r}); "
                "re-run the review to regenerate review-inputs.json"
            )
        model: ReviewModel = _decode(cls, data)
        return model

    @classmethod
    def from_json(cls, source: str | PathLike[str]) -> ReviewModel:
        """Read a model from JSON text or from the path of a ``review-inputs.json``."""
        if isinstance(source, PathLike) or (
            isinstance(source, str) and not source.lstrip().startswith("{")
        ):
            path = Path(source)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise QmsKpiError(f"{path}: cannot read review inputs: {exc}") from None
        else:
            text = source
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise QmsKpiError(f"review inputs are not valid JSON: {exc}") from None
        return cls.from_dict(data)


# ============================================================== JSON codec


def _round(x: float) -> float | None:
    if not math.isfinite(x):
        return None
    r = round(x, FLOAT_DIGITS)
    return 0.0 if r == 0 else r  # no "-0.0"


def _encode(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _encode(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, bool | str) or obj is None:
        return obj
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return _round(float(obj))
    if isinstance(obj, tuple | list):
        return [_encode(v) for v in obj]
    if isinstance(obj, Mapping):
        return {str(k): _encode(v) for k, v in obj.items()}
    if isinstance(obj, date):
        return obj.isoformat()
    raise TypeError(f"cannot put {type(obj).__name__} into the review model")


def _dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


_HINTS: dict[type, dict[str, Any]] = {}


def _decode(tp: Any, value: Any) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Union or origin is types.UnionType:
        args = get_args(tp)
        if value is None:
            return None
        others = [a for a in args if a is not type(None)]
        if len(others) == 1:
            return _decode(others[0], value)
        return value  # a scalar union: JSON types are already the Python ones
    if origin is Literal:
        return value
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v) for v in value)
        return tuple(_decode(a, v) for a, v in zip(args, value, strict=True))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _HINTS.get(tp)
        if hints is None:
            hints = get_type_hints(tp)
            _HINTS[tp] = hints
        names = {f.name for f in dataclasses.fields(tp)}
        unknown = set(value) - names
        if unknown:
            raise QmsKpiError(f"{tp.__name__}: unknown keys {sorted(unknown)} in review inputs")
        return tp(**{n: _decode(hints[n], value[n]) for n in names if n in value})
    if tp is float:
        return None if value is None else float(value)
    return value


def normalise(model: ReviewModel) -> ReviewModel:
    """Round-trip through JSON once so the in-memory model equals the one read back."""
    return ReviewModel.from_dict(json.loads(model.to_json()))
