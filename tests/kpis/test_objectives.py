"""Objective attainment (6.2): expected values worked out by hand (conftest.py)."""

from __future__ import annotations

import polars as pl
import pytest

from qmskpi import kpis


def test_objective_attainment(data: dict[str, pl.DataFrame]) -> None:
    table = kpis.objective_attainment(data, "2026-03")
    assert table["objective_id"].to_list() == ["O1", "O2", "O3", "O4"]
    rows = {r["objective_id"]: r for r in table.iter_rows(named=True)}
    # O1 -> complaint_rate_ppm, whole scope, March: 6 / 150 000 x 1e6 = 40 <= 50 (lower is better) -> met
    # YTD Jan-Mar recomputed from rows: 13 / 210 000 x 1e6 = 61.9 > 50 -> not met
    o1 = rows["O1"]
    assert (o1["source"], o1["actual"], o1["met"]) == ("kpi", pytest.approx(40.0), True)
    assert o1["ytd_actual"] == pytest.approx(13 / 210_000 * 1e6)
    assert o1["ytd_met"] is False
    assert o1["sound"] is True
    # O2 manual: March 0.92 >= 0.9 -> met; YTD mean (0.8 + 0.95 + 0.92) / 3 = 0.89 < 0.9 -> not met
    o2 = rows["O2"]
    assert (o2["source"], o2["actual"], o2["met"]) == ("manual", 0.92, True)
    assert o2["ytd_actual"] == pytest.approx(0.89)
    assert o2["ytd_met"] is False
    # O3 names a KPI that does not exist: no actual, a did-you-mean note
    assert rows["O3"]["actual"] is None
    assert "did you mean 'complaint_rate_ppm'" in rows["O3"]["note"]
    # O4 manual without a March result: YTD from January's 90 <= 100 -> met
    o4 = rows["O4"]
    assert (o4["actual"], o4["met"]) == (None, None)
    assert o4["note"] == "no result for 2026-03 in objective_results"
    assert (o4["ytd_actual"], o4["ytd_met"]) == (90.0, True)


def test_objective_attainment_quarter(data: dict[str, pl.DataFrame]) -> None:
    table = kpis.objective_attainment(data, "2026-Q1")
    rows = {r["objective_id"]: r for r in table.iter_rows(named=True)}
    # O1 for Q1 is recomputed from rows: 13 / 210 000 x 1e6 (never a mean of monthly rates)
    assert rows["O1"]["actual"] == pytest.approx(13 / 210_000 * 1e6)
    # O2 for Q1: mean of the three monthly actuals = 0.89
    assert rows["O2"]["actual"] == pytest.approx(0.89)


def test_objective_attainment_reuses_kpi_values_and_flags_unsound(
    data: dict[str, pl.DataFrame],
) -> None:
    values = kpis.compute_kpis(data, "2026-03", unsound={"shipments"})
    table = kpis.objective_attainment(data, "2026-03", kpi_values=values, unsound={"shipments"})
    o1 = table.filter(pl.col("objective_id") == "O1").row(0, named=True)
    assert o1["sound"] is False
    assert o1["note"] == "inputs failed validation: shipments"


def test_objective_trend(data: dict[str, pl.DataFrame]) -> None:
    trend = kpis.objective_trend(data, "2026-03", months=3)
    o1 = trend.filter(pl.col("objective_id") == "O1")
    assert o1["month"].to_list() == ["2026-01", "2026-02", "2026-03"]
    # whole-scope complaint rate per month: 300, 80, 40 against target 50 (lower is better)
    assert o1["actual"].to_list() == pytest.approx([300.0, 80.0, 40.0])
    assert o1["met"].to_list() == [False, False, True]
    assert o1["target"].to_list() == [50.0, 50.0, 50.0]
    o2 = trend.filter(pl.col("objective_id") == "O2")
    assert o2["actual"].to_list() == [0.8, 0.95, 0.92]
    assert o2["met"].to_list() == [False, True, True]
    o4 = trend.filter(pl.col("objective_id") == "O4")
    assert o4["actual"].to_list() == [90.0, None, None]
