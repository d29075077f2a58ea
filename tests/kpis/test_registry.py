"""The KPI registry: ids of DESIGN §4, complete definitions, definitions in docstrings."""

from __future__ import annotations

import dataclasses
import re

import pytest

from qmskpi import kpis
from qmskpi.datasets import DATASETS
from qmskpi.kpis import _common, actions, audits, capa, conformity, customers, suppliers

DESIGN_IDS = [
    "complaints_received",
    "complaint_rate_ppm",
    "complaint_days_to_close_median",
    "complaint_days_to_close_p90",
    "complaints_closed_on_time_share",
    "complaints_open",
    "complaints_repeat_share",
    "satisfaction_mean",
    "nps",
    "supplier_otd_share",
    "supplier_ppm",
    "supplier_evaluations_overdue",
    "fpy_share",
    "defect_ppm",
    "rty_share",
    "capa_opened",
    "capa_closed",
    "capa_open_overdue",
    "capa_days_to_close_median",
    "capa_effective_share",
    "audit_findings",
    "audit_findings_open_overdue",
    "review_actions_open",
    "review_actions_overdue",
    "review_actions_closed",
]

# Revised definitions and added measures (issue 16): the old ids keep their meaning.
REVISIONS = [
    "complaints_received_minor",
    "complaints_received_major",
    "complaints_received_critical",
    "customer_reject_ppm",
    "complaints_on_time_incl_backlog_share",
    "complaints_recurrence_share",
    "satisfaction_score_mean",
    "satisfaction_range_share",
    "survey_responses",
    "supplier_otd_due_share",
    "supplier_evaluations_overdue_active",
    "receipts_from_unapproved",
    "fpy_lot_share",
    "fpy_lot_share_incoming",
    "fpy_lot_share_in_process",
    "fpy_lot_share_final",
    "rty_internal_share",
    "defect_ppm_incoming",
    "defect_ppm_in_process",
    "defect_ppm_final",
    "capa_open",
    "capa_closed_on_time_share",
    "capa_on_time_incl_backlog_share",
    "capa_effective_verified_share",
    "audit_nc_open",
    "audit_nc_open_overdue",
    "audit_programme_completion_share",
    "audits_not_performed_overdue",
    "customer_otd_share",
    "copq_internal",
    "copq_external",
    "copq_total",
    "supplier_evaluations_overdue_asof",
    "receipts_from_unapproved_asof",
]

BREAKDOWNS = [
    "complaints_open_age_0_30",
    "complaints_open_age_31_60",
    "complaints_open_age_61_90",
    "complaints_open_age_over_90",
    "fpy_share_incoming",
    "fpy_share_in_process",
    "fpy_share_final",
    "audit_findings_major_nc",
    "audit_findings_minor_nc",
    "audit_findings_observation",
    "audit_findings_ofi",
]


def test_every_design_kpi_is_registered_under_its_exact_id() -> None:
    assert set(DESIGN_IDS) <= set(kpis.REGISTRY)
    assert set(kpis.REGISTRY) == set(DESIGN_IDS) | set(BREAKDOWNS) | set(REVISIONS)


def test_registry_order_follows_design_order() -> None:
    order = [k for k in kpis.REGISTRY if k in DESIGN_IDS]
    assert order == DESIGN_IDS


@pytest.mark.parametrize("kpi", list(kpis.REGISTRY.values()), ids=lambda k: k.id)
def test_definition_is_complete(kpi: kpis.KpiDef) -> None:
    assert dataclasses.is_dataclass(kpi)
    assert kpi.direction in ("higher_is_better", "lower_is_better", "neutral")
    assert kpi.kind in ("proportion", "rate", "count", "continuous")
    assert kpi.datasets
    assert all(d in DATASETS for d in kpi.datasets)
    assert kpi.title
    assert kpi.unit
    assert re.fullmatch(r"\d+(\.\d+)*( [a-z])?", kpi.iso_clause)
    assert len(kpi.definition) > 20
    # proportions and rates carry a numerator and a denominator for SPC (p / u charts)
    if kpi.kind in ("proportion", "rate"):
        assert kpi.numerator
        assert kpi.denominator
    if kpi.kind == "count":
        assert kpi.numerator
        assert kpi.denominator is None
    # a KPI is per site exactly when the dataset its rows come from (listed first) has a
    # site; a site-less lookup (the supplier list for receipts) does not stop the split
    assert kpi.per_site == DATASETS[kpi.datasets[0]].site_level


def test_kpidef_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        kpis.REGISTRY["nps"].unit = "x"  # type: ignore[misc]


def test_every_kpi_is_computed_by_exactly_one_group_whose_docstring_holds_its_definition() -> None:
    groups = [
        g for m in (customers, suppliers, conformity, capa, audits, actions) for g in m.GROUPS
    ]
    seen: dict[str, _common.Group] = {}
    for g in groups:
        for k in g.kpis:
            assert k.id not in seen, k.id
            seen[k.id] = g
            assert k.definition in (g.compute.__doc__ or ""), k.id
    assert set(seen) == set(kpis.REGISTRY)


def test_units_say_what_shares_are() -> None:
    for kpi in kpis.REGISTRY.values():
        if kpi.id.endswith("_share") and kpi.kind == "proportion":
            assert kpi.unit == "share"
        if kpi.id.endswith("_ppm"):
            assert (kpi.unit, kpi.kind) == ("ppm", "rate")
