"""Seeded synthetic quality records: every dataset of DESIGN §2 (and the optional ones), with a story.

:func:`generate` builds canonical frames (the columns and dtypes of
:mod:`qmskpi.datasets`, no ``source_row``); :func:`write` puts them on disk as
CSV or Parquet with a ``qmskpi.toml`` that loads as-is and three short analyst
inputs (``inputs/changes.md``, ``inputs/resources.md``, ``inputs/risks.md``);
:func:`sample` does both. The committed ``sample_data/`` folder is
``sample(Path("sample_data"))`` with the default :class:`SyntheticSpec`
(3 sites x 36 months ending 2026-10, CSV), and a test keeps it that way.

Everything is drawn from ``numpy.random.default_rng`` streams spawned from
``spec.seed`` (one stream per dataset, so a change to one dataset leaves the
others alone) and built column-wise (no per-row Python loops), so ``scale``
can produce benchmark sets of tens of millions of rows. The same spec gives
byte-identical files.

Planted structure (what a quality manager should find in the pack; month
positions count back from ``spec.end_month``, default 2026-10; see
:func:`planted_structure` for the exact labels of a spec):

* **Sites** ``North``, ``South``, ``East`` (then ``West``, ``Central``, ...).
  Each makes ``products_per_site`` products from one catalogue, offset by three
  per site, so neighbouring sites share a product.
* **Seasonality**: units shipped (and with them complaints, inspections,
  receipts, survey responses) follow a calendar pattern: a spring and autumn
  peak, an August holiday dip and a December slow-down, plus ~3 % growth a
  year.
* **Defect step-up**: the second site (``South``; the only site when there is
  one) has in-process and final defect rates about 3x higher over the last
  6 months (from 2026-05), mostly code ``DIM-OOT``; its complaint rate rises
  about 1.6x and its survey scores drop in the same months.
* **Deteriorating supplier**: ``SUP-003`` Kowalski Castings (critical) delivers
  ~95 % on time until 8 months before the end (2026-03), then slides linearly
  to ~50 % in the end month.
* **Open order lines**: at the export (the end month's last day) most open
  purchase-order lines are promised after it; some promised in the last 10 days
  are late, most of them ``SUP-003``'s, two of which were promised 24 and 33
  days before the export.
* **Other suppliers**: ``SUP-008`` O'Rourke Coatings is *conditional* with a
  high reject rate; ``SUP-015`` Atlas Logistics & Crating was *disapproved*
  10 months before the end (2026-01) and delivers nothing afterwards;
  ``SUP-020`` is a new *conditional* supplier not yet evaluated; ``SUP-006``,
  ``SUP-011`` and ``SUP-014`` are approved with their evaluation overdue at
  the end month.
* **Complaint backlog**: over the last 12 months (from 2025-11) the median
  days to close rises from ~16 to ~48, so the open backlog at the end is
  several times that of a year earlier and on-time closure falls.
* **Repeat complaints**: ~6 % of complaints are followed 7-80 days later by one
  from the same customer about the same product and category; with each site's
  few large customers, chance adds more, so 20-40 % of a month's complaints are
  repeats (more at the step-up site, where dimensional complaints cluster).
* **Objectives**: five are linked to computed KPIs (``complaint_rate_ppm``,
  ``supplier_otd_share``, ``fpy_share``, ``supplier_ppm``,
  ``capa_effective_share``); three have manual monthly results in
  ``objective_results`` (training, calibration, scrap cost).
* **Open past due**: some CAPAs, audit findings and management-review actions
  are open past their due date at the end month (a few are planted so there
  always are some).
* **Free text**: complaint descriptions are built from templates (opening,
  product, defect, context) and carry quotes, commas, ampersands, ``<5 mm``,
  ``µm``, ``±``, ``≤``, ``°C`` and names such as ``Müller``, so CSV quoting and
  HTML escaping get exercised. Nothing in them is a script payload.

Rules the data keep (the sample set is clean): ``status`` is ``closed``
exactly when ``closed_date`` is set; closed >= received/opened; every event
date (received, closed, opened, inspection, audit, review, response, last
evaluation, promised) is on or before the last day of the end month; only
*due* dates (``capa.due_date``, ``audit_findings.due_date``,
``review_actions.due_date``, ``suppliers.next_evaluation_due``,
``open_orders.promised_date``) may lie
after it, as plans do; ``due_date >= opened_date``/``audit_date``/
``review_date``; ``0 <= qty_rejected <= qty_received``, ``qty_received > 0``;
``0 <= qty_defective <= qty_inspected``, ``qty_inspected > 0``; an inspection's
``result`` is ``fail`` exactly when ``qty_defective > 0`` at every stage (a
c = 0 sampling plan), and ``defect_code`` is set exactly then; in-process
(patrol) inspections carry no ``lot_id``; every receipt's supplier exists;
``complaints.capa_id`` names an existing CAPA whose source is ``complaint``;
``effectiveness_verified`` is set only on closed CAPAs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from qmskpi.datasets import DATASETS
from qmskpi.errors import QmsKpiError
from qmskpi.periods import parse_period, trailing_months

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
OutputFormat = Literal["csv", "parquet"]

DEFAULT_ORGANISATION = "Acme Components Ltd"
DATE_FORMAT = "%Y-%m-%d"
EPOCH = date(1970, 1, 1)

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

COMPLAINT_CATEGORIES = (
    "dimensional",
    "cosmetic",
    "functional",
    "packaging",
    "labelling",
    "delivery",
    "documentation",
    "contamination",
)
_CATEGORY_P = (0.24, 0.16, 0.18, 0.10, 0.08, 0.10, 0.06, 0.08)
_SEVERITIES = ("minor", "major", "critical")
_SEVERITY_P = (0.60, 0.32, 0.08)
ROOT_CAUSES = (
    "machine wear",
    "operator error",
    "supplier material",
    "measurement system",
    "handling and transport",
    "design",
    "work instruction unclear",
    "not confirmed",
)
_ROOT_CAUSE_P = (0.20, 0.18, 0.16, 0.10, 0.12, 0.06, 0.10, 0.08)

_OPENERS = (
    "Customer reports",
    "Incoming inspection at the customer rejected",
    "Field return:",
    "Line stop at the customer's plant caused by",
    "Warranty claim for",
    "Complaint received by e-mail about",
    "Customer's quality engineer flagged",
    "Return of goods:",
)
_DEFECTS: dict[str, tuple[str, ...]] = {
    "dimensional": (
        "bore diameter out of tolerance, measured 12.08 mm vs 12.00 ± 0.05 mm",
        "flatness of the sealing face 40 µm, drawing allows 25 µm",
        "thread M8x1.25 fails the go/no-go gauge",
        "hole position offset by 0.3 mm, parts do not fit the mating flange",
    ),
    "cosmetic": (
        "scratches on the visible face, several deeper than 0.1 mm",
        'paint colour does not match RAL 7035, described as "too dark"',
        "burrs <5 mm left on the outer edge, sharp to the touch",
        '"orange peel" finish on the coated surface',
    ),
    "functional": (
        "leaks at 6 bar test pressure",
        "seal fails after < 200 cycles on the customer's test rig",
        "assembly torque 14 Nm, specification ≤ 10 Nm",
        "sticks at low temperature (-20 °C)",
    ),
    "packaging": (
        "parts loose in the box, foam insert & dividers missing",
        "carton crushed in transit, 12 parts bent",
        "pallet height 1,450 mm instead of 1,200 mm",
    ),
    "labelling": (
        "label shows the part number of the previous revision",
        "barcode unreadable by the customer's scanner",
        'label says "Rev B" but the parts are Rev C',
    ),
    "delivery": (
        "short shipment, 480 pcs received vs 500 ordered",
        "delivered to the wrong plant (Müller & Co. warehouse)",
        "arrived 4 days late, customer line at risk",
    ),
    "documentation": (
        "certificate of conformity missing from the shipment",
        "material certificate shows the wrong heat number",
        "PPAP documents incomplete: PSW & control plan not signed",
    ),
    "contamination": (
        "oil residue & swarf inside the ports",
        "metal chips found in the cavity",
        "particles > 200 µm found in the cleanliness test (VDA 19)",
    ),
}
_CONTEXTS = (
    "",
    "",
    " Lot quarantined at the customer's site.",
    " Customer requests an 8D report within 10 days.",
    " Found during assembly on line 3.",
    " Contact: Jürgen Müller, Qualitätssicherung.",
    " Customer asks for containment & sorting at their site.",
    " Photos attached to the CRM ticket.",
    ' Second occurrence this quarter; the customer is "not amused".',
)

STAGES = ("incoming", "in_process", "final")
_STAGE_SHARE = (0.25, 0.40, 0.35)
_STAGE_SAMPLE_SIZES: tuple[tuple[int, ...], ...] = (
    (32, 50, 80, 125),
    (5, 10, 20),
    (50, 80, 125, 200),
)
_STAGE_DEFECT_P = (0.0015, 0.004, 0.0008)
"""Defect probability per unit inspected, by stage, before site factors."""
DEFECT_CODES = (
    "DIM-OOT", "BURR", "POROSITY", "SCRATCH", "TOOL-MARK", "THREAD",
    "LEAK", "LABEL", "MAT-CERT", "CORROSION", "MISSING-PART",
)  # fmt: skip
_DEFECT_CODE_P = (
    # DIM  BURR  POR   SCR   TOOL  THR   LEAK  LAB   CERT  CORR  MISS
    (0.30, 0.05, 0.10, 0.12, 0.00, 0.05, 0.00, 0.03, 0.20, 0.15, 0.00),  # incoming
    (0.28, 0.24, 0.14, 0.06, 0.14, 0.10, 0.02, 0.00, 0.00, 0.02, 0.00),  # in_process
    (0.16, 0.04, 0.04, 0.30, 0.02, 0.04, 0.18, 0.12, 0.00, 0.02, 0.08),  # final
)
STEP_DEFECT_FACTOR = 3.0
_STAGE_UNIT_COST = (4.0, 22.0, 35.0)
"""Cost of one defective unit found at each stage (sorting; rework; scrap), currency units."""
COMPLAINT_BASE_COST = 250.0
COMPLAINT_UNIT_COST = 18.0
"""A complaint's cost: handling plus the value of each affected unit (when known)."""
CUSTOMER_OTD_P = (0.95, 0.88)
"""Chance a customer delivery is on time: normally, and at the step-up site after the step."""
UNITS_PER_DELIVERY = 500
REPEAT_SHARE = 0.06
"""Share of complaints followed by a planted repeat (on top of chance repeats)."""
STEP_COMPLAINT_FACTOR = 1.6

