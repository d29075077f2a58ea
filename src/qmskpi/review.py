"""The management-review model: everything the ISO 9001:2015 9.3 input pack shows.

:func:`build` turns validated data into a :class:`ReviewModel`: frozen
dataclasses, JSON-serialisable (``to_json()`` is deterministic: sorted keys,
floats rounded to :data:`FLOAT_DIGITS` decimals, no timestamps) and read back
exactly by :meth:`ReviewModel.from_json`. ``charts`` and the notebooks only
present it; nothing here knows about HTML or plotly.

Sections follow ISO 9001:2015 9.3.2 (inputs) and 9.3.3 (outputs) from a clause
map held as data (:data:`CLAUSE_MAPS`, chosen by ``config.review.clause_map``);
a second map (e.g. a provisional ISO 9001:2026 one) is added with
:func:`register_clause_map`.

Untrusted text (complaint descriptions, names, codes, analyst markdown) is kept
as plain strings: escaping is the presenter's job (``charts``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin, get_type_hints

import numpy as np
import polars as pl

from qmskpi import kpis, spc
from qmskpi.config import WHOLE_SCOPE, Config
from qmskpi.datasets import DATASETS
from qmskpi.errors import QmsKpiError, did_you_mean
from qmskpi.periods import Period, month, parse_period, trailing_months

if TYPE_CHECKING:  # contracts imports Great Expectations lazily; the model never needs it
    from qmskpi.contracts import ValidationReport

SCHEMA = "qmskpi.review/1"
"""Format tag of ``review-inputs.json``; bump when the model's shape changes."""

FLOAT_DIGITS = 6
"""Decimals every float in the model is rounded to (so JSON round-trips exactly)."""

Scalar = str | int | float | bool | None
CoverageStatus = Literal["evidenced", "missing", "stale", "failed"]
SignalClass = Literal["improvement", "concern", "neutral", "none"]
Role = Literal["front", "input", "output", "back"]
ExceptionKind = Literal["concern", "assurance_fail", "unsound", "overdue", "coverage"]
AnalystKey = Literal["changes", "resources", "risks"]

COVERAGE_ORDER: dict[str, int] = {"failed": 0, "missing": 1, "stale": 2, "evidenced": 3}
"""Worst first: the status of an input is the worst of its datasets'."""


# ============================================================== the clause map (data)


@dataclass(frozen=True)
class ClauseEntry:
    """One section of the pack, as the clause map defines it.

    ``kpi_clauses`` pulls every KPI whose :attr:`kpis.KpiDef.iso_clause` is one
    of them (registry order); ``kpis`` names extra or preferred ones first.
    ``datasets`` are the records that evidence the input in the coverage matrix
    (``coverage_rule`` ``"all"``: the worst dataset decides; ``"any"``: the best).
    ``analyst`` names the analyst markdown input (``config.analyst_inputs``).
    """

    id: str
    ref: str
    title: str
    wording: str
    role: Role = "input"
    datasets: tuple[str, ...] = ()
    kpi_clauses: tuple[str, ...] = ()
    kpis: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    analyst: AnalystKey | None = None
    derived: bool = False
    """Evidenced by the analysis itself (f: opportunities suggested from signals)."""
    coverage_rule: Literal["all", "any"] = "all"
    page_break: bool = False


@dataclass(frozen=True)
class ClauseMap:
    id: str
    title: str
    entries: tuple[ClauseEntry, ...]
    headline_kpis: tuple[str, ...]
    """KPIs shown as tiles in the executive summary, in this order (when computed)."""
    unlisted: tuple[str, ...] = ()
    """KPI id prefixes shown by a table instead of the KPI lists (e.g. ageing buckets)."""
    untrended: tuple[str, ...] = ()
    """KPI id prefixes listed with their value but not charted (breakdowns of a charted KPI)."""

    def listed(self, kpi_id: str) -> bool:
        return not kpi_id.startswith(self.unlisted) if self.unlisted else True

    def trended(self, kpi_id: str) -> bool:
        return self.listed(kpi_id) and not (self.untrended and kpi_id.startswith(self.untrended))

    def entry(self, section_id: str) -> ClauseEntry:
        for e in self.entries:
            if e.id == section_id:
                return e
        raise QmsKpiError(
            f"no section {section_id!r} in clause map {self.id!r}"
            f"{did_you_mean(section_id, [e.id for e in self.entries])}"
        )


ISO9001_2015 = ClauseMap(
    id="iso9001_2015",
    title="ISO 9001:2015 clause 9.3 Management review",
    headline_kpis=(
        "complaint_rate_ppm",
        "complaints_closed_on_time_share",
        "satisfaction_mean",
        "fpy_share",
        "defect_ppm",
        "supplier_otd_share",
        "supplier_ppm",
        "capa_open_overdue",
        "audit_findings_open_overdue",
        "review_actions_overdue",
    ),
    unlisted=(
        "complaints_open_age_",  # the complaint-ageing table
        "audit_findings_major_nc",  # the findings-by-type table
        "audit_findings_minor_nc",
        "audit_findings_observation",
        "audit_findings_ofi",
    ),
    untrended=("fpy_share_",),  # per-stage yields: values listed, overall FPY charted
    entries=(
        ClauseEntry(
            "cover",
            "",
            "Management review inputs",
            "Top management shall review the organization's quality management system, "
            "at planned intervals, to ensure its continuing suitability, adequacy, "
            "effectiveness and alignment with the strategic direction of the organization.",
            role="front",
        ),
        ClauseEntry(
            "summary",
            "",
            "Executive summary",
            "The state of quality at a glance: exceptions first, then the headline "
            "measures with their variation and assurance.",
            role="front",
        ),
        ClauseEntry(
            "a",
            "9.3.2 a)",
            "Status of actions from previous management reviews",
            "The status of actions from previous management reviews.",
            datasets=("review_actions",),
            kpi_clauses=("9.3.2a", "9.3.2 a"),
            tables=("review_actions",),
            page_break=True,
        ),
        ClauseEntry(
            "b",
            "9.3.2 b)",
            "Changes in external and internal issues",
            "Changes in external and internal issues that are relevant to the quality "
            "management system.",
            analyst="changes",
        ),
        ClauseEntry(
            "c1",
            "9.3.2 c) 1)",
            "Customer satisfaction and feedback",
            "Customer satisfaction and feedback from relevant interested parties.",
            datasets=("complaints", "shipments", "surveys"),
            kpi_clauses=("9.1.2",),
            tables=("critical_complaints", "complaint_ageing"),
            page_break=True,
        ),
        ClauseEntry(
            "c2",
            "9.3.2 c) 2)",
            "Quality objectives",
            "The extent to which quality objectives have been met.",
            datasets=("objectives", "objective_results"),
            kpi_clauses=("6.2",),
            tables=("objective_attainment",),
            coverage_rule="any",
        ),
        ClauseEntry(
            "c3",
            "9.3.2 c) 3)",
            "Process performance and conformity of products and services",
            "Process performance and conformity of products and services.",
            datasets=("inspections",),
            kpi_clauses=("8.6",),
            tables=("defect_pareto",),
            page_break=True,
        ),
        ClauseEntry(
            "c4",
            "9.3.2 c) 4)",
            "Nonconformities and corrective actions",
            "Nonconformities and corrective actions.",
            datasets=("capa",),
            kpi_clauses=("10.2",),
            tables=("overdue_capa",),
        ),
        ClauseEntry(
            "c5",
            "9.3.2 c) 5)",
            "Monitoring and measurement results",
            "Monitoring and measurement results: every measure as a 24-month "
            "statistical process control chart.",
            datasets=(
                "complaints",
                "shipments",
                "surveys",
                "inspections",
                "capa",
                "audit_findings",
                "receipts",
                "review_actions",
            ),
            tables=("site_signals",),
            coverage_rule="any",
            page_break=True,
        ),
        ClauseEntry(
            "c6",
            "9.3.2 c) 6)",
            "Audit results",
            "Audit results.",
            datasets=("audit_findings",),
            kpi_clauses=("9.2",),
            tables=("findings_by_type", "overdue_findings"),
            page_break=True,
        ),
        ClauseEntry(
            "c7",
            "9.3.2 c) 7)",
            "Performance of external providers",
            "The performance of external providers.",
            datasets=("suppliers", "receipts"),
            kpi_clauses=("8.4",),
            tables=("supplier_scorecard",),
        ),
        ClauseEntry(
            "d",
            "9.3.2 d)",
            "Adequacy of resources",
            "The adequacy of resources.",
            analyst="resources",
            page_break=True,
        ),
        ClauseEntry(
            "e",
            "9.3.2 e)",
            "Effectiveness of actions taken to address risks and opportunities",
            "The effectiveness of actions taken to address risks and opportunities (see 6.1).",
            analyst="risks",
        ),
        ClauseEntry(
            "f",
            "9.3.2 f)",
            "Opportunities for improvement",
            "Opportunities for improvement (suggested from the signals in this pack; "
            "the review decides which to take up).",
            derived=True,
        ),
        ClauseEntry(
            "decisions",
            "9.3.3",
            "Decisions and actions",
            "The outputs of the management review shall include decisions and actions "
            "related to: a) opportunities for improvement; b) any need for changes to the "
            "quality management system; c) resource needs.",
            role="output",
            tables=("decisions",),
            page_break=True,
        ),
        ClauseEntry(
            "coverage",
            "9.3.2",
            "Coverage of the review inputs",
            "Each 9.3.2 input and the evidence behind it: evidenced, missing (no source "
            "configured or no records), stale (newest record too old) or failed validation.",
            role="back",
            tables=("coverage",),
        ),
        ClauseEntry(
            "appendix",
            "",
            "Appendix: data quality, definitions and methods",
            "How the figures in this pack were obtained: records read, used and "
            "quarantined; validation rules that failed; KPI definitions; SPC method.",
            role="back",
            tables=("ledger", "failed_rules", "kpi_definitions", "method_notes"),
            page_break=True,
        ),
    ),
)

