"""Validation in the database (``contracts.indb``) against the validation of pulled rows.

A real PostgreSQL (``QMSKPI_TEST_PG_URL``; ``make test`` starts one) holds the
inspections of the ``dirty_inspections`` fixture (11 faulty rows, listed there).
What a user depends on: the database's rule results and counts are those of
the pulled path (``contracts.validate`` on ``sources.load_dataset``), the
quarantined rows are the same rows, and no rule is skipped without saying so.
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from conftest import PgTable, create_table
from qmskpi import contracts
from qmskpi.config import Config, from_dict
from qmskpi.contracts.indb import (
    AS_OF_BIND,
    InDatabaseValidation,
    check_references,
    count_after,
    known_on_query,
    literal_query,
    query_columns,
    validate_in_database,
)
from qmskpi.contracts.loader import configured_contracts
from qmskpi.contracts.schema import Run
from qmskpi.datasets import DATASETS
from qmskpi.errors import QmsKpiError
from qmskpi.periods import parse_period
from qmskpi.sources import load_dataset, read_only_kwargs

AS_OF = date(2026, 4, 5)
SITES = ("North", "South", "East")
PERIOD = parse_period("2026-03")
RUN = Run(PERIOD, AS_OF, SITES, 45)


def _config(table: str) -> Config:
    toml = f"""