CAPA_SOURCES = ("complaint", "audit", "inspection", "supplier", "internal")
_OTHER_CAPA_P = (0.0, 0.30, 0.30, 0.20, 0.20)

FINDING_TYPES = ("major_nc", "minor_nc", "observation", "ofi")
_FINDING_TYPE_P = (0.08, 0.32, 0.35, 0.25)
_FINDING_DUE_DAYS = (30, 60, 90, -1)
"""Days from audit to due date by type; -1: no due date (an OFI)."""
_FINDING_CLOSE_MEDIAN = (25.0, 45.0, 60.0, 75.0)
_AUDIT_CLAUSE_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("4.4", 0.05), ("5.3", 0.04), ("6.1", 0.07), ("7.1.5", 0.12), ("7.2", 0.10),
    ("7.5.3", 0.12), ("8.2.1", 0.05), ("8.4.1", 0.10), ("8.5.1", 0.14), ("8.5.2", 0.04),
    ("8.7", 0.07), ("9.1.1", 0.04), ("9.2.2", 0.03), ("10.2.1", 0.03),
)  # fmt: skip
"""ISO 9001 clauses internal audit findings are raised against, with their frequency."""
AUDIT_CLAUSES = tuple(c for c, _ in _AUDIT_CLAUSE_WEIGHTS)
_AUDIT_CLAUSE_P = tuple(w for _, w in _AUDIT_CLAUSE_WEIGHTS)

OWNERS = (
    "Priya Patel",
    "Jörg Müller",
    "Siobhan O'Brien",
    "Tom Evans",
    "Ana Sousa",
    "Lars Øberg",
    "Mei Chen",
    "Kwame Mensah",
)
_ACTION_TEMPLATES = (
    "Add a second CMM operator at {site} to clear the final-inspection queue",
    "Re-evaluate {supplier} and agree a delivery recovery plan",
    "Recruit a complaint coordinator to restore closure times",
    'Update procedure QP-8.4 "Supplier evaluation" to include on-time delivery triggers',
    "Run a process FMEA review of the machining cell at {site}",
    "Extend the internal audit programme to clause 8.5.1 at {site}",
    "Agree a quality & delivery improvement plan with {supplier}",
    "Introduce SPC charts for bore diameter on line 3 at {site}",
    "Review calibration intervals for torque tools (< 6 months)",
    "Publish customer-satisfaction results to all teams",
    "Train team leaders at {site} in 8D problem solving",
    "Close the gaps in the training matrix for new starters",
)


@dataclass(frozen=True)
class _Objective:
    objective_id: str
    name: str
    clause: str
    owner: str
    unit: str
    direction: str
    target: float
    kpi: str | None
    centre: float = 0.0
    """Manual objectives only: typical monthly result, spread and bounds."""
    spread: float = 0.0
    low: float = 0.0
    high: float = 1.0
    decimals: int = 3


OBJECTIVES: tuple[_Objective, ...] = (
    _Objective(
        "OBJ-01",
        "Reduce the customer complaint rate",
        "9.1.2",
        "Quality Manager",
        "ppm",
        "lower_is_better",
        250.0,
        "complaint_rate_ppm",
    ),
    _Objective(
        "OBJ-02",
        "Supplier on-time delivery",
        "8.4",
        "Purchasing Manager",
        "share",
        "higher_is_better",
        0.95,
        "supplier_otd_due_share",
    ),
    _Objective(
        "OBJ-03",
        "First-pass yield",
        "8.6",
        "Operations Director",
        "share",
        "higher_is_better",
        0.92,
        "fpy_lot_share",
    ),
    _Objective(
        "OBJ-04",
        "Supplier reject rate",
        "8.4",
        "Supplier Quality Engineer",
        "ppm",
        "lower_is_better",
        500.0,
        "supplier_ppm",
    ),
    _Objective(
        "OBJ-05",
        "Effective corrective actions",
        "10.2",
        "Quality Manager",
        "share",
        "higher_is_better",
        0.85,
        "capa_effective_verified_share",
    ),
    _Objective(
        "OBJ-06",
        "Training plan completion",
        "7.2",
        "HR Manager",
        "share",
        "higher_is_better",
        0.95,
        None,
        centre=0.93,
        spread=0.025,
        low=0.80,
        high=1.0,
    ),
    _Objective(
        "OBJ-07",
        "Calibration on schedule",
        "7.1.5",
        "Metrology Lead",
        "share",
        "higher_is_better",
        0.98,
        None,
        centre=0.985,
        spread=0.01,
        low=0.90,
        high=1.0,
    ),
    _Objective(
        "OBJ-08",
        "Scrap cost as a percentage of sales",
        "6.2",
        "Finance Controller",
        "percent",
        "lower_is_better",
        1.5,
        None,
        centre=1.6,
        spread=0.2,
        low=0.5,
        high=4.0,
        decimals=2,
    ),
)

KPI_TARGETS: dict[str, float] = {
    # satisfaction_mean is a 0-1 share of the scale (score / scale_max), as qmskpi.kpis defines it
    "complaints_closed_on_time_share": 0.85,
    "complaints_on_time_incl_backlog_share": 0.85,
    "satisfaction_score_mean": 8.0,
    "complaint_days_to_close_median": 20.0,
    "complaints_repeat_share": 0.25,
    "defect_ppm": 1500.0,
    "satisfaction_mean": 0.8,
    "nps": 30.0,
}
"""``[kpis.targets]`` written to the config: KPIs that no objective targets."""


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


# --------------------------------------------------------------------------- helpers


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


def _day(d: date) -> int:
    return (d - EPOCH).days


@dataclass(frozen=True)
class _Calendar:
    labels: tuple[str, ...]
    start: IntArray
    """First day of each month, days since 1970-01-01."""
    length: IntArray
    season: FloatArray
    end_day: int

    @staticmethod
    def of(spec: SyntheticSpec) -> _Calendar:
        months = trailing_months(spec.end_month, spec.months)
        return _Calendar(
            labels=tuple(m.label for m in months),
            start=np.array([_day(m.start) for m in months], dtype=np.int64),
            length=np.array([m.days for m in months], dtype=np.int64),
            season=np.array([SEASON[m.start.month - 1] for m in months], dtype=np.float64),
            end_day=_day(months[-1].end),
        )

    @property
    def n(self) -> int:
        return len(self.labels)

    def random_day(self, rng: np.random.Generator, month_idx: IntArray) -> IntArray:
        u = rng.random(month_idx.size)
        return self.start[month_idx] + (u * self.length[month_idx]).astype(np.int64)


def _streams(seed: int) -> dict[str, np.random.Generator]:
    names = (
        "master",
        "shipments",
        "complaints",
        "receipts",
        "inspections",
        "capa",
        "audit_findings",
        "review_actions",
        "surveys",
        "objective_results",
        "audit_programme",
        "customer_deliveries",
        "open_orders",  # last: appending a stream leaves the others' draws unchanged
    )
    children = np.random.SeedSequence(seed).spawn(len(names))
    return {n: np.random.default_rng(s) for n, s in zip(names, children, strict=True)}


def _expand(counts: IntArray) -> IntArray:
    """Cell index of every row, for ``counts[i]`` rows in cell ``i``."""
    return np.repeat(np.arange(counts.size, dtype=np.int64), counts)


def _within(counts: IntArray) -> IntArray:
    """0-based position of every row inside its cell (rows laid out by :func:`_expand`)."""
    offsets = np.cumsum(counts) - counts
    return np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(offsets, counts)


def _choice(rng: np.random.Generator, p: Sequence[float] | FloatArray, size: int) -> IntArray:
    probs = np.asarray(p, dtype=np.float64)
    cum = np.cumsum(probs / probs.sum())
    idx = np.searchsorted(cum, rng.random(size), side="right")
    return np.minimum(idx, probs.size - 1).astype(np.int64)


def _lognormal_days(
    rng: np.random.Generator, median: FloatArray, sigma: float, minimum: int = 1
) -> IntArray:
    raw = np.exp(np.log(median) + sigma * rng.standard_normal(median.size))
    return np.maximum(np.rint(raw), minimum).astype(np.int64)


