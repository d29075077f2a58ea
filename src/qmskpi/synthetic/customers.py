"""Shipments (units, customer deliveries) and customer complaints (base, repeats, backlog)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from qmskpi.synthetic.draws import (
    BoolArray,
    IntArray,
    _Calendar,
    _choice,
    _dates,
    _expand,
    _ids,
    _lognormal_days,
    _lookup,
    _null_unless,
    _order,
    _volume,
)
from qmskpi.synthetic.spec import BACKLOG_MONTHS, STEP_MONTHS, SyntheticSpec, _step_site_index
from qmskpi.synthetic.world import _World

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


COMPLAINT_BASE_COST = 250.0
COMPLAINT_UNIT_COST = 18.0
"""A complaint's cost: handling plus the value of each affected unit (when known)."""
CUSTOMER_OTD_P = (0.95, 0.88)
"""Chance a customer delivery is on time: normally, and at the step-up site after the step."""
UNITS_PER_DELIVERY = 500
REPEAT_SHARE = 0.06
"""Share of complaints followed by a planted repeat (on top of chance repeats)."""
STEP_COMPLAINT_FACTOR = 1.6


@dataclass(frozen=True)
class _Shipments:
    site: IntArray
    slot: IntArray
    """Index into the site's product list."""
    month: IntArray
    units: IntArray


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
