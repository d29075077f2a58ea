"""Where the story is planted for a spec: :class:`Planted` and :func:`planted_structure`."""

from __future__ import annotations

from dataclasses import dataclass

from qmskpi.synthetic.draws import _Calendar
from qmskpi.synthetic.objectives import OBJECTIVES
from qmskpi.synthetic.spec import (
    BACKLOG_MONTHS,
    CONDITIONAL_SUPPLIER_INDEX,
    DISAPPROVED_MONTHS,
    DISAPPROVED_SUPPLIER_INDEX,
    NEW_SUPPLIER_INDEX,
    OTD_DECLINE_MONTHS,
    OTD_SUPPLIER_INDEX,
    OVERDUE_EVALUATION_INDEXES,
    STEP_MONTHS,
    SyntheticSpec,
    _supplier_def,
    _supplier_ids,
)


@dataclass(frozen=True)
class Planted:
    """Where the planted structure of a spec is (labels are ``YYYY-MM`` months)."""

    sites: tuple[str, ...]
    first_month: str
    end_month: str
    step_site: str
    step_from: str
    otd_supplier_id: str
    otd_supplier_name: str
    otd_decline_from: str
    backlog_from: str
    conditional_supplier_ids: tuple[str, ...]
    disapproved_supplier_id: str | None
    disapproved_from: str | None
    evaluation_overdue_supplier_ids: tuple[str, ...]
    kpi_objectives: tuple[str, ...]
    manual_objectives: tuple[str, ...]


def planted_structure(spec: SyntheticSpec = SyntheticSpec()) -> Planted:
    """Name the sites, suppliers and months where :func:`generate` plants its story."""
    cal = _Calendar.of(spec)
    labels = cal.labels
    n = spec.months
    sup_ids = _supplier_ids(spec.suppliers)
    disapproved = spec.suppliers > DISAPPROVED_SUPPLIER_INDEX
    return Planted(
        sites=spec.site_names,
        first_month=labels[0],
        end_month=labels[-1],
        step_site=spec.step_site,
        step_from=labels[max(0, n - STEP_MONTHS)],
        otd_supplier_id=sup_ids[OTD_SUPPLIER_INDEX],
        otd_supplier_name=_supplier_def(OTD_SUPPLIER_INDEX).name,
        otd_decline_from=labels[max(0, n - OTD_DECLINE_MONTHS)],
        backlog_from=labels[max(0, n - BACKLOG_MONTHS)],
        conditional_supplier_ids=tuple(
            sup_ids[i]
            for i in (CONDITIONAL_SUPPLIER_INDEX, NEW_SUPPLIER_INDEX)
            if i < spec.suppliers
        ),
        disapproved_supplier_id=sup_ids[DISAPPROVED_SUPPLIER_INDEX] if disapproved else None,
        disapproved_from=labels[max(0, n - DISAPPROVED_MONTHS)] if disapproved else None,
        evaluation_overdue_supplier_ids=tuple(
            sup_ids[i] for i in OVERDUE_EVALUATION_INDEXES if i < spec.suppliers
        ),
        kpi_objectives=tuple(o.objective_id for o in OBJECTIVES if o.kpi is not None),
        manual_objectives=tuple(o.objective_id for o in OBJECTIVES if o.kpi is None),
    )
