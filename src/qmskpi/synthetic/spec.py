"""What to generate: :class:`SyntheticSpec` (checked), the story's constants and the catalogues.

Sites, products, customers and suppliers with their names; which site steps up, which
supplier deteriorates, how many months each part of the story lasts; the calendar season."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from qmskpi.errors import QmsKpiError
from qmskpi.periods import parse_period

OutputFormat = Literal["csv", "parquet"]

DEFAULT_ORGANISATION = "Acme Components Ltd"
DATE_FORMAT = "%Y-%m-%d"

STEP_MONTHS = 6
"""The defect step-up covers the last this-many months."""
OTD_DECLINE_MONTHS = 8
"""The deteriorating supplier's on-time delivery slides over the last this-many months."""
BACKLOG_MONTHS = 12
"""Complaint closure slows over the last this-many months."""
DISAPPROVED_MONTHS = 10
"""The disapproved supplier stopped delivering this-many months before the end."""

SITE_CATALOGUE: tuple[tuple[str, str], ...] = (
    ("North", "N"),
    ("South", "S"),
    ("East", "E"),
    ("West", "W"),
    ("Central", "C"),
    ("Harbour", "H"),
    ("Valley", "V"),
    ("Lakeside", "L"),
    ("Ridge", "R"),
    ("Forest", "F"),
    ("Meadow", "M"),
    ("Bridge", "B"),
)
STEP_SITE_INDEX = 1
"""Index of the site whose defect rate steps up (``South``); 0 when there is one site."""

PRODUCT_CATALOGUE: tuple[tuple[str, str], ...] = (
    ("PH-200", "pump housing"),
    ("VB-110", "valve body"),
    ("GS-310", "gear shaft"),
    ("MB-420", "manifold block"),
    ("SC-150", "sensor cover"),
    ("FL-080", "flange"),
    ("BR-230", "mounting bracket"),
    ("HF-060", "hose fitting"),
    ("IM-500", "impeller"),
    ("EC-270", "end cap"),
    ("BS-340", "bearing sleeve"),
    ("CP-190", "coupling"),
)
PRODUCT_OFFSET_PER_SITE = 3

CUSTOMER_CATALOGUE: tuple[str, ...] = (
    "Harland Automotive plc",
    "Brightwater Medical Devices",
    "Müller & Söhne AG",
    "O'Neill Engineering Ltd",
    "Dupont-Lefèvre SA",
    "Kestrel Hydraulics",
    "Greaves, Hart & Co.",
    "Fjordline Pumps AS",
    "Tamsin Rail Systems",
    "Coastal Marine Drives",
    "Ridgeway Tractors Ltd",
    "Arcturus Aerospace",
    "Pinewood HVAC",
    "Vallée Robotique SARL",
    "Stratos Compressors",
    "Ironbridge Mining Equipment",
    "Oakham Fluid Power",
    "Sakura Motion K.K.",
    "Łódź Maszyny S.A.",
    "Halvorsen Offshore",
    "Baltic Wind Services",
    "Peninsula Packaging Machines",
    "Quinta Irrigação Lda.",
    "Redwood Lifts Inc.",
    "Summit Forklifts Ltd",
    "Torres Agrícola S.A.",
    "Kingfisher Water Treatment",
    "Marlow Brewing Systems",
    "Aurora Cryogenics AB",
    "Caldera Geothermal Ltd",
    "Nakamura Hydraulik GmbH",
    "Westmoor Agricultural Machinery",
    "Beacon Fire Protection",
    "Orchard Food Processing",
    "Selkirk Ventilation",
    "Ashdown Dairy Equipment",
)
CUSTOMER_OFFSET_PER_SITE = 5


@dataclass(frozen=True)
class _SupplierDef:
    name: str
    category: str
    critical: bool
    otd: float
    """Base probability of an on-time delivery."""
    ppm: float
    """Base reject rate, parts per million."""
    lot: int
    """Typical lot size."""
    weight: float
    """Relative share of receipts."""


