"""The management-review model: everything the ISO 9001:2015 9.3 input pack shows.

:func:`build` turns validated data into a :class:`ReviewModel`: frozen
dataclasses, JSON-serialisable (``to_json()`` is deterministic: sorted keys,
floats rounded to :data:`FLOAT_DIGITS` decimals, no timestamps) and read back
exactly by :meth:`ReviewModel.from_json`. ``charts`` and the notebooks only
present it; nothing here knows about HTML or plotly.

Sections follow ISO 9001:2015 9.3.2 (inputs) and 9.3.3 (outputs) from a clause
map held as data: a TOML file shipped in ``review/clause_maps/`` (picked by
``[review] standard``; :data:`STANDARDS`) or one of the user's own
(``[review] clause_map``), read by :func:`load_clause_map`.

Untrusted text (complaint descriptions, names, codes, analyst markdown) is kept
as plain strings: escaping is the presenter's job (``charts``).

The modules, in the order they import each other (import-linter enforces it):

- :mod:`~qmskpi.review.assemble`: :func:`build` and :func:`trends` put it together;
- :mod:`~qmskpi.review.narrative` (exceptions, tiles, narrative),
  :mod:`~qmskpi.review.opportunities` (9.3.2 f), :mod:`~qmskpi.review.tables`
  (section tables), :mod:`~qmskpi.review.appendix` (ledger, rules, definitions,
  methods), :mod:`~qmskpi.review.coverage` (the coverage matrix),
  :mod:`~qmskpi.review.measures` (KPI values and SPC series);
- :mod:`~qmskpi.review.signals`: SPC signals in words;
- :mod:`~qmskpi.review.context`: what every part shares;
- :mod:`~qmskpi.review.clauses` (clause maps) and :mod:`~qmskpi.review.formatting`;
- :mod:`~qmskpi.review.model`: the dataclasses and their JSON.
"""

from __future__ import annotations

from qmskpi.errors import QmsKpiError
from qmskpi.review.assemble import Built, build, build_pack, read_analyst_inputs, trends
from qmskpi.review.clauses import (
    CLAUSE_MAPS,
    ISO9001_2015,
    PACK_SECTIONS,
    STANDARDS,
    ClauseEntry,
    ClauseMap,
    clause_map,
    clause_map_for,
    load_clause_map,
    register_clause_map,
)
from qmskpi.review.context import Frames
from qmskpi.review.coverage import COVERAGE_ORDER
from qmskpi.review.formatting import format_pair, format_value, scope_phrase
from qmskpi.review.measures import chart_trend, series_trend
from qmskpi.review.methods import method_notes
from qmskpi.review.model import (
    FLOAT_DIGITS,
    REGISTERS_XLSX,
    SCHEMA,
    AnalystInput,
    AnalystKey,
    Column,
    CoverageRow,
    CoverageStatus,
    DatasetCoverage,
    ExceptionItem,
    ExceptionKind,
    KpiTile,
    KpiValue,
    Meta,
    Opportunity,
    ReviewModel,
    Role,
    Scalar,
    Section,
    SignalClass,
    Table,
    Trend,
    register_file,
)
from qmskpi.review.narrative import MAX_ATTENTION, MAX_IMPROVEMENTS
from qmskpi.review.signals import RECENT_MONTHS, explain, signal_sentences

__all__ = [
    "CLAUSE_MAPS",
    "COVERAGE_ORDER",
    "FLOAT_DIGITS",
    "ISO9001_2015",
    "MAX_ATTENTION",
    "MAX_IMPROVEMENTS",
    "PACK_SECTIONS",
    "RECENT_MONTHS",
    "REGISTERS_XLSX",
    "SCHEMA",
    "STANDARDS",
    "AnalystInput",
    "AnalystKey",
    "Built",
    "ClauseEntry",
    "ClauseMap",
    "Column",
    "CoverageRow",
    "CoverageStatus",
    "DatasetCoverage",
    "ExceptionItem",
    "ExceptionKind",
    "Frames",
    "KpiTile",
    "KpiValue",
    "Meta",
    "Opportunity",
    "QmsKpiError",
    "ReviewModel",
    "Role",
    "Scalar",
    "Section",
    "SignalClass",
    "Table",
    "Trend",
    "build",
    "build_pack",
    "chart_trend",
    "clause_map",
    "clause_map_for",
    "explain",
    "format_pair",
    "format_value",
    "load_clause_map",
    "method_notes",
    "read_analyst_inputs",
    "register_clause_map",
    "register_file",
    "scope_phrase",
    "series_trend",
    "signal_sentences",
    "trends",
]
