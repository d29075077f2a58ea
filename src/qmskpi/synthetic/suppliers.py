"""The supplier list and its approval history, goods receipts and open purchase-order lines."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

from qmskpi.datasets import DATASETS
from qmskpi.synthetic.draws import (
    EPOCH,
    IntArray,
    _Calendar,
    _choice,
    _dates,
    _expand,
    _ids,
    _lookup,
    _order,
    _site_month_grid,
    _volume,
)
from qmskpi.synthetic.spec import (
    CONDITIONAL_SUPPLIER_INDEX,
    DISAPPROVED_MONTHS,
    DISAPPROVED_SUPPLIER_INDEX,
    NEW_SUPPLIER_INDEX,
    OTD_DECLINE_MONTHS,
    OTD_SUPPLIER_INDEX,
    OVERDUE_EVALUATION_INDEXES,
    SyntheticSpec,
)
from qmskpi.synthetic.world import _World


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
