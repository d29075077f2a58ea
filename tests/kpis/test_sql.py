"""The first aggregation level run in a real database (DuckDB, PostgreSQL) through SQLAlchemy.

What a user depends on: with ``pushdown`` the KPIs computed from the database's
aggregates are the KPIs computed from the rows, value for value and note for
note. The hand-checked rows of conftest.py give the expected numbers; a seeded
random data set (nulls, three stages, 18 months, costs in quarters so that
float sums are exact in any order) checks equality on every covered KPI, for a
month, a quarter, a year and a 24-month series. PostgreSQL runs when
``QMSKPI_TEST_PG_URL`` is set (``make test`` starts a throwaway server).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pytest
import sqlalchemy as sa

from conftest import PgTable, create_table
from kpis.test_firstlevel import hand_complaints
from qmskpi import kpis
from qmskpi.config import KpiConfig
from qmskpi.datasets import DATASETS
from qmskpi.errors import KpiError
from qmskpi.kpis.firstlevel import (
    AT_END,
    Days,
    Earlier,
    Level,
    Within,
    count,
    first_level,
    level_of,
)
from qmskpi.kpis.sql import first_level_sql, level_sql
from qmskpi.periods import period_containing

Row = Callable[..., dict[str, Any]]
MEASURES = kpis.PUSHDOWN["inspections"]
COVERED = kpis.pushed_down("inspections")


def _random_inspections(n: int = 3000, seed: int = 19) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    start = date(2025, 1, 1)
    days = rng.integers(0, 546, n)  # 2025-01-01 .. 2026-06-30
    stage = np.array(["incoming", "in_process", "final", None], dtype=object)[
        rng.choice(4, n, p=[0.3, 0.35, 0.3, 0.05])
    ]
    result = np.array(["pass", "fail", None], dtype=object)[rng.choice(3, n, p=[0.8, 0.18, 0.02])]
    qty = rng.integers(1, 300, n)
    cost = np.where(rng.random(n) < 0.3, rng.integers(1, 4000, n) / 4, np.nan)
    return pl.DataFrame(
        {
            "inspection_id": [f"I{i}" for i in range(n)],
            "inspection_date": [start + timedelta(days=int(d)) for d in days],
            "site": [["North", "South", "East"][i] for i in rng.integers(0, 3, n)],
            "product": "p1",
            "stage": stage.tolist(),
            "lot_id": [f"L{i}" if i % 5 else None for i in rng.integers(0, 900, n)],
            "qty_inspected": qty,
            "qty_defective": rng.binomial(qty, 0.03),
            "result": result.tolist(),
            "cost": pl.Series(cost).fill_nan(None),
        },
        schema_overrides={"qty_inspected": pl.Int64(), "qty_defective": pl.Int64()},
    ).select([f.name for f in DATASETS["inspections"].fields if f.name != "defect_code"])


# --------------------------------------------------------------------------- databases


def _duckdb(tmp_path: Path, frame: pl.DataFrame) -> tuple[sa.Engine, str]:
    path = tmp_path / "qms.duckdb"
    con = duckdb.connect(str(path))
    con.register("frame", frame.to_arrow())
    con.execute("CREATE TABLE inspections AS SELECT * FROM frame")
    con.close()
    engine = sa.create_engine(f"duckdb:///{path}", connect_args={"read_only": True})
    return engine, "SELECT * FROM inspections"


# --------------------------------------------------------------------------- checks


def _pushed(engine: sa.Engine, query: str) -> kpis.FirstLevel:
    return first_level_sql(engine, query, "inspections", "inspection_date", MEASURES)


def _check_equal(data: dict[str, pl.DataFrame], agg: kpis.FirstLevel) -> None:
    """Every covered KPI equal with and without rows; uncovered ones pulled or marked."""
    rest = {k: v for k, v in data.items() if k != "inspections"}
    both = {"inspections": agg}
    for period in ("2026-03", "2026-Q1", "2025"):
        rows = kpis.compute_kpis(data, period)
        pushed = kpis.compute_kpis(rest, period, aggregates=both)
        covered = pl.col("kpi").is_in(list(COVERED))
        assert pushed.filter(covered).equals(rows.filter(covered)), period
        # with the rows there too, every KPI (complaints' included) equals the rows-only result
        assert kpis.compute_kpis(data, period, aggregates=both).equals(rows), period
    series = kpis.kpi_series(data, "2026-03", months=24)
    assert (
        kpis.kpi_series(rest, "2026-03", months=24, aggregates=both)
        .filter(pl.col("kpi").is_in(list(COVERED)))
        .equals(series.filter(pl.col("kpi").is_in(list(COVERED))))
    )


def test_covered_kpis_are_the_inspection_measures() -> None:
    assert set(COVERED) == {
        "fpy_lot_share",
        *(f"fpy_lot_share_{s}" for s in ("incoming", "in_process", "final")),
        "rty_internal_share",
        "fpy_share",
        *(f"fpy_share_{s}" for s in ("incoming", "in_process", "final")),
        "defect_ppm",
        *(f"defect_ppm_{s}" for s in ("incoming", "in_process", "final")),
        "rty_share",
        "copq_internal",
        "copq_total",
    }


def test_duckdb_hand_checked(tmp_path: Path, data: dict[str, pl.DataFrame], kpi_row: Row) -> None:
    engine, query = _duckdb(tmp_path, data["inspections"].drop("source_row"))
    agg = _pushed(engine, query)
    engine.dispose()
    rest = {k: v for k, v in data.items() if k != "inspections"}
    march = kpis.compute_kpis(rest, "2026-03", aggregates={"inspections": agg})
    # the numbers of test_conformity.py, now from the database's aggregates
    north = kpi_row(march, "fpy_share", "North")
    assert (north["numerator"], north["denominator"]) == (4, 6)
    assert kpi_row(march, "fpy_share")["value"] == pytest.approx(7 / 11)
    assert kpi_row(march, "defect_ppm")["value"] == pytest.approx(22 / 1200 * 1e6)
    assert kpi_row(march, "rty_share")["value"] == pytest.approx(0.225)
    _check_equal(data, agg)


def test_duckdb_equals_polars(tmp_path: Path, data: dict[str, pl.DataFrame]) -> None:
    ins = _random_inspections()
    engine, query = _duckdb(tmp_path, ins)
    agg = _pushed(engine, query)
    engine.dispose()
    ref = first_level(ins.lazy(), "inspections", "inspection_date", MEASURES)
    assert agg.frame.equals(ref.frame)
    _check_equal({"inspections": ins, "complaints": data["complaints"]}, agg)


def test_duckdb_binds_parameters(tmp_path: Path) -> None:
    ins = _random_inspections()
    engine, _ = _duckdb(tmp_path, ins)
    agg = first_level_sql(
        engine,
        "SELECT * FROM inspections WHERE site = :site AND inspection_date >= :start",
        "inspections",
        "inspection_date",
        MEASURES,
        params={"site": "East'; DROP TABLE inspections; --", "start": date(2025, 1, 1)},
    )
    assert agg.frame.height == 0
    agg = first_level_sql(
        engine,
        "SELECT * FROM inspections WHERE site = :site",
        "inspections",
        "inspection_date",
        MEASURES,
        params={"site": "East"},
    )
    engine.dispose()
    assert agg.sites == ("East",)
    assert agg.frame["n"].sum() == ins.filter(pl.col("site") == "East").height


@pytest.mark.postgres
def test_postgresql_equals_polars(pg_table: PgTable, data: dict[str, pl.DataFrame]) -> None:
    ins = _random_inspections()
    query = pg_table.load(ins)
    agg = first_level_sql(pg_table.url, query, "inspections", "inspection_date", MEASURES)
    ref = first_level(ins.lazy(), "inspections", "inspection_date", MEASURES)
    assert agg.frame.equals(ref.frame)
    _check_equal({"inspections": ins, "complaints": data["complaints"]}, agg)


@pytest.mark.postgres
def test_postgresql_hand_checked(
    pg_table: PgTable, data: dict[str, pl.DataFrame], kpi_row: Row
) -> None:
    query = pg_table.load(data["inspections"].drop("source_row"))
    agg = first_level_sql(pg_table.url, query, "inspections", "inspection_date", MEASURES)
    march = kpis.compute_kpis(
        {k: v for k, v in data.items() if k != "inspections"},
        "2026-03",
        aggregates={"inspections": agg},
    )
    assert kpi_row(march, "fpy_share_final", "South")["value"] == pytest.approx(2 / 3)
    assert kpi_row(march, "defect_ppm", "South")["value"] == pytest.approx(28_000.0)
    _check_equal(data, agg)


def test_kpis_the_aggregates_do_not_cover_need_rows(data: dict[str, pl.DataFrame]) -> None:
    # aggregates without the lot measures: lot first-pass yield cannot come from them
    records = tuple(m for m in MEASURES if m.lots is None)
    agg = first_level(data["inspections"].lazy(), "inspections", "inspection_date", records)
    rest = {k: v for k, v in data.items() if k != "inspections"}
    march = kpis.compute_kpis(rest, "2026-03", aggregates={"inspections": agg})
    lots = march.filter(pl.col("kpi") == "fpy_lot_share")
    assert lots["value"].is_null().all()
    assert set(lots["note"]) == {"not pushed down: needs inspections rows"}
    rows = kpis.compute_kpis(data, "2026-03")
    fpy = pl.col("kpi") == "fpy_share"
    assert march.filter(fpy).equals(rows.filter(fpy))
    # given the rows as well, the lot KPIs come from them
    both = kpis.compute_kpis(data, "2026-03", aggregates={"inspections": agg})
    assert both.equals(rows)


def test_unknown_aggregates_dataset_is_an_error(data: dict[str, pl.DataFrame]) -> None:
    agg = first_level(data["inspections"].lazy(), "inspections", "inspection_date", MEASURES)
    with pytest.raises(KpiError, match="shipments"):
        kpis.compute_kpis(data, "2026-03", aggregates={"shipments": agg})


def test_sqlite_equals_polars(tmp_path: Path, data: dict[str, pl.DataFrame]) -> None:
    # SQLite keeps dates as ISO text; EXTRACT compiles to strftime: still the same aggregates
    ins = _random_inspections()
    url = f"sqlite:///{tmp_path / 'qms.db'}"
    create_table(url, "inspections", ins)
    engine = sa.create_engine(url)
    agg = _pushed(engine, "SELECT * FROM inspections")
    engine.dispose()
    ref = first_level(ins.lazy(), "inspections", "inspection_date", MEASURES)
    assert agg.frame.equals(ref.frame)


# --------------------------------------------------------------------------- the defect Pareto


def _with_codes(ins: pl.DataFrame, seed: int = 5) -> pl.DataFrame:
    """Defect codes D1-D5 with skewed frequencies, and blanks (null, '', spaces) that are no code."""
    rng = np.random.default_rng(seed)
    choices = np.array(["D1", "D2", "D3", "D4", "D5", None, "", "   "], dtype=object)
    p = [0.3, 0.2, 0.1, 0.05, 0.05, 0.2, 0.05, 0.05]
    codes = choices[rng.choice(len(choices), ins.height, p=p)].tolist()
    return ins.with_columns(defect_code=pl.Series(codes, dtype=pl.String()))


def _pareto_pushed(db: str | sa.Engine, query: str) -> kpis.FirstLevel:
    return first_level_sql(
        db,
        query,
        "inspections",
        "inspection_date",
        kpis.PARETO_MEASURES,
        by=kpis.PARETO_BY,
    )


def _check_pareto(ins: pl.DataFrame, agg: kpis.FirstLevel) -> None:
    ref = first_level(
        ins.lazy(), "inspections", "inspection_date", kpis.PARETO_MEASURES, by=kpis.PARETO_BY
    )
    assert agg.frame.equals(ref.frame)
    assert set(agg.frame[kpis.PARETO_BY]) == {"D1", "D2", "D3", "D4", "D5"}
    for period in ("2026-03", "2026-Q1", "2025"):
        for scope in ("all", "North"):
            for measure in ("inspections", "qty_defective"):
                rows = kpis.defect_pareto({"inspections": ins}, period, scope, measure=measure)
                pushed = kpis.defect_pareto({}, period, scope, measure=measure, aggregate=agg)
                assert rows.height == 5
                assert pushed.equals(rows), (period, scope, measure)


def test_pareto_from_aggregates_hand_checked(tmp_path: Path) -> None:
    # 2026-03: D1 on 2 inspections (5 + 1 units), D2 on 1 (9 units), a blank code, and a
    # February D2 outside the period
    ins = pl.DataFrame(
        {
            "inspection_date": [date(2026, 3, d) for d in (2, 3, 4, 5)] + [date(2026, 2, 27)],
            "site": ["North", "South", "North", "North", "North"],
            "defect_code": ["D1", "D1", "D2", " ", "D2"],
            "qty_defective": [5, 1, 9, 4, 7],
        }
    )
    engine, query = _duckdb(tmp_path, ins)
    agg = _pareto_pushed(engine, query)
    engine.dispose()
    table = kpis.defect_pareto({}, "2026-03", aggregate=agg)
    # D1 alone is 2 of 3 inspections (67 % < 80 %): D2 crosses 80 % and is in the vital few
    assert table.select("defect_code", "inspections", "qty_defective", "vital_few").rows() == [
        ("D1", 2, 6, True),
        ("D2", 1, 9, True),
    ]
    by_units = kpis.defect_pareto({}, "2026-03", measure="qty_defective", aggregate=agg)
    assert by_units["defect_code"].to_list() == ["D2", "D1"]  # 9 units before 6


def test_pareto_duckdb_equals_polars(tmp_path: Path) -> None:
    ins = _with_codes(_random_inspections())
    engine, query = _duckdb(tmp_path, ins)
    agg = _pareto_pushed(engine, query)
    engine.dispose()
    _check_pareto(ins, agg)


def test_pareto_sqlite_equals_polars(tmp_path: Path) -> None:
    ins = _with_codes(_random_inspections())
    url = f"sqlite:///{tmp_path / 'qms.db'}"
    create_table(url, "inspections", ins)
    _check_pareto(ins, _pareto_pushed(url, "SELECT * FROM inspections"))


@pytest.mark.postgres
def test_pareto_postgresql_equals_polars(pg_table: PgTable) -> None:
    ins = _with_codes(_random_inspections())
    query = pg_table.load(ins)
    _check_pareto(ins, _pareto_pushed(pg_table.url, query))


def test_a_breakdown_takes_no_lot_measures(tmp_path: Path) -> None:
    ins = _with_codes(_random_inspections(50))
    with pytest.raises(KpiError, match="record measures only"):
        first_level(ins.lazy(), "inspections", "inspection_date", MEASURES, by="defect_code")


# --------------------------------------------------------------------------- receipts

RCFG = KpiConfig(supplier_otd_tolerance_days=2, supplier_otd_early_days=3)
"""A tolerance and an early window other than the defaults: the day counts reach the SQL."""
RECEIPT_KPIS = kpis.pushed_down("receipts")
RSITES = ("North", "South", "East")


def _random_receipts(n: int = 1500, seed: int = 23) -> pl.DataFrame:
    """Receipts 2025-01 .. 2026-06: received from 12 days early to 12 late (every edge of
    the windows), some promised in one month and received in the next, 3 % without a
    promised date, suppliers S1-S8, an unknown S99 and a blank one."""
    rng = np.random.default_rng(seed)
    start = date(2025, 1, 1)
    received = [start + timedelta(days=int(d)) for d in rng.integers(0, 546, n)]
    late = rng.integers(-12, 13, n)
    promised = [
        None if rng.random() < 0.03 else r - timedelta(days=int(x))
        for r, x in zip(received, late, strict=True)
    ]
    ids = np.array([*(f"S{i}" for i in range(1, 9)), "S99", " "], dtype=object)
    qty = rng.integers(1, 5000, n)
    return pl.DataFrame(
        {
            "receipt_id": [f"R{i}" for i in range(n)],
            "supplier_id": ids[rng.choice(len(ids), n)].tolist(),
            "site": [RSITES[i] for i in rng.integers(0, 3, n)],
            "promised_date": promised,
            "received_date": received,
            "qty_received": qty,
            "qty_rejected": rng.binomial(qty, 0.01),
        },
        schema={f.name: f.dtype for f in DATASETS["receipts"].fields},
    )


def _supplier_frames() -> dict[str, pl.DataFrame]:
    """The supplier list, its approval history (changing within months) and open lines."""
    statuses = ["approved", "approved", "conditional", "approved", "disapproved", "approved"]
    suppliers = pl.DataFrame(
        {
            "supplier_id": [f"S{i}" for i in range(1, 7)],
            "name": "x",
            "category": "parts",
            "critical": False,
            "approval_status": statuses,
        }
    )
    decisions = [
        ("S1", date(2025, 1, 1), "approved"),
        ("S2", date(2025, 3, 17), "approved"),
        ("S2", date(2025, 9, 9), "conditional"),
        ("S2", date(2026, 2, 11), "approved"),
        ("S3", date(2025, 6, 30), "approved"),
        ("S4", date(2025, 1, 1), "disapproved"),
        ("S4", date(2026, 3, 14), "approved"),
        ("S7", date(2025, 5, 5), "approved"),
    ]
    approvals = pl.DataFrame(
        decisions, schema=["supplier_id", "decision_date", "approval_status"], orient="row"
    )
    rng = np.random.default_rng(3)
    opened = pl.DataFrame(
        {
            "order_line_id": [f"PO{i}" for i in range(60)],
            "supplier_id": "S1",
            "site": [RSITES[i] for i in rng.integers(0, 3, 60)],
            "promised_date": [
                date(2025, 12, 1) + timedelta(days=int(d)) for d in rng.integers(0, 200, 60)
            ],
        }
    )
    return {"suppliers": suppliers, "supplier_approvals": approvals, "open_orders": opened}


def _receipt_levels(db: str | sa.Engine, query: str) -> list[kpis.FirstLevel]:
    return [level_sql(db, query, "receipts", lvl) for lvl in kpis.pushdown_levels("receipts", RCFG)]


def _check_receipts(rec: pl.DataFrame, levels: list[kpis.FirstLevel]) -> None:
    """Each first level equals polars' on the rows; every receipts KPI, for a month, a
    quarter, a year, a site and the 24-month series, and the scorecard equal the rows'."""
    for lvl, got in zip(kpis.pushdown_levels("receipts", RCFG), levels, strict=True):
        assert got.frame.equals(level_of(rec.lazy(), "receipts", lvl).frame), lvl.shape
    others = _supplier_frames()
    data = {"receipts": rec, **others}
    covered = pl.col("kpi").is_in(list(RECEIPT_KPIS))
    for period in ("2026-03", "2026-Q1", "2025"):
        for scope in ("all", "North"):
            rows = kpis.compute_kpis(data, period, scope, config=RCFG)
            pushed = kpis.compute_kpis(
                others, period, scope, config=RCFG, aggregates={"receipts": levels}
            )
            assert pushed.filter(covered).equals(rows.filter(covered)), (period, scope)
            assert rows.filter(covered)["value"].null_count() == 0  # not null = null
            card = kpis.supplier_scorecard(data, period, scope, config=RCFG)
            card_pushed = kpis.supplier_scorecard(
                others, period, scope, config=RCFG, aggregate=levels[-1]
            )
            assert card_pushed.equals(card), (period, scope)
            assert {" ", "S99"} <= set(card["supplier_id"])  # blank and unknown kept
    series = kpis.kpi_series(data, "2026-03", months=24, config=RCFG)
    from_db = kpis.kpi_series(
        others, "2026-03", months=24, config=RCFG, aggregates={"receipts": levels}
    )
    assert from_db.filter(covered).equals(series.filter(covered))


