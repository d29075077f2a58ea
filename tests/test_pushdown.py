"""``pushdown = true``: a configured SQL source validated and aggregated in PostgreSQL.

What a user depends on: the KPIs computed from what the database returns
(aggregates of the rows used, quarantined rows left out) equal the KPIs of the
same source pulled, validated and computed here, for the month, quarter and the
24-month series; the ledger counts match; and the configuration refuses what
pushdown cannot do, naming the key.
"""

from __future__ import annotations

import tomllib
from datetime import date

import polars as pl
import pytest

from conftest import PgTable
from qmskpi import contracts, kpis
from qmskpi.config import PUSHDOWN_DATASETS, Config, from_dict
from qmskpi.pushdown import push_down, pushed_sources
from qmskpi.sources import load_dataset

AS_OF = date(2026, 4, 5)


def _config(query: str, *, pushdown: bool = True, extra: str = "") -> Config:
    toml = f"""
[organisation]
name = "Test Ltd"
sites = ["North", "South", "East"]
[review]
as_of = {AS_OF.isoformat()}
[databases.qms]
url_env = "QMSKPI_TEST_PG_URL"
[sources.inspections]
database = "qms"
query = "{query}"
pushdown = {"true" if pushdown else "false"}
{extra}
"""
    return from_dict(tomllib.loads(toml))


@pytest.mark.postgres
def test_pushdown_equals_pulled(pg_table: PgTable, dirty_inspections: pl.DataFrame) -> None:
    pg_table.load(dirty_inspections)
    query = f"SELECT * FROM {pg_table.name} WHERE inspection_date <= :period_end"
    config = _config(query)
    assert pushed_sources(config) == ("inspections",)
    covered = pl.col("kpi").is_in(list(kpis.pushed_down("inspections")))
    for period in ("2026-03", "2026-Q1"):
        pulled = load_dataset(config, "inspections", period=period)
        report = contracts.validate(
            {"inspections": pulled}, period=period, config=config, as_of=AS_OF
        )
        pushed = push_down(config, "inspections", period)
        ledger = report.datasets["inspections"]
        # the future-dated row (2026-05-01) is outside the query's window: 399 rows
        assert pushed.validation.rows_in == ledger.rows_in == 399
        assert pushed.validation.rows_quarantined == ledger.rows_quarantined == 10
        rows = kpis.compute_kpis(report.clean, period)
        from_db = kpis.compute_kpis({}, period, aggregates={"inspections": pushed.aggregates})
        assert from_db.filter(covered).equals(rows.filter(covered)), period
        series = kpis.kpi_series(report.clean, period, months=24)
        from_db_series = kpis.kpi_series(
            {}, period, months=24, aggregates={"inspections": pushed.aggregates}
        )
        assert from_db_series.filter(covered).equals(series.filter(covered)), period
    # every inspection KPI comes from the database now (lots included); the defect Pareto
    # table still needs the rows
    assert pushed.pulled_kpis == ()
    lot = from_db.filter(pl.col("kpi") == "fpy_lot_share", pl.col("scope") == "all")
    assert lot["denominator"][0] > 0


@pytest.mark.postgres
def test_pushdown_scope_and_values(pg_table: PgTable, dirty_inspections: pl.DataFrame) -> None:
    pg_table.load(dirty_inspections)
    config = _config(f"SELECT * FROM {pg_table.name}")
    pushed = push_down(config, "inspections", "2026-03")
    march = kpis.compute_kpis({}, "2026-03", "South", aggregates={"inspections": pushed.aggregates})
    # independently: polars over the fixture's rows minus the 11 faulty ones (rows 0-10)
    ok = dirty_inspections.slice(11).filter(
        pl.col("site") == "South",
        pl.col("inspection_date").is_between(date(2026, 3, 1), date(2026, 3, 31)),
    )
    fpy = march.filter(pl.col("kpi") == "fpy_share").row(0, named=True)
    assert fpy["scope"] == "South"
    assert fpy["denominator"] == ok.height > 0
    assert fpy["numerator"] == ok.filter(pl.col("result") == "pass").height


def test_config_and_kpis_agree_on_pushable_datasets() -> None:
    assert set(PUSHDOWN_DATASETS) == set(kpis.PUSHDOWN) == set(kpis.PUSHDOWN_DATE)
