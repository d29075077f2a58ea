"""The canonical datasets (DESIGN §2): names, keys, fields and types.

Every source is mapped onto these names by :mod:`qmskpi.sources`; contracts,
KPIs and the synthetic generator all speak this vocabulary. Types are the
polars dtypes a loaded frame carries. Each loaded frame also carries
``source_row``: the 1-based row of the source file (as a spreadsheet numbers
it, header included) or of the query result, so every message and quarantine
entry can point back at the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import polars as pl

FieldType = Literal["str", "date", "int", "float", "bool"]

SOURCE_ROW = "source_row"
"""Column added by :mod:`qmskpi.sources`: the row number in the source, 1-based, header included."""

_DTYPES: dict[FieldType, pl.DataType] = {
    "str": pl.String(),
    "date": pl.Date(),
    "int": pl.Int64(),
    "float": pl.Float64(),
    "bool": pl.Boolean(),
}


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    required: bool = True
    allowed: tuple[str, ...] | None = None
    description: str = ""

    @property
    def dtype(self) -> pl.DataType:
        return _DTYPES[self.type]


@dataclass(frozen=True)
class Dataset:
    name: str
    key: tuple[str, ...]
    fields: tuple[Field, ...]
    period_field: str | None
    """The date (or ``month``) column that places a row in a period."""
    title: str
    iso_clause: str
    forward_dated: bool = False
    """The period field is a due date that can lie after the export (open order lines):
    it places a row in a period but does not tell how new the data is."""

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def required_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def schema(self) -> dict[str, pl.DataType]:
        """Polars schema of the canonical frame (without ``source_row``)."""
        return {f.name: f.dtype for f in self.fields}

    @property
    def site_level(self) -> bool:
        return "site" in self.field_names


SEVERITIES = ("minor", "major", "critical")
OPEN_CLOSED = ("open", "closed")
STAGES = ("incoming", "in_process", "final")
APPROVAL = ("approved", "conditional", "disapproved")
DIRECTIONS = ("higher_is_better", "lower_is_better")
CAPA_SOURCES = ("complaint", "audit", "inspection", "supplier", "internal")
FINDING_TYPES = ("major_nc", "minor_nc", "observation", "ofi")

F = Field

DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "complaints",
            ("complaint_id",),
            (
                F("complaint_id", "str"),
                F("received_date", "date"),
                F("closed_date", "date", required=False),
                F("site", "str"),
                F("customer", "str"),
                F("product", "str"),
                F("category", "str"),
                F("severity", "str", allowed=SEVERITIES),
                F("status", "str", allowed=OPEN_CLOSED),
                F("description", "str", required=False, description="untrusted free text"),
                F("root_cause", "str", required=False),
                F("capa_id", "str", required=False),
                F("units_affected", "int", required=False),
                F(
                    "cost",
                    "float",
                    required=False,
                    description="cost of the complaint (credits, returns, replacement)",
                ),
            ),
            "received_date",
            "Customer complaints",
            "9.1.2",
        ),
        Dataset(
            "shipments",
            ("site", "product", "month"),
            (
                F("site", "str"),
                F("product", "str"),
                F("month", "str", description="calendar month, YYYY-MM"),
                F("units_shipped", "int"),
                F(
                    "deliveries",
                    "int",
                    required=False,
                    description="customer deliveries (order lines) due in the month",
                ),
                F(
                    "deliveries_on_time",
                    "int",
                    required=False,
                    description="of those, delivered by the date promised to the customer",
                ),
            ),
            "month",
            "Units shipped",
            "9.1.2",
        ),
        Dataset(
            "suppliers",
            ("supplier_id",),
            (
                F("supplier_id", "str"),
                F("name", "str"),
                F("category", "str"),
                F("critical", "bool"),
                F("approval_status", "str", allowed=APPROVAL),
                F("last_evaluation_date", "date", required=False),
                F("next_evaluation_due", "date", required=False),
            ),
            None,
            "Approved supplier list",
            "8.4",
        ),
        Dataset(
            "supplier_approvals",
            ("supplier_id", "decision_date"),
            (
                F("supplier_id", "str"),
                F("decision_date", "date", description="day the status took effect"),
                F("approval_status", "str", allowed=APPROVAL),
                F("next_evaluation_due", "date", required=False),
            ),
            "decision_date",
            "Supplier approval history",
            "8.4",
        ),
        Dataset(
            "receipts",
            ("receipt_id",),
            (
                F("receipt_id", "str"),
                F("supplier_id", "str"),
                F("site", "str"),
                F("promised_date", "date"),
                F("received_date", "date"),
                F("qty_received", "int"),
                F("qty_rejected", "int"),
            ),
            "received_date",
            "Goods receipts",
            "8.4",
        ),
        Dataset(
            "open_orders",
            ("order_line_id",),
            (
                F("order_line_id", "str", description="purchase-order line (e.g. PO-1234/10)"),
                F("supplier_id", "str"),
                F("site", "str", description="site the goods are to be delivered to"),
                F(
                    "promised_date",
                    "date",
                    description="day the supplier promised the line; may lie after the export",
                ),
                F(
                    "qty_open",
                    "int",
                    required=False,
                    description="units ordered and not yet received",
                ),
                F("part", "str", required=False, description="part or material number"),
            ),
            "promised_date",
            "Open purchase-order lines (nothing received yet)",
            "8.4",
            forward_dated=True,
        ),
        Dataset(
            "inspections",
            ("inspection_id",),
            (
                F("inspection_id", "str"),
                F("inspection_date", "date"),
                F("site", "str"),
                F("product", "str"),
                F("stage", "str", allowed=STAGES),
                F("lot_id", "str", required=False),
                F("qty_inspected", "int"),
                F("qty_defective", "int"),
                F("defect_code", "str", required=False),
                F("result", "str", allowed=("pass", "fail")),
                F(
                    "cost",
                    "float",
                    required=False,
                    description="scrap, rework and sorting cost of what this inspection found",
                ),
            ),
            "inspection_date",
            "Inspections",
            "8.6",
        ),
        Dataset(
            "objectives",
            ("objective_id",),
            (
                F("objective_id", "str"),
                F("name", "str"),
                F("clause", "str"),
                F("owner", "str"),
                F("unit", "str"),
                F("direction", "str", allowed=DIRECTIONS),
                F("target", "float"),
                F("kpi", "str", required=False),
            ),
            None,
            "Quality objectives",
            "6.2",
        ),
        Dataset(
            "objective_results",
            ("objective_id", "month"),
            (
                F("objective_id", "str"),
                F("month", "str", description="calendar month, YYYY-MM"),
                F("actual", "float"),
            ),
            "month",
            "Objective results",
            "6.2",
        ),
        Dataset(
            "capa",
            ("capa_id",),
            (
                F("capa_id", "str"),
                F("source", "str", allowed=CAPA_SOURCES),
                F("site", "str"),
                F("opened_date", "date"),
                F("due_date", "date"),
                F("closed_date", "date", required=False),
                F("status", "str", allowed=OPEN_CLOSED),
                F("effectiveness_verified", "bool", required=False),
            ),
            "opened_date",
            "Corrective and preventive actions",
            "10.2",
        ),
        Dataset(
            "audit_findings",
            ("finding_id",),
            (
                F("finding_id", "str"),
                F("audit_id", "str"),
                F("audit_date", "date"),
                F("site", "str"),
                F("clause", "str"),
                F("type", "str", allowed=FINDING_TYPES),
                F("status", "str", allowed=OPEN_CLOSED),
                F("due_date", "date", required=False),
                F("closed_date", "date", required=False),
            ),
            "audit_date",
            "Audit findings",
            "9.2",
        ),
        Dataset(
            "audit_programme",
            ("audit_id",),
            (
                F("audit_id", "str"),
                F("site", "str"),
                F("planned_date", "date"),
                F("performed_date", "date", required=False),
                F("area", "str", required=False, description="process or clauses audited"),
            ),
            "planned_date",
            "Internal audit programme",
            "9.2",
        ),
        Dataset(
            "review_actions",
            ("action_id",),
            (
                F("action_id", "str"),
                F("review_date", "date"),
                F("description", "str", description="untrusted free text"),
                F("owner", "str"),
                F("due_date", "date"),
                F("status", "str", allowed=OPEN_CLOSED),
                F("closed_date", "date", required=False),
            ),
            "review_date",
            "Actions from earlier management reviews",
            "9.3.2 a",
        ),
        Dataset(
            "surveys",
            ("response_id",),
            (
                F("response_id", "str"),
                F("response_date", "date"),
                F("site", "str"),
                F("customer", "str"),
                F("score", "float"),
                F("scale_max", "int"),
                F(
                    "scale_min",
                    "int",
                    required=False,
                    description="lowest answer of the survey's scale (e.g. 0 or 1)",
                ),
            ),
            "response_date",
            "Customer satisfaction survey responses",
            "9.1.2",
        ),
    )
}

DATASET_NAMES: tuple[str, ...] = tuple(DATASETS)


def dataset(name: str) -> Dataset:
    """Look a dataset up by name, with a did-you-mean hint when it is unknown."""
    from qmskpi.errors import QmsKpiError, did_you_mean

    try:
        return DATASETS[name]
    except KeyError:
        raise QmsKpiError(
            f"unknown dataset {name!r}{did_you_mean(name, DATASETS)}; known: {', '.join(DATASETS)}"
        ) from None


def empty_frame(name: str) -> pl.DataFrame:
    """An empty canonical frame of dataset ``name`` (with ``source_row``)."""
    schema = dict(dataset(name).schema)
    schema[SOURCE_ROW] = pl.Int64()
    return pl.DataFrame(schema=schema)