def _lookup(values: Sequence[str], idx: IntArray) -> pl.Series:
    return pl.Series(values=list(values), dtype=pl.String).gather(idx)


def _dates(days: IntArray) -> pl.Series:
    return pl.Series(values=days.astype(np.int32), dtype=pl.Int32).cast(pl.Date)


def _ids(prefix: str, n: int, *, width: int = 6) -> pl.Series:
    w = max(width, len(str(n)))
    seq = pl.Series(values=np.arange(1, n + 1, dtype=np.int64), dtype=pl.Int64)
    return (prefix + seq.cast(pl.String).str.zfill(w)).rename("id")


def _null_unless(series: pl.Series, keep: BoolArray) -> pl.Series:
    """``series`` with nulls where ``keep`` is false."""
    frame = pl.DataFrame({"v": series, "k": keep})
    out = frame.select(pl.when(pl.col("k")).then(pl.col("v")).alias("v")).to_series()
    return out.alias(series.name)


def _order(*keys: IntArray) -> IntArray:
    """Stable row order by ``keys`` (first key most significant)."""
    return np.lexsort(tuple(reversed(keys))).astype(np.int64)


def _canonical(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Columns in canonical order and dtype, sorted by the dataset key."""
    ds = DATASETS[name]
    out = frame.select([pl.col(c).cast(t) for c, t in ds.schema.items()])
    return out.sort(list(ds.key), maintain_order=True)


# --------------------------------------------------------------------------- generation


def generate(spec: SyntheticSpec = SyntheticSpec()) -> dict[str, pl.DataFrame]:
    """Generate every dataset of DESIGN §2 for ``spec``: canonical frames, no ``source_row``.

    The frames come in :data:`qmskpi.datasets.DATASETS` order, each sorted by its key.
    """
    cal = _Calendar.of(spec)
    rng = _streams(spec.seed)
    sites = _sites(spec.sites)

    world = _World.build(spec, rng["master"])
    shipments = _shipments(spec, cal, world, rng["shipments"])
    complaints, (linked, opened) = _complaints(spec, cal, world, shipments, rng["complaints"])
    capa, capa_ids = _capa(spec, cal, complaints.site[linked], opened, rng["capa"])
    frames = {
        "complaints": _complaint_frame(complaints, (linked, capa_ids), world, sites),
        "shipments": _shipment_frame(shipments, world, sites, cal, rng["customer_deliveries"]),
        "suppliers": (suppliers := _supplier_frame(spec, cal, world)),
        "supplier_approvals": _supplier_history(suppliers, cal),
        "receipts": _receipts(spec, cal, world, rng["receipts"], sites),
        "open_orders": _open_orders(spec, cal, world, rng["open_orders"], sites),
        "inspections": _inspections(spec, cal, world, rng["inspections"], sites),
        "objectives": _objectives(),
        "objective_results": _objective_results(cal, rng["objective_results"]),
        "capa": capa,
        "audit_findings": _audit_findings(spec, cal, rng["audit_findings"], sites),
        "audit_programme": _audit_programme(spec, cal, rng["audit_programme"], sites),
        "review_actions": _review_actions(spec, cal, world, rng["review_actions"], sites),
        "surveys": _surveys(spec, cal, world, rng["surveys"], sites),
    }
    return {name: _canonical(name, frames[name]) for name in DATASETS}


@dataclass(frozen=True)
class _World:
    """Master data shared by the datasets: products per site, customers, suppliers."""

    products: tuple[str, ...]
    nouns: tuple[str, ...]
    site_products: IntArray
    """(sites x products_per_site) index into ``products``."""
    base_units: FloatArray
    """(sites x products_per_site) typical monthly units at scale 1."""
    customers: tuple[str, ...]
    site_customers: IntArray
    """(sites x customers_per_site) index into ``customers``."""
    customer_p: FloatArray
    """Zipf-like share of each of a site's customers."""
    site_factor: FloatArray
    """Per-site multiplier of defect and complaint rates."""
    suppliers: tuple[_SupplierDef, ...]
    supplier_ids: tuple[str, ...]

    @staticmethod
    def build(spec: SyntheticSpec, rng: np.random.Generator) -> _World:
        n_cat = len(PRODUCT_CATALOGUE)
        n_products = max(n_cat, (spec.sites - 1) * PRODUCT_OFFSET_PER_SITE + spec.products_per_site)
        products = [p for p, _ in PRODUCT_CATALOGUE]
        nouns = [nn for _, nn in PRODUCT_CATALOGUE]
        for i in range(n_cat, n_products):
            base_code, noun = PRODUCT_CATALOGUE[i % n_cat]
            products.append(f"{base_code[:2]}-{100 + i * 10}")
            nouns.append(noun)
        site_products = (
            np.arange(spec.sites, dtype=np.int64)[:, None] * PRODUCT_OFFSET_PER_SITE
            + np.arange(spec.products_per_site, dtype=np.int64)[None, :]
        ) % n_products
        base_units = rng.uniform(6_000.0, 28_000.0, size=site_products.shape)
        n_cust = max(
            len(CUSTOMER_CATALOGUE),
            (spec.sites - 1) * CUSTOMER_OFFSET_PER_SITE + spec.customers_per_site,
        )
        site_customers = (
            np.arange(spec.sites, dtype=np.int64)[:, None] * CUSTOMER_OFFSET_PER_SITE
            + np.arange(spec.customers_per_site, dtype=np.int64)[None, :]
        ) % n_cust
        ranks = np.arange(1, spec.customers_per_site + 1, dtype=np.float64)
        customer_p = (1.0 / np.sqrt(ranks)) / (1.0 / np.sqrt(ranks)).sum()
        site_factor = np.round(rng.uniform(0.8, 1.2, size=spec.sites), 3)
        site_factor[: min(3, spec.sites)] = (1.0, 1.1, 0.9)[: min(3, spec.sites)]
        return _World(
            products=tuple(products),
            nouns=tuple(nouns),
            site_products=site_products,
            base_units=base_units,
            customers=tuple(_customers(n_cust)),
            site_customers=site_customers,
            customer_p=customer_p,
            site_factor=site_factor,
            suppliers=tuple(_supplier_def(i) for i in range(spec.suppliers)),
            supplier_ids=tuple(_supplier_ids(spec.suppliers)),
        )


@dataclass(frozen=True)
class _Shipments:
    site: IntArray
    slot: IntArray
    """Index into the site's product list."""
    month: IntArray
    units: IntArray


def _volume(cal: _Calendar) -> FloatArray:
    """Seasonality x growth by month (about 3 % a year)."""
    growth = 1.0 + 0.03 * np.arange(cal.n, dtype=np.float64) / 12.0
    out: FloatArray = cal.season * growth
    return out


def _shipments(
    spec: SyntheticSpec, cal: _Calendar, world: _World, rng: np.random.Generator
) -> _Shipments:
    n_slots = spec.products_per_site
    site, slot, month = (
        a.ravel().astype(np.int64)
        for a in np.meshgrid(
            np.arange(spec.sites), np.arange(n_slots), np.arange(cal.n), indexing="ij"
        )
    )
    noise = np.exp(0.06 * rng.standard_normal(site.size))
    units = world.base_units[site, slot] * _volume(cal)[month] * noise * spec.scale
    return _Shipments(site, slot, month, np.maximum(np.rint(units), 1).astype(np.int64))


def _shipment_frame(
    s: _Shipments,
    world: _World,
    sites: list[tuple[str, str]],
    cal: _Calendar,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """Units shipped per site, product and month, with the customer deliveries due and on time.

    Deliveries: one per ``UNITS_PER_DELIVERY`` units (at least one); on time with
    ``CUSTOMER_OTD_P`` (lower at the step-up site in the last ``STEP_MONTHS`` months).
    """
    deliveries = np.maximum(1, np.rint(s.units / UNITS_PER_DELIVERY)).astype(np.int64)
    stepped = (s.site == _step_site_index(len(sites))) & (s.month >= max(0, cal.n - STEP_MONTHS))
    p = np.where(stepped, CUSTOMER_OTD_P[1], CUSTOMER_OTD_P[0])
    return pl.DataFrame(
        {
            "site": _lookup([n for n, _ in sites], s.site),
            "product": _lookup(world.products, world.site_products[s.site, s.slot]),
            "month": _lookup(cal.labels, s.month),
            "units_shipped": s.units,
            "deliveries": deliveries,
            "deliveries_on_time": rng.binomial(deliveries, p).astype(np.int64),
        }
    )


@dataclass(frozen=True)
class _Complaints:
    site: IntArray
    product: IntArray
    customer: IntArray
    category: IntArray
    severity: IntArray
    received: IntArray
    closed: IntArray
    is_closed: BoolArray
    root_cause: IntArray
    has_root_cause: BoolArray
    units_affected: IntArray
    has_units: BoolArray
    opener: IntArray
    defect: IntArray
    context: IntArray
    has_description: BoolArray


# Long by design: the RNG draws must stay in this order (sample_data is committed byte-identical).
def _complaints(
    spec: SyntheticSpec,
    cal: _Calendar,
    world: _World,
    ship: _Shipments,
    rng: np.random.Generator,
) -> tuple[_Complaints, tuple[IntArray, IntArray]]:
    """Complaints (base + repeats), and (complaint row, CAPA opened day) for linked CAPAs."""
    step_site = _step_site_index(spec.sites)
    step_from = max(0, cal.n - STEP_MONTHS)
    stepped = (ship.site == step_site) & (ship.month >= step_from)
    ppm = (
        spec.complaint_ppm
        * world.site_factor[ship.site]
        * np.where(stepped, STEP_COMPLAINT_FACTOR, 1.0)
        * np.exp(0.12 * rng.standard_normal(ship.site.size))
    )
    counts = rng.poisson(ship.units * ppm / 1e6).astype(np.int64)
    cell = _expand(counts)
    n = cell.size
    site = ship.site[cell]
    month = ship.month[cell]
    product = world.site_products[site, ship.slot[cell]]
    customer = world.site_customers[site, _choice(rng, world.customer_p, n)]
    category = _choice(rng, _CATEGORY_P, n)
    dimensional_burst = stepped[cell] & (rng.random(n) < 0.45)
    category = np.where(dimensional_burst, 0, category)
    received = cal.random_day(rng, month)

    # Repeats: the same customer, product and category 7-80 days later.
    base = np.flatnonzero(rng.random(n) < REPEAT_SHARE)
    rep_received = received[base] + rng.integers(7, 81, size=base.size)
    keep = rep_received <= cal.end_day
    base, rep_received = base[keep], rep_received[keep]
    site = np.concatenate([site, site[base]])
    product = np.concatenate([product, product[base]])
    customer = np.concatenate([customer, customer[base]])
    category = np.concatenate([category, category[base]])
    received = np.concatenate([received, rep_received])
    n = site.size

    severity = _choice(rng, _SEVERITY_P, n)
    # Closure slows over the last BACKLOG_MONTHS: median days 16 -> 48.
    backlog_start = cal.start[max(0, cal.n - BACKLOG_MONTHS)]
    ramp = np.clip((received - backlog_start) / max(1, cal.end_day - backlog_start), 0.0, 1.0)
    median = (16.0 + 32.0 * ramp) * np.where(severity == 2, 0.7, 1.0)
    closed = received + _lognormal_days(rng, median, 0.55)
    is_closed = closed <= cal.end_day
    root_cause = _choice(rng, _ROOT_CAUSE_P, n)
    has_root_cause = np.where(is_closed, rng.random(n) < 0.95, rng.random(n) < 0.2)
    units_affected = np.maximum(
        np.rint(np.exp(np.log(20.0) + 1.1 * rng.standard_normal(n))), 1
    ).astype(np.int64)
    has_units = rng.random(n) < 0.85
    opener = rng.integers(0, len(_OPENERS), size=n)
    n_defects = np.array([len(_DEFECTS[c]) for c in COMPLAINT_CATEGORIES], dtype=np.int64)
    defect_offset = np.cumsum(n_defects) - n_defects
    defect = defect_offset[category] + (rng.random(n) * n_defects[category]).astype(np.int64)
    context = rng.integers(0, len(_CONTEXTS), size=n)
    has_description = rng.random(n) < 0.97

    # Order by date (ids follow), then link ~35 % of major/critical complaints to a CAPA.
    order = _order(received, site, product, customer)
    c = _Complaints(
        site=site[order],
        product=product[order],
        customer=customer[order],
        category=category[order],
        severity=severity[order],
        received=received[order],
        closed=closed[order],
        is_closed=is_closed[order],
        root_cause=root_cause[order],
        has_root_cause=has_root_cause[order],
        units_affected=units_affected[order],
        has_units=has_units[order],
        opener=opener[order],
        defect=defect[order],
        context=context[order],
        has_description=has_description[order],
    )
    capa_opened = c.received + rng.integers(1, 8, size=n)
    linked = np.flatnonzero(
        (c.severity >= 1) & (rng.random(n) < 0.35) & (capa_opened <= cal.end_day)
    )
    return c, (linked.astype(np.int64), capa_opened[linked])


def _complaint_frame(
    c: _Complaints,
    capa_for: tuple[IntArray, pl.Series],
    world: _World,
    sites: list[tuple[str, str]],
) -> pl.DataFrame:
    n = c.site.size
    defects = [d for cat in COMPLAINT_CATEGORIES for d in _DEFECTS[cat]]
    product = _lookup(world.products, c.product)
    description = pl.DataFrame(
        {
            "opener": _lookup(_OPENERS, c.opener),
            "noun": _lookup(world.nouns, c.product),
            "product": product,
            "defect": _lookup(defects, c.defect),
            "context": _lookup(_CONTEXTS, c.context),
        }
    ).select(
        pl.concat_str(
            [
                pl.col("opener"),
                pl.lit(" "),
                pl.col("noun"),
                pl.lit(" ("),
                pl.col("product"),
                pl.lit("): "),
                pl.col("defect"),
                pl.lit("."),
                pl.col("context"),
            ]
        ).alias("description")
    )["description"]
    rows, capa_ids = capa_for
    capa_id = pl.Series("capa_id", [None] * n, dtype=pl.String).scatter(rows, capa_ids)
    return pl.DataFrame(
        {
            "complaint_id": _ids("CMP-", n),
            "received_date": _dates(c.received),
            "closed_date": _null_unless(_dates(c.closed), c.is_closed),
            "site": _lookup([s for s, _ in sites], c.site),
            "customer": _lookup(world.customers, c.customer),
            "product": product,
            "category": _lookup(COMPLAINT_CATEGORIES, c.category),
            "severity": _lookup(_SEVERITIES, c.severity),
            "status": _lookup(("open", "closed"), c.is_closed.astype(np.int64)),
            "description": _null_unless(description, c.has_description),
            "root_cause": _null_unless(_lookup(ROOT_CAUSES, c.root_cause), c.has_root_cause),
            "capa_id": capa_id,
            "units_affected": _null_unless(pl.Series(values=c.units_affected), c.has_units),
            # handling cost plus the affected units' value, where the units are known
            "cost": _null_unless(
                pl.Series(values=COMPLAINT_BASE_COST + COMPLAINT_UNIT_COST * c.units_affected),
                c.has_units,
            ),
        }
    )


def _force_open(
    rng: np.random.Generator, is_closed: BoolArray, candidates: BoolArray, k: int
) -> BoolArray:
    """Reopen up to ``k`` of the ``candidates`` (planted 'open past due' records)."""
    pool = np.flatnonzero(candidates & is_closed)
    picked = np.sort(rng.choice(pool, size=min(k, pool.size), replace=False))
    out = is_closed.copy()
    out[picked] = False
    return out


def _capa(
    spec: SyntheticSpec,
    cal: _Calendar,
    linked_site: IntArray,
    linked_opened: IntArray,
    rng: np.random.Generator,
) -> tuple[pl.DataFrame, pl.Series]:
    """CAPAs: one per linked complaint plus audit/inspection/supplier/internal ones.

    Returns the frame and the ``capa_id`` of each linked complaint, in the order given.
    The step-up site raises twice as many CAPAs after the step, mostly from inspection.
    """
    step_site = _step_site_index(spec.sites)
    step_from = max(0, cal.n - STEP_MONTHS)
    site_g, month_g = (
        a.ravel().astype(np.int64)
        for a in np.meshgrid(np.arange(spec.sites), np.arange(cal.n), indexing="ij")
    )
    stepped = (site_g == step_site) & (month_g >= step_from)
    lam = spec.capa_per_site_month * spec.scale * np.where(stepped, 2.0, 1.0)
    cell = _expand(rng.poisson(lam).astype(np.int64))
    m = cell.size
    source_o = _choice(rng, _OTHER_CAPA_P, m)
    source_o = np.where(stepped[cell] & (rng.random(m) < 0.5), 2, source_o)
    opened_o = cal.random_day(rng, month_g[cell])

    n_l = linked_site.size
    site = np.concatenate([linked_site, site_g[cell]])
    opened = np.concatenate([linked_opened, opened_o])
    source = np.concatenate([np.zeros(n_l, dtype=np.int64), source_o])
    link = np.concatenate([np.arange(n_l, dtype=np.int64), np.full(m, -1, dtype=np.int64)])
    order = _order(opened, site, source, link)
    site, opened, source, link = site[order], opened[order], source[order], link[order]
    n = site.size

    due = opened + np.array([30, 45, 60, 90], dtype=np.int64)[rng.integers(0, 4, size=n)]
    closed = opened + _lognormal_days(rng, np.full(n, 40.0), 0.6)
    is_closed = closed <= cal.end_day
    is_closed = _force_open(
        rng, is_closed, (due < cal.end_day - 10) & (opened >= cal.end_day - 270), 4
    )
    verified = rng.random(n) < 0.85
    has_verdict = is_closed & (rng.random(n) < 0.97)

    ids = _ids("CAPA-", n)
    capa_for_link = np.empty(n_l, dtype=np.int64)
    pos = np.flatnonzero(link >= 0)
    capa_for_link[link[pos]] = pos
    frame = pl.DataFrame(
        {
            "capa_id": ids,
            "source": _lookup(CAPA_SOURCES, source),
            "site": _lookup(spec.site_names, site),
            "opened_date": _dates(opened),
            "due_date": _dates(due),
            "closed_date": _null_unless(_dates(closed), is_closed),
            "status": _lookup(("open", "closed"), is_closed.astype(np.int64)),
            "effectiveness_verified": _null_unless(pl.Series(values=verified), has_verdict),
        }
    )
    return frame, ids.gather(capa_for_link)


def _supplier_frame(spec: SyntheticSpec, cal: _Calendar, world: _World) -> pl.DataFrame:
    """The approved supplier list (small master data: built row by row)."""
    end = EPOCH + timedelta(days=cal.end_day)
    disapproved_on = EPOCH + timedelta(days=int(cal.start[max(0, cal.n - DISAPPROVED_MONTHS)]) + 9)
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 8, 4]))
    rows: list[dict[str, object]] = []
    for i, (sid, s) in enumerate(zip(world.supplier_ids, world.suppliers, strict=True)):
        interval = 365 if s.critical else 730
        status = "approved"
        last: date | None = end - timedelta(days=int(rng.integers(20, interval - 40)))
        nxt: date | None = None
        if i == CONDITIONAL_SUPPLIER_INDEX:
            status, interval = "conditional", 180
            last = end - timedelta(days=int(rng.integers(20, 120)))
        elif i == DISAPPROVED_SUPPLIER_INDEX:
            status, last = "disapproved", min(disapproved_on, end)
        elif i == NEW_SUPPLIER_INDEX:
            status, last, nxt = "conditional", None, end + timedelta(days=45)
        elif i in OVERDUE_EVALUATION_INDEXES:
            assert last is not None
            last = end - timedelta(days=interval + int(rng.integers(15, 60)))
        elif i == OTD_SUPPLIER_INDEX:
            last = end - timedelta(days=300)
        if status != "disapproved" and last is not None:
            nxt = last + timedelta(days=interval)
        rows.append(
            {
                "supplier_id": sid,
                "name": s.name,
                "category": s.category,
                "critical": s.critical,
                "approval_status": status,
                "last_evaluation_date": last,
                "next_evaluation_due": nxt,
            }
        )
    return pl.DataFrame(rows, schema=DATASETS["suppliers"].schema)


