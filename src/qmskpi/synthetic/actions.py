"""CAPAs, internal audit findings, the audit programme and management-review actions."""

from __future__ import annotations

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
    _site_month_grid,
)
from qmskpi.synthetic.spec import (
    OTD_DECLINE_MONTHS,
    OTD_SUPPLIER_INDEX,
    STEP_MONTHS,
    SyntheticSpec,
    _step_site_index,
)
from qmskpi.synthetic.world import _World

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
