"""Inspections: the step-up site's defects, re-inspections of failed lots."""

from __future__ import annotations

from datetime import date

import polars as pl


def test_step_site_defect_rate_steps_up(frames: dict[str, pl.DataFrame]) -> None:
    ppm = (pl.col("qty_defective").sum() / pl.col("qty_inspected").sum() * 1e6).alias("ppm")
    i = frames["inspections"]
    before = i.filter(
        (pl.col("inspection_date") >= date(2025, 5, 1))
        & (pl.col("inspection_date") < date(2026, 5, 1))
    )
    after = i.filter(pl.col("inspection_date") >= date(2026, 5, 1))
    b = dict(before.group_by("site").agg(ppm).iter_rows())
    a = dict(after.group_by("site").agg(ppm).iter_rows())
    assert a["South"] > 1.8 * b["South"]
    assert a["North"] < 1.5 * b["North"]
    assert a["East"] < 1.5 * b["East"]
    codes = after.filter((pl.col("site") == "South") & pl.col("defect_code").is_not_null())
    assert codes["defect_code"].mode().to_list() == ["DIM-OOT"]


def test_failed_lots_are_reinspected_so_lot_yield_differs_from_pass_rate(
    frames: dict[str, pl.DataFrame],
) -> None:
    i = frames["inspections"]
    lots = i.filter(pl.col("lot_id").is_not_null())
    per_lot = lots.group_by("site", "stage", "lot_id").agg(
        n=pl.len(), first=pl.col("result").sort_by("inspection_date").first()
    )
    again = per_lot.filter(pl.col("n") > 1)
    # a re-inspected lot failed first and was inspected twice, never more
    assert again.height > 50
    assert (again["n"] == 2).all()
    assert (again["first"] == "fail").all()
    # the re-inspection passes, 1-3 days later, at the same site and stage
    pairs = lots.join(again.select("site", "stage", "lot_id"), on=["site", "stage", "lot_id"])
    span = pairs.group_by("site", "stage", "lot_id").agg(
        days=(pl.col("inspection_date").max() - pl.col("inspection_date").min()).dt.total_days(),
        last=pl.col("result").sort_by("inspection_date").last(),
    )
    assert span["days"].is_between(1, 3).all()
    assert (span["last"] == "pass").all()