def test_receipt_kpis_all_pushed_down() -> None:
    assert set(RECEIPT_KPIS) == {
        "supplier_otd_share",
        "supplier_otd_due_share",
        "supplier_ppm",
        "receipts_from_unapproved",
        "receipts_from_unapproved_asof",
    }
    shapes = [lvl.shape for lvl in kpis.pushdown_levels("receipts", RCFG)]
    assert shapes == [
        ("received_date", None, False, False),  # the records, first: coverage counts them
        ("promised_date", None, False, False),
        ("received_date", "supplier_id", True, True),
    ]


def test_random_receipts_have_the_edge_cases() -> None:
    rec = _random_receipts()
    late = (rec["received_date"] - rec["promised_date"]).dt.total_days()
    # exactly on, and one day past, each bound of both windows (tolerance 2, early 3)
    assert {2, 3, -3, -4} <= set(late.drop_nulls().to_list())
    assert rec["promised_date"].null_count() > 0
    moved = rec.filter(pl.col("promised_date").dt.month() != pl.col("received_date").dt.month())
    assert moved.height > 0


def test_receipts_duckdb_hand_checked(
    tmp_path: Path, data: dict[str, pl.DataFrame], kpi_row: Row
) -> None:
    path = tmp_path / "qms.duckdb"
    con = duckdb.connect(str(path))
    con.register("frame", data["receipts"].drop("source_row").to_arrow())
    con.execute("CREATE TABLE receipts AS SELECT * FROM frame")
    con.close()
    url = f"duckdb:///{path}"
    query = "SELECT * FROM receipts"
    levels = [level_sql(url, query, "receipts", lvl) for lvl in kpis.pushdown_levels("receipts")]
    rest = {k: v for k, v in data.items() if k != "receipts"}
    march = kpis.compute_kpis(rest, "2026-03", aggregates={"receipts": levels})
    # conftest's March receipts: R1, R3, R4, R7 on time; R2 and R5 two days late
    otd = kpi_row(march, "supplier_otd_share")
    assert (otd["numerator"], otd["denominator"]) == (4, 6)
    # quantities: 1000 + 500 + 2000 + 500 + 1000 + 10000 received, 0+5+10+0+20+1 rejected
    assert kpi_row(march, "supplier_ppm")["value"] == pytest.approx(36 / 15_000 * 1e6)
    assert march.filter(pl.col("kpi").is_in(list(RECEIPT_KPIS))).equals(
        kpis.compute_kpis(data, "2026-03").filter(pl.col("kpi").is_in(list(RECEIPT_KPIS)))
    )


