"""Suppliers, receipts and open order lines: the deteriorating supplier, statuses, evaluations."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from synthetic.helpers import END_DAY


def test_supplier_otd_deteriorates(frames: dict[str, pl.DataFrame]) -> None:
    r = frames["receipts"].filter(pl.col("supplier_id") == "SUP-003")
    on_time = (pl.col("received_date") <= pl.col("promised_date")).mean()
    first12 = r.filter(pl.col("received_date") < date(2024, 11, 1)).select(on_time).item()
    last6 = r.filter(pl.col("received_date") >= date(2026, 5, 1)).select(on_time).item()
    assert first12 > 0.9
    assert last6 < first12 - 0.2
    others = frames["receipts"].filter(pl.col("supplier_id") != "SUP-003")
    others_last6 = others.filter(pl.col("received_date") >= date(2026, 5, 1)).select(on_time).item()
    assert others_last6 > 0.88
    sup = frames["suppliers"].filter(pl.col("supplier_id") == "SUP-003").row(0, named=True)
    assert sup["critical"] is True


def test_open_order_lines_late_ones_mostly_the_deteriorating_supplier(
    frames: dict[str, pl.DataFrame],
) -> None:
    o = frames["open_orders"]
    end = date(2026, 10, 31)
    late = o.filter(pl.col("promised_date") <= end)
    assert o.height > 2 * late.height  # most lines are not due yet at the export
    by_supplier = late["supplier_id"].value_counts(sort=True)
    assert by_supplier["supplier_id"][0] == "SUP-003"
    planted = late.filter(pl.col("promised_date") < end - timedelta(days=20))
    assert planted["supplier_id"].to_list() == ["SUP-003", "SUP-003"]
    assert sorted((end - d).days for d in planted["promised_date"].to_list()) == [24, 33]
    assert "SUP-015" not in o["supplier_id"].to_list()  # disapproved: nothing on order


def test_suppliers_statuses_and_overdue_evaluations(frames: dict[str, pl.DataFrame]) -> None:
    s = frames["suppliers"]
    assert set(s["approval_status"].to_list()) == {"approved", "conditional", "disapproved"}
    assert 0 < s["critical"].sum() < s.height
    overdue = s.filter(
        (pl.col("approval_status") == "approved") & (pl.col("next_evaluation_due") < END_DAY)
    )
    assert overdue.height >= 2
    gone = frames["receipts"].filter(
        (pl.col("supplier_id") == "SUP-015") & (pl.col("received_date") >= date(2026, 1, 1))
    )
    assert gone.is_empty()