NEW_SUPPLIER_DAYS = 135
"""The new (never evaluated) supplier was added conditionally this many days before the end."""


def _supplier_history(suppliers: pl.DataFrame, cal: _Calendar) -> pl.DataFrame:
    """Approval decisions behind the supplier list, back to the data's first month.

    A supplier's last evaluation set its current status; earlier evaluations, one
    evaluation interval apart (the list's next - last, else 1 year for critical and 2
    for other suppliers), approved it. The new supplier has one decision: conditional,
    ``NEW_SUPPLIER_DAYS`` before the end.
    """
    first = EPOCH + timedelta(days=int(cal.start[0]))
    end = EPOCH + timedelta(days=cal.end_day)
    rows: list[dict[str, object]] = []
    for s in suppliers.iter_rows(named=True):
        last, nxt = s["last_evaluation_date"], s["next_evaluation_due"]
        if last is None:
            decided = end - timedelta(days=NEW_SUPPLIER_DAYS)
            rows.append(_decision(s["supplier_id"], decided, s["approval_status"], nxt))
            continue
        interval = (
            (nxt - last) if nxt is not None else timedelta(days=365 if s["critical"] else 730)
        )
        rows.append(_decision(s["supplier_id"], last, s["approval_status"], nxt))
        day = last - interval
        while day >= first - interval:
            rows.append(_decision(s["supplier_id"], day, "approved", day + interval))
            day -= interval
    return pl.DataFrame(rows, schema=DATASETS["supplier_approvals"].schema)


