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

The parts, in the order they import each other (import-linter enforces it):

- :mod:`~qmskpi.synthetic.writer`: :func:`write` and :func:`sample`;
- :mod:`~qmskpi.synthetic.assemble` (:func:`generate`: the datasets in order, each from
  its own stream), :mod:`~qmskpi.synthetic.config_file` (:func:`config_toml`) and
  :mod:`~qmskpi.synthetic.analyst_inputs` (``inputs/*.md``);
- :mod:`~qmskpi.synthetic.planted`: :func:`planted_structure`;
- one part per group of datasets: :mod:`~qmskpi.synthetic.customers` (shipments,
  complaints), :mod:`~qmskpi.synthetic.suppliers` (suppliers, approvals, receipts, open
  orders), :mod:`~qmskpi.synthetic.inspections`, :mod:`~qmskpi.synthetic.actions` (CAPA,
  audit findings and programme, review actions), :mod:`~qmskpi.synthetic.objectives`,
  :mod:`~qmskpi.synthetic.surveys`;
- :mod:`~qmskpi.synthetic.world`: the master data the datasets share;
- :mod:`~qmskpi.synthetic.draws`: random streams, the calendar, column-wise helpers;
- :mod:`~qmskpi.synthetic.spec`: :class:`SyntheticSpec`, the story's constants, the catalogues.
"""

from __future__ import annotations

from qmskpi.synthetic.actions import (
    AUDIT_CLAUSES,
    CAPA_SOURCES,
    FINDING_TYPES,
    OWNERS,
    PROCESS_AUDIT_DONE_P,
)
from qmskpi.synthetic.assemble import generate
from qmskpi.synthetic.config_file import KPI_TARGETS, config_toml
from qmskpi.synthetic.customers import (
    COMPLAINT_BASE_COST,
    COMPLAINT_CATEGORIES,
    COMPLAINT_UNIT_COST,
    CUSTOMER_OTD_P,
    REPEAT_SHARE,
    ROOT_CAUSES,
    STEP_COMPLAINT_FACTOR,
    UNITS_PER_DELIVERY,
)
from qmskpi.synthetic.draws import EPOCH, BoolArray, FloatArray, IntArray
from qmskpi.synthetic.inspections import DEFECT_CODES, REINSPECT_P, STAGES, STEP_DEFECT_FACTOR
from qmskpi.synthetic.objectives import OBJECTIVES
from qmskpi.synthetic.planted import Planted, planted_structure
from qmskpi.synthetic.spec import (
    BACKLOG_MONTHS,
    CONDITIONAL_SUPPLIER_INDEX,
    CUSTOMER_CATALOGUE,
    CUSTOMER_OFFSET_PER_SITE,
    DATE_FORMAT,
    DEFAULT_ORGANISATION,
    DISAPPROVED_MONTHS,
    DISAPPROVED_SUPPLIER_INDEX,
    NEW_SUPPLIER_INDEX,
    OTD_DECLINE_MONTHS,
    OTD_SUPPLIER_INDEX,
    OVERDUE_EVALUATION_INDEXES,
    PRODUCT_CATALOGUE,
    PRODUCT_OFFSET_PER_SITE,
    SEASON,
    SITE_CATALOGUE,
    STEP_MONTHS,
    STEP_SITE_INDEX,
    SUPPLIER_CATALOGUE,
    OutputFormat,
    SpecError,
    SyntheticSpec,
)
from qmskpi.synthetic.suppliers import NEW_SUPPLIER_DAYS, OPEN_LATE_DAYS
from qmskpi.synthetic.writer import sample, write

__all__ = [
    "AUDIT_CLAUSES",
    "BACKLOG_MONTHS",
    "CAPA_SOURCES",
    "COMPLAINT_BASE_COST",
    "COMPLAINT_CATEGORIES",
    "COMPLAINT_UNIT_COST",
    "CONDITIONAL_SUPPLIER_INDEX",
    "CUSTOMER_CATALOGUE",
    "CUSTOMER_OFFSET_PER_SITE",
    "CUSTOMER_OTD_P",
    "DATE_FORMAT",
    "DEFAULT_ORGANISATION",
    "DEFECT_CODES",
    "DISAPPROVED_MONTHS",
    "DISAPPROVED_SUPPLIER_INDEX",
    "EPOCH",
    "FINDING_TYPES",
    "KPI_TARGETS",
    "NEW_SUPPLIER_DAYS",
    "NEW_SUPPLIER_INDEX",
    "OBJECTIVES",
    "OPEN_LATE_DAYS",
    "OTD_DECLINE_MONTHS",
    "OTD_SUPPLIER_INDEX",
    "OVERDUE_EVALUATION_INDEXES",
    "OWNERS",
    "PROCESS_AUDIT_DONE_P",
    "PRODUCT_CATALOGUE",
    "PRODUCT_OFFSET_PER_SITE",
    "REINSPECT_P",
    "REPEAT_SHARE",
    "ROOT_CAUSES",
    "SEASON",
    "SITE_CATALOGUE",
    "STAGES",
    "STEP_COMPLAINT_FACTOR",
    "STEP_DEFECT_FACTOR",
    "STEP_MONTHS",
    "STEP_SITE_INDEX",
    "SUPPLIER_CATALOGUE",
    "UNITS_PER_DELIVERY",
    "BoolArray",
    "FloatArray",
    "IntArray",
    "OutputFormat",
    "Planted",
    "SpecError",
    "SyntheticSpec",
    "config_toml",
    "generate",
    "planted_structure",
    "sample",
    "write",
]