def test_receipts_duckdb_equals_polars(tmp_path: Path) -> None:
    rec = _random_receipts()
    path = tmp_path / "qms.duckdb"
    con = duckdb.connect(str(path))
    con.register("frame", rec.to_arrow())
    con.execute("CREATE TABLE receipts AS SELECT * FROM frame")
    con.close()
    engine = sa.create_engine(f"duckdb:///{path}", connect_args={"read_only": True})
    levels = _receipt_levels(engine, "SELECT * FROM receipts")
    engine.dispose()
    _check_receipts(rec, levels)


def test_receipts_sqlite_equals_polars(tmp_path: Path) -> None:
    # SQLite keeps dates as ISO text: days apart by julianday()
    rec = _random_receipts()
    url = f"sqlite:///{tmp_path / 'qms.db'}"
    create_table(url, "receipts", rec)
    _check_receipts(rec, _receipt_levels(url, "SELECT * FROM receipts"))


@pytest.mark.postgres
def test_receipts_postgresql_equals_polars(pg_table: PgTable) -> None:
    rec = _random_receipts()
    query = pg_table.load(rec)
    _check_receipts(rec, _receipt_levels(pg_table.url, query))


def test_receipt_aggregates_of_another_tolerance_are_not_used() -> None:
    rec = _random_receipts(200)
    levels = [level_of(rec.lazy(), "receipts", lvl) for lvl in kpis.pushdown_levels("receipts")]
    others = _supplier_frames()
    march = kpis.compute_kpis(others, "2026-03", config=RCFG, aggregates={"receipts": levels})
    otd = march.filter(pl.col("kpi").is_in(list(RECEIPT_KPIS)))
    # computed with the default tolerance (0 days), asked with 2: none of them is used
    assert otd["value"].is_null().all()
    assert set(otd["note"]) == {"not pushed down: needs receipts rows"}
    with pytest.raises(KpiError, match="not the scorecard's"):
        kpis.supplier_scorecard(others, "2026-03", config=RCFG, aggregate=levels[-1])