def _decision(sid: str, day: date, status: str, nxt: date | None) -> dict[str, object]:
    return {
        "supplier_id": sid,
        "decision_date": day,
        "approval_status": status,
        "next_evaluation_due": nxt,
    }


def _site_month_grid(spec: SyntheticSpec, cal: _Calendar) -> tuple[IntArray, IntArray]:
    site, month = (
        a.ravel().astype(np.int64)
        for a in np.meshgrid(np.arange(spec.sites), np.arange(cal.n), indexing="ij")
    )
    return site, month


def _lot_quantities(world: _World, sup: IntArray, rng: np.random.Generator) -> IntArray:
    """Units of each delivery: around its supplier's lot size (lognormal, at least 1)."""
    lot = np.array([s.lot for s in world.suppliers], dtype=np.float64)[sup]
    qty = np.maximum(np.rint(lot * np.exp(0.35 * rng.standard_normal(sup.size))), 1)
    out: IntArray = qty.astype(np.int64)
    return out


def _receipts(
    spec: SyntheticSpec,
    cal: _Calendar,
    world: _World,
    rng: np.random.Generator,
    sites: list[tuple[str, str]],
) -> pl.DataFrame:
    """Goods receipts. ``SUP-003`` slides from ~95 % to ~50 % on time over the last 8 months."""
    site_g, month_g = _site_month_grid(spec, cal)
    lam = spec.receipts_per_site_month * _volume(cal)[month_g] * spec.scale
    cell = _expand(rng.poisson(lam).astype(np.int64))
    n = cell.size
    site, month = site_g[cell], month_g[cell]
    weights = np.array([s.weight for s in world.suppliers], dtype=np.float64)
    sup = _choice(rng, weights, n)
    # The disapproved supplier stops delivering; the new one starts 5 months before the end.
    blocked = np.zeros(n, dtype=np.bool_)
    others = weights.copy()
    if spec.suppliers > DISAPPROVED_SUPPLIER_INDEX:
        blocked |= (sup == DISAPPROVED_SUPPLIER_INDEX) & (
            month >= max(0, cal.n - DISAPPROVED_MONTHS)
        )
        others[DISAPPROVED_SUPPLIER_INDEX] = 0.0
    if spec.suppliers > NEW_SUPPLIER_INDEX:
        blocked |= (sup == NEW_SUPPLIER_INDEX) & (month < cal.n - 5)
        others[NEW_SUPPLIER_INDEX] = 0.0
    sup = np.where(blocked, _choice(rng, others, n), sup)

    received = cal.random_day(rng, month)
    p_on_time = np.array([s.otd for s in world.suppliers], dtype=np.float64)[sup]
    decline_from = max(0, cal.n - OTD_DECLINE_MONTHS)
    progress = np.clip((month - decline_from + 1) / OTD_DECLINE_MONTHS, 0.0, 1.0)
    declining = sup == OTD_SUPPLIER_INDEX
    p_on_time = np.where(declining, p_on_time - (p_on_time - 0.5) * progress, p_on_time)
    on_time = rng.random(n) < p_on_time
    early = _choice(rng, (0.55, 0.25, 0.12, 0.08), n)
    late = 1 + rng.poisson(np.where(declining & (progress > 0), 5.0, 2.5))
    promised = np.minimum(received - np.where(on_time, -early, late), cal.end_day)

    qty = _lot_quantities(world, sup, rng)
    ppm = np.array([s.ppm for s in world.suppliers], dtype=np.float64)[sup]
    p_reject = np.minimum(ppm / 1e6 * rng.gamma(0.3, 1 / 0.3, size=n), 1.0)
    rejected = rng.binomial(qty, p_reject).astype(np.int64)

    order = _order(received, site, sup)
    return pl.DataFrame(
        {
            "receipt_id": _ids("GR-", n),
            "supplier_id": _lookup(world.supplier_ids, sup[order]),
            "site": _lookup([s for s, _ in sites], site[order]),
            "promised_date": _dates(promised[order]),
            "received_date": _dates(received[order]),
            "qty_received": qty[order],
            "qty_rejected": rejected[order],
        }
    )


OPEN_LATE_DAYS = (24, 33)
"""Days before the export that ``SUP-003``'s two long-overdue open lines were promised."""


def _open_orders(
    spec: SyntheticSpec,
    cal: _Calendar,
    world: _World,
    rng: np.random.Generator,
    sites: list[tuple[str, str]],
) -> pl.DataFrame:
    """Purchase-order lines still open at the export (the end month's last day).

    Most are promised after it (not due yet). The rest were promised in the last
    10 days and are late: for each supplier in proportion to its late share in the
    end month, so ``SUP-003`` (down to ~50 % on time) has the most; two of its lines
    at the first site were promised :data:`OPEN_LATE_DAYS` days before the export.
    The disapproved supplier has none.
    """
    n_sup = spec.suppliers
    weights = np.array([s.weight for s in world.suppliers], dtype=np.float64)
    if n_sup > DISAPPROVED_SUPPLIER_INDEX:
        weights[DISAPPROVED_SUPPLIER_INDEX] = 0.0
    late_share = 1.0 - np.array([s.otd for s in world.suppliers], dtype=np.float64)
    late_share[OTD_SUPPLIER_INDEX] = 0.5
    per_site = weights / weights.sum() * spec.receipts_per_site_month * spec.scale * 0.5
    ahead = _expand(rng.poisson(np.tile(per_site, spec.sites)).astype(np.int64))
    late = _expand(rng.poisson(np.tile(per_site * late_share, spec.sites)).astype(np.int64))
    planted = np.full(len(OPEN_LATE_DAYS), OTD_SUPPLIER_INDEX, dtype=np.int64)
    cell = np.concatenate([ahead, late, planted])
    promised = np.concatenate(
        [
            cal.end_day + 1 + rng.integers(0, 45, ahead.size),
            cal.end_day - rng.integers(0, 10, late.size),
            cal.end_day - np.array(OPEN_LATE_DAYS, dtype=np.int64),
        ]
    )
    site, sup = cell // n_sup, cell % n_sup
    qty = _lot_quantities(world, sup, rng)
    part_no = 100 + rng.integers(0, 40, cell.size)
    codes = [s.category[:3].upper() for s in world.suppliers]
    order = _order(promised, site, sup)
    n = cell.size
    return pl.DataFrame(
        {
            "order_line_id": _ids("PO-", n) + "/10",
            "supplier_id": _lookup(world.supplier_ids, sup[order]),
            "site": _lookup([s for s, _ in sites], site[order]),
            "promised_date": _dates(promised[order]),
            "qty_open": qty[order],
            "part": _lookup(codes, sup[order]) + "-" + pl.Series(part_no[order]).cast(pl.String),
        }
    )


