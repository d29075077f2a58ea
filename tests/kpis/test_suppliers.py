"""Supplier KPIs (8.4) and the scorecard: expected values worked out by hand (conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl
import pytest

from qmskpi import kpis
from qmskpi.config import KpiConfig, ScorecardConfig

Row = Callable[..., dict[str, Any]]


@pytest.fixture
def march(data: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return kpis.compute_kpis(data, "2026-03")


def test_otd_share(march: pl.DataFrame, kpi_row: Row) -> None:
    # March receipts: North R1 on time, R2 2 days late, R5 2 days late -> 1/3
    # South R3 early, R4 same day, R7 early -> 3/3; all 4/6 (R6 is February)
    north = kpi_row(march, "supplier_otd_share", "North")
    assert (north["numerator"], north["denominator"]) == (1, 3)
    assert kpi_row(march, "supplier_otd_share", "South")["value"] == 1.0
    assert kpi_row(march, "supplier_otd_share")["value"] == pytest.approx(4 / 6)


def test_otd_tolerance(data: dict[str, pl.DataFrame], kpi_row: Row) -> None:
    # tolerance 2 days: R2 and R5 (2 days late) become on time -> all 6/6
    out = kpis.compute_kpis(data, "2026-03", config=KpiConfig(supplier_otd_tolerance_days=2))
    assert kpi_row(out, "supplier_otd_share")["value"] == 1.0
    # tolerance 1 day: still late -> 4/6
    out = kpis.compute_kpis(data, "2026-03", config=KpiConfig(supplier_otd_tolerance_days=1))
    assert kpi_row(out, "supplier_otd_share")["numerator"] == 4


def test_supplier_ppm(march: pl.DataFrame, kpi_row: Row) -> None:
    # North rejected 0 + 5 + 20 = 25 of 1000 + 500 + 1000 = 2500 -> 10 000 ppm
    # South 10 + 0 + 1 = 11 of 2000 + 500 + 10 000 = 12 500 -> 880 ppm
    # all 36 / 15 000 x 1e6 = 2400 ppm
    north = kpi_row(march, "supplier_ppm", "North")
    assert (north["value"], north["numerator"], north["denominator"]) == (10_000.0, 25, 2500)
    assert kpi_row(march, "supplier_ppm", "South")["value"] == pytest.approx(880.0)
    assert kpi_row(march, "supplier_ppm")["value"] == pytest.approx(2400.0)


def test_evaluations_overdue(data: dict[str, pl.DataFrame], kpi_row: Row) -> None:
    # approved with next_evaluation_due < end: S1 (03-15) at 2026-03-31 -> 1
    # S2 due 03-31 is not < 03-31; S3 is conditional; S4 has no due date; S5 due in June
    march = kpis.compute_kpis(data, "2026-03")
    row = kpi_row(march, "supplier_evaluations_overdue")
    assert (row["value"], row["numerator"]) == (1, 1)
    # the supplier list has no site: per-site rows are null with the reason
    site = kpi_row(march, "supplier_evaluations_overdue", "North")
    assert site["value"] is None
    assert site["note"] == "not split by site: suppliers has no site"
    # Feb end 02-28: none; April end 04-30: S1 and S2 -> 2
    series = kpis.kpi_series(data, "2026-04", months=3).filter(
        (pl.col("kpi") == "supplier_evaluations_overdue") & (pl.col("scope") == "all")
    )
    assert series["value"].to_list() == [0, 1, 2]


def test_scorecard(data: dict[str, pl.DataFrame]) -> None:
    card = kpis.supplier_scorecard(data, "2026-03")
    assert card["supplier_id"].to_list() == ["S1", "S2", "S3", "S4", "S5"]
    rows = {r["supplier_id"]: r for r in card.iter_rows(named=True)}
    # S1: R1 on time, R2 late -> otd 0.5 -> 50; 5 / 1500 x 1e6 = 3333.33 ppm
    #     quality 100 x (1 - 3333.33 / 10 000) = 66.67; score 0.5 x 50 + 0.5 x 66.67 = 58.33 -> C
    s1 = rows["S1"]
    assert (s1["receipts"], s1["on_time_receipts"], s1["qty_received"], s1["qty_rejected"]) == (
        2,
        1,
        1500,
        5,
    )
    assert s1["ppm"] == pytest.approx(5 / 1500 * 1e6)
    assert s1["quality_score"] == pytest.approx(200 / 3)
    assert s1["score"] == pytest.approx(25 + 100 / 3)
    assert s1["rating"] == "C"
    assert s1["critical"] is True
    assert s1["evaluation_overdue"] is True  # approved, due 03-15 < 03-31
    # S2: R3, R4 both on time -> 100; 10 / 2500 = 4000 ppm -> quality 60; score 50 + 30 = 80 -> B
    assert (
        rows["S2"]["otd_score"],
        rows["S2"]["quality_score"],
        rows["S2"]["score"],
    ) == pytest.approx((100.0, 60.0, 80.0))
    assert rows["S2"]["rating"] == "B"
    assert rows["S2"]["evaluation_overdue"] is False  # due 03-31 is not < 03-31
    # S3: R5 late -> 0; 20 / 1000 = 20 000 ppm -> quality clipped at 0; score 0 -> C
    assert (rows["S3"]["quality_score"], rows["S3"]["score"], rows["S3"]["rating"]) == (
        0.0,
        0.0,
        "C",
    )
    assert rows["S3"]["evaluation_overdue"] is False  # conditional, not approved
    # S5: R7 early -> 100; 1 / 10 000 = 100 ppm -> quality 99; score 50 + 49.5 = 99.5 -> A
    assert rows["S5"]["score"] == pytest.approx(99.5)
    assert rows["S5"]["rating"] == "A"
    # S4: no receipts -> no scores, no rating
    assert rows["S4"]["receipts"] == 0
    assert (rows["S4"]["otd_share"], rows["S4"]["score"], rows["S4"]["rating"]) == (
        None,
        None,
        None,
    )
    # the overdue flags add up to the KPI
    assert card["evaluation_overdue"].sum() == 1


def test_scorecard_weights_and_thresholds(data: dict[str, pl.DataFrame]) -> None:
    # otd weight 0.8: S2 = 0.8 x 100 + 0.2 x 60 = 92 -> A at a_min 90
    sc = ScorecardConfig(otd_weight=0.8, quality_weight=0.2)
    card = kpis.supplier_scorecard(data, "2026-03", config=KpiConfig(scorecard=sc))
    s2 = card.filter(pl.col("supplier_id") == "S2").row(0, named=True)
    assert s2["score"] == pytest.approx(92.0)
    assert s2["rating"] == "A"
    # ppm_zero_score 5000: S1 quality = 100 x (1 - 3333.33 / 5000) = 33.33
    sc = ScorecardConfig(ppm_zero_score=5000.0)
    card = kpis.supplier_scorecard(data, "2026-03", config=KpiConfig(scorecard=sc))
    assert card.filter(pl.col("supplier_id") == "S1")["quality_score"].item() == pytest.approx(
        100 / 3
    )


def test_scorecard_one_site(data: dict[str, pl.DataFrame]) -> None:
    # South receipts only: S2 (R3, R4) and S5 (R7); S1 and S3 have none there
    card = kpis.supplier_scorecard(data, "2026-03", "South")
    assert card.filter(pl.col("receipts") > 0)["supplier_id"].to_list() == ["S2", "S5"]


# --------------------------------------------------------------------------- issue 16 revisions


def test_otd_by_due_date(march: pl.DataFrame, kpi_row: Row) -> None:
    # promised in March: North R1 (same day: on time), R2 (2 days late);
    # South R3 (1 day early), R4 (same day), R7 (1 day early) -- early within 7 days is on time
    # R5 (promised 02-27, received 03-01) belongs to February by its due date
    # North 1/2, South 3/3, all 4/5
    for scope, (num, den) in {"North": (1, 2), "South": (3, 3), "all": (4, 5)}.items():
        row = kpi_row(march, "supplier_otd_due_share", scope)
        assert (row["numerator"], row["denominator"]) == (num, den), scope


def _r(rid: str, promised: Any, received: Any) -> dict[str, Any]:
    return {
        "receipt_id": rid,
        "supplier_id": "S",
        "site": "X",
        "promised_date": promised,
        "received_date": received,
        "qty_received": 10,
        "qty_rejected": 0,
    }


def test_otd_due_window_edges(make: Callable[..., pl.DataFrame], kpi_row: Row) -> None:
    from datetime import date

    d = date
    frame = make(
        "receipts",
        [
            _r("early7", d(2026, 3, 20), d(2026, 3, 13)),  # 7 days early: on time
            _r("early8", d(2026, 3, 20), d(2026, 3, 12)),  # 8 days early: not on time
            _r("last_day", d(2026, 3, 31), d(2026, 3, 31)),  # due and received on the last day
            _r("after_end", d(2026, 3, 31), d(2026, 4, 2)),  # due in March, received in April
            _r("feb", d(2026, 2, 28), d(2026, 2, 28)),
        ],
    )
    out = kpis.compute_kpis({"receipts": frame}, "2026-03")
    row = kpi_row(out, "supplier_otd_due_share")
    assert (row["numerator"], row["denominator"]) == (2, 4)
    # the received-in-period reading counts early8 on time and does not see after_end
    old = kpi_row(out, "supplier_otd_share")
    assert (old["numerator"], old["denominator"]) == (3, 3)
    # early tolerance 10 days, late tolerance 2 days: early8 and after_end become on time
    cfg = KpiConfig(supplier_otd_early_days=10, supplier_otd_tolerance_days=2)
    wide = kpi_row(
        kpis.compute_kpis({"receipts": frame}, "2026-03", config=cfg), "supplier_otd_due_share"
    )
    assert (wide["numerator"], wide["denominator"]) == (4, 4)


def test_otd_due_with_nothing_due(make: Callable[..., pl.DataFrame], kpi_row: Row) -> None:
    from datetime import date

    frame = make("receipts", [_r("a", date(2026, 2, 27), date(2026, 3, 1))])
    row = kpi_row(kpis.compute_kpis({"receipts": frame}, "2026-03"), "supplier_otd_due_share")
    assert row["value"] is None
    assert row["note"] == "no deliveries due in period: share undefined"


def test_evaluations_overdue_counts_conditional_and_never_evaluated(
    march: pl.DataFrame, kpi_row: Row
) -> None:
    # at 03-31: S1 approved, due 03-15 -> overdue; S2 due 03-31 (the last day) -> not yet;
    # S3 conditional, due 01-01 -> overdue (the approved-only count leaves it out);
    # S4 approved, never evaluated (no dates) -> counted; S5 due 06-30 -> no.  3 vs 1
    assert kpi_row(march, "supplier_evaluations_overdue_active")["value"] == 3
    assert kpi_row(march, "supplier_evaluations_overdue")["value"] == 1
    site = kpi_row(march, "supplier_evaluations_overdue_active", "North")
    assert site["value"] is None
    assert site["note"].startswith("not split by site")


def test_receipts_from_unapproved(data: dict[str, pl.DataFrame], kpi_row: Row) -> None:
    # received in March: R5 from S3 (conditional) at North; the rest from approved suppliers
    march = kpis.compute_kpis(data, "2026-03")
    assert kpi_row(march, "receipts_from_unapproved", "North")["value"] == 1
    assert kpi_row(march, "receipts_from_unapproved", "South")["value"] == 0
    assert kpi_row(march, "receipts_from_unapproved")["value"] == 1
    # a supplier missing from the list is not approved either: drop S1 from the list
    # -> R1, R2 (North) count too: 3
    data = dict(data, suppliers=data["suppliers"].filter(pl.col("supplier_id") != "S1"))
    out = kpis.compute_kpis(data, "2026-03")
    assert kpi_row(out, "receipts_from_unapproved")["value"] == 3


def _decision(sid: str, day: Any, status: str, nxt: Any = None) -> dict[str, Any]:
    return {
        "supplier_id": sid,
        "decision_date": day,
        "approval_status": status,
        "next_evaluation_due": nxt,
    }


def test_status_as_of_from_the_approval_history(
    data: dict[str, pl.DataFrame], make: Callable[..., pl.DataFrame], kpi_row: Row
) -> None:
    from datetime import date

    d = date
    history = make(
        "supplier_approvals",
        [
            _decision("S1", d(2025, 3, 15), "approved", d(2026, 3, 15)),
            _decision("S2", d(2025, 3, 31), "approved", d(2026, 3, 31)),
            _decision("S3", d(2025, 1, 1), "approved", d(2026, 1, 1)),
            _decision("S3", d(2026, 3, 2), "conditional", d(2026, 9, 2)),  # from 03-02
            _decision("S5", d(2025, 6, 30), "approved", d(2026, 6, 30)),
            _decision("S5", d(2026, 3, 4), "disapproved"),  # decided the day R7 arrived
        ],
    )
    data = dict(data, supplier_approvals=history)
    march = kpis.compute_kpis(data, "2026-03")
    # receipts in March and the supplier's status that day:
    #   R1, R2 S1 approved; R3, R4 S2 approved; R5 S3 on 03-01: still approved (conditional
    #   from 03-02); R7 S5 on 03-04: disapproved that day -> 1 (North 0, South 1)
    # the current list says S3 is conditional and S5 approved -> R5 instead
    assert kpi_row(march, "receipts_from_unapproved_asof")["value"] == 1
    assert kpi_row(march, "receipts_from_unapproved_asof", "South")["value"] == 1
    assert kpi_row(march, "receipts_from_unapproved", "North")["value"] == 1
    # at 03-31: S1 due 03-15 -> overdue; S2 due 03-31 -> not yet; S3 conditional, due 09-02;
    #   S5 disapproved -> not counted; S4 has no decision -> not a supplier yet -> 1
    assert kpi_row(march, "supplier_evaluations_overdue_asof")["value"] == 1
    # at 2026-02-28: S3's approval from 2025-01-01 was due 2026-01-01 -> S3 overdue; S1, S2 not
    feb = kpis.compute_kpis(data, "2026-02")
    assert kpi_row(feb, "supplier_evaluations_overdue_asof")["value"] == 1
    # at 2025-02-28 only S3 had a decision (not yet due): 0; before 2025-01 no history at all
    early = kpis.compute_kpis(data, "2025-02")
    assert kpi_row(early, "supplier_evaluations_overdue_asof")["value"] == 0
    before = kpi_row(kpis.compute_kpis(data, "2024-12"), "supplier_evaluations_overdue_asof")
    assert before["value"] is None
    assert before["note"] == "before data: supplier_approvals starts 2025-01-01"


def test_receipt_before_any_decision_is_not_approved(
    make: Callable[..., pl.DataFrame], kpi_row: Row
) -> None:
    from datetime import date

    history = make("supplier_approvals", [_decision("S", date(2026, 3, 11), "approved")])
    receipts = make(
        "receipts",
        [
            _r("a", date(2026, 3, 10), date(2026, 3, 10)),
            _r("b", date(2026, 3, 11), date(2026, 3, 11)),
        ],
    )
    out = kpis.compute_kpis({"receipts": receipts, "supplier_approvals": history}, "2026-03")
    # a: received the day before the first decision -> not approved; b: approved that day
    assert kpi_row(out, "receipts_from_unapproved_asof")["value"] == 1


# --------------------------------------------------------------------------- open order lines


def _open(line: str, promised: Any, site: str = "X") -> dict[str, Any]:
    return {"order_line_id": line, "supplier_id": "S", "site": site, "promised_date": promised}


def _otd_due(data: dict[str, pl.DataFrame], kpi_row: Row, **kw: Any) -> dict[str, Any]:
    return kpi_row(
        kpis.compute_kpis(data, "2026-03", **kw), "supplier_otd_due_share", kw.pop("scope", "all")
    )


def test_open_lines_past_their_window_are_late_and_the_rest_pending(
    make: Callable[..., pl.DataFrame], kpi_row: Row
) -> None:
    from datetime import date

    d = date
    data = {
        "receipts": make("receipts", [_r("rcv", d(2026, 3, 10), d(2026, 3, 10))]),  # on time
        "open_orders": make(
            "open_orders",
            [
                _open("mid", d(2026, 3, 15)),
                _open("last_day", d(2026, 3, 31)),  # promised on the period's last day
                _open("next", d(2026, 4, 1)),  # due in April: not March's
                _open("feb", d(2026, 2, 27)),  # due in February: not March's
            ],
        ),
    }
    # as of 03-31 (tolerance 0): last_day's window closes at the end of 03-31: pending;
    # mid (03-15 < 03-31) is late. Due: rcv + mid = 2, on time: rcv -> 1/2
    row = _otd_due(data, kpi_row, as_of=d(2026, 3, 31))
    assert (row["numerator"], row["denominator"], row["value"]) == (1, 2, 0.5)
    assert row["note"] == "1 open line not yet due at 2026-03-31 left out"
    # one day later last_day is late too: 1/3, nothing pending
    row = _otd_due(data, kpi_row, as_of=d(2026, 4, 1))
    assert (row["numerator"], row["denominator"]) == (1, 3)
    assert row["note"] is None
    # 2 days of tolerance: late from promised + 3 days on. as of 04-02 (= 03-31 + 2) last_day
    # is still pending (1/2); as of 04-03 it is late (1/3). mid (03-17 < 04-02) is late.
    cfg = KpiConfig(supplier_otd_tolerance_days=2)
    row = _otd_due(data, kpi_row, as_of=d(2026, 4, 2), config=cfg)
    assert (row["numerator"], row["denominator"]) == (1, 2)
    assert row["note"] == "1 open line not yet due at 2026-04-02 left out"
    row = _otd_due(data, kpi_row, as_of=d(2026, 4, 3), config=cfg)
    assert (row["numerator"], row["denominator"]) == (1, 3)


def test_a_site_with_no_receipts_but_late_open_lines_scores_zero_not_null(
    make: Callable[..., pl.DataFrame], kpi_row: Row
) -> None:
    from datetime import date

    d = date
    data = {
        "receipts": make("receipts", [_r("rcv", d(2026, 3, 10), d(2026, 3, 10))]),  # site X
        "open_orders": make(
            "open_orders", [_open("y1", d(2026, 3, 5), "Y"), _open("y2", d(2026, 3, 20), "Y")]
        ),
    }
    # as of 04-05 both of Y's lines are past their window: Y 0/2, X 1/1, all 1/3
    out = kpis.compute_kpis(data, "2026-03", as_of=d(2026, 4, 5))
    y = kpi_row(out, "supplier_otd_due_share", "Y")
    assert (y["value"], y["numerator"], y["denominator"]) == (0.0, 0, 2)
    assert kpi_row(out, "supplier_otd_due_share", "X")["value"] == 1.0
    assert kpi_row(out, "supplier_otd_due_share")["value"] == pytest.approx(1 / 3)


def test_only_pending_open_lines_leave_the_share_undefined(
    make: Callable[..., pl.DataFrame], kpi_row: Row
) -> None:
    from datetime import date

    d = date
    data = {
        "receipts": make("receipts", [_r("feb", d(2026, 2, 20), d(2026, 3, 5))]),  # due in Feb
        "open_orders": make(
            "open_orders", [_open("a", d(2026, 3, 30)), _open("b", d(2026, 3, 31))]
        ),
    }
    row = _otd_due(data, kpi_row, as_of=d(2026, 3, 30))  # a: 03-30 is not before 03-30
    assert row["value"] is None
    assert (row["numerator"], row["denominator"]) == (0, 0)
    assert row["note"] == (
        "no deliveries due in period: share undefined; "
        "2 open lines not yet due at 2026-03-30 left out"
    )


def test_without_open_lines_the_figure_is_unchanged(
    data: dict[str, pl.DataFrame], make: Callable[..., pl.DataFrame]
) -> None:
    """Absent or empty, open_orders changes no KPI: receipts alone, as before it existed."""
    without = kpis.compute_kpis(data, "2026-03")
    empty = kpis.compute_kpis(data | {"open_orders": make("open_orders", [])}, "2026-03")
    assert without.equals(empty)
    d = kpis.REGISTRY["supplier_otd_due_share"]
    assert d.datasets == ("receipts",)
    assert d.optional_datasets == ("open_orders",)
    assert "Without open_orders a delivery never received is not seen" in d.definition


def test_as_of_defaults_to_the_newest_record_not_an_open_lines_promise(
    make: Callable[..., pl.DataFrame], kpi_row: Row
) -> None:
    from datetime import date

    from qmskpi.errors import KpiError

    d = date
    data = {
        # newest record: received 04-03 (5 days late)
        "receipts": make(
            "receipts",
            [_r("mar", d(2026, 3, 2), d(2026, 3, 2)), _r("apr", d(2026, 3, 29), d(2026, 4, 3))],
        ),
        "open_orders": make(
            "open_orders",
            [
                _open("late", d(2026, 3, 31)),  # 03-31 < 04-03: late
                _open("may", d(2026, 5, 20)),  # a promise in May does not make the data newer
            ],
        ),
    }
    row = _otd_due(data, kpi_row)  # on time: mar; due: mar, apr, late -> 1/3
    assert (row["numerator"], row["denominator"]) == (1, 3)
    with pytest.raises(KpiError, match="starts after the newest data"):
        kpis.compute_kpis(data, "2026-05")


def test_open_lines_that_failed_validation_make_the_figure_unsound(
    data: dict[str, pl.DataFrame], make: Callable[..., pl.DataFrame], kpi_row: Row
) -> None:
    from datetime import date

    both = data | {"open_orders": make("open_orders", [_open("a", date(2026, 3, 2), "North")])}
    out = kpis.compute_kpis(both, "2026-03", unsound={"open_orders"})
    row = kpi_row(out, "supplier_otd_due_share")
    assert row["sound"] is False
    assert row["note"] == "inputs failed validation: open_orders"
    assert kpi_row(out, "supplier_otd_share")["sound"] is True  # receipts alone