# --------------------------------------------------------------------------- complaints

CCFG = KpiConfig(
    complaint_close_target_days=20,
    complaint_close_target_days_by_severity={"critical": 5, "major": 12},
    repeat_window_days=40,
)
"""Per-severity close targets and a repeat window other than the defaults."""
COMPLAINT_KPIS = kpis.pushed_down("complaints")
CDATA = ("shipments",)


def _duckdb_complaints(tmp_path: Path, frame: pl.DataFrame) -> str:
    """A DuckDB file holding ``frame`` as table ``complaints``; its URL."""
    path = tmp_path / "qms.duckdb"
    con = duckdb.connect(str(path))
    con.register("frame", frame.to_arrow())
    con.execute("CREATE TABLE complaints AS SELECT * FROM frame")
    con.close()
    return f"duckdb:///{path}"


def _duckdb_table(tmp_path: Path, name: str, frame: pl.DataFrame) -> str:
    """A DuckDB file holding ``frame`` as table ``name``; its URL."""
    path = tmp_path / "qms.duckdb"
    con = duckdb.connect(str(path))
    con.register("frame", frame.to_arrow())
    con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
    con.close()
    return f"duckdb:///{path}"


def _random_complaints(n: int = 1200, seed: int = 31) -> pl.DataFrame:
    """Complaints 2024-10 .. 2026-06 over few customer x product x category keys (so that
    same-day complaints, repeats and recurrences are common), closed 0 to 120 days after
    receipt or still open (20 %), some keys and severities null, units and costs partly
    missing (costs in quarters: float sums exact in any order)."""
    rng = np.random.default_rng(seed)
    start = date(2024, 10, 1)
    received = [start + timedelta(days=int(d)) for d in rng.integers(0, 638, n)]
    closed = [
        None if rng.random() < 0.2 else r + timedelta(days=int(x))
        for r, x in zip(received, rng.integers(0, 121, n), strict=True)
    ]

    def pick(values: list[str | None], p_null: float) -> list[str | None]:
        return [
            None if rng.random() < p_null else values[i] for i in rng.integers(0, len(values), n)
        ]

    units = rng.integers(1, 500, n)
    cost = np.where(rng.random(n) < 0.6, rng.integers(1, 8000, n) / 4, np.nan)
    return pl.DataFrame(
        {
            "complaint_id": [f"C{i}" for i in range(n)],
            "received_date": received,
            "closed_date": closed,
            "site": [RSITES[i] for i in rng.integers(0, 3, n)],
            "customer": pick(["K1", "K2", "K3"], 0.03),
            "product": pick(["P1", "P2"], 0.03),
            "category": pick(["late", "damage", "wrong", " "], 0.0),
            "severity": pick(["minor", "major", "critical"], 0.02),
            "status": ["open" if c is None else "closed" for c in closed],
            "units_affected": [None if rng.random() < 0.1 else int(u) for u in units],
            "cost": pl.Series(cost).fill_nan(None),
        },
        schema_overrides={"units_affected": pl.Int64()},
    )


def _shipments() -> pl.DataFrame:
    months = [f"{y}-{m:02d}" for y in (2024, 2025, 2026) for m in range(1, 13)]
    return pl.DataFrame(
        {
            "month": [m for m in months for _ in RSITES],
            "site": [s for _ in months for s in RSITES],
            "product": "P1",
            "units_shipped": [1000 + 37 * i for i in range(len(months) * len(RSITES))],
        }
    )


def _complaint_levels(db: str | sa.Engine, query: str, period: str) -> list[kpis.FirstLevel]:
    return [
        level_sql(db, query, "complaints", lvl)
        for lvl in kpis.pushdown_levels("complaints", CCFG, period=period)
    ]