# Long by design: the RNG draws must stay in this order (sample_data is committed byte-identical).
def _inspections(
    spec: SyntheticSpec,
    cal: _Calendar,
    world: _World,
    rng: np.random.Generator,
    sites: list[tuple[str, str]],
) -> pl.DataFrame:
    """Inspections; the step-up site's in-process and final defect rates x3 after the step.

    ``result`` is ``fail`` exactly when ``qty_defective > 0`` (c = 0 plan, every stage).
    """
    site_g, month_g, stage_g = (
        a.ravel().astype(np.int64)
        for a in np.meshgrid(
            np.arange(spec.sites), np.arange(cal.n), np.arange(len(STAGES)), indexing="ij"
        )
    )
    share = np.array(_STAGE_SHARE, dtype=np.float64)
    lam = spec.inspections_per_site_month * share[stage_g] * _volume(cal)[month_g] * spec.scale
    counts = rng.poisson(lam).astype(np.int64)
    cell = _expand(counts)
    within = _within(counts)
    n = cell.size
    site, month, stage = site_g[cell], month_g[cell], stage_g[cell]
    step_site = _step_site_index(spec.sites)
    stepped = (site == step_site) & (month >= max(0, cal.n - STEP_MONTHS)) & (stage > 0)

    cum = np.cumsum(world.base_units / world.base_units.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(n)
    slot = np.zeros(n, dtype=np.int64)
    for k in range(spec.sites):
        here = site == k
        slot[here] = np.searchsorted(cum[k], u[here], side="right")
    slot = np.minimum(slot, spec.products_per_site - 1)
    product = world.site_products[site, slot]
    n_sizes = np.array([len(s) for s in _STAGE_SAMPLE_SIZES], dtype=np.int64)
    sizes = np.zeros((len(STAGES), int(n_sizes.max())), dtype=np.int64)
    for k, options in enumerate(_STAGE_SAMPLE_SIZES):
        sizes[k, : len(options)] = options
    qty = sizes[stage, (rng.random(n) * n_sizes[stage]).astype(np.int64)]
    p = (
        np.array(_STAGE_DEFECT_P, dtype=np.float64)[stage]
        * world.site_factor[site]
        * np.where(stepped, STEP_DEFECT_FACTOR, 1.0)
        * rng.gamma(0.6, 1 / 0.6, size=n)
    )
    defective = rng.binomial(qty, np.minimum(p, 0.5)).astype(np.int64)
    fail = defective > 0
    code = np.zeros(n, dtype=np.int64)
    u = rng.random(n)
    for k in range(len(STAGES)):
        cum_codes = np.cumsum(_DEFECT_CODE_P[k]) / sum(_DEFECT_CODE_P[k])
        here = stage == k
        code[here] = np.minimum(
            np.searchsorted(cum_codes, u[here], side="right"), len(DEFECT_CODES) - 1
        )
    code = np.where(stepped & (rng.random(n) < 0.6), 0, code)
    day = cal.random_day(rng, month)

    order = _order(day, site, stage, slot, within)
    site, month, stage = site[order], month[order], stage[order]
    lot_width = max(4, len(str(int(counts.max()) if counts.size else 0)))
    yymm = [label[2:4] + label[5:7] for label in cal.labels]
    lots = pl.DataFrame(
        {
            "code": _lookup([c for _, c in sites], site),
            "yymm": _lookup(yymm, month),
            "stage": _lookup(("I", "P", "F"), stage),
            "cell": cell[order],
        }
    ).select(
        pl.concat_str(
            [
                pl.col("code"),
                pl.col("yymm"),
                pl.col("stage"),
                # lots numbered in date order within site x month x stage
                pl.int_range(1, pl.len() + 1).over("cell").cast(pl.String).str.zfill(lot_width),
            ]
        ).alias("lot_id")
    )["lot_id"]
    first = pl.DataFrame(
        {
            "inspection_id": _ids("INS-", n, width=7),
            "inspection_date": _dates(day[order]),
            "site": _lookup([s for s, _ in sites], site),
            "product": _lookup(world.products, product[order]),
            "stage": _lookup(STAGES, stage),
            "lot_id": _null_unless(lots, stage != 1),
            "qty_inspected": qty[order],
            "qty_defective": defective[order],
            "defect_code": _null_unless(_lookup(DEFECT_CODES, code[order]), fail[order]),
            "result": _lookup(("pass", "fail"), fail[order].astype(np.int64)),
            "cost": defective[order] * np.array(_STAGE_UNIT_COST, dtype=np.float64)[stage],
        }
    )
    return pl.concat([first, _reinspections(first, rng, cal)])


REINSPECT_P = 0.6
"""Share of failed lots (incoming, final) re-inspected after sorting or rework."""


def _reinspections(first: pl.DataFrame, rng: np.random.Generator, cal: _Calendar) -> pl.DataFrame:
    """Re-inspections of failed lots, 1-3 days after the first, passing (nothing defective).

    They make the record pass rate differ from first-pass yield per lot. Drawn after
    every other inspection draw, so the first inspections do not change with them.
    """
    failed = first.filter(pl.col("lot_id").is_not_null() & (pl.col("result") == "fail"))
    u = rng.random(failed.height)
    gap = rng.integers(1, 4, size=failed.height)
    day = np.array([_day(d) for d in failed["inspection_date"].to_list()], dtype=np.int64) + gap
    keep = (u < REINSPECT_P) & (day <= cal.end_day)
    again = failed.filter(pl.Series(keep))
    ids = _ids("INS-", first.height + again.height, width=7)[first.height :]
    return again.with_columns(
        inspection_id=ids,
        inspection_date=_dates(day[keep]),
        qty_defective=pl.lit(0, pl.Int64),
        cost=pl.lit(0.0),
        defect_code=pl.lit(None, pl.String),
        result=pl.lit("pass"),
    )


def _objectives() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "objective_id": [o.objective_id for o in OBJECTIVES],
            "name": [o.name for o in OBJECTIVES],
            "clause": [o.clause for o in OBJECTIVES],
            "owner": [o.owner for o in OBJECTIVES],
            "unit": [o.unit for o in OBJECTIVES],
            "direction": [o.direction for o in OBJECTIVES],
            "target": [o.target for o in OBJECTIVES],
            "kpi": [o.kpi for o in OBJECTIVES],
        },
        schema=DATASETS["objectives"].schema,
    )


def _objective_results(cal: _Calendar, rng: np.random.Generator) -> pl.DataFrame:
    """Monthly actuals of the objectives with no linked KPI (entered by hand)."""
    manual = [o for o in OBJECTIVES if o.kpi is None]
    frames = []
    for o in manual:
        actual = np.clip(o.centre + o.spread * rng.standard_normal(cal.n), o.low, o.high)
        frames.append(
            pl.DataFrame(
                {
                    "objective_id": [o.objective_id] * cal.n,
                    "month": list(cal.labels),
                    "actual": np.round(actual, o.decimals),
                }
            )
        )
    return pl.concat(frames)


def _audit_findings(
    spec: SyntheticSpec, cal: _Calendar, rng: np.random.Generator, sites: list[tuple[str, str]]
) -> pl.DataFrame:
    """Internal audits every third month per site (staggered), ~4 findings each."""
    a_site, a_month, a_day = _audit_schedule(spec, cal)
    counts = rng.poisson(spec.findings_per_audit * spec.scale, size=a_site.size).astype(np.int64)
    cell = _expand(counts)
    n = cell.size
    site, month, day = a_site[cell], a_month[cell], a_day[cell]
    kind = _choice(rng, _FINDING_TYPE_P, n)
    clause = _choice(rng, _AUDIT_CLAUSE_P, n)
    due_days = np.array(_FINDING_DUE_DAYS, dtype=np.int64)[kind]
    has_due = due_days >= 0
    due = day + np.maximum(due_days, 0)
    median = np.array(_FINDING_CLOSE_MEDIAN, dtype=np.float64)[kind]
    closed = day + _lognormal_days(rng, median, 0.7)
    is_closed = closed <= cal.end_day
    is_closed = _force_open(rng, is_closed, has_due & (due < cal.end_day - 15) & (kind <= 1), 3)

    # cells are laid out site-major, so within an audit rows stay together; order by date.
    order = _order(day, site, np.arange(n, dtype=np.int64))
    labels = [f"{label[:4]}-{label[5:7]}" for label in cal.labels]
    audit_id = pl.DataFrame(
        {"m": _lookup(labels, month[order]), "c": _lookup([c for _, c in sites], site[order])}
    ).select(pl.concat_str([pl.lit("IA-"), pl.col("m"), pl.lit("-"), pl.col("c")]).alias("a"))["a"]
    return pl.DataFrame(
        {
            "finding_id": _ids("F-", n),
            "audit_id": audit_id,
            "audit_date": _dates(day[order]),
            "site": _lookup([s for s, _ in sites], site[order]),
            "clause": _lookup(AUDIT_CLAUSES, clause[order]),
            "type": _lookup(FINDING_TYPES, kind[order]),
            "status": _lookup(("open", "closed"), is_closed[order].astype(np.int64)),
            "due_date": _null_unless(_dates(due[order]), has_due[order]),
            "closed_date": _null_unless(_dates(closed[order]), is_closed[order]),
        }
    )