CLAUSE_MAPS: dict[str, ClauseMap] = {ISO9001_2015.id: ISO9001_2015}
"""Known clause maps by id (``config.review.clause_map``)."""


def register_clause_map(clause_map: ClauseMap) -> None:
    """Add a clause map (e.g. a provisional ISO 9001:2026 one) under its id."""
    ids = [e.id for e in clause_map.entries]
    if len(set(ids)) != len(ids):
        raise QmsKpiError(f"clause map {clause_map.id!r} lists a section id twice")
    CLAUSE_MAPS[clause_map.id] = clause_map


def clause_map(name: str) -> ClauseMap:
    try:
        return CLAUSE_MAPS[name]
    except KeyError:
        raise QmsKpiError(
            f"unknown clause map {name!r}{did_you_mean(name, CLAUSE_MAPS)}; "
            f"known: {', '.join(CLAUSE_MAPS)}"
        ) from None


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


def _normalise(model: ReviewModel) -> ReviewModel:
    """Round-trip through JSON once so the in-memory model equals the one read back."""
    return ReviewModel.from_dict(json.loads(model.to_json()))


# ============================================================== formatting

_UNIT_SUFFIX = {"ppm": " ppm", "days": " d", "day": " d"}


def format_value(value: float | None, unit: str, *, extra: int = 0) -> str:
    """A KPI value as a reader sees it, by unit: ``share`` -> ``"93.4 %"``, ``ppm`` -> ``"1,250 ppm"``.

    ``extra`` adds that many digits (see :func:`format_pair`).
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    u = unit.lower()
    d = max(0, extra)
    if u in ("fraction", "proportion", "ratio") or u.startswith("share"):
        return f"{value * 100:.{1 + d}f} %"
    if u in ("percent", "%", "pct"):
        return f"{value:.{1 + d}f} %"
    if u == "ppm":
        return f"{value:,.{d}f} ppm"
    if u in ("count", "number", "n", "items"):
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.{1 + d}f}"
    if u in ("days", "day", "d"):
        return f"{value:,.{1 + d}f} d"
    if u in ("nps", "nps points"):
        return f"{value:+.{d}f}"
    if u in ("score", "mean", "points"):
        return f"{value:,.{2 + d}f}"
    if abs(value) >= 100:
        return f"{value:,.{d}f}"
    return f"{value:,.{3 + d}g}"


def format_pair(value: float | None, target: float | None, unit: str) -> tuple[str, str]:
    """A value and its target, with just enough digits that different numbers never read the same.

    ``(1.52, 1.5, "percent")`` -> ``("1.52 %", "1.50 %")``, not ``("1.5 %", "1.5 %")``
    beside "not met".
    """
    for extra in range(7):
        a, b = format_value(value, unit, extra=extra), format_value(target, unit, extra=extra)
        if a != b or value is None or target is None or value == target:
            return a, b
    return a, b


def _float(x: Any) -> float | None:
    if x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _scalar(x: Any) -> Scalar:
    if x is None:
        return None
    if isinstance(x, bool | str | int):
        return x
    if isinstance(x, float | np.floating):
        return _float(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, date):
        return x.isoformat()
    return str(x)


def scope_phrase(scope: str) -> str:
    """``" at site North"`` for a site (``" at Site North"`` when named so), ``""`` for all."""
    if scope == WHOLE_SCOPE:
        return ""
    if scope.lower().startswith("site"):
        return f" at {scope}"
    return f" at site {scope}"


def _slug(*parts: str) -> str:
    text = "-".join(p for p in parts if p)
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


# ============================================================== build

Frames = Mapping[str, pl.DataFrame]


def build(
    data: Frames,
    *,
    period: Period | str,
    scope: str,
    config: Config,
    validation: ValidationReport | None,
    analyst_inputs: Mapping[str, str] | None = None,
) -> ReviewModel:
    """Compute everything the management-review pack shows for one period and scope.

    ``data``: the validated frames (``validation.clean``) by dataset name; a
    dataset that is absent or empty is reported as missing, one in
    ``validation.unsound_datasets`` as failed validation (its KPIs are flagged).
    ``analyst_inputs``: markdown by key ``changes`` / ``resources`` / ``risks``
    (9.3.2 b, d, e); None reads the files named in ``config.analyst_inputs``.
    """
    p = parse_period(period)
    scope = config.check_scope(scope)
    cmap = clause_map(config.review.clause_map)
    unsound = frozenset(validation.unsound_datasets) if validation is not None else frozenset()
    if analyst_inputs is None:
        analyst_inputs = read_analyst_inputs(config)
    ctx = _Context(config=config, period=p, scope=scope, cmap=cmap, unsound=unsound, data=data)

    kpi_values = _kpi_values(ctx)
    ctx.values = kpi_values
    all_trends = _trends(ctx)
    coverage = tuple(_coverage_row(ctx, e, analyst_inputs, all_trends) for e in _inputs(cmap))
    status = {c.section: c.status for c in coverage}
    tables = _tables(ctx, coverage, validation, all_trends)
    kept = _kept_trends(ctx, all_trends)
    exceptions = _exceptions(ctx, kpi_values, all_trends, coverage)
    tiles = _tiles(ctx, kpi_values, all_trends, exceptions)
    narrative = _narrative(ctx, all_trends, exceptions)
    opportunities = _opportunities(ctx, all_trends, tables)
    analyst = tuple(
        AnalystInput(
            section=e.id,
            key=e.analyst,
            markdown=(analyst_inputs.get(e.analyst) or "").strip("\n"),
            status=status.get(e.id, "missing"),
        )
        for e in cmap.entries
        if e.analyst is not None
    )
    table_ids = {t.id for t in tables}
    sections = tuple(
        Section(
            id=e.id,
            ref=e.ref,
            title=e.title,
            wording=e.wording,
            role=e.role,
            status=status.get(e.id),
            kpis=ctx.section_kpis.get(e.id, ()),
            trends=tuple(t.id for t in kept) if e.id == "c5" else (),
            tables=tuple(t for t in e.tables if t in table_ids),
            analyst=e.analyst,
            notes=_section_notes(e, coverage),
            page_break=e.page_break,
        )
        for e in cmap.entries
    )
    model = ReviewModel(
        schema=SCHEMA,
        meta=Meta(
            organisation=config.organisation,
            period=p.label,
            period_start=p.start.isoformat(),
            period_end=p.end.isoformat(),
            granularity=p.granularity,
            scope=scope,
            scope_label="All sites"
            if scope == WHOLE_SCOPE
            else f"Site {scope}"
            if not scope.lower().startswith("site")
            else scope,
            sites=tuple(config.sites) if scope == WHOLE_SCOPE else (scope,),
            clause_map=cmap.id,
            clause_map_title=cmap.title,
            trend_months=config.review.trend_months,
            stale_after_days=config.review.stale_after_days,
            validated=validation is not None,
        ),
        sections=sections,
        tiles=tiles,
        exceptions=exceptions,
        narrative=narrative,
        kpis=kpi_values,
        trends=kept,
        tables=tables,
        opportunities=opportunities,
        coverage=coverage,
        analyst=analyst,
    )
    return _normalise(model)


def trends(
    data: Frames,
    *,
    period: Period | str,
    scope: str,
    config: Config,
    unsound: Iterable[str] = (),
    section: str | None = None,
) -> tuple[Trend, ...]:
    """Every SPC series of the scope and (for the whole organisation) of each site.

    The model keeps site series only where the latest month carries a signal;
    the deep-dive notebooks show them all. ``section`` keeps the KPIs of one
    section (e.g. ``"c1"``).
    """
    p = parse_period(period)
    scope = config.check_scope(scope)
    ctx = _Context(
        config=config,
        period=p,
        scope=scope,
        cmap=clause_map(config.review.clause_map),
        unsound=frozenset(unsound),
        data=data,
    )
    out = _trends(ctx)
    if section is not None:
        ctx.cmap.entry(section)  # unknown section: a clear error
        out = tuple(t for t in out if t.section == section)
    scope_order = {s: i for i, s in enumerate(ctx.scopes)}
    return tuple(sorted(out, key=lambda t: scope_order[t.scope]))


def read_analyst_inputs(config: Config) -> dict[str, str]:
    """The markdown files named in ``config.analyst_inputs`` (missing files are skipped)."""
    out: dict[str, str] = {}
    for key in ("changes", "resources", "risks"):
        rel = getattr(config.analyst_inputs, key)
        if rel is None:
            continue
        path = config.resolve(rel)
        if path.is_file():
            out[key] = path.read_text(encoding="utf-8")
    return out


@dataclass
class _Context:
    config: Config
    period: Period
    scope: str
    cmap: ClauseMap
    unsound: frozenset[str]
    data: Frames
    section_kpis: dict[str, tuple[str, ...]] = field(default_factory=dict)
    kpi_section: dict[str, str] = field(default_factory=dict)
    section_order: dict[str, int] = field(default_factory=dict)
    values: tuple[KpiValue, ...] = ()

    def __post_init__(self) -> None:
        self.section_order = {e.id: i for i, e in enumerate(self.cmap.entries)}
        registry = kpis.REGISTRY
        for e in self.cmap.entries:
            ids = [k for k in e.kpis if k in registry and self.cmap.listed(k)]
            ids += [
                k
                for k, d in registry.items()
                if _clause_key(d.iso_clause) in {_clause_key(c) for c in e.kpi_clauses}
                and k not in ids
                and k not in self.kpi_section
                and self.cmap.listed(k)
            ]
            for k in ids:
                self.kpi_section.setdefault(k, e.id)
            if ids:
                self.section_kpis[e.id] = tuple(ids)

    @property
    def scopes(self) -> tuple[str, ...]:
        """The scope itself, then (for the whole organisation) each site."""
        if self.scope == WHOLE_SCOPE:
            return (WHOLE_SCOPE, *self.config.sites)
        return (self.scope,)

    def frame(self, name: str) -> pl.DataFrame | None:
        f = self.data.get(name)
        if f is None:
            return None
        if self.scope != WHOLE_SCOPE and "site" in f.columns:
            f = f.filter(pl.col("site") == self.scope)
        return f

    def target(self, kpi_id: str) -> float | None:
        t = self.config.kpis.targets.get(kpi_id)
        if t is not None:
            return float(t)
        obj = self.data.get("objectives")
        if obj is not None and "kpi" in obj.columns and obj.height:
            hit = obj.filter(pl.col("kpi") == kpi_id)
            if hit.height:
                return _float(hit.sort("objective_id")["target"][0])
        return None


def _clause_key(clause: str) -> str:
    return clause.replace(" ", "").replace(")", "").lower()


def _inputs(cmap: ClauseMap) -> list[ClauseEntry]:
    return [e for e in cmap.entries if e.role == "input"]


def _direction(kpi_id: str) -> str:
    d = kpis.REGISTRY[kpi_id].direction
    return d if d in ("higher_is_better", "lower_is_better") else "neutral"


# -------------------------------------------------------------- KPI values


def _kpi_values(ctx: _Context) -> tuple[KpiValue, ...]:
    frame = kpis.compute_kpis(
        ctx.data, ctx.period, ctx.scope, config=ctx.config.kpis, unsound=ctx.unsound
    )
    scope_rank = {s: i for i, s in enumerate(ctx.scopes)}
    out: list[KpiValue] = []
    for row in frame.iter_rows(named=True):
        kpi_id = str(row["kpi"])
        if kpi_id not in kpis.REGISTRY or row["scope"] not in scope_rank:
            continue
        d = kpis.REGISTRY[kpi_id]
        unit = str(row.get("unit") or d.unit)
        value = _float(row["value"])
        target = ctx.target(kpi_id)
        out.append(
            KpiValue(
                kpi=kpi_id,
                scope=str(row["scope"]),
                title=d.title,
                section=ctx.kpi_section.get(kpi_id, ""),
                value=value,
                numerator=_float(row.get("numerator")),
                denominator=_float(row.get("denominator")),
                unit=unit,
                display=format_value(value, unit),
                target=target,
                target_display=format_value(target, unit) if target is not None else "",
                direction=_direction(kpi_id),
                sound=bool(row.get("sound", True)),
                note=str(row.get("note") or ""),
            )
        )
    order = {k: i for i, k in enumerate(kpis.REGISTRY)}
    out.sort(key=lambda v: (order[v.kpi], scope_rank[v.scope]))
    return tuple(out)


# -------------------------------------------------------------- trends (SPC)

_SCALE = {"ppm": 1e6}


def _trends(ctx: _Context) -> tuple[Trend, ...]:
    """One SPC series per KPI and scope (the scope, then each site for the whole organisation)."""
    months = [m.label for m in trailing_months(ctx.period, ctx.config.review.trend_months)]
    series = kpis.kpi_series(
        ctx.data,
        ctx.period,
        ctx.scope,
        months=ctx.config.review.trend_months,
        config=ctx.config.kpis,
        unsound=ctx.unsound,
    )
    out: list[Trend] = []
    for kpi_id, d in kpis.REGISTRY.items():
        if kpi_id not in ctx.kpi_section or not ctx.cmap.trended(kpi_id):
            continue
        rows = series.filter(pl.col("kpi") == kpi_id)
        if rows.height == 0:
            continue
        for s in ctx.scopes:
            t = _trend(ctx, kpi_id, d, s, months, rows.filter(pl.col("scope") == s))
            if t is not None:
                out.append(t)
    return tuple(out)


def _trend(
    ctx: _Context,
    kpi_id: str,
    d: kpis.KpiDef,
    scope: str,
    months: list[str],
    rows: pl.DataFrame,
) -> Trend | None:
    if rows.height == 0:
        return None
    by_month = {str(r["period"]): r for r in rows.iter_rows(named=True)}
    values = np.array([_nan(by_month.get(m, {}).get("value")) for m in months])
    nums = np.array([_nan(by_month.get(m, {}).get("numerator")) for m in months])
    dens = np.array([_nan(by_month.get(m, {}).get("denominator")) for m in months])
    sound = all(bool(by_month[m].get("sound", True)) for m in months if m in by_month)
    unit = str(rows["unit"][0]) if "unit" in rows.columns and rows["unit"][0] else d.unit
    kind = str(d.kind)
    direction = _direction(kpi_id)
    chart = _chart(kind, unit, values, nums, dens)
    if chart is None:
        return None
    labels = spc.classify(chart, direction)  # type: ignore[arg-type]
    classes: tuple[SignalClass, ...] = tuple(lab if lab is not None else "none" for lab in labels)
    target = ctx.target(kpi_id)
    signals = tuple(tuple(sorted(s)) for s in chart.signals)
    starts = tuple(ph.start for ph in chart.phases[1:])
    low, high = _NATURAL_BOUNDS.get(unit.lower(), (None, None))
    t = Trend(
        id=_slug(kpi_id, scope),
        kpi=kpi_id,
        scope=scope,
        title=d.title,
        section=ctx.kpi_section.get(kpi_id, ""),
        unit=unit,
        direction=direction,
        kind=kind,
        chart="laney_p" if chart.chart == "p'" else str(chart.chart),
        months=tuple(months),
        values=_opt(chart.values),
        center=_opt(chart.center),
        ucl=_bounded(chart.ucl, low, high),
        lcl=_bounded(chart.lcl, low, high),
        signals=signals,
        classes=classes,
        variation=str(spc.variation(chart, direction)),  # type: ignore[arg-type]
        assurance=_opt_str(spc.assurance(chart, target, direction)),  # type: ignore[arg-type]
        target=target,
        rebase=starts,
        sound=sound,
        explanation=(),
    )
    return dataclasses.replace(t, explanation=tuple(explain(t)))


_NATURAL_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "days": (0.0, None),
    "share": (0.0, 1.0),
    "share of scale": (0.0, 1.0),
    "nps points": (-100.0, 100.0),
}
"""What a measure can be at all, by unit. An XmR limit beyond it (a median of
-1.2 days) is shown at the bound, as attribute charts already floor and cap
theirs; signals and icons are judged on the unbounded limits."""


def _bounded(a: Iterable[float], low: float | None, high: float | None) -> tuple[float | None, ...]:
    out = []
    for x in _opt(a):
        if x is not None and low is not None:
            x = max(x, low)
        if x is not None and high is not None:
            x = min(x, high)
        out.append(x)
    return tuple(out)


def _nan(x: Any) -> float:
    f = _float(x)
    return math.nan if f is None else f


def _opt(a: Iterable[float]) -> tuple[float | None, ...]:
    return tuple(_float(x) for x in a)


def _opt_str(x: str | None) -> str | None:
    return None if x is None else str(x)


def _chart(
    kind: str, unit: str, values: np.ndarray, nums: np.ndarray, dens: np.ndarray
) -> spc.ControlChart | None:
    if np.all(np.isnan(values)):
        return None
    try:
        if kind in ("rate", "proportion") and not np.all(np.isnan(dens)):
            return spc.auto_chart(
                kind,  # type: ignore[arg-type]
                numerators=np.nan_to_num(nums, nan=0.0),
                denominators=np.nan_to_num(dens, nan=0.0),
                scale=_SCALE.get(unit.lower(), 1.0),
            )
        if kind == "count":
            return spc.auto_chart("count", values=values)
        return spc.auto_chart("continuous", values=values)
    except spc.SpcError:
        return None


# -------------------------------------------------------------- signals in words


def _last_index(t: Trend) -> int | None:
    for i in range(len(t.values) - 1, -1, -1):
        if t.values[i] is not None:
            return i
    return None


def _lower_first(title: str) -> str:
    """``"Supplier on-time delivery"`` -> ``"supplier on-time delivery"``; ``"CAPAs ..."`` stays."""
    if len(title) > 1 and title[0].isupper() and not title[1].isupper():
        return title[0].lower() + title[1:]
    return title


def _where(t: Trend) -> str:
    return f"{t.title}{scope_phrase(t.scope)}"


def _run_length(t: Trend, end: int) -> tuple[int, int]:
    """Points in a row on one side of the centre ending at ``end``: (length, side)."""
    side = 0
    n = 0
    for i in range(end, -1, -1):
        v, c = t.values[i], t.center[i]
        if v is None or c is None:
            continue
        s = (v > c) - (v < c)
        if s == 0 or (side and s != side):
            break
        side = s
        n += 1
    return n, side


def _trend_length(t: Trend, end: int) -> tuple[int, int]:
    """Points strictly rising (+1) or falling (-1) in a row ending at ``end``."""
    pts = [v for v in t.values[: end + 1] if v is not None]
    if len(pts) < 2:
        return 1, 0
    step = (pts[-1] > pts[-2]) - (pts[-1] < pts[-2])
    if step == 0:
        return 1, 0
    n = 2
    for i in range(len(pts) - 2, 0, -1):
        s = (pts[i] > pts[i - 1]) - (pts[i] < pts[i - 1])
        if s != step:
            break
        n += 1
    return n, step


RECENT_MONTHS = 3
"""A signal counts as current when it touches one of the last this-many points."""


def signal_sentences(t: Trend) -> list[tuple[SignalClass, str]]:
    """Deterministic sentences for the current signals of one trend, most serious first.

    Worded without number agreement ("ran", "rose", "came close"), since the subject
    is a measure's title, singular or plural ("Complaints received", "Complaint rate").
    """
    last = _last_index(t)
    if last is None:
        return []
    out: list[tuple[SignalClass, str]] = []
    where = _where(t)
    recent = range(max(0, last - RECENT_MONTHS + 1), last + 1)
    # a point beyond a limit among the last few
    for i in reversed(recent):
        v, u, lo = t.values[i], t.ucl[i], t.lcl[i]
        if v is None or "beyond_limits" not in t.signals[i]:
            continue
        if u is not None and v > u:
            out.append((t.classes[i], f"{where} rose above its upper limit in {t.months[i]}."))
        elif lo is not None and v < lo:
            out.append((t.classes[i], f"{where} fell below its lower limit in {t.months[i]}."))
        break
    if "shift" in t.signals[last]:
        n, side = _run_length(t, last)
        word = "above" if side > 0 else "below"
        out.append((t.classes[last], f"{where} ran {word} its average for the last {n} months."))
    if "trend" in t.signals[last]:
        n, step = _trend_length(t, last)
        word = "rose" if step > 0 else "fell"
        out.append((t.classes[last], f"{where} {word} for {n} months in a row."))
    if "two_of_three" in t.signals[last] and not out:
        v, c = t.values[last], t.center[last]
        word = "upper" if v is not None and c is not None and v > c else "lower"
        out.append(
            (
                t.classes[last],
                f"{where} came close to its {word} limit in 2 of the last 3 months.",
            )
        )
    return out


def explain(t: Trend) -> list[str]:
    """Plain sentences shown next to a chart: the latest point, limits, signals, assurance."""
    last = _last_index(t)
    if last is None:
        return ["No data in the trend window."]
    v, c, u, lo = t.values[last], t.center[last], t.ucl[last], t.lcl[last]
    lines = [
        f"{t.months[last]}: {format_value(v, t.unit)}; average {format_value(c, t.unit)}, "
        f"process limits {format_value(lo, t.unit)} to {format_value(u, t.unit)}."
    ]
    sentences = signal_sentences(t)
    if sentences:
        lines += [
            f"{s} ({cls})" if cls in ("improvement", "concern") else s for cls, s in sentences
        ]
    else:
        lines.append("Common-cause variation only: no signal in the latest month.")
    if t.assurance is not None and t.target is not None:
        tgt = format_value(t.target, t.unit)
        lines.append(
            {
                "consistent_pass": f"Target {tgt}: met consistently (target outside the limits).",
                "consistent_fail": f"Target {tgt}: not met consistently; it lies outside the "
                "process limits, so the process must change to meet it.",
                "inconsistent": f"Target {tgt}: met in some months and missed in others "
                "(target within the limits).",
            }.get(t.assurance, "")
        )
    if not t.sound:
        lines.append("Data behind this measure failed validation: read it with care.")
    return [line for line in lines if line]


def _current(t: Trend, cls: SignalClass) -> bool:
    last = _last_index(t)
    return last is not None and t.classes[last] == cls


def _kept_trends(ctx: _Context, trends: Sequence[Trend]) -> tuple[Trend, ...]:
    """The scope's own trends, then site trends whose latest month carries a signal."""
    own = [t for t in trends if t.scope == ctx.scope]
    sites = [t for t in trends if t.scope != ctx.scope and _current_signal(t)]
    return (*own, *sites)