def _check_complaints(com: pl.DataFrame, db: str | sa.Engine, query: str) -> None:
    """Each first level equals polars' on the rows; every complaints KPI (a month, a quarter,
    a year; the whole scope and a site; the 24-month series) and the ageing and category
    tables equal the rows'."""
    levels = _complaint_levels(db, query, "2026-03")
    for lvl, got in zip(
        kpis.pushdown_levels("complaints", CCFG, period="2026-03"), levels, strict=True
    ):
        assert got.frame.equals(level_of(com.lazy(), "complaints", lvl).frame), lvl.shape
    rest = {"shipments": _shipments()}
    data = {"complaints": com, **rest}
    covered = pl.col("kpi").is_in(list(COMPLAINT_KPIS))
    ageing = next(lvl for lvl in levels if lvl.open_until is not None)
    category = next(lvl for lvl in levels if lvl.by == kpis.CATEGORY_BY)
    for period in ("2026-03", "2026-Q1", "2025"):
        for scope in ("all", "North"):
            rows = kpis.compute_kpis(data, period, scope, config=CCFG)
            pushed = kpis.compute_kpis(
                rest, period, scope, config=CCFG, aggregates={"complaints": levels}
            )
            assert pushed.filter(covered).equals(rows.filter(covered)), (period, scope)
            assert kpis.complaint_ageing(rest, period, scope, config=CCFG, aggregate=ageing).equals(
                kpis.complaint_ageing(data, period, scope, config=CCFG)
            ), (period, scope)
            assert kpis.complaints_by_category(rest, period, scope, aggregate=category).equals(
                kpis.complaints_by_category(data, period, scope)
            ), (period, scope)
    # the tables pick their level among all the complaint levels too
    assert kpis.complaint_ageing(rest, "2026-03", config=CCFG, aggregate=levels).equals(
        kpis.complaint_ageing(data, "2026-03", config=CCFG)
    )
    assert kpis.complaints_by_category(rest, "2026-03", aggregate=levels).equals(
        kpis.complaints_by_category(data, "2026-03")
    )
    series = kpis.kpi_series(data, "2026-03", months=24, config=CCFG)
    from_db = kpis.kpi_series(
        rest, "2026-03", months=24, config=CCFG, aggregates={"complaints": levels}
    )
    assert from_db.filter(covered).equals(series.filter(covered))
    # not vacuous: the random data makes every kind of value
    values = series.filter(covered & (pl.col("scope") == "all")).drop_nulls("value")
    got = values.group_by("kpi").agg(pl.col("value").max())
    assert set(got["kpi"]) == set(COMPLAINT_KPIS) - {"copq_total"}  # needs inspections too
    assert got.filter(pl.col("value") <= 0).is_empty(), got.filter(pl.col("value") <= 0)


def test_complaint_kpis_all_pushed_down() -> None:
    complaint_kpis = {k for k, d in kpis.REGISTRY.items() if "complaints" in d.datasets}
    assert set(COMPLAINT_KPIS) == complaint_kpis
    assert "complaints_open_age_over_90" in complaint_kpis  # open at period ends
    assert "copq_external" in complaint_kpis  # conformity's
    shapes = [lvl.shape for lvl in kpis.pushdown_levels("complaints", CCFG)]
    days = kpis.customers.DAYS_TO_CLOSE.by
    assert shapes == [
        ("received_date", None, False, False),  # the records, first: coverage counts them
        ("closed_date", None, False, False),
        ("closed_date", days, False, False),
        ("received_date", None, False, False, "closed_date"),
        ("received_date", "category", False, True),
    ]


def test_random_complaints_have_the_edge_cases() -> None:
    com = _random_complaints()
    days = (com["closed_date"] - com["received_date"]).dt.total_days()
    assert {0, 5, 6, 12, 13, 20, 21} <= set(days.drop_nulls().to_list())  # each target's edge
    assert com["closed_date"].null_count() > 0
    same_day = com.group_by("customer", "product", "category", "received_date").len()
    assert same_day["len"].max() > 1  # type: ignore[operator]
    assert com["customer"].null_count() > 0
    assert com["severity"].null_count() > 0


def test_complaints_duckdb_equals_polars(tmp_path: Path) -> None:
    com = _random_complaints()
    url = _duckdb_complaints(tmp_path, com)
    engine = sa.create_engine(url, connect_args={"read_only": True})
    _check_complaints(com, engine, "SELECT * FROM complaints")
    engine.dispose()


def test_complaints_sqlite_equals_polars(tmp_path: Path) -> None:
    com = _random_complaints()
    url = f"sqlite:///{tmp_path / 'qms.db'}"
    create_table(url, "complaints", com)
    _check_complaints(com, url, "SELECT * FROM complaints")


@pytest.mark.postgres
def test_complaints_postgresql_equals_polars(pg_table: PgTable) -> None:
    com = _random_complaints()
    query = pg_table.load(com)
    _check_complaints(com, pg_table.url, query)


def test_complaints_duckdb_hand_checked(
    tmp_path: Path, data: dict[str, pl.DataFrame], kpi_row: Row
) -> None:
    url = _duckdb_complaints(tmp_path, data["complaints"].drop("source_row"))
    levels = [
        level_sql(url, "SELECT * FROM complaints", "complaints", lvl)
        for lvl in kpis.pushdown_levels("complaints", period="2026-03")
    ]
    rest = {k: v for k, v in data.items() if k != "complaints"}
    march = kpis.compute_kpis(rest, "2026-03", aggregates={"complaints": levels})
    # the numbers of test_customers.py, now from the database's aggregates: days to close
    # all [3, 23, 49, 54, 88] -> median 49, p90 at 0.9 x 4 = 3.6 -> 54 + 0.6 x 34 = 74.4
    assert kpi_row(march, "complaint_days_to_close_median")["value"] == 49
    assert kpi_row(march, "complaint_days_to_close_p90")["value"] == pytest.approx(74.4)
    # South [23, 88]: (23 + 88) / 2
    assert kpi_row(march, "complaint_days_to_close_median", "South")["value"] == 55.5
    assert kpi_row(march, "complaints_repeat_share")["value"] == 0.5  # c03, c04, c11 of 6
    assert kpi_row(march, "complaints_recurrence_share")["numerator"] == 2  # c04, c11
    covered = pl.col("kpi").is_in(list(COMPLAINT_KPIS))
    assert march.filter(covered).equals(kpis.compute_kpis(data, "2026-03").filter(covered))
    ageing = next(lvl for lvl in levels if lvl.open_until is not None)
    assert kpis.complaint_ageing(rest, "2026-03", aggregate=ageing).equals(
        kpis.complaint_ageing(data, "2026-03")
    )