[organisation]
name = "Test Ltd"
sites = ["North", "South", "East"]
[databases.qms]
url_env = "QMSKPI_TEST_PG_URL"
[sources.inspections]
database = "qms"
query = "SELECT * FROM {table} WHERE inspection_date >= :period_start OR inspection_date IS NULL"
"""
    return from_dict(tomllib.loads(toml))


@pytest.mark.postgres
@pytest.mark.parametrize("more", [0, 30])
def test_in_database_equals_pulled(
    pg_table: PgTable, dirty_inspections: pl.DataFrame, more: int
) -> None:
    # ``more`` rows 100.. get site Mars too: more failing rows than GX's default 20 per rule
    mars = pl.int_range(pl.len()).is_between(100, 99 + more)
    pg_table.load(
        dirty_inspections.with_columns(site=pl.when(mars).then(pl.lit("Mars")).otherwise("site"))
    )
    config = _config(pg_table.name)
    loaded = load_dataset(config, "inspections", period=PERIOD)
    report = contracts.validate({"inspections": loaded}, period=PERIOD, config=config, as_of=AS_OF)
    pulled = report.datasets["inspections"]

    contract = configured_contracts(config)["inspections"]
    query = config.sources["inspections"].query or ""
    rendered = literal_query(query, {"period_start": date(2024, 1, 2)}, pg_table.url)
    assert "'2024-01-02'" in rendered
    found = validate_in_database(pg_table.url, rendered, contract, RUN)

    assert found.rows_in == pulled.rows_in == 400
    by_id = {r.rule_id: r for r in pulled.rules}
    for r in found.rules:
        assert (r.unexpected_count, r.success) == (
            by_id[r.rule_id].unexpected_count,
            by_id[r.rule_id].success,
        ), r.rule_id
    assert {r.rule_id for r in found.rules if not r.success} >= {
        "cost_not_negative",
        "inspection_id_required",
        "inspection_id_unique",
        "site_known",
        "stage_known",
        "defective_not_above_inspected",
        "result_known",
        "inspection_date_not_future",
        "qty_inspected_positive",
    }
    # rows 0-10 of the fixture, each once (row 10 breaks two rules; rows 2 and 3 share an id)
    assert found.rows_quarantined == pulled.rows_quarantined == 11 + more
    keys = found.quarantined_keys()
    assert keys.filter(pl.col("inspection_id") == "I0003")["rows"].to_list() == [2]
    assert keys.filter(pl.col("inspection_id").is_null())["rows"].to_list() == [1]
    assert set(keys["inspection_id"].drop_nulls()) == {
        "I0000", "I0003", "I0004", "I0005", "I0006", "I0007", "I0008", "I0009", "I0010"
    } | {f"I{i:04d}" for i in range(100, 100 + more)}  # fmt: skip
    # every rule of the contract is checked in the database or listed with its reason
    listed = {rid for rid, _ in found.not_checked}
    assert {r.rule_id for r in found.rules} | listed == {r.id for r in contract.rules}
    assert not ({r.rule_id for r in found.rules} & listed)


@pytest.mark.postgres
def test_failing_rows_are_bounded(pg_table: PgTable, dirty_inspections: pl.DataFrame) -> None:
    query = pg_table.load(dirty_inspections)
    contract = configured_contracts(None)["inspections"]
    with pytest.raises(QmsKpiError, match=r"fails on 2 rows, more than 1 .*pull the source"):
        validate_in_database(pg_table.url, query, contract, RUN, max_failing_rows=1)


def test_rules_not_compiled_are_reported_duckdb(tmp_path: Path) -> None:
    # receipts' supplier reference is checked across datasets, after pulling: listed, not lost.
    # On DuckDB (GX 1.24 fetches after closing its connection: indb._engine_kwargs).
    path = tmp_path / "qms.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE receipts AS SELECT 'R1' AS receipt_id, 'S1' AS supplier_id, "
        "'North' AS site, DATE '2026-03-02' AS promised_date, DATE '2026-03-03' AS received_date,"
        " 10 AS qty_received, 0 AS qty_rejected"
    )
    con.close()
    contract = configured_contracts(None)["receipts"]
    found = validate_in_database(f"duckdb:///{path}", "SELECT * FROM receipts", contract, RUN)
    assert found.rows_in == 1
    assert [r for r, _ in found.not_checked] == ["supplier_exists"]
    # one sound receipt: every rule passes but freshness (received 2026-03-03, more than
    # 7 days before the period end 2026-03-31)
    assert {r.rule_id for r in found.rules if not r.success} == {"received_fresh"}
    assert len(found.rules) == len(contract.rules) - 1


@pytest.mark.postgres
def test_reference_rule_listed(pg_table: PgTable) -> None:
    frame = pl.DataFrame(
        {
            "receipt_id": ["R1"],
            "supplier_id": ["S1"],
            "site": ["North"],
            "promised_date": [date(2026, 3, 2)],
            "received_date": [date(2026, 3, 3)],
            "qty_received": [10],
            "qty_rejected": [0],
        }
    )
    query = pg_table.load(frame)
    contract = configured_contracts(None)["receipts"]
    found = validate_in_database(pg_table.url, query, contract, RUN)
    refs = [r.id for r in contract.rules if r.check == "reference"]
    assert refs
    why = dict(found.not_checked)
    for rid in refs:
        assert "another dataset" in why[rid]
    assert found.rows_in == 1
    assert found.rows_quarantined == 0


@pytest.mark.parametrize("dialect", ["sqlite", "duckdb"])
def test_known_on_query_and_count_after(tmp_path: Path, dialect: str) -> None:
    """A backfill's as-of day cuts the source in the database: rows dated after it are
    counted (not fetched) and left out of what validation and aggregation read."""
    import sqlalchemy as sa

    url = f"{dialect}:///{tmp_path / 'q.db'}"
    engine = sa.create_engine(url)
    days = [date(2026, 3, 30), date(2026, 4, 5), date(2026, 4, 6), date(2026, 5, 1), None]
    meta = sa.MetaData()
    t = sa.Table("t", meta, sa.Column("id", sa.String), sa.Column("d", sa.Date))
    with engine.begin() as conn:
        meta.create_all(conn)
        conn.execute(t.insert(), [{"id": f"r{i}", "d": d} for i, d in enumerate(days)])
    engine.dispose()  # qmskpi reads a DuckDB file read-only: no writer may hold it
    engine = sa.create_engine(url, **read_only_kwargs(url))
    query = "SELECT id, d FROM t WHERE d IS NULL OR d >= :period_start;"
    params = {"period_start": date(2026, 4, 1)}
    # by hand: from 2026-04-01 on, after 2026-04-05: 04-06 and 05-01
    assert count_after(url, query, "d", AS_OF, params) == 2
    known = sa.text(known_on_query(query, "d"))
    with engine.connect() as conn:
        ids = conn.execute(known, {**params, AS_OF_BIND: AS_OF}).scalars().all()
    engine.dispose()
    assert sorted(ids) == ["r1", "r4"]  # on the day itself stays; no date stays (quarantined)
    with pytest.raises(QmsKpiError, match="not a column name"):
        known_on_query(query, "d; DROP TABLE t")


@pytest.mark.parametrize("dialect", ["sqlite", "duckdb"])
def test_known_on_query_undoes_later_dates(tmp_path: Path, dialect: str) -> None:
    """A closure after the as-of day had not happened yet: its date reads as empty and the
    status as open, as ``contracts.prepare.known_on`` does for pulled rows; other columns
    (an odd name included) pass through unchanged."""
    import sqlalchemy as sa

    url = f"{dialect}:///{tmp_path / 'q.db'}"
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    t = sa.Table(
        "t",
        meta,
        sa.Column("id", sa.String),
        sa.Column("opened", sa.Date),
        sa.Column("closed", sa.Date),
        sa.Column("status", sa.String),
        sa.Column("odd name", sa.String),
    )
    rows = [
        ("a", date(2026, 3, 1), date(2026, 4, 5), "closed"),  # closed on the day: stays
        ("b", date(2026, 3, 1), date(2026, 4, 6), "closed"),  # closed after: open then
        ("c", date(2026, 3, 1), None, "open"),
        ("d", date(2026, 4, 6), date(2026, 4, 7), "closed"),  # opened after: not known
    ]
    with engine.begin() as conn:
        meta.create_all(conn)
        conn.execute(
            t.insert(),
            [
                {"id": i, "opened": o, "closed": c, "status": s, "odd name": f"x{i}"}
                for i, o, c, s in rows
            ],
        )
    engine.dispose()  # qmskpi reads a DuckDB file read-only: no writer may hold it
    engine = sa.create_engine(url, **read_only_kwargs(url))
    query = "SELECT * FROM t"
    columns = query_columns(url, query, {})
    assert columns == ("id", "opened", "closed", "status", "odd name")
    known = sa.text(known_on_query(query, "opened", later=["closed"], columns=columns))
    with engine.connect() as conn:
        got = [tuple(r) for r in conn.execute(known, {AS_OF_BIND: AS_OF}).fetchall()]
    engine.dispose()
    got = [
        (i, c if c is None or isinstance(c, date) else date.fromisoformat(c), s, x)
        for i, _, c, s, x in got
    ]
    assert sorted(got) == [
        ("a", date(2026, 4, 5), "closed", "xa"),
        ("b", None, "open", "xb"),
        ("c", None, "open", "xc"),
    ]
    with pytest.raises(QmsKpiError, match="not a column name"):
        known_on_query(query, "opened", later=["closed OR 1=1"], columns=columns)


# --------------------------------------------------------------------------- references


def test_reference_rule_checked_in_the_database(tmp_path: Path) -> None:
    """``supplier_exists`` against the supplier ids the pulled list uses: a null passes (the
    required rule's business), an unknown id fails, a quoted value stays a value."""
    sneaky = "S1'; DROP TABLE receipts; --"
    rec = pl.DataFrame(
        {
            "receipt_id": ["R1", "R2", "R3", "R4", "R5", "R6"],
            "supplier_id": ["S1", "S99", None, "S2", sneaky, "S99"],
            "received_date": [date(2026, 3, d) for d in (1, 2, 3, 4, 5)] + [date(2026, 4, 1)],
        }
    )
    url = f"sqlite:///{tmp_path / 'qms.db'}"
    create_table(url, "receipts", rec)
    contract = configured_contracts(None)["receipts"]
    found = InDatabaseValidation(
        "receipts",
        DATASETS["receipts"].key,
        6,
        (),
        (("supplier_exists", "references another dataset"), ("other", "why")),
        "gx-sql",
    )
    checked = check_references(
        url,
        "SELECT * FROM receipts WHERE received_date <= :period_end",
        {"period_end": date(2026, 3, 31)},  # R6 (April) is outside the query
        found,
        contract,
        {("suppliers", "supplier_id"): ("S1", "S2")},
    )
    (rule,) = checked.rules
    # R1..R5 in March; four with a supplier; S99 (R2) and the quoted text (R5) are unknown
    assert (rule.rule_id, rule.success, rule.unexpected_count) == ("supplier_exists", False, 2)
    assert rule.unexpected_share == pytest.approx(2 / 4)
    assert rule.failing.rows() == [("R2", "S99"), ("R5", sneaky)]
    assert checked.not_checked == (("other", "why"),)
    assert checked.quarantined_keys()["receipt_id"].to_list() == ["R2", "R5"]
    # the table is still there: the value was bound, not formatted in
    again = check_references(
        url, "SELECT * FROM receipts", {}, found, contract, {("suppliers", "supplier_id"): ()}
    )
    assert again.rules[0].unexpected_count == 5  # no supplier known: every id fails
    # a target not known (not pulled): the rule stays not checked
    assert check_references(url, "SELECT * FROM receipts", {}, found, contract, {}) is found