def _current_signal(t: Trend) -> bool:
    return _current(t, "concern") or _current(t, "improvement")


# -------------------------------------------------------------- exceptions, tiles, narrative


def _sort_key(ctx: _Context) -> Callable[[ExceptionItem], tuple[int, int, int, int, str]]:
    kpi_order = {k: i for i, k in enumerate(kpis.REGISTRY)}
    scope_order = {s: i for i, s in enumerate(ctx.scopes)}

    def key(e: ExceptionItem) -> tuple[int, int, int, int, str]:
        return (
            e.rank,
            ctx.section_order.get(e.section, 99),
            kpi_order.get(e.kpi or "", -1),
            scope_order.get(e.scope or "", -1),
            e.text,
        )

    return key


_NOUNS = {
    "capa_open_overdue": (
        "CAPA is",
        "CAPAs are",
        "open past its due date",
        "open past their due date",
    ),
    "audit_findings_open_overdue": (
        "audit finding is",
        "audit findings are",
        "open past its due date",
        "open past their due date",
    ),
    "review_actions_overdue": (
        "management-review action is",
        "management-review actions are",
        "open past its due date",
        "open past their due date",
    ),
    "supplier_evaluations_overdue": (
        "approved supplier is",
        "approved suppliers are",
        "overdue for re-evaluation",
        "overdue for re-evaluation",
    ),
}