def test_open_counts_at_ends_not_pushed_down_are_an_error() -> None:
    com = _random_complaints(300)
    levels = [
        level_of(com.lazy(), "complaints", lvl)
        for lvl in kpis.pushdown_levels("complaints", CCFG, period="2025-06", months=3)
    ]
    rest = {"shipments": _shipments()}
    ok = kpis.compute_kpis(rest, "2025-Q2", config=CCFG, aggregates={"complaints": levels})
    assert ok.filter(pl.col("kpi") == "complaints_open")["value"].null_count() == 0
    # ends 2025-01-31 .. 2025-06-30 (three trend months and the year to date): not 2025-07-31
    with pytest.raises(KpiError, match=r"2025-07-31.*period=") as err:
        kpis.compute_kpis(rest, "2025-07", config=CCFG, aggregates={"complaints": levels})
    assert "2025-01-31 to 2025-06-30" in str(err.value)
    ageing = next(lvl for lvl in levels if lvl.open_until is not None)
    with pytest.raises(KpiError, match="2025-07-31"):
        kpis.complaint_ageing(rest, "2025-07", config=CCFG, aggregate=ageing)
    with pytest.raises(KpiError, match="not this table's"):
        kpis.complaint_ageing(rest, "2025-06", config=CCFG, aggregate=levels[0])


def test_run_ends_cover_the_trend_window_and_the_year_to_date() -> None:
    ends = kpis.run_ends("2026-Q1", 3)
    # trend months 2026-01 .. 2026-03; the year to date adds nothing more
    assert ends == (date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31))
    ends = kpis.run_ends("2026-05", 2)  # 2026-04, 2026-05 and January to March
    assert (ends[0], ends[-1], len(ends)) == (date(2026, 1, 31), date(2026, 5, 31), 5)
    assert len(kpis.run_ends("2026-03")) == 24


def _hand_levels() -> list[Level]:
    keys = ("customer", "product", "category")
    measures = (
        count("n"),
        count("repeat", flag=Earlier("repeat", keys, "received_date", "received_date", 30)),
        count("recurs", flag=Earlier("recurs", keys, "received_date", "closed_date", 30)),
        count(
            "minor_fast",
            ("severity", "minor"),
            within=Within("closed_date", "received_date", None, 9),
        ),
        count("other", other=("severity", ("minor",))),
        count("no_units", absent="units_affected"),
    )
    ages = (count("open"), count("aged", within=Within(AT_END, "received_date", 30, None)))
    return [
        Level("received_date", measures),
        Level("closed_date", (count("n"),), Days("closed_date", "received_date")),
        Level(
            "received_date",
            ages,
            open_until="closed_date",
            ends=(date(2026, 3, 31), date(2026, 4, 30)),
        ),
    ]


def _hand_frame() -> pl.DataFrame:
    sev = ["minor", "major", "minor", None, "minor", "critical", "minor"]
    units = [None, 3, 4, None, 5, 6, 7]
    return hand_complaints().with_columns(
        severity=pl.Series(sev, dtype=pl.String()),
        units_affected=pl.Series(units, dtype=pl.Int64()),
    )


def _check_hand(db: str | sa.Engine, query: str) -> None:
    frame = _hand_frame()
    for lvl in _hand_levels():
        got = level_sql(db, query, "complaints", lvl).frame
        assert got.equals(level_of(frame.lazy(), "complaints", lvl).frame), lvl.shape
    first = level_sql(db, query, "complaints", _hand_levels()[0]).frame
    north = first.filter(pl.col("site") == "N").sort("month")
    # March: a b c d e; repeats c d; recurrences c d; minor closed within 9 days: a (9), c (0);
    # severity null or not minor: b, d; without units: a, d. April: f recurs, critical (not
    # minor), 6 units
    assert north.select("n", "repeat", "recurs", "minor_fast", "other", "no_units").rows() == [
        (5, 2, 2, 2, 2, 2),
        (1, 0, 1, 0, 1, 0),
    ]


def test_hand_complaints_duckdb(tmp_path: Path) -> None:
    _check_hand(_duckdb_complaints(tmp_path, _hand_frame()), "SELECT * FROM complaints")


def test_hand_complaints_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'qms.db'}"
    create_table(url, "complaints", _hand_frame())
    _check_hand(url, "SELECT * FROM complaints")


@pytest.mark.postgres
def test_hand_complaints_postgresql(pg_table: PgTable) -> None:
    _check_hand(pg_table.url, pg_table.load(_hand_frame()))


def test_sample_complaints_pushed_down_equal_pulled(tmp_path: Path) -> None:
    """The synthetic sample (`qmskpi sample`) under the sample configuration (per-severity
    close targets): every complaint KPI of the last month, its quarter, a year, a site and
    the 24-month series from DuckDB's first levels equals the pulled result."""
    from conftest import SAMPLE_CONFIG
    from qmskpi.config import load_config
    from qmskpi.synthetic import generate

    cfg = load_config(SAMPLE_CONFIG).kpis
    assert cfg.complaint_close_target_days_by_severity  # the per-severity measures are used
    data = generate()
    com = data["complaints"]
    url = _duckdb_complaints(tmp_path, com)
    last = com["received_date"].max()
    assert isinstance(last, date)
    month = f"{last.year}-{last.month:02d}"
    levels = [
        level_sql(url, "SELECT * FROM complaints", "complaints", lvl)
        for lvl in kpis.pushdown_levels("complaints", cfg, period=month)
    ]
    rest = {k: v for k, v in data.items() if k != "complaints"}
    covered = pl.col("kpi").is_in(list(COMPLAINT_KPIS))
    site = sorted(set(com["site"]))[0]
    quarter = period_containing(last, "quarter").previous().label  # ends inside the window
    for period, scope in (
        (month, "all"),
        (month, site),
        (quarter, "all"),
        (str(last.year - 1), "all"),
    ):
        rows = kpis.compute_kpis(data, period, scope, config=cfg).filter(covered)
        pushed = kpis.compute_kpis(
            rest, period, scope, config=cfg, aggregates={"complaints": levels}
        )
        assert pushed.filter(covered).equals(rows), (period, scope)
    series = kpis.kpi_series(data, month, months=24, config=cfg).filter(covered)
    from_db = kpis.kpi_series(rest, month, months=24, config=cfg, aggregates={"complaints": levels})
    assert from_db.filter(covered).equals(series)
    assert series["value"].null_count() < series.height / 4  # the sample has complaints


# --------------------------------------------------------------------------- surveys

SURVEY_KPIS = kpis.pushed_down("surveys")


def _random_surveys(n: int = 1500, seed: int = 37) -> pl.DataFrame:
    """Responses 2024-10 .. 2026-06 on a 0-10 scale (scale_min 0, or none), a 1-5 scale
    and a 1-7 one (East answers 0-10 with scale_min 0 only: one scale, the others mixed);
    scores whole, halves and a few tenths (not exact in binary: the sums must still be
    the rows')."""
    rng = np.random.default_rng(seed)
    start = date(2024, 10, 1)
    days = rng.integers(0, 638, n)
    kind = rng.choice(3, n, p=[0.6, 0.3, 0.1])
    top = np.array([10, 5, 7])[kind]
    sites = np.array(["North", "South", "East"])[rng.integers(0, 3, n)]
    sites[(kind != 0) & (sites == "East")] = "North"  # East answers the 0-10 survey only
    bottom = np.array([0, 1, 1])[kind].astype(object)
    bottom[(kind == 0) & (sites != "East") & (rng.random(n) < 0.3)] = None  # no scale_min
    whole = np.array(
        [rng.integers(0 if k == 0 else 1, t + 1) for k, t in zip(kind, top, strict=True)]
    )
    frac = rng.choice([0.0, 0.5, 0.1, 0.3], n, p=[0.7, 0.2, 0.05, 0.05])
    score = np.minimum(whole + frac, top)
    return pl.DataFrame(
        {
            "response_id": [f"S{i}" for i in range(n)],
            "response_date": [start + timedelta(days=int(d)) for d in days],
            "site": sites.tolist(),
            "customer": [f"K{i % 9}" for i in range(n)],
            "score": score.tolist(),
            "scale_max": top.tolist(),
            "scale_min": bottom.tolist(),
        },
        schema_overrides={"score": pl.Float64(), "scale_max": pl.Int64(), "scale_min": pl.Int64()},
    )


