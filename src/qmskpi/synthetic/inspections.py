"""Inspections at three stages (c = 0 plans, the step-up site's defects) and the
re-inspections of failed lots."""

from __future__ import annotations

import numpy as np
import polars as pl

from qmskpi.synthetic.draws import (
    _Calendar,
    _dates,
    _day,
    _expand,
    _ids,
    _lookup,
    _null_unless,
    _order,
    _volume,
    _within,
)
from qmskpi.synthetic.spec import STEP_MONTHS, SyntheticSpec, _step_site_index
from qmskpi.synthetic.world import _World

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
