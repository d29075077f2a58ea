"""CAPAs, audit findings and review actions: some open past due."""

from __future__ import annotations

import polars as pl

from synthetic.helpers import END_DAY


def test_open_past_due_capa_findings_and_actions(frames: dict[str, pl.DataFrame]) -> None:
    open_past_due = (pl.col("status") == "open") & (pl.col("due_date") < END_DAY)
    assert frames["capa"].filter(open_past_due).height >= 3
    assert frames["capa"]["effectiveness_verified"].drop_nulls().n_unique() == 2
    a = frames["audit_findings"]
    assert set(a["type"].to_list()) == {"major_nc", "minor_nc", "observation", "ofi"}
    assert a.filter(open_past_due).height >= 2
    assert a.filter(pl.col("type") == "ofi")["due_date"].null_count() > 0
    ra = frames["review_actions"]
    assert ra.filter(open_past_due).height >= 2
    assert ra.filter(pl.col("status") == "closed").height > ra.height / 2