def _levels_equal(
    rows: pl.DataFrame, db: str | sa.Engine, query: str, dataset: str
) -> list[kpis.FirstLevel]:
    """Every first level of ``dataset`` for 2026-03 from the database, each asserted equal
    to polars' on ``rows``."""
    wanted = kpis.pushdown_levels(dataset, period="2026-03")
    levels = [level_sql(db, query, dataset, lvl) for lvl in wanted]
    for lvl, got in zip(wanted, levels, strict=True):
        assert got.frame.equals(level_of(rows.lazy(), dataset, lvl).frame), lvl.shape
    return levels


def _check_surveys(sur: pl.DataFrame, db: str | sa.Engine, query: str) -> None:
    """Each first level equals polars' on the rows; every survey KPI (a month, a quarter,
    a year; the whole scope and a site; the 24-month series) equals the rows'."""
    levels = _levels_equal(sur, db, query, "surveys")
    data = {"surveys": sur}
    covered = pl.col("kpi").is_in(list(SURVEY_KPIS))
    for period in ("2026-03", "2026-Q1", "2025"):
        for scope in ("all", "North", "East"):
            rows = kpis.compute_kpis(data, period, scope)
            pushed = kpis.compute_kpis({}, period, scope, aggregates={"surveys": levels})
            assert pushed.filter(covered).equals(rows.filter(covered)), (period, scope)
    series = kpis.kpi_series(data, "2026-03", months=24)
    from_db = kpis.kpi_series({}, "2026-03", months=24, aggregates={"surveys": levels})
    assert from_db.filter(covered).equals(series.filter(covered))
    # not vacuous: every KPI has values, and the one-scale mean is null in some months
    values = series.filter(covered).drop_nulls("value")
    assert set(values["kpi"]) == set(SURVEY_KPIS)
    means = series.filter(pl.col("kpi") == "satisfaction_score_mean")
    assert means["value"].null_count() > 0
    assert means["value"].drop_nulls().len() > 0


def test_survey_kpis_all_pushed_down() -> None:
    survey_kpis = {k for k, d in kpis.REGISTRY.items() if "surveys" in d.datasets}
    assert (
        set(SURVEY_KPIS)
        == survey_kpis
        == {
            "satisfaction_mean",
            "satisfaction_score_mean",
            "satisfaction_range_share",
            "survey_responses",
            "nps",
        }
    )
    shapes = [lvl.shape for lvl in kpis.pushdown_levels("surveys")]
    assert shapes == [
        ("response_date", None, False, False),  # the records, first: coverage counts them
        ("response_date", kpis.customers.SURVEY_LEVEL.by, False, False),
    ]


def test_random_surveys_have_the_edge_cases() -> None:
    sur = _random_surveys()
    assert sur["scale_min"].null_count() > 0
    assert set(sur["scale_max"].unique()) == {5, 7, 10}
    assert {0.0, 6.0, 6.5, 9.0, 10.0} <= set(sur.filter(pl.col("scale_max") == 10)["score"])
    assert (sur["score"] % 0.5 > 0).any()  # tenths: 0.1 and 0.3 are not exact in binary


def test_surveys_duckdb_hand_checked(
    tmp_path: Path, data: dict[str, pl.DataFrame], kpi_row: Row
) -> None:
    url = _duckdb_table(tmp_path, "surveys", data["surveys"].drop("source_row"))
    levels = [
        level_sql(url, "SELECT * FROM surveys", "surveys", lvl)
        for lvl in kpis.pushdown_levels("surveys")
    ]
    rest = {k: v for k, v in data.items() if k != "surveys"}
    march = kpis.compute_kpis(rest, "2026-03", aggregates={"surveys": levels})
    # the numbers of test_customers.py, now from the database's counts: North 9/10, 6/10,
    # 4/5 -> 2.3 / 3; all 4.8 / 6; NPS North (1 - 1) / 2, all 100 x (2 - 1) / 5
    assert kpi_row(march, "satisfaction_mean", "North")["value"] == pytest.approx(2.3 / 3)
    assert kpi_row(march, "satisfaction_mean")["value"] == pytest.approx(0.8)
    assert kpi_row(march, "nps", "North")["value"] == 0.0
    assert kpi_row(march, "nps")["value"] == pytest.approx(20.0)
    assert kpi_row(march, "survey_responses")["value"] == 6
    south = kpi_row(march, "satisfaction_score_mean", "South")
    assert (south["numerator"], south["denominator"]) == (25.0, 3)
    assert kpi_row(march, "satisfaction_score_mean", "North")["value"] is None  # two scales
    covered = pl.col("kpi").is_in(list(SURVEY_KPIS))
    assert march.filter(covered).equals(kpis.compute_kpis(data, "2026-03").filter(covered))


# --------------------------------------------------------------------------- CAPA

CAPA_KPIS = kpis.pushed_down("capa")


def _random_capa(n: int = 1200, seed: int = 41) -> pl.DataFrame:
    """CAPAs opened 2024-10 .. 2026-06, due 0 to 60 days later, closed 0 to 150 days after
    opening (some on their due date, some after it) or still open (25 %), verification
    true, false or none, a few without a due date or site, an unknown or no source."""
    rng = np.random.default_rng(seed)
    start = date(2024, 10, 1)
    opened = [start + timedelta(days=int(d)) for d in rng.integers(0, 638, n)]
    due = [
        None if rng.random() < 0.03 else o + timedelta(days=int(x))
        for o, x in zip(opened, rng.integers(0, 61, n), strict=True)
    ]
    closed = [
        None if rng.random() < 0.25 else o + timedelta(days=int(x))
        for o, x in zip(opened, rng.integers(0, 151, n), strict=True)
    ]
    closed = [
        d if c is not None and rng.random() < 0.1 else c for c, d in zip(closed, due, strict=True)
    ]
    return pl.DataFrame(
        {
            "capa_id": [f"K{i}" for i in range(n)],
            "source": [
                ["complaint", "audit", "inspection", "supplier", "internal", "other", None][i]
                for i in rng.choice(7, n, p=[0.2, 0.2, 0.2, 0.2, 0.14, 0.03, 0.03])
            ],
            "site": [None if rng.random() < 0.02 else RSITES[i] for i in rng.integers(0, 3, n)],
            "opened_date": opened,
            "due_date": due,
            "closed_date": closed,
            "status": ["open" if c is None else "closed" for c in closed],
            "effectiveness_verified": [
                None if c is None or rng.random() < 0.3 else bool(rng.random() < 0.6)
                for c in closed
            ],
        },
        schema={f.name: f.dtype for f in DATASETS["capa"].fields},
    )