def _audit_schedule(spec: SyntheticSpec, cal: _Calendar) -> tuple[IntArray, IntArray, IntArray]:
    """(site, month, day) of the system audits: every third month per site, staggered."""
    site_g, month_g = _site_month_grid(spec, cal)
    audited = (month_g + site_g) % 3 == 0
    a_site, a_month = site_g[audited], month_g[audited]
    a_day = cal.start[a_month] + np.minimum((7 + 4 * a_site) % 20, cal.length[a_month] - 1)
    return a_site, a_month, a_day


PROCESS_AUDIT_DONE_P = 0.8
"""Share of the extra process audits that are performed (the rest slip or are dropped)."""


def _audit_programme(
    spec: SyntheticSpec, cal: _Calendar, rng: np.random.Generator, sites: list[tuple[str, str]]
) -> pl.DataFrame:
    """The audit programme (9.2.2): the system audits of the findings, and process audits.

    A system audit was performed on its audit date (the findings' ``audit_date``);
    most were planned for that day, some (15 %) 5-29 days earlier and slipped. A
    process audit per site every sixth month is planned for the 15th; 80 % are
    performed 0-9 days later (by the data's end), the rest are not performed.
    """
    a_site, a_month, a_day = _audit_schedule(spec, cal)
    slip = np.where(rng.random(a_site.size) < 0.15, rng.integers(5, 30, size=a_site.size), 0)
    site_g, month_g = _site_month_grid(spec, cal)
    extra = (month_g + site_g) % 6 == 1
    p_site, p_month = site_g[extra], month_g[extra]
    p_day = cal.start[p_month] + 14
    p_done = p_day + rng.integers(0, 10, size=p_site.size)
    p_kept = (rng.random(p_site.size) < PROCESS_AUDIT_DONE_P) & (p_done <= cal.end_day)
    labels = [f"{label[:4]}-{label[5:7]}" for label in cal.labels]
    codes = [c for _, c in sites]

    def frame(prefix: str, site: IntArray, month: IntArray) -> pl.DataFrame:
        return pl.DataFrame({"m": _lookup(labels, month), "c": _lookup(codes, site)}).select(
            audit_id=pl.concat_str([pl.lit(prefix), pl.col("m"), pl.lit("-"), pl.col("c")]),
            site=_lookup([s for s, _ in sites], site),
        )

    system = frame("IA-", a_site, a_month).with_columns(
        planned_date=_dates(np.maximum(a_day - slip, cal.start[0])),
        performed_date=_dates(a_day),
        area=pl.lit("quality management system"),
    )
    process = frame("PA-", p_site, p_month).with_columns(
        planned_date=_dates(p_day),
        performed_date=_null_unless(_dates(p_done), p_kept),
        area=pl.lit("production process"),
    )
    return pl.concat([system, process])


def _review_actions(
    spec: SyntheticSpec,
    cal: _Calendar,
    world: _World,
    rng: np.random.Generator,
    sites: list[tuple[str, str]],
) -> pl.DataFrame:
    """Actions from quarterly management reviews (1, 4, 7, ... months before the end month)."""
    months = np.array([m for m in range(cal.n) if (cal.n - 1 - m) % 3 == 1], dtype=np.int64)
    r_day = cal.start[months] + np.minimum(19, cal.length[months] - 1)
    counts = rng.poisson(spec.actions_per_review * spec.scale, size=months.size).astype(np.int64)
    cell = _expand(counts)
    n = cell.size
    day, month = r_day[cell], months[cell]
    template = rng.integers(0, len(_ACTION_TEMPLATES), size=n)
    site = rng.integers(0, spec.sites, size=n)
    critical = np.array([i for i, s in enumerate(world.suppliers) if s.critical], dtype=np.int64)
    supplier = critical[rng.integers(0, critical.size, size=n)]
    supplier = np.where(month >= max(0, cal.n - OTD_DECLINE_MONTHS), OTD_SUPPLIER_INDEX, supplier)
    owner = rng.integers(0, len(OWNERS), size=n)
    due = day + np.array([30, 60, 90, 120], dtype=np.int64)[rng.integers(0, 4, size=n)]
    closed = day + _lognormal_days(rng, np.full(n, 55.0), 0.7)
    is_closed = closed <= cal.end_day
    is_closed = _force_open(rng, is_closed, due < cal.end_day - 20, 3)
    description = pl.DataFrame(
        {
            "t": _lookup(_ACTION_TEMPLATES, template),
            "site": _lookup([s for s, _ in sites], site),
            "supplier": _lookup([s.name for s in world.suppliers], supplier),
        }
    ).select(
        pl.col("t")
        .str.replace("{site}", pl.col("site"), literal=True)
        .str.replace("{supplier}", pl.col("supplier"), literal=True)
        .alias("description")
    )["description"]
    return pl.DataFrame(
        {
            "action_id": _ids("MRA-", n, width=4),
            "review_date": _dates(day),
            "description": description,
            "owner": _lookup(OWNERS, owner),
            "due_date": _dates(due),
            "status": _lookup(("open", "closed"), is_closed.astype(np.int64)),
            "closed_date": _null_unless(_dates(closed), is_closed),
        }
    )


_SCORE_P = (0.01, 0.01, 0.01, 0.02, 0.02, 0.04, 0.06, 0.13, 0.22, 0.25, 0.23)
_SCORE_P_STEPPED = (0.03, 0.02, 0.03, 0.04, 0.05, 0.07, 0.10, 0.16, 0.20, 0.16, 0.14)


def _surveys(
    spec: SyntheticSpec,
    cal: _Calendar,
    world: _World,
    rng: np.random.Generator,
    sites: list[tuple[str, str]],
) -> pl.DataFrame:
    """Survey responses on a 0-10 scale; the step-up site scores lower after the step."""
    site_g, month_g = _site_month_grid(spec, cal)
    lam = spec.surveys_per_site_month * _volume(cal)[month_g] * spec.scale
    cell = _expand(rng.poisson(lam).astype(np.int64))
    n = cell.size
    site, month = site_g[cell], month_g[cell]
    stepped = (site == _step_site_index(spec.sites)) & (month >= max(0, cal.n - STEP_MONTHS))
    score = np.where(stepped, _choice(rng, _SCORE_P_STEPPED, n), _choice(rng, _SCORE_P, n))
    customer = world.site_customers[site, _choice(rng, world.customer_p, n)]
    day = cal.random_day(rng, month)
    order = _order(day, site, customer)
    return pl.DataFrame(
        {
            "response_id": _ids("SRV-", n),
            "response_date": _dates(day[order]),
            "site": _lookup([s for s, _ in sites], site[order]),
            "customer": _lookup(world.customers, customer[order]),
            "score": score[order].astype(np.float64),
            "scale_max": np.full(n, 10, dtype=np.int64),
            "scale_min": np.zeros(n, dtype=np.int64),
        }
    )


# --------------------------------------------------------------------------- writing


def write(
    frames: Mapping[str, pl.DataFrame],
    out_dir: Path | str,
    *,
    format: OutputFormat = "csv",
    config: bool = True,
    spec: SyntheticSpec | None = None,
) -> list[Path]:
    """Write ``<dataset>.csv`` (or ``.parquet``) for each frame into ``out_dir``.

    With ``config=True`` also write ``qmskpi.toml`` (loads as-is with
    :func:`qmskpi.config.load_config`; every date column's format declared) and
    the analyst inputs ``inputs/changes.md``, ``inputs/resources.md`` and
    ``inputs/risks.md``. ``spec`` supplies the organisation name and the story
    the analyst inputs tell; without it, both are inferred from the frames.
    CSV is UTF-8 without BOM, ``\\n`` line ends, ISO dates, empty cells for
    nulls, ``true``/``false``. Returns the paths written, in writing order.
    """
    if format not in ("csv", "parquet"):
        raise SpecError(f"format must be 'csv' or 'parquet', got {format!r}")
    unknown = [name for name in frames if name not in DATASETS]
    if unknown:
        raise SpecError(f"not a dataset: {', '.join(unknown)}; known: {', '.join(DATASETS)}")
    story = (spec if spec is not None else _infer_spec(frames)) if config else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name in DATASETS:
        if name not in frames:
            continue
        frame = frames[name]
        path = out / f"{name}.{format}"
        if format == "csv":
            frame.write_csv(path, date_format=DATE_FORMAT, line_terminator="\n")
        else:
            frame.write_parquet(path, compression="zstd", statistics=True)
        written.append(path)
    if story is not None:
        texts = {
            "qmskpi.toml": config_toml(
                story, datasets=[n for n in DATASETS if n in frames], format=format
            ),
            "inputs/changes.md": _changes_md(story, frames),
            "inputs/resources.md": _resources_md(story, frames),
            "inputs/risks.md": _risks_md(story, frames),
        }
        for rel, text in texts.items():
            path = out / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="\n")
            written.append(path)
    return written


