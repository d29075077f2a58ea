"""Validation in the database (``contracts.indb``) against the validation of pulled rows.

A real PostgreSQL (``QMSKPI_TEST_PG_URL``; ``make test`` starts one) holds
inspections with known faults. What a user depends on: the database's rule
results and counts are those of the pulled path (``contracts.validate`` on
``sources.load_dataset``), the quarantined rows are the same rows, and the
KPIs from in-database aggregates without the quarantined rows equal the KPIs
of the rows used.
"""

from __future__ import annotations

import os
import tomllib
import uuid
from collections.abc import Iterator
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
import sqlalchemy as sa

from qmskpi import contracts, kpis
from qmskpi.config import Config, from_dict
from qmskpi.contracts.indb import literal_query, validate_in_database
from qmskpi.contracts.loader import configured_contracts
from qmskpi.contracts.schema import Run
from qmskpi.kpis.sql import Exclude, first_level_sql
from qmskpi.periods import parse_period
from qmskpi.sources import load_dataset

D = date
AS_OF = D(2026, 4, 5)
SITES = ("North", "South", "East")


def _inspections(n: int = 400, seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    qty = rng.integers(1, 200, n)
    bad = rng.binomial(qty, 0.02)
    frame = pl.DataFrame(
        {
            "inspection_id": [f"I{i:04d}" for i in range(n)],
            "inspection_date": [D(2025, 4, 1) + timedelta(days=int(d)) for d in rng.integers(0, 365, n)],
            "site": [SITES[i] for i in rng.integers(0, 3, n)],
            "product": "p1",
            "stage": [["incoming", "in_process", "final"][i] for i in rng.integers(0, 3, n)],
            "lot_id": None,
            "qty_inspected": qty,
            "qty_defective": bad,
            "defect_code": [("D1" if b else None) for b in bad],
            "result": ["fail" if b else "pass" for b in bad],
            "cost": [float(c) / 4 if c % 3 == 0 else None for c in rng.integers(1, 900, n)],
        },
        schema_overrides={"lot_id": pl.String(), "qty_inspected": pl.Int64()},
    )
    # known faults, one or two per rule (row numbers below are 0-based positions)
    faults = {
        0: {"cost": -2.5},  # cost_not_negative
        1: {"inspection_id": None},  # inspection_id_required
        2: {"inspection_id": "I0003"},  # duplicate of row 3: both rows fail inspection_id_unique
        4: {"site": "Mars"},  # site_known
        5: {"stage": "bogus"},  # stage_known
        6: {"qty_defective": 500},  # defective_not_above_inspected (and defects mean fail: 'fail')
        7: {"result": "maybe"},  # result_known
        8: {"inspection_date": D(2026, 5, 1)},  # inspection_date_not_future (after as-of)
        9: {"qty_inspected": 0, "qty_defective": 0, "result": "pass"},  # qty_inspected_positive
        10: {"site": "Mars", "stage": "bogus"},  # one row, two rules: quarantined once
    }
    rows = frame.to_dicts()
    for i, change in faults.items():
        rows[i] |= change
    if rows[6]["qty_defective"]:
        rows[6]["result"] = "fail"
    return pl.DataFrame(rows, schema=frame.schema)


@pytest.fixture
def pg() -> Iterator[tuple[str, str]]:
    url = os.environ.get("QMSKPI_TEST_PG_URL")
    if not url:
        why = os.environ.get("QMSKPI_TEST_PG_UNAVAILABLE", "QMSKPI_TEST_PG_URL is not set")
        pytest.skip(f"{why} (`make test` starts a throwaway PostgreSQL and sets it)")
    engine_url = sa.make_url(url)
    if engine_url.drivername == "postgresql":
        engine_url = engine_url.set(drivername="postgresql+psycopg")
    rendered = engine_url.render_as_string(hide_password=False)
    name = f"qmskpi_indb_{uuid.uuid4().hex[:12]}"
    yield rendered, name
    engine = sa.create_engine(rendered)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
    engine.dispose()


def _load_table(url: str, name: str, frame: pl.DataFrame) -> None:
    types = {pl.Date(): sa.Date(), pl.Int64(): sa.BigInteger(), pl.Float64(): sa.Float()}
    table = sa.Table(
        name,
        sa.MetaData(),
        *(sa.Column(c, types.get(t, sa.Text())) for c, t in frame.schema.items()),
    )
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert(), frame.to_dicts())
    engine.dispose()


def _config(name: str) -> Config:
    toml = f"""
[organisation]
name = "Test Ltd"
sites = ["North", "South", "East"]
[review]
as_of = 2026-04-05
[databases.qms]
url_env = "QMSKPI_TEST_PG_URL"
[sources.inspections]
database = "qms"
query = "SELECT * FROM {name} WHERE inspection_date >= :period_start OR inspection_date IS NULL"
"""
    return from_dict(tomllib.loads(toml), path=None)  # type: ignore[arg-type]


@pytest.mark.postgres
def test_in_database_equals_pulled(pg: tuple[str, str]) -> None:
    url, name = pg
    _load_table(url, name, _inspections())
    config = _config(name)
    period = parse_period("2026-03")
    loaded = load_dataset(config, "inspections", period=period)
    report = contracts.validate({"inspections": loaded}, period=period, config=config, as_of=AS_OF)
    pulled = report.datasets["inspections"]

    contract = configured_contracts(config)["inspections"]
    run = Run(period, AS_OF, SITES, config.review.stale_after_days)
    start = D(2024, 1, 3)  # sql_window("2026-03"): 24 months back, less 90 days
    query = literal_query(config.sources["inspections"].query or "", {"period_start": start}, url)
    assert "2024-01-03" in query
    found = validate_in_database(url, query, contract, run)

    assert found.rows_in == pulled.rows_in == 400
    by_id = {r.rule_id: r for r in pulled.rules}
    for r in found.rules:
        assert r.unexpected_count == by_id[r.rule_id].unexpected_count, r.rule_id
        assert r.success == by_id[r.rule_id].success, r.rule_id
    # by hand: cost, null id, the two duplicate rows, Mars x2, bogus x2, too many
    # defective, 'maybe', a future date, qty 0 -> rows 0-10 = 11 rows
    assert found.rows_quarantined == pulled.rows_quarantined == 11
    keys = found.quarantined_keys()
    assert keys.filter(pl.col("inspection_id") == "I0003")["rows"].to_list() == [2]
    assert keys["inspection_id"].null_count() == 1
    checked = {r.rule_id for r in found.rules}
    # every rule of the contract is either checked in the database or listed, with its reason
    assert checked | {rid for rid, _ in found.not_checked} == {r.id for r in contract.rules}

    # KPIs: aggregates of the rows used (quarantined keys excluded) == KPIs of report.clean
    exclude = Exclude(
        "inspection_id",
        tuple(k for k in keys["inspection_id"].to_list() if k is not None),
        null=True,
    )
    agg = first_level_sql(
        url,
        config.sources["inspections"].query or "",
        "inspections",
        "inspection_date",
        kpis.PUSHDOWN["inspections"],
        params={"period_start": start},
        bind_types={"period_start": sa.Date()},
        exclude=exclude,
    )
    covered = pl.col("kpi").is_in(list(kpis.pushed_down("inspections")))
    rows = kpis.compute_kpis(report.clean, "2026-03").filter(covered)
    pushed = kpis.compute_kpis({}, "2026-03", aggregates={"inspections": agg}).filter(covered)
    assert pushed.equals(rows)
    assert rows.filter(pl.col("kpi") == "fpy_share", pl.col("scope") == "all")["denominator"][0] > 0