def _check_capa(capa: pl.DataFrame, db: str | sa.Engine, query: str) -> None:
    """Each first level equals polars' on the rows; every CAPA KPI (a month, a quarter, a
    year; the whole scope and a site; the 24-month series) equals the rows'."""
    levels = _levels_equal(capa, db, query, "capa")
    data = {"capa": capa}
    covered = pl.col("kpi").is_in(list(CAPA_KPIS))
    for period in ("2026-03", "2026-Q1", "2025"):
        for scope in ("all", "North"):
            rows = kpis.compute_kpis(data, period, scope)
            pushed = kpis.compute_kpis({}, period, scope, aggregates={"capa": levels})
            assert pushed.filter(covered).equals(rows.filter(covered)), (period, scope)
            assert kpis.capa_effectiveness({}, period, scope, aggregate=levels).equals(
                kpis.capa_effectiveness(data, period, scope)
            ), (period, scope)
    series = kpis.kpi_series(data, "2026-03", months=24)
    from_db = kpis.kpi_series({}, "2026-03", months=24, aggregates={"capa": levels})
    assert from_db.filter(covered).equals(series.filter(covered))
    # not vacuous: every KPI has values above zero somewhere
    values = series.filter(covered & (pl.col("scope") == "all")).drop_nulls("value")
    got = values.group_by("kpi").agg(pl.col("value").max())
    assert set(got["kpi"]) == set(CAPA_KPIS)
    assert got.filter(pl.col("value") <= 0).is_empty(), got.filter(pl.col("value") <= 0)


def test_capa_kpis_all_pushed_down() -> None:
    capa_kpis = {k for k, d in kpis.REGISTRY.items() if "capa" in d.datasets}
    assert set(CAPA_KPIS) == capa_kpis
    assert len(capa_kpis) == 9
    shapes = [lvl.shape for lvl in kpis.pushdown_levels("capa")]
    assert shapes == [
        ("opened_date", None, False, False),  # the records, first: coverage counts them
        ("closed_date", None, False, False),
        ("closed_date", kpis.capa.DAYS_TO_CLOSE.by, False, False),
        ("opened_date", None, False, False, "closed_date"),
        # the effectiveness table's, per source
        ("closed_date", "source", False, True),
        ("closed_date", kpis.capa.DAYS_BY_SOURCE.by, False, False),
    ]


def test_random_capa_have_the_edge_cases() -> None:
    capa = _random_capa()
    assert (capa["closed_date"] == capa["due_date"]).sum() > 5  # on time on the due date
    assert (capa["closed_date"] > capa["due_date"]).sum() > 5
    assert capa["closed_date"].null_count() > 0
    assert capa["due_date"].null_count() > 0
    assert capa["effectiveness_verified"].value_counts().height == 3  # true, false, null


def test_capa_duckdb_hand_checked(
    tmp_path: Path, data: dict[str, pl.DataFrame], kpi_row: Row
) -> None:
    url = _duckdb_table(tmp_path, "capa", data["capa"].drop("source_row"))
    levels = [
        level_sql(url, "SELECT * FROM capa", "capa", lvl)
        for lvl in kpis.pushdown_levels("capa", period="2026-03")
    ]
    rest = {k: v for k, v in data.items() if k != "capa"}
    march = kpis.compute_kpis(rest, "2026-03", aggregates={"capa": levels})
    # the numbers of test_capa.py, now from the database's aggregates: days to close
    # North [13, 69] -> 41, all [13, 69, 120] -> 69; open past due at 03-31: K3, K6
    north = kpi_row(march, "capa_days_to_close_median", "North")
    assert (north["value"], north["denominator"]) == (41.0, 2)
    assert kpi_row(march, "capa_days_to_close_median")["value"] == 69.0
    assert kpi_row(march, "capa_open_overdue")["value"] == 2
    assert kpi_row(march, "capa_open")["value"] == 3
    backlog = kpi_row(march, "capa_on_time_incl_backlog_share")
    assert (backlog["numerator"], backlog["denominator"]) == (1, 5)
    assert kpi_row(march, "capa_effective_share")["value"] == pytest.approx(1 / 3)
    covered = pl.col("kpi").is_in(list(CAPA_KPIS))
    assert march.filter(covered).equals(kpis.compute_kpis(data, "2026-03").filter(covered))
    # the effectiveness table of test_capa.py: K1 complaint effective, K2 audit not, K5
    # inspection not verified; the median of [13, 69, 120] is 69, of the audit's [69] 69
    table = kpis.capa_effectiveness(rest, "2026-03", aggregate=levels)
    assert table.equals(kpis.capa_effectiveness(data, "2026-03"))
    got = {r["source"]: r for r in table.iter_rows(named=True)}
    assert (got["complaint"]["closed"], got["complaint"]["effective"]) == (1, 1)
    assert (got["audit"]["not_effective"], got["audit"]["days_to_close_median"]) == (1, 69.0)
    assert got["inspection"]["not_verified"] == 1
    assert (got["all"]["closed_on_time"], got["all"]["days_to_close_median"]) == (1, 69.0)
    with pytest.raises(KpiError, match="not this table's first level of capa"):
        kpis.capa_effectiveness(rest, "2026-03", aggregate=levels[0])


# --------------------------------------------------------------------------- surveys, CAPA

_RANDOM: dict[str, tuple[Callable[[], pl.DataFrame], Callable[..., None]]] = {
    "surveys": (_random_surveys, _check_surveys),
    "capa": (_random_capa, _check_capa),
}
"""By dataset, its random rows and the check that every first level, KPI and table of it
from the database equals polars' on the rows."""


@pytest.mark.parametrize("dataset", list(_RANDOM))
def test_more_datasets_duckdb_equal_polars(tmp_path: Path, dataset: str) -> None:
    make, check = _RANDOM[dataset]
    rows = make()
    url = _duckdb_table(tmp_path, dataset, rows)
    engine = sa.create_engine(url, connect_args={"read_only": True})
    check(rows, engine, f"SELECT * FROM {dataset}")
    engine.dispose()


@pytest.mark.parametrize("dataset", list(_RANDOM))
def test_more_datasets_sqlite_equal_polars(tmp_path: Path, dataset: str) -> None:
    make, check = _RANDOM[dataset]
    rows = make()
    url = f"sqlite:///{tmp_path / 'qms.db'}"
    create_table(url, dataset, rows)
    check(rows, url, f"SELECT * FROM {dataset}")


@pytest.mark.postgres
@pytest.mark.parametrize("dataset", list(_RANDOM))
def test_more_datasets_postgresql_equal_polars(pg_table: PgTable, dataset: str) -> None:
    make, check = _RANDOM[dataset]
    rows = make()
    check(rows, pg_table.url, pg_table.load(rows))