SUPPLIER_CATALOGUE: tuple[_SupplierDef, ...] = (
    _SupplierDef("Müller Präzisionsteile GmbH", "machined parts", True, 0.96, 600, 400, 1.6),
    _SupplierDef("Baxter & Sons Fasteners Ltd", "fasteners", False, 0.95, 300, 5000, 1.4),
    _SupplierDef("Kowalski Castings Sp. z o.o.", "castings", True, 0.96, 900, 300, 1.5),
    _SupplierDef("Brightline Packaging Ltd", "packaging", False, 0.93, 200, 2000, 1.0),
    _SupplierDef("Daikō Seal Technologies K.K.", "seals", True, 0.97, 400, 3000, 1.0),
    _SupplierDef("Harrow Steel Stockholders", "bar stock", True, 0.94, 250, 800, 1.2),
    _SupplierDef("Lumen Electronics B.V.", "electronics", False, 0.92, 700, 1000, 0.7),
    _SupplierDef("O'Rourke Coatings", "coatings", True, 0.90, 6000, 500, 0.9),
    _SupplierDef("Sørensen Plast A/S", "plastic mouldings", False, 0.95, 1100, 1500, 0.8),
    _SupplierDef("Alvarez Forjados S.L.", "forgings", True, 0.93, 800, 300, 0.9),
    _SupplierDef("Keystone Springs Inc.", "springs", False, 0.96, 350, 4000, 0.6),
    _SupplierDef("Tanaka Bearings Europe GmbH", "bearings", True, 0.98, 150, 1200, 0.8),
    _SupplierDef("Greenfield Chemicals Ltd", "chemicals", False, 0.94, 100, 200, 0.5),
    _SupplierDef("Rhein-Ruhr Schrauben AG", "fasteners", False, 0.95, 450, 6000, 0.7),
    _SupplierDef("Atlas Logistics & Crating", "packaging", False, 0.85, 2500, 600, 0.6),
    _SupplierDef("Nordic Rubber Oy", "seals", False, 0.95, 500, 2500, 0.5),
    _SupplierDef("Meridian Wire & Cable", "electrical", False, 0.94, 300, 1000, 0.4),
    _SupplierDef("Zhang Precision Moulds Co., Ltd.", "tooling", True, 0.91, 700, 50, 0.3),
    _SupplierDef("Ferreira Metais Lda.", "bar stock", False, 0.93, 400, 700, 0.5),
    _SupplierDef("Blue Ridge Abrasives", "consumables", False, 0.95, 200, 300, 0.3),
)
OTD_SUPPLIER_INDEX = 2
"""``SUP-003``: critical castings supplier whose on-time delivery deteriorates."""
CONDITIONAL_SUPPLIER_INDEX = 7
"""``SUP-008``: conditional approval because of a high reject rate."""
DISAPPROVED_SUPPLIER_INDEX = 14
"""``SUP-015``: disapproved ``DISAPPROVED_MONTHS`` before the end; no receipts since."""
NEW_SUPPLIER_INDEX = 19
"""``SUP-020``: new conditional supplier, first evaluation scheduled."""
OVERDUE_EVALUATION_INDEXES = (5, 10, 13)
"""``SUP-006``, ``SUP-011``, ``SUP-014``: approved, evaluation overdue at the end month."""

SEASON = (0.92, 0.97, 1.08, 1.10, 1.06, 1.00, 0.93, 0.78, 1.05, 1.12, 1.08, 0.85)
"""Volume factor by calendar month, January first."""


class SpecError(QmsKpiError, ValueError):
    """A :class:`SyntheticSpec` value is out of range."""


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate. ``scale`` multiplies the rows per month of every event dataset.

    Shipments (site x product x month), suppliers, objectives and objective
    results are master data and do not grow in rows with ``scale``; units
    shipped do, so complaint rates stay comparable across scales.
    """

    seed: int = 9001
    sites: int = 3
    months: int = 36
    end_month: str = "2026-10"
    scale: float = 1.0
    products_per_site: int = 4
    customers_per_site: int = 12
    suppliers: int = 20
    organisation: str = DEFAULT_ORGANISATION
    inspections_per_site_month: float = 200.0
    receipts_per_site_month: float = 55.0
    complaint_ppm: float = 220.0
    surveys_per_site_month: float = 12.0
    capa_per_site_month: float = 1.5
    findings_per_audit: float = 4.0
    actions_per_review: float = 5.0

    def __post_init__(self) -> None:
        if self.sites < 1:
            raise SpecError(f"sites must be at least 1, got {self.sites}")
        if self.months < 1:
            raise SpecError(f"months must be at least 1, got {self.months}")
        if not (self.scale > 0 and math.isfinite(self.scale)):
            raise SpecError(f"scale must be a positive number, got {self.scale}")
        if self.products_per_site < 1:
            raise SpecError(f"products_per_site must be at least 1, got {self.products_per_site}")
        if self.customers_per_site < 1:
            raise SpecError(f"customers_per_site must be at least 1, got {self.customers_per_site}")
        if self.suppliers < OTD_SUPPLIER_INDEX + 1:
            raise SpecError(
                f"suppliers must be at least {OTD_SUPPLIER_INDEX + 1}, got {self.suppliers}"
            )
        if not self.organisation.strip():
            raise SpecError("organisation must not be empty")
        if parse_period(self.end_month).granularity != "month":
            raise SpecError(f"end_month must be a month such as 2026-10, got {self.end_month!r}")

    @property
    def site_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in _sites(self.sites))

    @property
    def step_site(self) -> str:
        """The site whose defect rate steps up."""
        return self.site_names[_step_site_index(self.sites)]


def _sites(n: int) -> list[tuple[str, str]]:
    out = list(SITE_CATALOGUE[:n])
    for i in range(len(out), n):
        out.append((f"Site {i + 1:02d}", f"S{i + 1:02d}"))
    return out


def _step_site_index(n_sites: int) -> int:
    return STEP_SITE_INDEX if n_sites > STEP_SITE_INDEX else 0


def _supplier_ids(n: int) -> list[str]:
    width = max(3, len(str(n)))
    return [f"SUP-{i + 1:0{width}d}" for i in range(n)]


def _supplier_def(i: int) -> _SupplierDef:
    if i < len(SUPPLIER_CATALOGUE):
        return SUPPLIER_CATALOGUE[i]
    base = SUPPLIER_CATALOGUE[i % len(SUPPLIER_CATALOGUE)]
    return _SupplierDef(
        f"Supplier {i + 1:03d} Ltd", base.category, False, 0.94, base.ppm, base.lot, 0.5
    )


def _customers(n: int) -> list[str]:
    out = list(CUSTOMER_CATALOGUE[:n])
    for i in range(len(out), n):
        out.append(f"Customer {i + 1:03d}")
    return out