@dataclass(frozen=True)
class _Signal:
    """A current signal of one KPI: the scope's own trend, or a site when the scope has none."""

    kpi: str
    section: str
    trend: Trend
    sentence: str
    sites: tuple[str, ...]
    """Sites where the same sentence holds (when ``trend`` is the scope's own)."""

    @property
    def text(self) -> str:
        if not self.sites:
            return self.sentence
        return f"{self.sentence[:-1]} (also at {_sites_phrase(self.sites)})."


def _sites_phrase(sites: Sequence[str]) -> str:
    """``"site North"``, ``"sites North and South"`` (names already saying "Site" kept as they are)."""
    if all(s.lower().startswith("site") for s in sites):
        return _join(list(sites))
    return ("site " if len(sites) == 1 else "sites ") + _join(list(sites))


def _join(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _signals(ctx: _Context, trends: Sequence[Trend], cls: SignalClass) -> list[_Signal]:
    """Current signals of class ``cls``, one per KPI at the scope, plus site-only ones."""
    by_kpi: dict[str, list[Trend]] = {}
    for t in trends:
        if _current(t, cls) and any(c == cls for c, _ in signal_sentences(t)):
            by_kpi.setdefault(t.kpi, []).append(t)
    out: list[_Signal] = []
    for kpi_id, ts in by_kpi.items():
        own = [t for t in ts if t.scope == ctx.scope]
        sites = [t for t in ts if t.scope != ctx.scope]
        if own:
            t = own[0]
            sentence = next(s for c, s in signal_sentences(t) if c == cls)
            # "(also at site X)" repeats the sentence's claim for X: only sites where it holds
            # (same rule, same month, same run length); the others are said on their own.
            claim = sentence[len(_where(t)) :]
            same = [x for x in sites if (cls, _where(x) + claim) in signal_sentences(x)]
            out.append(_Signal(kpi_id, t.section, t, sentence, tuple(x.scope for x in same)))
            sites = [x for x in sites if x not in same]
        for t in sites:
            sentence = next(s for c, s in signal_sentences(t) if c == cls)
            out.append(_Signal(kpi_id, t.section, t, sentence, ()))
    return out


def _exceptions(
    ctx: _Context,
    values: Sequence[KpiValue],
    trends: Sequence[Trend],
    coverage: Sequence[CoverageRow],
) -> tuple[ExceptionItem, ...]:
    """Everything that needs attention, most serious first.

    Rank 0: data that failed validation; 1: a concerning signal or a target the
    process cannot meet, at the scope; 2: the same at a site only, and overdue
    items; 3: gaps in the evidence (missing or stale inputs).
    """
    out: list[ExceptionItem] = []
    for ds in sorted(ctx.unsound):
        title = DATASETS[ds].title if ds in DATASETS else ds
        out.append(
            ExceptionItem(
                "unsound",
                0,
                _dataset_section(ctx, ds),
                None,
                None,
                f"{title} ({ds}) failed validation: measures that use it are not sound.",
            )
        )
    for sig in _signals(ctx, trends, "concern"):
        rank = 1 if sig.trend.scope == ctx.scope else 2
        out.append(ExceptionItem("concern", rank, sig.section, sig.kpi, sig.trend.scope, sig.text))
    for t in trends:
        if t.assurance == "consistent_fail" and t.target is not None:
            out.append(
                ExceptionItem(
                    "assurance_fail",
                    1 if t.scope == ctx.scope else 2,
                    t.section,
                    t.kpi,
                    t.scope,
                    f"{_where(t)} will not meet its target of {format_value(t.target, t.unit)} "
                    "as the process runs now.",
                )
            )
    for v in values:
        if v.kpi in _NOUNS and v.scope == ctx.scope and v.value:
            out.append(
                ExceptionItem(
                    "overdue", 2, v.section, v.kpi, v.scope, _overdue_text(v.kpi, v.value)
                )
            )
    for c in coverage:
        if c.status in ("missing", "stale"):
            out.append(
                ExceptionItem(
                    "coverage",
                    3,
                    c.section,
                    None,
                    None,
                    f"{c.ref} {c.title}: {c.status} ({c.detail}).",
                )
            )
    out.sort(key=_sort_key(ctx))
    return tuple(out)


_SHORT = {
    "capa_open_overdue": ("CAPA", "CAPAs"),
    "audit_findings_open_overdue": ("audit finding", "audit findings"),
    "review_actions_overdue": ("review action", "review actions"),
    "supplier_evaluations_overdue": ("supplier re-evaluation", "supplier re-evaluations"),
}


def _short_overdue(ctx: _Context, kpi_id: str) -> str:
    n = 0
    for v in ctx.values:
        if v.kpi == kpi_id and v.scope == ctx.scope and v.value:
            n = int(v.value)
    one, many = _SHORT[kpi_id]
    return f"{n} {one if n == 1 else many}"


def _overdue_text(kpi_id: str, value: float) -> str:
    one, many, verb1, verbn = _NOUNS[kpi_id]
    n = int(value)
    return f"{n} {one} {verb1}." if n == 1 else f"{n} {many} {verbn}."


def _dataset_section(ctx: _Context, dataset: str) -> str:
    for e in ctx.cmap.entries:
        if e.role == "input" and e.coverage_rule == "all" and dataset in e.datasets:
            return e.id
    for e in ctx.cmap.entries:
        if dataset in e.datasets:
            return e.id
    return "appendix"


def _tiles(
    ctx: _Context,
    values: Sequence[KpiValue],
    trends: Sequence[Trend],
    exceptions: Sequence[ExceptionItem],
) -> tuple[KpiTile, ...]:
    by_kpi = {v.kpi: v for v in values if v.scope == ctx.scope}
    by_trend = {t.kpi: t for t in trends if t.scope == ctx.scope}
    flagged = {e.kpi for e in exceptions if e.kpi is not None and e.scope == ctx.scope}
    tiles: list[KpiTile] = []
    for kpi_id in ctx.cmap.headline_kpis:
        v = by_kpi.get(kpi_id)
        if v is None:
            continue
        if ctx.scope != WHOLE_SCOPE and not kpis.REGISTRY[kpi_id].per_site:
            continue  # e.g. review actions: the organisation's, not a site's (shown in a)
        t = by_trend.get(kpi_id)
        exception = (
            kpi_id in flagged
            or not v.sound
            or (t is not None and (_current(t, "concern") or t.assurance == "consistent_fail"))
        )
        tiles.append(
            KpiTile(
                kpi=kpi_id,
                scope=ctx.scope,
                title=v.title,
                section=v.section,
                value=v.value,
                display=v.display,
                unit=v.unit,
                target=v.target,
                target_display=v.target_display,
                variation=t.variation if t is not None else None,
                assurance=t.assurance if t is not None else None,
                sound=v.sound,
                exception=exception,
                note=v.note,
            )
        )
    # exceptions first; otherwise the clause map's order (stable sort)
    tiles.sort(key=lambda tile: not tile.exception)
    return tuple(tiles)


MAX_ATTENTION = 6
"""Concern and target sentences in the narrative before the rest are summed up."""
MAX_IMPROVEMENTS = 3


def _narrative(
    ctx: _Context, trends: Sequence[Trend], exceptions: Sequence[ExceptionItem]
) -> tuple[str, ...]:
    """A short, deterministic text: what needs attention, then what improved.

    One sentence per item, in this order: unsound data; concerning signals and
    targets the process cannot meet (scope first, then sites); overdue items in
    one sentence; improvements; gaps in the evidence in one sentence.
    """
    lines: list[str] = [e.text for e in exceptions if e.kind == "unsound"]
    attention = [e.text for e in exceptions if e.kind in ("concern", "assurance_fail")]
    if len(attention) > MAX_ATTENTION:
        more = len(attention) - MAX_ATTENTION + 1
        attention = [
            *attention[: MAX_ATTENTION - 1],
            f"{more} further concerns are listed in the exceptions.",
        ]
    lines += attention
    if not attention:
        lines.append("No measure shows a concerning special cause or a target it cannot meet.")
    overdue = [e for e in exceptions if e.kind == "overdue" and e.kpi is not None]
    if overdue:
        parts = [_short_overdue(ctx, e.kpi) for e in overdue if e.kpi is not None]
        lines.append(f"Overdue at period end: {_join(parts)}.")
    improvements = [
        f"Improvement: {_lower_first(sig.text)}" for sig in _signals(ctx, trends, "improvement")
    ]
    if len(improvements) > MAX_IMPROVEMENTS:
        more = len(improvements) - MAX_IMPROVEMENTS + 1
        improvements = [
            *improvements[: MAX_IMPROVEMENTS - 1],
            f"{more} further measures show improvement (see c) 5)).",
        ]
    lines += improvements
    gaps = [e for e in exceptions if e.kind == "coverage"]
    if gaps:
        by_status: dict[str, list[str]] = {}
        for e in gaps:
            status = "stale" if ": stale (" in e.text else "missing"
            by_status.setdefault(status, []).append(_ref_of(ctx, e.section))
        said = [f"{st} for {_join(refs)}" for st, refs in sorted(by_status.items())]
        lines.append(f"Evidence is {'; '.join(said)} (see the coverage matrix).")
    return tuple(lines)


def _ref_of(ctx: _Context, section_id: str) -> str:
    for e in ctx.cmap.entries:
        if e.id == section_id:
            return e.ref or e.id
    return section_id


# -------------------------------------------------------------- opportunities (f)


def _opportunities(
    ctx: _Context, trends: Sequence[Trend], tables: Sequence[Table]
) -> tuple[Opportunity, ...]:
    out: list[Opportunity] = []
    for sig in _signals(ctx, trends, "concern"):
        t = sig.trend
        out.append(
            Opportunity(
                t.section,
                t.kpi,
                t.scope,
                f"Find and remove the special cause behind {_lower_first(t.title)}"
                f"{scope_phrase(t.scope)}.",
                sig.text,
            )
        )
    for t in trends:
        if t.assurance == "consistent_fail" and t.target is not None and t.scope == ctx.scope:
            out.append(
                Opportunity(
                    t.section,
                    t.kpi,
                    t.scope,
                    f"Redesign the process behind {_lower_first(t.title)}{scope_phrase(t.scope)}: "
                    f"as it runs it cannot meet the target of {format_value(t.target, t.unit)}.",
                    "Target outside the process limits (assurance: consistent fail).",
                )
            )
    by_id = {t.id: t for t in tables}
    pareto = by_id.get("defect_pareto")
    if pareto is not None and pareto.rows:
        vital = [r for r in pareto.records() if r.get("vital_few")]
        if vital:
            codes = ", ".join(str(r["defect_code"]) for r in vital)
            share = _float(vital[-1].get("cumulative_share")) or 0.0
            out.append(
                Opportunity(
                    "c3",
                    None,
                    ctx.scope,
                    f"Reduce the vital few defect codes ({codes}).",
                    f"They account for {share * 100:.0f} % of the inspections recording a defect "
                    "code in the period.",
                )
            )
    objectives = by_id.get("objective_attainment")
    if objectives is not None:
        # objectives are the organisation's: in a site pack their actuals are not the site's
        whole = "" if ctx.scope == WHOLE_SCOPE else " for the whole organisation"
        for r in objectives.records():
            if r.get("met") is False:
                out.append(
                    Opportunity(
                        "c2",
                        None,
                        WHOLE_SCOPE,
                        f"Plan how to reach the objective '{r.get('name')}'.",
                        f"Actual {r.get('actual_display')} against target "
                        f"{r.get('target_display')}{whole}.",
                    )
                )
    suppliers = by_id.get("supplier_scorecard")
    if suppliers is not None:
        for r in suppliers.records():
            if r.get("rating") == "C":
                out.append(
                    Opportunity(
                        "c7",
                        None,
                        ctx.scope,
                        f"Develop or re-source supplier {r.get('name')} (rating C).",
                        f"On-time {format_value(_float(r.get('otd_share')), 'share')}, "
                        f"{format_value(_float(r.get('ppm')), 'ppm')}.",
                    )
                )
    order = {k: i for i, k in enumerate(kpis.REGISTRY)}
    scope_order = {s: i for i, s in enumerate(ctx.scopes)}
    out.sort(
        key=lambda o: (
            ctx.section_order.get(o.section, 99),
            order.get(o.kpi or "", 999),
            scope_order.get(o.scope or "", 0),
        )
    )
    return tuple(out)


# -------------------------------------------------------------- coverage (9.3.2 inputs)

_REGISTERS: dict[str, tuple[str, ...]] = {
    "suppliers": (),
    "objectives": (),
    "review_actions": ("review_date", "closed_date"),
}
"""Lists kept up to date rather than event logs: every row counts; these dates say how fresh."""


def _month_end(label: str) -> date | None:
    if re.fullmatch(r"\d{4}-\d{2}", label) and 1 <= int(label[5:7]) <= 12:
        return month(int(label[:4]), int(label[5:7])).end
    return None


def _newest(name: str, frame: pl.DataFrame, period_end: date) -> tuple[date | None, int]:
    """Newest record date on or before ``period_end`` and the rows up to then.

    Event logs count the rows whose period field (the date that places a row in
    a period) is on or before period end; registers count every row and take
    the newest of their activity dates.
    """
    register = name in _REGISTERS
    period_field = DATASETS[name].period_field if name in DATASETS else None
    cols = _REGISTERS.get(name, (period_field,) if period_field else ())
    cols = tuple(c for c in cols if c in frame.columns)
    if not cols:
        return None, frame.height
    newest: date | None = None
    rows = frame.height
    for col in cols:
        s = frame[col]
        if s.dtype == pl.String:  # a YYYY-MM month column: the month's last day
            days = [d for m in s.to_list() if m is not None and (d := _month_end(m)) is not None]
        else:
            days = [d for d in s.to_list() if isinstance(d, date)]
        upto = [d for d in days if d <= period_end]
        if upto and (newest is None or max(upto) > newest):
            newest = max(upto)
        if not register and col == period_field:
            rows = len(upto)
    return newest, rows


def _dataset_coverage(ctx: _Context, name: str) -> DatasetCoverage:
    title = DATASETS[name].title if name in DATASETS else name
    frame = ctx.frame(name)
    configured = name in ctx.config.sources
    if name in ctx.unsound:
        rows = frame.height if frame is not None else 0
        return DatasetCoverage(name, "failed", None, rows, f"{title}: failed validation")
    if frame is None or frame.height == 0:
        why = "no records" if configured or frame is not None else "no source configured"
        return DatasetCoverage(name, "missing", None, 0, f"{title}: {why}")
    newest, rows = _newest(name, frame, ctx.period.end)
    if rows == 0:
        return DatasetCoverage(name, "missing", None, 0, f"{title}: no records up to period end")
    if newest is None:
        return DatasetCoverage(name, "evidenced", None, rows, f"{title}: {rows:,} records")
    limit = ctx.period.end - timedelta(days=ctx.config.review.stale_after_days)
    if newest < limit:
        return DatasetCoverage(
            name,
            "stale",
            newest.isoformat(),
            rows,
            f"{title}: newest record {newest.isoformat()} is more than "
            f"{ctx.config.review.stale_after_days} days before period end",
        )
    return DatasetCoverage(
        name, "evidenced", newest.isoformat(), rows, f"{title}: {rows:,} records, newest {newest}"
    )


def _coverage_row(
    ctx: _Context,
    e: ClauseEntry,
    analyst_inputs: Mapping[str, str],
    trends: Sequence[Trend],
) -> CoverageRow:
    evidence = tuple(_dataset_coverage(ctx, ds) for ds in e.datasets)
    status: CoverageStatus
    if e.analyst is not None:
        text = (analyst_inputs.get(e.analyst) or "").strip()
        configured = getattr(ctx.config.analyst_inputs, e.analyst, None)
        if text:
            status, detail = "evidenced", f"analyst input ({e.analyst})"
        elif configured:
            status, detail = "missing", f"analyst input file {configured} not found or empty"
        else:
            status, detail = "missing", f"no analyst input configured (analyst_inputs.{e.analyst})"
        return CoverageRow(e.id, e.ref, e.title, status, evidence, detail)
    if e.derived:
        if trends:
            status, detail = "evidenced", f"suggested from {len(trends)} SPC series"
        else:
            status, detail = "missing", "no measure could be trended"
        return CoverageRow(e.id, e.ref, e.title, status, evidence, detail)
    if not evidence:
        return CoverageRow(e.id, e.ref, e.title, "missing", evidence, "no evidence defined")
    ranked = sorted(evidence, key=lambda d: COVERAGE_ORDER[d.status])
    chosen = ranked[0] if e.coverage_rule == "all" else ranked[-1]
    status = chosen.status
    if status == "evidenced":
        detail = "; ".join(d.detail for d in evidence)
    else:
        detail = "; ".join(d.detail for d in ranked if d.status == status)
    return CoverageRow(e.id, e.ref, e.title, status, evidence, detail)


def _section_notes(e: ClauseEntry, coverage: Sequence[CoverageRow]) -> tuple[str, ...]:
    for c in coverage:
        if c.section == e.id and c.status != "evidenced":
            return tuple(d.detail for d in c.evidence if d.status != "evidenced") or (c.detail,)
    return ()


# -------------------------------------------------------------- tables


def _in_period(col: str, p: Period) -> pl.Expr:
    return pl.col(col).is_between(p.start, p.end)


def _open_at(p: Period, opened: str) -> pl.Expr:
    """Open at period end: opened by then and not closed by then."""
    return (pl.col(opened) <= p.end) & (
        pl.col("closed_date").is_null() | (pl.col("closed_date") > p.end)
    )


def _rows(frame: pl.DataFrame, columns: Sequence[str]) -> tuple[tuple[Scalar, ...], ...]:
    cols = list(columns)
    return tuple(tuple(_scalar(v) for v in row) for row in frame.select(cols).iter_rows())


def _frame_table(
    table_id: str,
    title: str,
    frame: pl.DataFrame,
    spec: Sequence[tuple[str, str, str]],
    *,
    note: str = "",
    empty_text: str = "None.",
) -> Table:
    """A model table from a frame: ``spec`` is (column, label, format); absent columns are skipped."""
    present = [s for s in spec if s[0] in frame.columns]
    return Table(
        id=table_id,
        title=title,
        columns=tuple(Column(c, label, fmt) for c, label, fmt in present),
        rows=_rows(frame, [c for c, _, _ in present]),
        note=note,
        empty_text=empty_text,
    )


def _tables(
    ctx: _Context,
    coverage: Sequence[CoverageRow],
    validation: ValidationReport | None,
    trends: Sequence[Trend],
) -> tuple[Table, ...]:
    out: list[Table | None] = [
        _review_actions(ctx),
        _critical_complaints(ctx),
        _complaint_ageing(ctx),
        _objective_attainment(ctx),
        _defect_pareto(ctx),
        *_overdue(ctx),
        _site_signals(ctx, trends),
        _findings_by_type(ctx),
        _supplier_scorecard(ctx),
        _decisions(),
        _ledger(ctx, validation),
        _failed_rules(validation),
        _kpi_definitions(ctx),
        _method_notes(ctx),
    ]
    return tuple(t for t in out if t is not None)


def _review_actions(ctx: _Context) -> Table | None:
    f = ctx.frame("review_actions")
    if f is None:
        return None
    p = ctx.period
    f = f.filter(_open_at(p, "review_date") | _in_period("closed_date", p).fill_null(False))
    f = f.with_columns(
        status_at_end=pl.when(pl.col("closed_date").is_null() | (pl.col("closed_date") > p.end))
        .then(pl.lit("open"))
        .otherwise(pl.lit("closed")),
    ).with_columns(
        overdue=(pl.col("status_at_end") == "open") & (pl.col("due_date") < p.end),
    )
    f = f.sort(["overdue", "due_date", "action_id"], descending=[True, False, False])
    return _frame_table(
        "review_actions",
        "Actions from previous management reviews: open at period end or closed in the period",
        f,
        [
            ("action_id", "Action", "text"),
            ("review_date", "Raised", "date"),
            ("description", "Description", "longtext"),
            ("owner", "Owner", "text"),
            ("due_date", "Due", "date"),
            ("status_at_end", "Status", "text"),
            ("closed_date", "Closed", "date"),
            ("overdue", "Overdue", "bool"),
        ],
        empty_text="No actions from previous reviews are open or were closed in the period.",
    )


_SEVERITY_RANK = {"critical": 0, "major": 1, "minor": 2}


def _critical_complaints(ctx: _Context) -> Table | None:
    f = ctx.frame("complaints")
    if f is None:
        return None
    f = f.filter(
        _in_period("received_date", ctx.period) & pl.col("severity").is_in(["critical", "major"])
    )
    f = f.with_columns(
        _rank=pl.col("severity").replace_strict(_SEVERITY_RANK, default=9, return_dtype=pl.Int64)
    ).sort(["_rank", "received_date", "complaint_id"])
    return _frame_table(
        "critical_complaints",
        f"Critical and major complaints received in {ctx.period.label}",
        f,
        [
            ("complaint_id", "Complaint", "text"),
            ("received_date", "Received", "date"),
            ("severity", "Severity", "text"),
            ("site", "Site", "text"),
            ("customer", "Customer", "text"),
            ("product", "Product", "text"),
            ("category", "Category", "text"),
            ("status", "Status", "text"),
            ("description", "Description", "longtext"),
        ],
        empty_text="No critical or major complaints were received in the period.",
    )


_FINDING_TYPES = ("major_nc", "minor_nc", "observation", "ofi")


def _findings_by_type(ctx: _Context) -> Table | None:
    f = ctx.frame("audit_findings")
    if f is None:
        return None
    f = f.filter(_in_period("audit_date", ctx.period))
    sites = sorted(set(f["site"].to_list())) if f.height else []
    rows: list[tuple[Scalar, ...]] = []
    for s in sites:
        g = f.filter(pl.col("site") == s)
        rows.append((s, *(int((g["type"] == t).sum()) for t in _FINDING_TYPES), g.height))
    if len(sites) > 1:
        rows.append(("All sites", *(int((f["type"] == t).sum()) for t in _FINDING_TYPES), f.height))
    return Table(
        "findings_by_type",
        f"Audit findings dated in {ctx.period.label}, by type",
        (
            Column("site", "Site"),
            Column("major_nc", "Major NC", "int"),
            Column("minor_nc", "Minor NC", "int"),
            Column("observation", "Observation", "int"),
            Column("ofi", "OFI", "int"),
            Column("total", "Total", "int"),
        ),
        tuple(rows),
        empty_text="No audit findings are dated in the period.",
    )


def _site_signals(ctx: _Context, trends: Sequence[Trend]) -> Table | None:
    if ctx.scope != WHOLE_SCOPE or not ctx.config.sites:
        return None
    grid: dict[str, dict[str, str]] = {}
    titles: dict[str, str] = {}
    for t in trends:
        grid.setdefault(t.kpi, {})[t.scope] = t.variation or ""
        titles[t.kpi] = t.title
    rows = tuple((titles[k], *(grid[k].get(s, "") for s in ctx.scopes)) for k in grid)
    return Table(
        "site_signals",
        "Variation in the latest month, by measure and site",
        (
            Column("kpi", "Measure"),
            *(Column(_slug(s), "All sites" if s == WHOLE_SCOPE else s, "icon") for s in ctx.scopes),
        ),
        rows,
        note="Icons as in NHS Making Data Count: grey = common cause; blue = improvement; "
        "orange = concern; H/L = high/low.",
    )


def _decisions() -> Table:
    topics = (
        ("9.3.3 a) opportunities for improvement", 3),
        ("9.3.3 b) changes to the quality management system", 2),
        ("9.3.3 c) resource needs", 2),
    )
    rows = tuple((topic, "", "", "", "") for topic, n in topics for _ in range(n))
    return Table(
        "decisions",
        "Decisions and actions (to be minuted at the review)",
        (
            Column("topic", "ISO 9001 9.3.3"),
            Column("decision", "Decision / action", "longtext"),
            Column("owner", "Owner"),
            Column("due_date", "Due date"),
            Column("resources", "Resources"),
        ),
        rows,
    )


def _ledger(ctx: _Context, validation: ValidationReport | None) -> Table:
    rows: list[tuple[Scalar, ...]] = []
    names = sorted(
        set(ctx.data) | (set(validation.datasets) if validation is not None else set()),
        key=lambda n: (list(DATASETS).index(n) if n in DATASETS else 99, n),
    )
    for name in names:
        if validation is not None and name in validation.datasets:
            dv = validation.datasets[name]
            rows_in, used, quarantined = (
                int(dv.rows_in),
                int(dv.rows_used),
                int(dv.rows_quarantined),
            )
        else:
            used = ctx.data[name].height
            rows_in, quarantined = used, 0
        sound = name not in ctx.unsound
        rows.append((name, rows_in, used, quarantined, sound))
    return Table(
        "ledger",
        "Data-quality ledger: every row read is used or quarantined",
        (
            Column("dataset", "Dataset"),
            Column("rows_in", "Rows in", "int"),
            Column("rows_used", "Used", "int"),
            Column("rows_quarantined", "Quarantined", "int"),
            Column("sound", "Sound", "bool"),
        ),
        tuple(rows),
        note="" if validation is not None else "Not validated: no validation report was given.",
    )


def _failed_rules(validation: ValidationReport | None) -> Table | None:
    if validation is None:
        return None
    rows: list[tuple[Scalar, ...]] = []
    for name in sorted(validation.datasets):
        for r in validation.datasets[name].rules:
            if r.success:
                continue
            samples = ", ".join(str(v) for v in list(r.sample_values or ())[:5])
            rows.append(
                (
                    name,
                    str(r.rule_id),
                    str(r.description),
                    _scalar(r.column),
                    str(r.severity),
                    int(r.unexpected_count or 0),
                    samples,
                )
            )
    rows.sort(key=lambda r: (0 if r[4] == "error" else 1, str(r[0]), str(r[1]), str(r[3])))
    return Table(
        "failed_rules",
        "Validation rules that failed",
        (
            Column("dataset", "Dataset"),
            Column("rule", "Rule"),
            Column("description", "What it checks", "longtext"),
            Column("column", "Column"),
            Column("severity", "Severity"),
            Column("unexpected_count", "Rows", "int"),
            Column("sample_values", "Examples", "longtext"),
        ),
        tuple(rows),
        note="error: the rows are quarantined and the measures that use the dataset are "
        "flagged; warn: shown only.",
        empty_text="Every validation rule passed.",
    )


def _kpi_definitions(ctx: _Context) -> Table:
    rows = tuple(
        (
            d.id,
            d.title,
            str(d.iso_clause),
            str(d.unit),
            str(d.direction),
            str(d.kind),
            ", ".join(d.datasets),
            " ".join(str(d.definition).split()),
            ctx.target(d.id),
        )
        for d in kpis.REGISTRY.values()
    )
    return Table(
        "kpi_definitions",
        "KPI definitions",
        (
            Column("kpi", "KPI"),
            Column("title", "Title"),
            Column("iso_clause", "ISO"),
            Column("unit", "Unit"),
            Column("direction", "Better"),
            Column("kind", "Kind"),
            Column("datasets", "Data"),
            Column("definition", "Definition", "longtext"),
            Column("target", "Target", "float"),
        ),
        rows,
    )


def method_notes(config: Config) -> tuple[tuple[str, str], ...]:
    """The SPC and coverage methods, as (topic, note) pairs for the appendix."""
    months = config.review.trend_months
    return (
        (
            "Charts",
            f"Each measure is charted monthly over the last {months} months. The chart follows "
            "the measure's kind: XmR for continuous values (limits = mean ± 2.66 × mean moving "
            "range); Laney p′ for proportions whose large denominators make plain p limits too "
            "narrow, else p; u for rates per unit; c for counts. Limits use every point of the "
            "window as baseline.",
        ),
        (
            "Signals",
            "NHS England 'Making Data Count' rules: a point beyond a process limit; 7 points in "
            "a row on one side of the average (a point on the average breaks the run); 7 points "
            "in a row rising or falling; 2 of 3 points beyond two-thirds of the way to a limit, "
            "on the same side. Every point of a run or trend is marked.",
        ),
        (
            "Icons",
            "Variation: grey = common cause only; blue = special cause that is an improvement; "
            "orange = special cause that is a concern; H/L = high/low. Assurance (with a "
            "target): P = the target lies beyond the limits on the good side, so it is met "
            "consistently; F = beyond the limits on the bad side, so it will be missed unless "
            "the process changes; ? = the target lies within the limits and will be met in "
            "some months and missed in others.",
        ),
        (
            "Coverage",
            "An input is evidenced when its records exist up to period end; missing when no "
            "source is configured or there are no records; stale when its newest record is "
            f"more than {config.review.stale_after_days} days before period end; failed when "
            "its data broke an error-severity validation rule.",
        ),
        (
            "Whole organisation",
            "Values for all sites are recomputed from the rows, never averaged from site values.",
        ),
    )


def _method_notes(ctx: _Context) -> Table:
    return Table(
        "method_notes",
        "Method notes",
        (Column("topic", "Topic"), Column("note", "Note", "longtext")),
        method_notes(ctx.config),
    )


def _complaint_ageing(ctx: _Context) -> Table | None:
    if ctx.data.get("complaints") is None:
        return None
    f = kpis.complaint_ageing(ctx.data, ctx.period, ctx.scope, config=ctx.config.kpis)
    buckets = list(dict.fromkeys(f["bucket"].to_list()))
    rows: list[tuple[Scalar, ...]] = []
    for s in ctx.scopes:
        g = f.filter(pl.col("scope") == s)
        if g.height == 0:
            continue
        counts = dict(zip(g["bucket"].to_list(), g["open"].to_list(), strict=True))
        total = sum(int(v or 0) for v in counts.values())
        rows.append(
            (
                "All sites" if s == WHOLE_SCOPE else s,
                *(int(counts.get(b) or 0) for b in buckets),
                total,
            )
        )
    return Table(
        "complaint_ageing",
        "Complaints open at period end, by days since received",
        (
            Column("scope", "Scope"),
            *(Column(_slug("age", b), f"{b} days", "int") for b in buckets),
            Column("open", "Open", "int"),
        ),
        tuple(rows),
        empty_text="No complaint is open at period end.",
    )


def _defect_pareto(ctx: _Context) -> Table | None:
    if ctx.data.get("inspections") is None:
        return None
    f = kpis.defect_pareto(ctx.data, ctx.period, ctx.scope)
    return _frame_table(
        "defect_pareto",
        f"Defect codes in {ctx.period.label} (Pareto: inspections recording each code)",
        f,
        [
            ("rank", "#", "int"),
            ("defect_code", "Defect code", "text"),
            ("count", "Inspections with the code", "int"),
            ("qty_defective", "Defective units", "int"),
            ("share", "Share", "share"),
            ("cumulative_share", "Cumulative", "share"),
            ("vital_few", "Vital few", "bool"),
        ],
        note="Vital few: the top codes that together make up 80 % of the count.",
        empty_text="No defect code was recorded in the period.",
    )


def _supplier_scorecard(ctx: _Context) -> Table | None:
    if ctx.data.get("receipts") is None and ctx.data.get("suppliers") is None:
        return None
    f = kpis.supplier_scorecard(ctx.data, ctx.period, ctx.scope, config=ctx.config.kpis)
    if "receipts" in f.columns:
        f = f.filter(pl.col("receipts") > 0)
    if "score" in f.columns:
        f = f.sort(["score", "supplier_id"], descending=[False, False], nulls_last=True)
    sc = ctx.config.kpis.scorecard
    return _frame_table(
        "supplier_scorecard",
        f"Supplier scorecard, receipts in {ctx.period.label} (lowest score first)",
        f,
        [
            ("supplier_id", "Supplier", "text"),
            ("name", "Name", "text"),
            ("category", "Category", "text"),
            ("critical", "Critical", "bool"),
            ("approval_status", "Approval", "text"),
            ("receipts", "Receipts", "int"),
            ("otd_share", "On time", "share"),
            ("ppm", "Rejects", "ppm"),
            ("score", "Score", "float"),
            ("rating", "Rating", "text"),
            ("evaluation_overdue", "Evaluation overdue", "bool"),
        ],
        note=f"Score = {sc.otd_weight:g} x on-time score + {sc.quality_weight:g} x quality score "
        f"(100 at 0 ppm, 0 at {sc.ppm_zero_score:,.0f} ppm); A >= {sc.rating_a_min:g}, "
        f"B >= {sc.rating_b_min:g}, else C. Suppliers with receipts in the period.",
        empty_text="No receipts in the period.",
    )


def _objective_attainment(ctx: _Context) -> Table | None:
    if ctx.data.get("objectives") is None:
        return None
    f = kpis.objective_attainment(ctx.data, ctx.period, config=ctx.config.kpis, unsound=ctx.unsound)
    rows: list[tuple[Scalar, ...]] = []
    for r in f.iter_rows(named=True):
        unit = str(r.get("unit") or "")
        target, ytd = _float(r.get("target")), _float(r.get("ytd_actual"))
        actual_display, target_display = format_pair(_float(r.get("actual")), target, unit)
        rows.append(
            (
                _scalar(r.get("objective_id")),
                _scalar(r.get("name")),
                _scalar(r.get("clause")),
                _scalar(r.get("owner")),
                _scalar(r.get("direction")),
                _scalar(unit),
                _float(r.get("target")),
                _float(r.get("actual")),
                _float(r.get("ytd_actual")),
                target_display,
                actual_display,
                format_pair(ytd, target, unit)[0],
                _scalar(r.get("met")),
                _scalar(r.get("ytd_met")),
                bool(r.get("sound", True)),
                _scalar(r.get("note")) or "",
            )
        )
    note = "Objectives are set for the whole organisation." if ctx.scope != WHOLE_SCOPE else ""
    return Table(
        "objective_attainment",
        f"Quality objectives in {ctx.period.label}: actual against target",
        (
            Column("objective_id", "Objective"),
            Column("name", "Name"),
            Column("clause", "Clause"),
            Column("owner", "Owner"),
            Column("direction", "Better"),
            Column("unit", "Unit"),
            Column("target", "Target value", "float"),
            Column("actual", "Actual value", "float"),
            Column("ytd_actual", "YTD value", "float"),
            Column("target_display", "Target", "value"),
            Column("actual_display", "Actual", "value"),
            Column("ytd_display", "Year to date", "value"),
            Column("met", "Met", "bool"),
            Column("ytd_met", "Met YTD", "bool"),
            Column("sound", "Sound", "bool"),
            Column("note", "Note", "longtext"),
        ),
        tuple(rows),
        note=note,
        empty_text="No quality objectives are defined.",
    )


_OVERDUE_TITLES = {
    "capa": ("overdue_capa", "Corrective actions open past their due date at period end"),
    "audit_finding": ("overdue_findings", "Audit findings open past their due date at period end"),
    "review_action": ("overdue_actions", "Review actions open past their due date at period end"),
}


def _overdue(ctx: _Context) -> list[Table]:
    if not any(ctx.data.get(n) is not None for n in ("capa", "audit_findings", "review_actions")):
        return []
    f = kpis.overdue_items(ctx.data, ctx.period, ctx.scope, config=ctx.config.kpis)
    out = []
    for item_type, (table_id, title) in _OVERDUE_TITLES.items():
        g = f.filter(pl.col("item_type") == item_type)
        out.append(
            _frame_table(
                table_id,
                title,
                g,
                [
                    ("item_id", "Item", "text"),
                    ("site", "Site", "text"),
                    ("owner", "Owner", "text"),
                    ("detail", "Detail", "longtext"),
                    ("opened_date", "Opened", "date"),
                    ("due_date", "Due", "date"),
                    ("days_overdue", "Days overdue", "int"),
                ]
                if item_type == "review_action"
                else [
                    ("item_id", "Item", "text"),
                    ("site", "Site", "text"),
                    ("detail", "Detail", "longtext"),
                    ("opened_date", "Opened", "date"),
                    ("due_date", "Due", "date"),
                    ("days_overdue", "Days overdue", "int"),
                ],
                empty_text="None overdue.",
            )
        )
    return out
