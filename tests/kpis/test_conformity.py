"""Conformity KPIs (8.6) and the defect Pareto: expected values worked out by hand (conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl
import pytest

from qmskpi import kpis

Row = Callable[..., dict[str, Any]]


@pytest.fixture
def march(data: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return kpis.compute_kpis(data, "2026-03")


def test_fpy_overall(march: pl.DataFrame, kpi_row: Row) -> None:
    # North i01 pass, i02 fail, i03 pass, i04 pass, i05 fail, i06 pass -> 4/6
    # South i07 fail, i08 pass, i09 pass, i10 pass, i11 fail -> 3/5; all 7/11 (i12 is February)
    north = kpi_row(march, "fpy_share", "North")
    assert (north["numerator"], north["denominator"]) == (4, 6)
    assert kpi_row(march, "fpy_share", "South")["value"] == pytest.approx(0.6)
    assert kpi_row(march, "fpy_share")["value"] == pytest.approx(7 / 11)


def test_fpy_per_stage(march: pl.DataFrame, kpi_row: Row) -> None:
    # incoming: North i01 pass, i02 fail -> 1/2; South none -> null; all 1/2
    assert kpi_row(march, "fpy_share_incoming", "North")["value"] == 0.5
    south = kpi_row(march, "fpy_share_incoming", "South")
    assert south["value"] is None
    assert south["note"] == "no incoming inspections in period: share undefined"
    assert kpi_row(march, "fpy_share_incoming")["value"] == 0.5
    # in_process: North i03, i04 pass -> 2/2; South i07 fail, i08 pass -> 1/2; all 3/4
    assert kpi_row(march, "fpy_share_in_process", "North")["value"] == 1.0
    assert kpi_row(march, "fpy_share_in_process", "South")["value"] == 0.5
    assert kpi_row(march, "fpy_share_in_process")["value"] == 0.75
    # final: North i05 fail, i06 pass -> 1/2; South i09, i10 pass, i11 fail -> 2/3; all 3/5
    assert kpi_row(march, "fpy_share_final", "North")["value"] == 0.5
    assert kpi_row(march, "fpy_share_final", "South")["value"] == pytest.approx(2 / 3)
    assert kpi_row(march, "fpy_share_final")["value"] == pytest.approx(0.6)


def test_defect_ppm(march: pl.DataFrame, kpi_row: Row) -> None:
    # North defective 0 + 5 + 0 + 1 + 2 + 0 = 8 of 100 + 100 + 200 + 200 + 50 + 50 = 700 -> 11 428.57 ppm
    # South 10 + 0 + 0 + 0 + 4 = 14 of 500 -> 28 000 ppm; all 22 / 1200 x 1e6 = 18 333.33 ppm
    north = kpi_row(march, "defect_ppm", "North")
    assert (north["numerator"], north["denominator"]) == (8, 700)
    assert north["value"] == pytest.approx(8 / 700 * 1e6)
    assert kpi_row(march, "defect_ppm", "South")["value"] == pytest.approx(28_000.0)
    assert kpi_row(march, "defect_ppm")["value"] == pytest.approx(22 / 1200 * 1e6)


def test_rty(march: pl.DataFrame, kpi_row: Row) -> None:
    # North 0.5 (incoming) x 1.0 (in-process) x 0.5 (final) = 0.25
    # South: no incoming stage (left out) x 0.5 x 2/3 = 1/3
    # all 0.5 x 0.75 x 0.6 = 0.225 (from pooled stage yields, not from site RTYs)
    assert kpi_row(march, "rty_share", "North")["value"] == pytest.approx(0.25)
    assert kpi_row(march, "rty_share", "South")["value"] == pytest.approx(1 / 3)
    row = kpi_row(march, "rty_share")
    assert row["value"] == pytest.approx(0.225)
    assert (row["numerator"], row["denominator"]) == (None, None)


def test_month_without_inspections(data: dict[str, pl.DataFrame], kpi_row: Row) -> None:
    # January 2026 ends before the first inspection (i12, 2026-02-20): null, "before data"
    # (complaints do cover January, so this is a per-dataset coverage, not the whole data's)
    jan = kpis.compute_kpis(data, "2026-01")
    assert kpi_row(jan, "fpy_share")["note"] == "before data: inspections starts 2026-02-20"
    # February has only i12 (North final pass): South has none -> null with reason, never NaN
    feb = kpis.compute_kpis(data, "2026-02")
    assert kpi_row(feb, "fpy_share", "North")["value"] == 1.0
    south = kpi_row(feb, "fpy_share", "South")
    assert (south["value"], south["numerator"], south["denominator"]) == (None, 0, 0)
    assert south["note"] == "no inspections in period: share undefined"
    assert kpi_row(feb, "rty_share", "South")["note"] == "no inspections in period: yield undefined"
    assert (
        kpi_row(feb, "defect_ppm", "South")["note"]
        == "no quantity inspected in period: rate undefined"
    )


def test_defect_pareto_by_inspections(data: dict[str, pl.DataFrame]) -> None:
    table = kpis.defect_pareto(data, "2026-03")
    # coded inspections: D1 i02, i05, i11 = 3 (qty 5 + 2 + 4 = 11); D3 i07 = 1 (qty 10); D2 i04 = 1 (qty 1)
    # D3 and D2 tie on count; D3 first by qty_defective 10 > 1
    assert table["defect_code"].to_list() == ["D1", "D3", "D2"]
    assert table["count"].to_list() == [3, 1, 1]
    assert table["qty_defective"].to_list() == [11, 10, 1]
    assert table["share"].to_list() == pytest.approx([0.6, 0.2, 0.2])  # of 5
    assert table["cumulative_share"].to_list() == pytest.approx([0.6, 0.8, 1.0])
    # D1 (0 before) and D3 (0.6 before, reaches exactly 0.8) are the vital few; D2 starts at 0.8
    assert table["vital_few"].to_list() == [True, True, False]
    assert table["rank"].to_list() == [1, 2, 3]


def test_defect_pareto_by_quantity(data: dict[str, pl.DataFrame]) -> None:
    table = kpis.defect_pareto(data, "2026-03", measure="qty_defective")
    # D1 11, D3 10, D2 1 of 22: cumulative 0.5, 0.9545, 1.0 -> D3 crosses 80 % and is included
    assert table["defect_code"].to_list() == ["D1", "D3", "D2"]
    assert table["cumulative_share"].to_list() == pytest.approx([0.5, 21 / 22, 1.0])
    assert table["vital_few"].to_list() == [True, True, False]
    # South only: D3 10 of 14, D1 4 -> 10/14 = 0.714 < 0.8, so D1 is needed too
    south = kpis.defect_pareto(data, "2026-03", "South", measure="qty_defective")
    assert south["vital_few"].to_list() == [True, True]


# --------------------------------------------------------------------------- issue 16 revisions


def _i(
    iid: str, day: Any, result: str, lot: str | None, stage: str = "final", **kw: Any
) -> dict[str, Any]:
    return {
        "inspection_id": iid,
        "inspection_date": day,
        "site": kw.get("site", "X"),
        "stage": stage,
        "lot_id": lot,
        "result": result,
        "qty_inspected": kw.get("qty", 10),
        "qty_defective": kw.get("bad", 0),
    }


def test_fpy_counts_lots_on_their_first_inspection(
    make: Callable[..., pl.DataFrame], kpi_row: Row
) -> None:
    from datetime import date

    d = date
    frame = make(
        "inspections",
        [
            _i("1", d(2026, 3, 2), "fail", "L1"),  # L1 fails, passes re-inspection: 0
            _i("2", d(2026, 3, 3), "pass", "L1"),
            _i("3", d(2026, 3, 4), "fail", "L2"),  # L2: fail and pass the same day: 0
            _i("4", d(2026, 3, 4), "pass", "L2"),
            _i("5", d(2026, 3, 5), "pass", "L3"),  # L3 passes first time: 1
            _i("6", d(2026, 2, 27), "fail", "L4"),  # L4 first inspected in February
            _i("7", d(2026, 3, 1), "pass", "L4"),  #   its March re-inspection is not a lot
            _i("8", d(2026, 3, 6), "pass", None),  # no lot id: a lot of its own, passes: 1
            _i("9", d(2026, 3, 6), "pass", "L1", stage="in_process"),  # L1 at another stage
        ],
    )
    out = kpis.compute_kpis({"inspections": frame}, "2026-03")
    # final lots first inspected in March: L1, L2, L3, record 8 -> 2 of 4 pass first time
    final = kpi_row(out, "fpy_lot_share_final")
    assert (final["numerator"], final["denominator"]) == (2, 4)
    every = kpi_row(out, "fpy_lot_share")
    assert (every["numerator"], every["denominator"]) == (3, 5)
    # the record pass rate counts re-inspections: final records in March 2,3,4,5,7,8 -> 5/7
    rate = kpi_row(out, "fpy_share_final")
    assert (rate["numerator"], rate["denominator"]) == (5, 7)
    feb = kpi_row(kpis.compute_kpis({"inspections": frame}, "2026-02"), "fpy_lot_share_final")
    assert (feb["numerator"], feb["denominator"]) == (0, 1)


def test_lot_results_null_and_records_without_a_lot(
    make: Callable[..., pl.DataFrame], kpi_row: Row
) -> None:
    from datetime import date

    d = date
    frame = make(
        "inspections",
        [
            _i("1", d(2026, 3, 2), None, None),  # no lot, no result: a lot that passed
            _i("2", d(2026, 3, 2), "fail", None),  # no lot, failed: 0
            _i("3", d(2026, 3, 3), None, "L1"),  # L1's first day: null ignored, pass -> 1
            _i("4", d(2026, 3, 3), "pass", "L1"),
            _i("5", d(2026, 3, 4), None, "L2"),  # L2: only a null result -> passed: 1
            _i("6", None, "fail", "L3"),  # L3 undated: no first day, not counted
        ],
    )
    out = kpis.compute_kpis({"inspections": frame}, "2026-03")
    row = kpi_row(out, "fpy_lot_share_final")
    assert (row["numerator"], row["denominator"]) == (3, 4)


def test_lots_counted_again_after_a_frame_grows_in_place(
    make: Callable[..., pl.DataFrame], kpi_row: Row
) -> None:
    from datetime import date

    frame = make("inspections", [_i("1", date(2026, 3, 2), "pass", "L1")])
    first = kpi_row(kpis.compute_kpis({"inspections": frame}, "2026-03"), "fpy_lot_share")
    assert (first["numerator"], first["denominator"]) == (1, 1)
    # the same frame object, one lot more: the per-frame memo must not answer for it
    frame.extend(make("inspections", [_i("2", date(2026, 3, 3), "fail", "L2")]))
    again = kpi_row(kpis.compute_kpis({"inspections": frame}, "2026-03"), "fpy_lot_share")
    assert (again["numerator"], again["denominator"]) == (1, 2)


def test_the_memo_forgets_a_frame_that_is_dropped(make: Callable[..., pl.DataFrame]) -> None:
    import gc
    from datetime import date

    from qmskpi.kpis._common import MEMO

    frame = make("inspections", [_i("1", date(2026, 3, 2), "pass", "L1")])
    kpis.compute_kpis({"inspections": frame}, "2026-03")
    ident = id(frame)
    assert MEMO.find(frame, "profile")[0]
    del frame
    gc.collect()
    assert ident not in MEMO._by_id


def test_rty_of_own_stages(march: pl.DataFrame, kpi_row: Row) -> None:
    # each record is a lot (no lot ids in conftest); incoming is left out
    # North: in-process 2/2 x final 1/2 = 0.5; South: 1/2 x 2/3 = 1/3
    # all: in-process 3/4 x final 3/5 = 0.45 (the old RTY multiplies incoming 1/2 too: 0.225)
    assert kpi_row(march, "rty_internal_share", "North")["value"] == pytest.approx(0.5)
    assert kpi_row(march, "rty_internal_share", "South")["value"] == pytest.approx(1 / 3)
    assert kpi_row(march, "rty_internal_share")["value"] == pytest.approx(0.45)
    assert kpi_row(march, "rty_share")["value"] == pytest.approx(0.225)


def test_rty_is_undefined_when_a_stage_is_missing(
    make: Callable[..., pl.DataFrame], kpi_row: Row
) -> None:
    from datetime import date

    # one final inspection only: the old RTY says 1.0, the own-stage RTY is unknown
    frame = make("inspections", [_i("1", date(2026, 3, 2), "pass", "L1")])
    out = kpis.compute_kpis({"inspections": frame}, "2026-03")
    assert kpi_row(out, "rty_share")["value"] == 1.0
    row = kpi_row(out, "rty_internal_share")
    assert row["value"] is None
    assert row["note"] == "no lots inspected in period at: in_process"


def test_defect_ppm_per_stage(march: pl.DataFrame, kpi_row: Row) -> None:
    # incoming: North 5 of 200 -> 25 000; South none -> null
    # in-process: North 1 of 400, South 10 of 200 -> all 11 / 600 x 1e6 = 18 333.3
    # final: North 2 of 100 = 20 000; South 4 of 300 = 13 333.3; all 6 / 400 = 15 000
    assert kpi_row(march, "defect_ppm_incoming", "North")["value"] == pytest.approx(25_000)
    assert kpi_row(march, "defect_ppm_incoming", "South")["value"] is None
    assert kpi_row(march, "defect_ppm_in_process")["value"] == pytest.approx(11 / 600 * 1e6)
    final = kpi_row(march, "defect_ppm_final")
    assert (final["numerator"], final["denominator"]) == (6, 400)
    assert final["value"] == pytest.approx(15_000)
    assert kpi_row(march, "defect_ppm_final", "South")["value"] == pytest.approx(4 / 300 * 1e6)


def test_cost_of_poor_quality(make: Callable[..., pl.DataFrame], kpi_row: Row) -> None:
    from datetime import date

    d = date
    inspections = make(
        "inspections",
        [
            _i("1", d(2026, 3, 2), "fail", "L1") | {"cost": 120.0},
            _i("2", d(2026, 3, 3), "pass", "L2") | {"cost": 0.0},
            _i("3", d(2026, 3, 4), "pass", "L3"),  # no cost recorded: adds nothing
            _i("4", d(2026, 3, 5), "fail", "L4", site="Y") | {"cost": 30.5},
            _i("5", d(2026, 2, 5), "fail", "L5") | {"cost": 999.0},  # February
        ],
    )
    complaints = make(
        "complaints",
        [
            {
                "complaint_id": "a",
                "received_date": d(2026, 3, 9),
                "site": "X",
                "customer": "k",
                "cost": 400.0,
            },
            {"complaint_id": "b", "received_date": d(2026, 3, 31), "site": "X", "customer": "k"},
            {"complaint_id": "c", "received_date": d(2026, 2, 9), "site": "Y", "customer": "k"},
        ],
    )
    out = kpis.compute_kpis({"inspections": inspections, "complaints": complaints}, "2026-03")
    internal = kpi_row(out, "copq_internal")
    assert (internal["value"], internal["denominator"]) == (150.5, 3)  # 120 + 0 + 30.5
    assert kpi_row(out, "copq_internal", "Y")["value"] == 30.5
    assert kpi_row(out, "copq_external")["value"] == 400.0
    assert kpi_row(out, "copq_total")["value"] == 550.5
    # site Y has no complaint cost in March: its total is internal only, and says so
    y = kpi_row(out, "copq_total", "Y")
    assert y["value"] == 30.5
    assert y["note"] == "no complaint cost recorded in period: internal only"
    ext = kpi_row(out, "copq_external", "Y")
    assert ext["value"] is None
    assert ext["note"] == "no complaint cost recorded in period"