def sample(
    out_dir: Path | str,
    spec: SyntheticSpec = SyntheticSpec(),
    *,
    format: OutputFormat = "csv",
) -> list[Path]:
    """Generate the data set of ``spec`` and write it, with its config, into ``out_dir``."""
    return write(generate(spec), out_dir, format=format, config=True, spec=spec)


def _infer_spec(frames: Mapping[str, pl.DataFrame]) -> SyntheticSpec:
    """The spec a set of generated frames most likely came from (for names and story)."""
    months: set[str] = set()
    for name in ("shipments", "objective_results"):
        if name in frames and frames[name].height:
            months.update(frames[name]["month"].unique().to_list())
    sites: set[str] = set()
    for name, frame in frames.items():
        if "site" in frame.columns and DATASETS[name].site_level:
            sites.update(frame["site"].drop_nulls().unique().to_list())
    if not months or not sites:
        raise SpecError("cannot infer the spec from these frames; pass spec=SyntheticSpec(...)")
    first, last = min(months), max(months)
    n_months = (int(last[:4]) - int(first[:4])) * 12 + int(last[5:7]) - int(first[5:7]) + 1
    n_suppliers = frames["suppliers"].height if "suppliers" in frames else len(SUPPLIER_CATALOGUE)
    spec = SyntheticSpec(
        sites=len(sites),
        months=n_months,
        end_month=last,
        suppliers=max(n_suppliers, OTD_SUPPLIER_INDEX + 1),
    )
    if set(spec.site_names) != sites:
        raise SpecError(
            f"sites {sorted(sites)} are not the generator's; pass spec=SyntheticSpec(...) "
            "or write with config=False"
        )
    return spec


def _toml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def config_toml(
    spec: SyntheticSpec = SyntheticSpec(),
    *,
    datasets: Sequence[str] = tuple(DATASETS),
    format: OutputFormat = "csv",
) -> str:
    """The ``qmskpi.toml`` text for a data set written by :func:`write`."""
    lines = [
        "# qmskpi configuration for a synthetic data set written by qmskpi.synthetic",
        "# (`qmskpi sample`). Paths are relative to this file. Dates are ISO (YYYY-MM-DD);",
        "# their format is declared per column, because qmskpi never guesses one.",
        "# The generated registers are complete: zero_means_zero says a month with no",
        "# rows is a true zero in the trends, not a gap in the records.",
        "",
        "[organisation]",
        f"name = {_toml_str(spec.organisation)}",
        "sites = [" + ", ".join(_toml_str(s) for s in spec.site_names) + "]",
    ]
    for name in datasets:
        ds = DATASETS[name]
        lines += ["", f"[sources.{name}]", f'path = "{name}.{format}"', f'format = "{format}"']
        date_cols = [f.name for f in ds.fields if f.type == "date"]
        if format == "csv" and date_cols:
            pairs = ", ".join(f'{c} = "{DATE_FORMAT}"' for c in date_cols)
            lines.append(f"date_formats = {{ {pairs} }}")
        if ds.period_field is not None and not ds.forward_dated:
            lines.append("zero_means_zero = true")
    lines += [
        "",
        "[kpis]",
        "complaint_close_target_days = 30",
        "supplier_otd_tolerance_days = 0",
        "supplier_otd_early_days = 7",
        "repeat_window_days = 90",
        "finding_due_days = 60",
        "",
        "[kpis.complaint_close_target_days_by_severity]",
        "# days to close by severity; a severity not listed uses complaint_close_target_days",
        "critical = 15",
        "minor = 45",
        "",
        "[kpis.targets]",
        "# KPIs that no quality objective targets (objectives carry their own targets).",
    ]
    lines += [f"{k} = {v!r}" for k, v in KPI_TARGETS.items()]
    lines += [
        "",
        "[review]",
        'granularity = "month"',
        f"trend_months = {min(24, max(3, spec.months))}",
        "",
        "[analyst_inputs]",
        'changes = "inputs/changes.md"',
        'resources = "inputs/resources.md"',
        'risks = "inputs/risks.md"',
        "",
        "[outputs]",
        'reports_dir = "reports"',
        "",
    ]
    return "\n".join(lines)


_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _month_words(label: str) -> str:
    return f"{_MONTH_NAMES[int(label[5:7]) - 1]} {label[:4]}"


def _supplier_name(frames: Mapping[str, pl.DataFrame], supplier_id: str) -> str:
    if "suppliers" in frames:
        hit = frames["suppliers"].filter(pl.col("supplier_id") == supplier_id)["name"]
        if hit.len():
            return str(hit[0])
    return _supplier_def(_supplier_ids(len(SUPPLIER_CATALOGUE)).index(supplier_id)).name


def _changes_md(spec: SyntheticSpec, frames: Mapping[str, pl.DataFrame]) -> str:
    p = planted_structure(spec)
    otd = _supplier_name(frames, p.otd_supplier_id)
    lines = [
        "# Changes in external and internal issues (9.3.2 b)",
        "",
        f"Prepared by the Quality Manager for the management review of {_month_words(p.end_month)}.",
        "",
        "## External",
        "",
        f"- **Customers.** {CUSTOMER_CATALOGUE[0]} now asks for PPAP level 3 on every new part"
        " number; two other automotive customers are expected to follow within the year.",
        f"- **Supply market.** Casting capacity in Central Europe is tight. {otd}"
        f" ({p.otd_supplier_id}) moved part of its moulding to a second plant in"
        f" {_month_words(p.otd_decline_from)}; its deliveries have been late more often since.",
        "- **Standards.** ISO 9001:2015/Amd 1:2024 asks us to consider climate change when"
        " determining our context (4.1, 4.2). Assessed by the management team: no significant"
        " effect on product conformity found; flood risk at the warehouse noted in the risk register.",
        "- **Energy.** New tariffs from January raise energy costs by about 12 %; no effect on"
        " product quality expected.",
        "",
        "## Internal",
        "",
        f"- **{p.step_site}.** A new 5-axis machining cell went into production in"
        f" {_month_words(p.step_from)}. In-process and final defect rates at {p.step_site} have"
        " been higher since, mostly dimensional (DIM-OOT).",
        f"- **Complaint handling.** One of three complaint coordinators left in"
        f" {_month_words(p.backlog_from)}; the post is still vacant.",
    ]
    if p.disapproved_supplier_id is not None and p.disapproved_from is not None:
        name = _supplier_name(frames, p.disapproved_supplier_id)
        lines.append(
            f"- **Suppliers.** {name} ({p.disapproved_supplier_id}) was disapproved in"
            f" {_month_words(p.disapproved_from)} after repeated transport damage; its work moved"
            " to the remaining packaging suppliers."
        )
    lines.append("")
    return "\n".join(lines)


def _resources_md(spec: SyntheticSpec, frames: Mapping[str, pl.DataFrame]) -> str:
    p = planted_structure(spec)
    n_sup = frames["suppliers"].height if "suppliers" in frames else spec.suppliers
    return "\n".join(
        [
            "# Adequacy of resources (9.3.2 d)",
            "",
            "| Area | Assessment | Comment |",
            "|---|---|---|",
            f"| Complaint handling | Not adequate | Two of three coordinator posts filled since"
            f" {_month_words(p.backlog_from)}; closure times and the open backlog are rising."
            " Recruitment approved. |",
            f"| Final inspection, {p.step_site} | Stretched | One CMM for two shifts since the new"
            " machining cell started; a second CMM is quoted. |",
            "| Metrology and calibration | Adequate | Calibration on schedule (objective OBJ-07). |",
            "| Training | Adequate | Training plan completion close to target (objective OBJ-06);"
            " new starters' matrix being completed. |",
            f"| Supplier quality | Stretched | One supplier quality engineer for {n_sup} suppliers;"
            f" an on-site visit to {p.otd_supplier_id} is planned. |",
            "| Infrastructure | Adequate | Preventive maintenance on plan at all sites. |",
            "",
        ]
    )


def _risks_md(spec: SyntheticSpec, frames: Mapping[str, pl.DataFrame]) -> str:
    p = planted_structure(spec)
    otd = _supplier_name(frames, p.otd_supplier_id)
    return "\n".join(
        [
            "# Effectiveness of actions taken to address risks and opportunities (9.3.2 e)",
            "",
            "| Risk or opportunity | Action taken | Effective? | Evidence |",
            "|---|---|---|---|",
            f"| Single source for castings ({otd}) | Second source qualification started |"
            f" Not yet | On-time delivery of {p.otd_supplier_id} still falling since"
            f" {_month_words(p.otd_decline_from)}. |",
            f"| Ramp-up of the new machining cell at {p.step_site} | Process FMEA and first-article"
            " inspection | Partly | Defect rate stepped up after the start; containment in place,"
            " root cause under investigation. |",
            "| Loss of key staff in complaint handling | Cross-training of two customer-service staff"
            " | No | Complaint backlog growing. |",
            "| Customer PPAP requirements | PPAP coordinator role created | Yes | All submissions"
            " this year accepted first time. |",
            "| Opportunity: automated final leak test | Business case approved | Pending |"
            " Installation planned next quarter. |",
            "",
        ]
    )
