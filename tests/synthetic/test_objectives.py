"""The objectives: linked to KPIs the pack computes, or with manual results."""

from __future__ import annotations

import polars as pl

from synthetic.helpers import KNOWN_KPIS


def test_objectives_linked_and_manual(frames: dict[str, pl.DataFrame]) -> None:
    o = frames["objectives"]
    linked = o.filter(pl.col("kpi").is_not_null())
    assert linked.height >= 3
    assert o.filter(pl.col("kpi").is_null()).height >= 2
    assert set(linked["kpi"].to_list()) <= KNOWN_KPIS
    assert {"complaint_rate_ppm", "supplier_otd_due_share", "fpy_lot_share"} <= set(
        linked["kpi"].to_list()
    )
    results = frames["objective_results"]
    assert results.height == 36 * o.filter(pl.col("kpi").is_null()).height
