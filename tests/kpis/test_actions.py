"""Review actions (9.3.2 a) and the overdue list: expected values worked out by hand (conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from qmskpi import kpis

Row = Callable[..., dict[str, Any]]


def test_review_actions_at_march_end(data: dict[str, pl.DataFrame], kpi_row: Row) -> None:
    # at 03-31: open A2 (due 03-31, not overdue), A3 (due 03-01, overdue), A5 (reviewed 03-25) -> 3 open, 1 overdue
    # A4 closed 03-10, A6 closed 03-31 (= end, so not open) -> 2 closed in March
    march = kpis.compute_kpis(data, "2026-03")
    assert kpi_row(march, "review_actions_open")["value"] == 3
    assert kpi_row(march, "review_actions_overdue")["value"] == 1
    assert kpi_row(march, "review_actions_closed")["value"] == 2


def test_review_actions_at_february_end(data: dict[str, pl.DataFrame], kpi_row: Row) -> None:
    # at 02-28: open A2, A3, A4 (closed 03-10), A6 (closed 03-31); A1 closed 02-10 -> 4
    # overdue: A4 (due 02-15), A6 (due 2025-12-31) -> 2; closed in February: A1 -> 1
    feb = kpis.compute_kpis(data, "2026-02")
    assert kpi_row(feb, "review_actions_open")["value"] == 4
    assert kpi_row(feb, "review_actions_overdue")["value"] == 2
    assert kpi_row(feb, "review_actions_closed")["value"] == 1


def test_review_actions_are_whole_scope_only(data: dict[str, pl.DataFrame], kpi_row: Row) -> None:
    site = kpi_row(kpis.compute_kpis(data, "2026-03", "North"), "review_actions_open", "North")
    assert site["value"] is None
    assert site["note"] == "not split by site: review_actions has no site"


def test_overdue_items(data: dict[str, pl.DataFrame]) -> None:
    table = kpis.overdue_items(data, "2026-03")
    assert table.columns == [
        "item_type",
        "item_id",
        "site",
        "owner",
        "detail",
        "opened_date",
        "due_date",
        "days_overdue",
    ]
    # days overdue at 03-31: K6 due 2025-12-01 -> 30 + 31 + 28 + 31 = 120; F6 due 01-31 -> 28 + 31 = 59;
    # K3 due 03-01 -> 30; A3 due 03-01 -> 30; F5 due 03-11 -> 20; F3 due 03-20 -> 11
    assert table["item_id"].to_list() == ["K6", "F6", "K3", "A3", "F5", "F3"]
    assert table["days_overdue"].to_list() == [120, 59, 30, 30, 20, 11]
    a3 = table.filter(pl.col("item_id") == "A3").row(0, named=True)
    assert (a3["item_type"], a3["owner"], a3["site"], a3["detail"]) == (
        "review_action",
        "HR",
        None,
        "train inspectors",
    )
    f5 = table.filter(pl.col("item_id") == "F5").row(0, named=True)
    assert f5["detail"] == "minor_nc (clause 7.2), audit A0"
    # the counts match the KPIs: 2 CAPAs, 3 findings, 1 review action
    assert table["item_type"].value_counts().sort("item_type").rows() == [
        ("audit_finding", 3),
        ("capa", 2),
        ("review_action", 1),
    ]
    # a site's list leaves out review actions (no site)
    assert kpis.overdue_items(data, "2026-03", "South")["item_id"].to_list() == ["F6", "K3", "F3"]


def test_overdue_list_holds_nonconformities_and_agreed_ofis_only(
    make: Callable[..., pl.DataFrame],
) -> None:
    from datetime import date

    # audited 2026-01-20: the default due date (+60 days, 03-21) has passed at 03-31
    frame = make(
        "audit_findings",
        [
            {"finding_id": "ofi", "audit_date": date(2026, 1, 20), "site": "X", "type": "ofi"},
            {"finding_id": "nc", "audit_date": date(2026, 1, 20), "site": "X", "type": "minor_nc"},
            {
                "finding_id": "agreed",
                "audit_date": date(2026, 1, 20),
                "site": "X",
                "type": "observation",
                "due_date": date(2026, 3, 30),
            },
            {
                "finding_id": "closed",
                "audit_date": date(2026, 1, 20),
                "site": "X",
                "type": "major_nc",
                "closed_date": date(2026, 3, 31),
            },
        ],
    )
    items = kpis.overdue_items({"audit_findings": frame}, "2026-03")
    assert items["item_id"].to_list() == ["nc", "agreed"]  # 10 and 1 days overdue
    assert items["days_overdue"].to_list() == [10, 1]
