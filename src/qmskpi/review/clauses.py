"""Clause maps: which sections the pack has, in which order, and what evidences each.

A :class:`ClauseMap` lists the sections of the pack (ISO 9001:2015 9.3.2 a)-f)
and 9.3.3, plus cover, summary, coverage and appendix) as :class:`ClauseEntry`
rows. Known maps are in :data:`CLAUSE_MAPS` by id (``config.review.clause_map``);
:func:`register_clause_map` adds one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from qmskpi.errors import QmsKpiError, did_you_mean
from qmskpi.review.model import AnalystKey, Role


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
    # Where two readings of a measure are shipped (docs/kpis.md), the tile is the one a
    # director should read; the other is listed (with its value) but not charted.
    headline_kpis=(
        "complaint_rate_ppm",
        "complaints_on_time_incl_backlog_share",  # not: closed on time only
        "satisfaction_score_mean",  # not: score / scale_max
        "fpy_lot_share",  # not: the inspection-record pass rate
        "defect_ppm",
        "supplier_otd_due_share",  # not: receipts received, early counted on time
        "supplier_ppm",
        "capa_open_overdue",
        "audit_nc_open_overdue",  # not: every finding type with invented due dates
        "review_actions_overdue",
    ),
    unlisted=(
        "complaints_open_age_",  # the complaint-ageing table
        "complaints_received_",  # by severity: the complaints-by-category table
        "audit_findings_major_nc",  # the findings-by-type table
        "audit_findings_minor_nc",
        "audit_findings_observation",
        "audit_findings_ofi",
    ),
    untrended=(
        # breakdowns of a charted measure
        "fpy_share_",
        "fpy_lot_share_",
        "defect_ppm_",  # per stage (the pooled defect_ppm is charted)
        "copq_internal",
        "copq_external",
        "survey_responses",
        # the other reading of a measure whose preferred reading is charted
        "complaints_closed_on_time_share",
        "complaints_repeat_share",
        "satisfaction_mean",
        "satisfaction_range_share",
        "supplier_otd_share",
        "fpy_share",
        "rty_share",
        "capa_closed_on_time_share",
        "capa_effective_share",
        "audit_findings_open_overdue",
        # supplier-list counts: listed and in the exceptions, not charted (a list, not a
        # process); current-list and approval-history readings would otherwise repeat
        "supplier_evaluations_overdue",
        "receipts_from_unapproved",
    ),
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
            tables=("critical_complaints", "complaint_ageing", "complaints_by_category"),
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
