"""``pushdown = true``: a configured SQL source validated and aggregated in PostgreSQL.

What a user depends on: the KPIs computed from what the database returns
(aggregates of the rows used, quarantined rows left out) equal the KPIs of the
same source pulled, validated and computed here, for the month, quarter and the
24-month series; the ledger counts match; and the configuration refuses what
pushdown cannot do, naming the key.
"""

from __future__ import annotations

import contextlib
import json
import tomllib
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from conftest import PgTable, create_table
from qmskpi import cli, contracts, kpis, pipeline
from qmskpi.config import PUSHDOWN_DATASETS, Config, from_dict
from qmskpi.datasets import DATASETS
from qmskpi.errors import SourceError
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


# --------------------------------------------------------------------------- the pipeline


def _with_codes(frame: pl.DataFrame) -> pl.DataFrame:
    """The fixture with several defect codes (and blank ones) so the Pareto has a ranking."""
    i = pl.int_range(pl.len())
    code = (
        pl.when(pl.col("defect_code").is_null())
        .then(pl.lit(None, pl.String()))
        .when(i % 7 == 0)
        .then(pl.lit("  "))  # blank: not a code, left out of the Pareto in both
        .otherwise(pl.format("D{}", i % 3 + 1))
    )
    return frame.with_columns(defect_code=code)


def _duckdb(tmp_path: Path, **tables: pl.DataFrame) -> str:
    """A DuckDB file holding ``tables`` (name -> rows); its ``[databases]`` line."""
    path = tmp_path / "qms.duckdb"
    con = duckdb.connect(str(path))
    for name, frame in tables.items():
        con.register("frame", frame.to_arrow())
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
        con.unregister("frame")
    con.close()
    return f'url = "duckdb:///{path}"'


def _pipeline_config(
    tmp_path: Path, query: str, *, pushdown: bool, db: str = 'url_env = "QMSKPI_TEST_PG_URL"'
) -> Path:
    name = "pushed" if pushdown else "pulled"
    path = tmp_path / f"{name}.toml"
    # objectives on inspection KPIs: their actuals and year-to-date come from the aggregates
    (tmp_path / "objectives.csv").write_text(
        "objective_id,name,clause,owner,unit,direction,target,kpi\n"
        "OBJ-1,First-pass yield,8.6,Ops,share,higher_is_better,0.9,fpy_lot_share\n"
        "OBJ-2,Defects,8.6,Ops,ppm,lower_is_better,9000,defect_ppm\n",
        encoding="utf-8",
    )
    path.write_text(
        f"""
[organisation]
name = "Test Ltd"
sites = ["North", "South", "East"]
[review]
as_of = {AS_OF.isoformat()}
[outputs]
reports_dir = "reports-{name}"
pdf = "off"
[databases.qms]
{db}
[sources.inspections]
database = "qms"
query = "{query}"
pushdown = {"true" if pushdown else "false"}
[sources.objectives]
path = "objectives.csv"
format = "csv"
""",
        encoding="utf-8",
    )
    return path


@pytest.mark.postgres
@pytest.mark.parametrize("period", ["2026-03", "2026-Q1"])
def test_prepared_pack_pushed_equals_pulled(
    pg_table: PgTable, dirty_inspections: pl.DataFrame, tmp_path: Path, period: str
) -> None:
    """Every KPI (values, notes, soundness), the ledger, the quarantine, the coverage matrix
    and the defect Pareto table: the same whether the rows are pulled or pushed down."""
    pg_table.load(_with_codes(dirty_inspections))
    query = f"SELECT * FROM {pg_table.name} WHERE inspection_date <= :period_end"
    _check_pack(tmp_path, query, period)


@pytest.mark.parametrize(("period", "scope"), [("2026-03", "all"), ("2026-Q1", "South")])
def test_prepared_pack_pushed_equals_pulled_duckdb(
    dirty_inspections: pl.DataFrame, tmp_path: Path, period: str, scope: str
) -> None:
    """The same on DuckDB: validation in the database through GX included."""
    db = _duckdb(tmp_path, inspections=_with_codes(dirty_inspections))
    query = "SELECT * FROM inspections WHERE inspection_date <= :period_end"
    pushed = _check_pack(tmp_path, query, period, scope, db=db)
    # a deep-dive notebook reuses the saved review: the aggregates come with it
    pipeline.save_prepared(pushed, tmp_path / "prepared")
    again = pipeline.load_prepared(tmp_path / "prepared")
    assert [(a.by, a.measures) for a in again.aggregates] == [
        (a.by, a.measures) for a in pushed.aggregates
    ]
    assert all(
        a.frame.equals(b.frame) for a, b in zip(again.aggregates, pushed.aggregates, strict=True)
    )
    meta = json.loads((tmp_path / "prepared" / "prepared.json").read_text("utf-8"))
    assert meta["not_rechecked"] == ["inspections"]  # the database is not asked again
    pareto = kpis.defect_pareto(
        {}, period, scope, aggregate=again.aggregate("inspections", kpis.PARETO_BY)
    )
    assert pareto["defect_code"].to_list() == [
        str(r[1]) for r in {t.id: t for t in again.review.tables}["defect_pareto"].rows
    ]


def _check_pack(
    tmp_path: Path, query: str, period: str, scope: str = "all", **db: str
) -> pipeline.Prepared:
    pulled = pipeline.prepare(
        _pipeline_config(tmp_path, query, pushdown=False, **db), period, scope
    )
    pushed = pipeline.prepare(_pipeline_config(tmp_path, query, pushdown=True, **db), period, scope)
    assert "inspections" not in pushed.loaded
    assert "inspections" not in pushed.validation.clean
    assert pushed.kpis.equals(pulled.kpis)
    inspection_kpis = pushed.kpis.filter(pl.col("kpi") == "fpy_share", pl.col("scope") == scope)
    assert inspection_kpis["denominator"][0] > 0  # not an empty pack equal to an empty pack
    a, b = pulled.validation.datasets["inspections"], pushed.validation.datasets["inspections"]
    assert (b.rows_in, b.rows_used, b.rows_quarantined) == (a.rows_in, a.rows_used, 10)
    assert (b.rows_in, b.rows_used) == (a.rows_in, a.rows_used) == (399, 389)
    assert b.set_aside == a.set_aside
    assert {r.engine for r in b.rules} == {"gx-sql"}
    judged = {r.rule_id: (r.success, r.unexpected_count, r.unexpected_share) for r in b.rules}
    assert judged == {
        r.rule_id: (r.success, r.unexpected_count, r.unexpected_share)
        for r in a.rules
        if r.rule_id in judged
    }
    assert set(a.rule_ids) - set(judged) == {"columns_present"}  # pulled only: GX would raise
    # the quarantine: one line per rule a row broke, the same rules and counts
    rules = sorted(pulled.validation.quarantine["rule"].to_list())
    assert sorted(pushed.validation.quarantine["rule"].to_list()) == rules
    # rows 0-7, 9, 10 (8 is after the period); 10 breaks two rules, 7 a warning too
    assert len(rules) == 12
    tables = {t.id: t for t in pushed.review.tables}
    pareto = tables["defect_pareto"]
    assert pareto.rows == {t.id: t for t in pulled.review.tables}["defect_pareto"].rows
    assert sorted(str(r[1]) for r in pareto.rows) == ["D1", "D2", "D3"]  # "  " is no code
    for part in ("kpis", "trends", "coverage", "tiles", "exceptions", "narrative", "opportunities"):
        assert getattr(pushed.review, part) == getattr(pulled.review, part), part
    # every table, the ledger and the failed rules' examples included (here the keys'
    # order is the rows' order: GX returns failing rows by key, pulling in row order)
    differ = [t.id for t in pulled.review.tables if t != tables[t.id]]
    assert differ == [], differ
    assert {a.by for a in pushed.aggregates} == {None, kpis.PARETO_BY}
    objectives = tables["objective_attainment"].records()
    assert [r["actual"] is not None and r["ytd_actual"] is not None for r in objectives] == [
        True,
        True,
    ]
    return pushed


@pytest.mark.postgres
def test_render_with_pushdown_writes_the_pulled_packs_files(
    pg_table: PgTable, dirty_inspections: pl.DataFrame, tmp_path: Path
) -> None:
    """``qmskpi render`` end to end: kpis.csv byte for byte as pulled, quarantine.csv the
    same count of lines (keys instead of source rows), the manifest says pushdown."""
    pg_table.load(_with_codes(dirty_inspections))
    query = f"SELECT * FROM {pg_table.name} WHERE inspection_date <= :period_end"
    packs = {}
    for pushdown in (False, True):
        config = _pipeline_config(tmp_path, query, pushdown=pushdown)
        code = cli.main(["render", "--config", str(config), "--period", "2026-03", "--no-pdf"])
        assert code == 4  # rows broke error rules: published, exit code says so
        name = "pushed" if pushdown else "pulled"
        packs[name] = tmp_path / f"reports-{name}" / "2026-03" / "all"
    pulled, pushed = packs["pulled"], packs["pushed"]
    assert (pushed / "kpis.csv").read_bytes() == (pulled / "kpis.csv").read_bytes()
    q_pulled = pl.read_csv(pulled / "quarantine.csv", infer_schema=False)
    q_pushed = pl.read_csv(pushed / "quarantine.csv", infer_schema=False)
    # rows 0-7, 9 and 10 of the fixture (8 is after the period): 12 lines, as in
    # test_prepared_pack_pushed_equals_pulled, and the warning row 7 also breaks
    assert q_pushed.height == q_pulled.height == 12
    assert sorted(q_pushed["rule"].to_list()) == sorted(q_pulled["rule"].to_list())
    # a failing row is named by its key and the checked values (no source row in a database)
    cost = q_pushed.filter(pl.col("rule") == "cost_not_negative")
    assert cost["value"].to_list() == ["inspection_id=I0000; cost=-2.5"]
    assert cost["source_row"].to_list() == [None]
    manifest = json.loads((pushed / "manifest.json").read_text("utf-8"))
    (record,) = [i for i in manifest["inputs"] if i["dataset"] == "inspections"]
    assert record["pushdown"] is True
    assert record["origin"] == "sql:qms"
    assert (record["rows_in"], record["rows_used"], record["rows_quarantined"]) == (399, 389, 10)
    validation = json.loads((pushed / "validation.json").read_text("utf-8"))
    rules = validation["datasets"]["inspections"]["rules"]
    assert {r["engine"] for r in rules} == {"gx-sql"}
    html = (pushed / "management-review.html").read_text("utf-8")
    assert "Defect codes in 2026-03" in html
    # the same inputs: a second render is skipped (the database's results are the digest)
    config = _pipeline_config(tmp_path, query, pushdown=True)
    assert pipeline.run_review(config, "2026-03", pdf=False).status == "skipped"
    # one row changed in the database (one more unit inspected): rendered again
    import sqlalchemy as sa

    engine = sa.create_engine(pg_table.url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"UPDATE {pg_table.name} SET qty_inspected = qty_inspected + 1 WHERE inspection_id = 'I0020'"
            )
        )
    engine.dispose()
    assert pipeline.run_review(config, "2026-03", pdf=False).status == "restated"


def test_validate_command_pushes_down(
    dirty_inspections: pl.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``qmskpi validate`` judges a pushed-down source in its database (DuckDB here)."""
    db = _duckdb(tmp_path, inspections=dirty_inspections)
    query = "SELECT * FROM inspections WHERE inspection_date <= :period_end"
    config = _pipeline_config(tmp_path, query, pushdown=True, db=db)
    code = cli.main(["validate", "--config", str(config), "--period", "2026-03", "--json"])
    assert code == 4  # error rules failed: rows set aside
    report = json.loads(capsys.readouterr().out)
    ledger = report["datasets"]["inspections"]
    assert (ledger["rows_in"], ledger["rows_used"], ledger["rows_quarantined"]) == (399, 389, 10)
    assert {r["engine"] for r in ledger["rules"]} == {"gx-sql"}


def test_backfill_as_of_pushed_equals_pulled_duckdb(
    dirty_inspections: pl.DataFrame, tmp_path: Path
) -> None:
    """A backfill (``--as-of`` on a later export) with pushdown: the rows dated after the
    as-of day are left out in the database and counted as ``after_as_of`` exclusions, as
    pulling does (not quarantined as dated in the future); the KPIs are the pulled ones."""
    db = _duckdb(tmp_path, inspections=_with_codes(dirty_inspections))
    query = "SELECT * FROM inspections;"
    as_of = date(2026, 2, 15)
    pulled = pipeline.prepare(
        _pipeline_config(tmp_path, query, pushdown=False, db=db), "2026-01", as_of=as_of
    )
    pushed = pipeline.prepare(
        _pipeline_config(tmp_path, query, pushdown=True, db=db), "2026-01", as_of=as_of
    )
    # independently, from the fixture: rows dated after 2026-02-15 (row 8's 2026-05-01 too)
    later = dirty_inspections.filter(pl.col("inspection_date") > as_of).height
    assert later > 30
    a, b = pulled.validation.datasets["inspections"], pushed.validation.datasets["inspections"]
    assert b.excluded_by == a.excluded_by == {"after_as_of": later}
    assert (b.rows_in, b.rows_used, b.rows_quarantined) == (
        a.rows_in,
        a.rows_used,
        a.rows_quarantined,
    )
    assert b.rows_in == 400
    assert b.rows_used + b.rows_quarantined == 400 - later
    assert "inspection_date_not_future" not in pushed.validation.quarantine["rule"].to_list()
    assert pushed.kpis.equals(pulled.kpis)
    fpy = pushed.kpis.filter(pl.col("kpi") == "fpy_share", pl.col("scope") == "all")
    assert fpy["denominator"][0] > 0


# --------------------------------------------------------------------------- receipts too


def _dirty_receipts() -> pl.DataFrame:
    """300 receipts (3 sites, 2025-04 .. 2026-03, suppliers S1-S5) with 6 faulty rows, 0-5.

    Row 0 rejects more than received; 1 no id; 2 site Mars; 3 received 2026-05-01 (after the
    period: outside the query); 4 nothing received; 5 no promised date; 9 an unknown
    supplier S99; 10 supplier S12, whose line on the supplier list is quarantined. On-time edges: row
    6 exactly on the tolerance (2 days late), row 7 one day past it, row 8 due in February
    and received in March (late in February's due share, counted in March's receipts)."""
    rng = np.random.default_rng(11)
    rows = []
    for i in range(300):
        received = date(2025, 4, 1) + timedelta(days=int(rng.integers(0, 365)))
        qty = int(rng.integers(1, 900))
        rows.append(
            {
                "receipt_id": f"R{i:04d}",
                "supplier_id": f"S{int(rng.integers(1, 6))}",
                "site": ("North", "South", "East")[int(rng.integers(0, 3))],
                "promised_date": received - timedelta(days=int(rng.integers(-6, 6))),
                "received_date": received,
                "qty_received": qty,
                "qty_rejected": int(rng.binomial(qty, 0.02)),
            }
        )
    faults: dict[int, dict[str, object]] = {
        0: {"qty_received": 5, "qty_rejected": 9},
        1: {"receipt_id": None},
        2: {"site": "Mars"},
        3: {"received_date": date(2026, 5, 1)},
        4: {"qty_received": 0, "qty_rejected": 0},
        5: {"promised_date": None},
        6: {"promised_date": date(2026, 3, 10), "received_date": date(2026, 3, 12)},
        7: {"promised_date": date(2026, 3, 10), "received_date": date(2026, 3, 13)},
        8: {"promised_date": date(2026, 2, 27), "received_date": date(2026, 3, 2)},
        9: {"supplier_id": "S99"},
        10: {"supplier_id": "S12"},
    }
    for i, change in faults.items():
        rows[i] |= change
    return pl.DataFrame(rows, schema={f.name: f.dtype for f in DATASETS["receipts"].fields})


def _both_config(tmp_path: Path, db: str, tables: tuple[str, str], *, pushdown: bool) -> Path:
    """Inspections and receipts in the database's ``tables`` (pushed down or pulled), the
    supplier list, its approval history and the open order lines in CSV files."""
    path = _pipeline_config(
        tmp_path,
        f"SELECT * FROM {tables[0]} WHERE inspection_date <= :period_end",
        pushdown=pushdown,
        db=db,
    )
    (tmp_path / "suppliers.csv").write_text(
        "supplier_id,name,category,critical,approval_status\n"
        "S1,One,parts,true,approved\nS2,Two,parts,false,conditional\n"
        "S3,Three,parts,false,approved\nS4,Four,parts,false,disapproved\n"
        "S5,Five,parts,false,approved\n"
        + "".join(f"S{i},No {i},parts,false,approved\n" for i in range(6, 12))
        + "S12,Twelve,parts,false,bogus\n",  # quarantined: not there for the receipts
        encoding="utf-8",
    )
    (tmp_path / "approvals.csv").write_text(
        "supplier_id,decision_date,approval_status\n"
        "S1,2025-01-01,approved\nS2,2025-01-01,approved\nS2,2025-11-17,conditional\n"
        "S3,2025-06-30,approved\nS4,2025-01-01,approved\nS4,2026-03-14,disapproved\n"
        "S5,2025-01-01,approved\n",
        encoding="utf-8",
    )
    (tmp_path / "open.csv").write_text(
        "order_line_id,supplier_id,site,promised_date\n"
        "PO1,S1,North,2026-03-02\nPO2,S3,South,2026-03-31\nPO3,S5,East,2026-02-20\n",
        encoding="utf-8",
    )
    text = (
        path.read_text("utf-8")
        + f"""
[sources.receipts]
database = "qms"
query = "SELECT * FROM {tables[1]} WHERE received_date <= :period_end"
pushdown = {"true" if pushdown else "false"}
[sources.suppliers]
path = "suppliers.csv"
format = "csv"
[sources.supplier_approvals]
path = "approvals.csv"
format = "csv"
[sources.open_orders]
path = "open.csv"
format = "csv"
"""
    )
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("period", "scope"), [("2026-03", "all"), ("2026-Q1", "South")])
def test_pack_with_inspections_and_receipts_pushed_equals_pulled_duckdb(
    dirty_inspections: pl.DataFrame, tmp_path: Path, period: str, scope: str
) -> None:
    """Both datasets pushed down to DuckDB: every KPI, table (the supplier scorecard
    included), the coverage matrix, trends and narrative as pulled."""
    db = _duckdb(tmp_path, inspections=_with_codes(dirty_inspections), receipts=_dirty_receipts())
    _check_both(tmp_path, db, ("inspections", "receipts"), period, scope)


@pytest.mark.postgres
def test_pack_with_inspections_and_receipts_pushed_equals_pulled_postgresql(
    pg_table: PgTable, dirty_inspections: pl.DataFrame, tmp_path: Path
) -> None:
    with _pg_tables(pg_table, dirty_inspections, r=_dirty_receipts()) as (tables, db):
        _check_both(tmp_path, db, tables, "2026-03", "all")


def _check_both(tmp_path: Path, db: str, tables: tuple[str, str], period: str, scope: str) -> None:
    pulled = pipeline.prepare(_both_config(tmp_path, db, tables, pushdown=False), period, scope)
    pushed = pipeline.prepare(_both_config(tmp_path, db, tables, pushdown=True), period, scope)
    assert {"inspections", "receipts"}.isdisjoint(pushed.validation.clean)
    assert pushed.kpis.equals(pulled.kpis)
    receipt_kpis = pushed.kpis.filter(
        pl.col("kpi").is_in(list(kpis.pushed_down("receipts"))), pl.col("scope") == scope
    )
    assert receipt_kpis.height == 5
    assert receipt_kpis["value"].null_count() == 0  # computed, not an empty pack
    a, b = pulled.validation.datasets["receipts"], pushed.validation.datasets["receipts"]
    # rows 0, 1, 2, 4, 5, 9, 10 quarantined (3 is after the period, outside the query)
    assert (b.rows_in, b.rows_used, b.rows_quarantined) == (a.rows_in, a.rows_used, 7)
    assert b.rows_in == 299
    judged = {r.rule_id: (r.success, r.unexpected_count) for r in b.rules}
    assert judged == {
        r.rule_id: (r.success, r.unexpected_count) for r in a.rules if r.rule_id in judged
    }
    assert set(a.rule_ids) - set(judged) == {"columns_present"}  # pulled only
    # the reference to the supplier list, checked in the database against the used rows
    # of the pulled list: S99 is not on it, S12's line is quarantined
    assert judged["supplier_exists"] == (False, 2)
    (ref,) = [r for r in b.rules if r.rule_id == "supplier_exists"]
    assert ref.checked
    assert ref.engine == "sql"  # qmskpi's own statement, not GX's
    assert {r.engine for r in b.rules if r.rule_id != "supplier_exists"} == {"gx-sql"}
    assert sorted(pushed.validation.quarantine["rule"].to_list()) == sorted(
        pulled.validation.quarantine["rule"].to_list()
    )
    tables = {t.id: t for t in pushed.review.tables}
    card = tables["supplier_scorecard"]
    assert card.rows
    assert card == {t.id: t for t in pulled.review.tables}["supplier_scorecard"]
    for part in ("kpis", "trends", "coverage", "tiles", "exceptions", "narrative", "opportunities"):
        assert getattr(pushed.review, part) == getattr(pulled.review, part), part
    differ = [t.id for t in pulled.review.tables if t != tables[t.id]]
    assert differ == [], differ
    by = {(a.dataset, a.date_field, a.by) for a in pushed.aggregates}
    assert by == {
        ("inspections", "inspection_date", None),
        ("inspections", "inspection_date", kpis.PARETO_BY),
        ("receipts", "received_date", None),
        ("receipts", "promised_date", None),
        ("receipts", "received_date", kpis.SUPPLIER_BY),
    }


def test_a_run_asks_the_database_once_for_all_scopes(
    dirty_inspections: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``qmskpi run`` renders every scope of the period; the query binds no ``:site``, so each
    scope would ask the database the same question: it is asked once, and every scope's
    pack says so (the same digest of what the database returned)."""
    from qmskpi import pushdown

    db = _duckdb(tmp_path, inspections=_with_codes(dirty_inspections))
    query = "SELECT * FROM inspections WHERE inspection_date <= :period_end"
    config = _pipeline_config(tmp_path, query, pushdown=True, db=db)
    calls: list[str] = []
    real = pushdown.push_down

    def counted(*args: object, **kwargs: object) -> pushdown.Pushed:
        calls.append(str(args[1]))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pushdown, "push_down", counted)
    outcomes = pipeline.run_scheduled(config, scopes=["all", "North", "South"])
    assert [(o.period, o.scope) for o in outcomes] == [
        ("2026-03", "all"),
        ("2026-03", "North"),
        ("2026-03", "South"),
    ]
    assert {o.status for o in outcomes} == {"published"}, [o.error for o in outcomes]
    assert calls == ["inspections"]  # once for the run, not once per scope
    digests = set()
    for o in outcomes:
        manifest = json.loads((o.pack_dir / "manifest.json").read_text("utf-8"))
        (record,) = [i for i in manifest["inputs"] if i["dataset"] == "inspections"]
        digests.add(record["sha256"])
    assert len(digests) == 1
    # a later run asks again (the database may have changed since)
    pipeline.run_scheduled(config, scopes=["all"], force=True)
    assert calls == ["inspections", "inspections"]


# --------------------------------------------------------------------------- complaints


def _dirty_complaints() -> pl.DataFrame:
    """400 complaints (3 sites, 2024-10 .. 2026-03; 4 customers x 3 products x 3 categories,
    so repeats and recurrences happen) with faulty rows 0-8.

    Row 0 no id; 1 and 2 share an id (both quarantined); 3 site Mars; 4 severity bogus;
    5 closed before received; 6 closed without a closed date; 7 open with one; 8 received
    2026-05-01 (after the period: outside the query). Edges: 9 and 10 the same customer,
    product and category received the same day (not repeats of each other); 11 closed on
    the last day of March (not open at its end); 12 a major one received on it (open, age 0); 13 closed
    2026-04-04, after the period (open at March's end, closed in April: a later export's
    view); 14 a critical one in March whose text is markup."""
    rng = np.random.default_rng(19)
    rows = []
    for i in range(400):
        received = date(2024, 10, 1) + timedelta(days=int(rng.integers(0, 547)))
        open_ = rng.random() < 0.15
        closed = None if open_ else received + timedelta(days=int(rng.integers(0, 120)))
        if closed is not None and closed > AS_OF:
            closed = None
        rows.append(
            {
                "complaint_id": f"C{i:04d}",
                "received_date": received,
                "closed_date": closed,
                "site": ("North", "South", "East")[int(rng.integers(0, 3))],
                "customer": f"K{int(rng.integers(1, 5))}",
                "product": f"P{int(rng.integers(1, 4))}",
                "category": ("delivery", "quality", "documentation")[int(rng.integers(0, 3))],
                "severity": ("minor", "minor", "major", "critical")[int(rng.integers(0, 4))],
                "status": "open" if closed is None else "closed",
                "description": f"complaint {i}",
                "units_affected": None if rng.random() < 0.2 else int(rng.integers(1, 50)),
                "cost": None if rng.random() < 0.3 else float(rng.integers(0, 5000)),
            }
        )
    same = {"customer": "K1", "product": "P1", "category": "quality"}
    faults: dict[int, dict[str, object]] = {
        0: {"complaint_id": None},
        2: {"complaint_id": "C0001"},
        3: {"site": "Mars"},
        4: {"severity": "bogus"},
        5: {"received_date": date(2026, 3, 10), "closed_date": date(2026, 3, 9)},
        6: {"status": "closed", "closed_date": None},
        7: {"status": "open", "closed_date": date(2026, 2, 1)},
        8: {"received_date": date(2026, 5, 1), "closed_date": None, "status": "open"},
        9: {**same, "received_date": date(2026, 3, 17), "closed_date": None, "status": "open"},
        10: {**same, "received_date": date(2026, 3, 17), "closed_date": None, "status": "open"},
        11: {
            "received_date": date(2026, 3, 2),
            "closed_date": date(2026, 3, 31),
            "status": "closed",
        },
        12: {
            "received_date": date(2026, 3, 31),
            "closed_date": None,
            "status": "open",
            "severity": "major",
        },
        13: {
            "received_date": date(2026, 3, 20),
            "closed_date": date(2026, 4, 4),
            "status": "closed",
        },
        14: {
            "received_date": date(2026, 3, 5),
            "closed_date": None,
            "status": "open",
            "severity": "critical",
            "description": '<script>alert(1)</script> =HYPERLINK("x")',
        },
    }
    for i, change in faults.items():
        rows[i] |= change
    return pl.DataFrame(rows, schema={f.name: f.dtype for f in DATASETS["complaints"].fields})


def _dirty_surveys() -> pl.DataFrame:
    """300 survey responses (3 sites, 2025-01 .. 2026-03) on a 0-10 scale (scale_min 0, or
    none) and a 1-5 one, scores whole, halves and tenths, with faulty rows 0-7.

    Row 0 no id; 1 and 2 share an id (both quarantined); 3 site Mars; 4 score 11 of 10;
    5 scale_min 10 of 10; 6 score -1 (no scale_min); 7 answered 2026-05-01 (after the
    period: outside the query)."""
    rng = np.random.default_rng(23)
    rows = []
    for i in range(300):
        five = rng.random() < 0.3
        top = 5 if five else 10
        score = float(rng.integers(1 if five else 0, top + 1))
        score = min(score + float(rng.choice([0.0, 0.5, 0.1, 0.3])), top)
        rows.append(
            {
                "response_id": f"S{i:04d}",
                "response_date": date(2025, 1, 1) + timedelta(days=int(rng.integers(0, 455))),
                "site": ("North", "South", "East")[int(rng.integers(0, 3))],
                "customer": f"K{int(rng.integers(1, 5))}",
                "score": score,
                "scale_max": top,
                "scale_min": 1 if five else (None if rng.random() < 0.3 else 0),
            }
        )
    faults: dict[int, dict[str, object]] = {
        0: {"response_id": None},
        2: {"response_id": "S0001"},
        3: {"site": "Mars"},
        4: {"score": 11.0, "scale_max": 10, "scale_min": 0},
        5: {"score": 10.0, "scale_max": 10, "scale_min": 10},
        6: {"score": -1.0, "scale_max": 10, "scale_min": None},
        7: {"response_date": date(2026, 5, 1)},
    }
    for i, change in faults.items():
        rows[i] |= change
    return pl.DataFrame(rows, schema={f.name: f.dtype for f in DATASETS["surveys"].fields})


def _dirty_capa() -> pl.DataFrame:
    """300 CAPAs (3 sites, opened 2025-01 .. 2026-03, due 10 to 90 days later, closed 0 to
    150 days after opening or still open) with faulty rows 0-9.

    Row 0 no id; 1 and 2 share an id (both quarantined); 3 site Mars; 4 source bogus;
    5 closed before opened; 6 closed without a closed date; 7 open with one; 8 opened
    2026-05-01 (after the period: outside the query); 9 due before opened. Edges: 10 open,
    due 2026-03-30 (overdue at March's end by a day); 11 open, due 2026-03-31 (not
    overdue); 12 closed 2026-03-31 (not open at its end); 13 closed 2026-04-04 (open at
    March's end, overdue); 14 open and verified effective (a warning: still used)."""
    rng = np.random.default_rng(29)
    rows = []
    for i in range(300):
        opened = date(2025, 1, 1) + timedelta(days=int(rng.integers(0, 455)))
        closed = opened + timedelta(days=int(rng.integers(0, 150)))
        if rng.random() < 0.25 or closed > AS_OF:
            closed = None
        verified = None if closed is None or rng.random() < 0.3 else bool(rng.random() < 0.7)
        rows.append(
            {
                "capa_id": f"K{i:04d}",
                "source": ("complaint", "audit", "inspection", "supplier", "internal")[
                    int(rng.integers(0, 5))
                ],
                "site": ("North", "South", "East")[int(rng.integers(0, 3))],
                "opened_date": opened,
                "due_date": opened + timedelta(days=int(rng.integers(10, 91))),
                "closed_date": closed,
                "status": "open" if closed is None else "closed",
                "effectiveness_verified": verified,
            }
        )
    open_ = {"closed_date": None, "status": "open", "effectiveness_verified": None}
    faults: dict[int, dict[str, object]] = {
        0: {"capa_id": None},
        2: {"capa_id": "K0001"},
        3: {"site": "Mars"},
        4: {"source": "bogus"},
        5: {
            "opened_date": date(2026, 3, 10),
            "due_date": date(2026, 3, 20),
            "closed_date": date(2026, 3, 9),
            "status": "closed",
        },
        6: {"status": "closed", "closed_date": None},
        7: {"status": "open", "closed_date": date(2026, 2, 1), "opened_date": date(2026, 1, 5)},
        8: {**open_, "opened_date": date(2026, 5, 1), "due_date": date(2026, 6, 1)},
        9: {**open_, "opened_date": date(2026, 2, 10), "due_date": date(2026, 2, 1)},
        10: {**open_, "opened_date": date(2026, 1, 20), "due_date": date(2026, 3, 30)},
        11: {**open_, "opened_date": date(2026, 1, 20), "due_date": date(2026, 3, 31)},
        12: {
            "opened_date": date(2026, 2, 2),
            "due_date": date(2026, 3, 1),
            "closed_date": date(2026, 3, 31),
            "status": "closed",
        },
        13: {
            "opened_date": date(2026, 1, 2),
            "due_date": date(2026, 2, 1),
            "closed_date": date(2026, 4, 4),
            "status": "closed",
        },
        14: {**open_, "effectiveness_verified": True},
    }
    for i, change in faults.items():
        rows[i] |= change
    return pl.DataFrame(rows, schema={f.name: f.dtype for f in DATASETS["capa"].fields})


def _complaints_config(
    tmp_path: Path,
    db: str,
    tables: tuple[str, ...],
    *,
    pushdown: bool,
    where: str = " WHERE received_date <= :period_end",
) -> Path:
    """Inspections, receipts, complaints (and survey responses, a fourth table) in the
    database (pushed down or pulled), the shipments (the complaint rate's denominator) in a
    CSV file."""
    path = _both_config(tmp_path, db, tables[:2], pushdown=pushdown)
    months = [f"2025-{m:02d}" for m in range(1, 13)] + [f"2026-{m:02d}" for m in range(1, 4)]
    (tmp_path / "shipments.csv").write_text(
        "site,product,month,units_shipped\n"
        + "".join(
            f"{s},P{p},{m},{1000 * p + 10 * i}\n"
            for i, m in enumerate(months)
            for s in ("North", "South", "East")
            for p in (1, 2, 3)
        ),
        encoding="utf-8",
    )
    text = (
        path.read_text("utf-8")
        + f"""
[sources.complaints]
database = "qms"
query = "SELECT * FROM {tables[2]}{where}"
pushdown = {"true" if pushdown else "false"}
[sources.shipments]
path = "shipments.csv"
format = "csv"
"""
    )
    more = (("surveys", "response_date"), ("capa", "opened_date"))  # tables[3], tables[4]
    for table, (name, field) in zip(tables[3:], more, strict=False):
        text += f"""
[sources.{name}]
database = "qms"
query = "SELECT * FROM {table}{where.replace("received_date", field)}"
pushdown = {"true" if pushdown else "false"}
"""
    path.write_text(text, encoding="utf-8")
    return path


@contextlib.contextmanager
def _pg_tables(
    pg_table: PgTable, inspections: pl.DataFrame, **frames: pl.DataFrame
) -> Iterator[tuple[tuple[str, ...], str]]:
    """The inspections in ``pg_table`` and each of ``frames`` in a table named after it
    (``pg_table``'s name + ``_`` + its keyword), dropped afterwards: (the tables' names,
    inspections first; the ``[databases]`` line)."""
    import sqlalchemy as sa

    pg_table.load(_with_codes(inspections))
    names = {k: f"{pg_table.name}_{k}" for k in frames}
    for k, frame in frames.items():
        create_table(pg_table.url, names[k], frame)
    try:
        yield (pg_table.name, *names.values()), 'url_env = "QMSKPI_TEST_PG_URL"'
    finally:
        engine = sa.create_engine(pg_table.url)
        with engine.begin() as conn:
            for name in names.values():
                conn.execute(sa.text(f"DROP TABLE {name}"))
        engine.dispose()


def _pg_frames(capa: pl.DataFrame | None = None) -> dict[str, pl.DataFrame]:
    """Receipts, complaints, survey responses and CAPAs (``capa``: another CAPA table) for
    :func:`_pg_tables`, keyed by their tables' suffixes, in :func:`_complaints_config`'s order."""
    return {
        "r": _dirty_receipts(),
        "c": _dirty_complaints(),
        "s": _dirty_surveys(),
        "k": _dirty_capa() if capa is None else capa,
    }


def _every_pushable(
    tmp_path: Path,
    dirty_inspections: pl.DataFrame,
    complaints: pl.DataFrame | None = None,
    capa: pl.DataFrame | None = None,
) -> tuple[str, tuple[str, ...]]:
    """A DuckDB file holding the dirty fixture of every pushable dataset (``complaints``,
    ``capa``: another table of those); its ``[databases]`` line and its tables' names."""
    frames = {
        "inspections": _with_codes(dirty_inspections),
        "receipts": _dirty_receipts(),
        "complaints": _dirty_complaints() if complaints is None else complaints,
        "surveys": _dirty_surveys(),
        "capa": _dirty_capa() if capa is None else capa,
    }
    return _duckdb(tmp_path, **frames), tuple(frames)


@pytest.mark.parametrize(("period", "scope"), [("2026-03", "all"), ("2026-Q1", "South")])
def test_pack_with_complaints_pushed_equals_pulled_duckdb(
    dirty_inspections: pl.DataFrame, tmp_path: Path, period: str, scope: str
) -> None:
    """Inspections, receipts, complaints and surveys pushed down to DuckDB: every KPI
    (medians, p90, open counts and their ages, repeats and recurrences, satisfaction and
    NPS included), every table (the critical complaints list from the bounded query of the
    period's rows), coverage, trends and narrative as pulled."""
    db, tables = _every_pushable(tmp_path, dirty_inspections)
    _check_complaints(tmp_path, db, tables, period, scope)


@pytest.mark.postgres
def test_pack_with_complaints_pushed_equals_pulled_postgresql(
    pg_table: PgTable, dirty_inspections: pl.DataFrame, tmp_path: Path
) -> None:
    with _pg_tables(pg_table, dirty_inspections, **_pg_frames()) as (tables, db):
        _check_complaints(tmp_path, db, tables, "2026-03", "all")
        _check_complaints(tmp_path, db, tables, "2026-Q1", "North")


def _check_complaints(
    tmp_path: Path, db: str, tables: tuple[str, ...], period: str, scope: str
) -> pipeline.Prepared:
    pulled = pipeline.prepare(
        _complaints_config(tmp_path, db, tables, pushdown=False), period, scope
    )
    pushed = pipeline.prepare(
        _complaints_config(tmp_path, db, tables, pushdown=True), period, scope
    )
    assert "complaints" not in pushed.validation.clean
    assert pushed.kpis.equals(pulled.kpis)
    mine = pushed.kpis.filter(
        pl.col("kpi").is_in(list(kpis.pushed_down("complaints"))), pl.col("scope") == scope
    )
    every = [k for k, d in kpis.REGISTRY.items() if "complaints" in d.datasets]
    assert sorted(mine["kpi"].to_list()) == sorted(every)  # every complaints KPI pushed down
    for kpi in ("complaint_days_to_close_median", "complaint_days_to_close_p90", "complaints_open"):
        assert mine.filter(pl.col("kpi") == kpi)["value"][0] is not None, kpi  # not empty
    a, b = pulled.validation.datasets["complaints"], pushed.validation.datasets["complaints"]
    assert (b.rows_in, b.rows_used, b.rows_quarantined) == (a.rows_in, a.rows_used, 8)
    assert b.rows_in == 399  # row 8 is after the period: not in the query
    judged = {r.rule_id: (r.success, r.unexpected_count) for r in b.rules}
    assert judged == {
        r.rule_id: (r.success, r.unexpected_count) for r in a.rules if r.rule_id in judged
    }
    assert sorted(pushed.validation.quarantine["rule"].to_list()) == sorted(
        pulled.validation.quarantine["rule"].to_list()
    )
    tables_ = {t.id: t for t in pushed.review.tables}
    assert tables_["critical_complaints"].rows
    critical = pushed.registers["critical_complaints"]
    c14 = _dirty_complaints().row(14, named=True)
    if scope in ("all", c14["site"]):  # the critical one whose text is markup
        assert "C0014" in critical["complaint_id"].to_list()
    for part in ("kpis", "trends", "coverage", "tiles", "exceptions", "narrative", "opportunities"):
        assert getattr(pushed.review, part) == getattr(pulled.review, part), part
    differ = [t.id for t in pulled.review.tables if t != tables_[t.id]]
    assert differ == [], differ
    assert pushed.registers.keys() == pulled.registers.keys()
    for name, frame in pulled.registers.items():
        assert pushed.registers[name].equals(frame), name
    if len(tables) > 3:
        _check_surveys(pulled, pushed, scope)
    if len(tables) > 4:
        _check_capa(pulled, pushed, scope)
    # the notebook's list of repeat complaints, from the rows of the period that travelled
    p = pushed.period
    listed = pushed.listed["complaints"]
    assert listed["received_date"].min() >= p.start - timedelta(days=90)
    assert listed.height < pulled.validation.clean["complaints"].height
    cfg = pushed.config.kpis
    assert kpis.repeat_complaints(pushed.rows(), period, scope, config=cfg).equals(
        kpis.repeat_complaints(pulled.rows(), period, scope, config=cfg)
    )
    return pushed


def _same_ledger(
    pulled: pipeline.Prepared,
    pushed: pipeline.Prepared,
    dataset: str,
    *,
    rows_in: int,
    quarantined: int,
) -> None:
    """The database's ledger and rule verdicts of ``dataset`` are the pulled ones, and the
    hand-counted ``rows_in`` and ``quarantined``."""
    a, b = pulled.validation.datasets[dataset], pushed.validation.datasets[dataset]
    assert (b.rows_in, b.rows_used, b.rows_quarantined) == (a.rows_in, a.rows_used, quarantined)
    assert b.rows_in == rows_in
    judged = {r.rule_id: (r.success, r.unexpected_count) for r in b.rules}
    assert judged == {
        r.rule_id: (r.success, r.unexpected_count) for r in a.rules if r.rule_id in judged
    }


def _pushed_dataset(
    pulled: pipeline.Prepared,
    pushed: pipeline.Prepared,
    scope: str,
    dataset: str,
    nonempty: tuple[str, ...],
) -> None:
    """``dataset`` pushed down: none of its rows were loaded, every KPI reading it is pushed
    down, and those of ``nonempty`` have a value."""
    assert dataset not in pushed.validation.clean
    assert dataset not in pushed.loaded
    mine = pushed.kpis.filter(
        pl.col("kpi").is_in(list(kpis.pushed_down(dataset))), pl.col("scope") == scope
    )
    every = [k for k, d in kpis.REGISTRY.items() if dataset in d.datasets]
    assert sorted(mine["kpi"].to_list()) == sorted(every)
    for kpi in nonempty:
        assert mine.filter(pl.col("kpi") == kpi)["value"][0] is not None, kpi  # not empty


def _check_surveys(pulled: pipeline.Prepared, pushed: pipeline.Prepared, scope: str) -> None:
    """The surveys pushed down, with the hand-counted ledger."""
    kpi_ids = ("satisfaction_mean", "satisfaction_range_share", "nps", "survey_responses")
    _pushed_dataset(pulled, pushed, scope, "surveys", kpi_ids)
    # row 7 is after the period: not in the query; rows 0-6 quarantined
    _same_ledger(pulled, pushed, "surveys", rows_in=299, quarantined=7)


def _check_capa(pulled: pipeline.Prepared, pushed: pipeline.Prepared, scope: str) -> None:
    """CAPAs pushed down, with the hand-counted ledger; the overdue list comes from the rows
    open in the period (a bounded query)."""
    kpi_ids = ("capa_days_to_close_median", "capa_open", "capa_open_overdue")
    _pushed_dataset(pulled, pushed, scope, "capa", kpi_ids)
    # row 8 is after the period: not in the query; rows 0-7 and 9 quarantined
    _same_ledger(pulled, pushed, "capa", rows_in=299, quarantined=9)
    overdue = pushed.registers["overdue_capa"]
    assert overdue.equals(pulled.registers["overdue_capa"])
    listed = pushed.listed["capa"]
    assert listed.height < pulled.validation.clean["capa"].height  # not the whole history
    if pushed.period.label == "2026-03" and scope == "all":
        ids = overdue["item_id"].to_list()
        assert {"K0010", "K0013"} <= set(ids)  # due 03-30; closed after the period
        assert not {"K0011", "K0012"} & set(ids)  # due on the end; closed on it


def test_backfill_as_of_with_complaints_pushed_equals_pulled_duckdb(
    dirty_inspections: pl.DataFrame, tmp_path: Path
) -> None:
    """A backfill with complaints pushed down: a complaint received after the as-of day did
    not exist yet, one closed after it was still open then (its closure undone in the
    database, not quarantined as a closure in the future); KPIs, open counts and the
    critical list as pulled; survey responses and CAPAs after the as-of day left out, CAPAs
    closed after it open (in the overdue list too), as pulled."""
    db, tables = _every_pushable(tmp_path, dirty_inspections)
    as_of = date(2026, 3, 10)
    # the whole export, as a later one would be: the query does not stop at the period end
    pulled = pipeline.prepare(
        _complaints_config(tmp_path, db, tables, pushdown=False, where=""), "2026-02", as_of=as_of
    )
    pushed = pipeline.prepare(
        _complaints_config(tmp_path, db, tables, pushdown=True, where=""), "2026-02", as_of=as_of
    )
    fixture = _dirty_complaints()
    later = fixture.filter(pl.col("received_date") > as_of).height
    reopened = fixture.filter(
        pl.col("received_date") <= as_of, pl.col("closed_date") > as_of
    ).height
    assert later > 5  # by hand from the fixture: both cases are there
    assert reopened > 5
    a, b = pulled.validation.datasets["complaints"], pushed.validation.datasets["complaints"]
    assert b.excluded_by == a.excluded_by == {"after_as_of": later}
    assert (b.rows_used, b.rows_quarantined) == (a.rows_used, a.rows_quarantined)
    responses = _dirty_surveys()
    a, b = pulled.validation.datasets["surveys"], pushed.validation.datasets["surveys"]
    after = responses.filter(pl.col("response_date") > as_of).height
    assert after > 5  # row 7 and the responses of March 11-31
    assert b.excluded_by == a.excluded_by == {"after_as_of": after}
    assert (b.rows_used, b.rows_quarantined) == (a.rows_used, a.rows_quarantined)
    capa = _dirty_capa()
    a, b = pulled.validation.datasets["capa"], pushed.validation.datasets["capa"]
    after = capa.filter(pl.col("opened_date") > as_of).height
    reopened = capa.filter(pl.col("opened_date") <= as_of, pl.col("closed_date") > as_of).height
    assert after >= 3  # row 8 and the CAPAs opened March 11-31
    assert reopened >= 3  # rows 12, 13 and others: open on the as-of day
    assert b.excluded_by == a.excluded_by == {"after_as_of": after}
    assert (b.rows_used, b.rows_quarantined) == (a.rows_used, a.rows_quarantined)
    assert pushed.registers["overdue_capa"].equals(pulled.registers["overdue_capa"])
    quarantined = pushed.validation.quarantine["rule"].to_list()
    assert "closed_date_not_future" not in quarantined
    assert pushed.kpis.equals(pulled.kpis)
    tables_ = {t.id: t for t in pushed.review.tables}
    assert [t for t in pulled.review.tables if t != tables_[t.id]] == []


def _timestamped_complaints() -> pl.DataFrame:
    """:func:`_dirty_complaints` with its dates as timestamps, late in the day."""
    return _dirty_complaints().with_columns(
        pl.col("received_date").cast(pl.Datetime("us")) + pl.duration(hours=16, minutes=30),
        pl.col("closed_date").cast(pl.Datetime("us")) + pl.duration(hours=9),
    )


def test_dates_stored_as_timestamps_push_down_as_pulled_duckdb(
    dirty_inspections: pl.DataFrame, tmp_path: Path
) -> None:
    """A database keeping the complaints' dates as timestamps (late in the day, too): pulled,
    each is read as its day; pushed down, the query's date fields are cut to dates in the
    database first, so days to close, open at period end (a complaint received at 16:30 on
    the period's last day is open at its end) and repeats are the pulled ones."""
    db, tables = _every_pushable(tmp_path, dirty_inspections, _timestamped_complaints())
    _check_timestamps(tmp_path, db, tables)


@pytest.mark.postgres
def test_dates_stored_as_timestamps_push_down_as_pulled_postgresql(
    pg_table: PgTable, dirty_inspections: pl.DataFrame, tmp_path: Path
) -> None:
    """The same on PostgreSQL, where a timestamp minus a timestamp is an interval."""
    frames = {"r": _dirty_receipts(), "t": _timestamped_complaints()}
    with _pg_tables(pg_table, dirty_inspections, **frames) as (tables, db):
        _check_timestamps(tmp_path, db, tables)


def _check_timestamps(tmp_path: Path, db: str, tables: tuple[str, ...]) -> None:
    where = ""  # the whole table (row 8, received after the as-of day, is quarantined)
    pulled = pipeline.prepare(
        _complaints_config(tmp_path, db, tables, pushdown=False, where=where), "2026-03"
    )
    pushed = pipeline.prepare(
        _complaints_config(tmp_path, db, tables, pushdown=True, where=where), "2026-03"
    )
    assert pushed.kpis.equals(pulled.kpis)
    opened = pushed.kpis.filter(pl.col("kpi") == "complaints_open", pl.col("scope") == "all")
    # row 12, received on 2026-03-31 at 16:30, is open at March's end (age 0)
    young = pushed.kpis.filter(
        pl.col("kpi") == "complaints_open_age_0_30", pl.col("scope") == "all"
    )
    assert opened["value"][0] >= young["value"][0] >= 1
    a, b = pulled.validation.datasets["complaints"], pushed.validation.datasets["complaints"]
    assert (b.rows_in, b.rows_used) == (a.rows_in, a.rows_used) == (400, 391)
    # the lists from the period's rows: the same rows (a critical complaint received late on
    # the period's last day included)
    tables_ = {t.id: t for t in pushed.review.tables}
    assert [t.id for t in pulled.review.tables if t != tables_[t.id]] == []
    for name, frame in pulled.registers.items():
        assert pushed.registers[name].equals(frame), name


def _capa_verified_as_text(bad: dict[int, str] | None = None) -> pl.DataFrame:
    """:func:`_dirty_capa` with ``effectiveness_verified`` as an old system keeps it: ``Y``,
    ``n `` (lower case, a trailing space), an empty text for some unverified CAPAs; ``bad``:
    other words in those rows."""
    capa = _dirty_capa()
    words = [
        "" if v is None and i % 7 == 0 else None if v is None else "Y" if v else "n "
        for i, v in enumerate(capa["effectiveness_verified"].to_list())
    ]
    for i, word in (bad or {}).items():
        words[i] = word
    return capa.with_columns(pl.Series("effectiveness_verified", words, dtype=pl.String))


def _check_text_booleans(tmp_path: Path, db: str, tables: tuple[str, ...]) -> None:
    pulled = pipeline.prepare(_complaints_config(tmp_path, db, tables, pushdown=False), "2026-03")
    pushed = pipeline.prepare(_complaints_config(tmp_path, db, tables, pushdown=True), "2026-03")
    assert pushed.kpis.equals(pulled.kpis)
    # the words read as the booleans they stand for: the effectiveness KPIs have values
    verified = _dirty_capa()["effectiveness_verified"]
    assert verified.sum() > 0
    assert (~verified.drop_nulls()).sum() > 0
    _check_capa(pulled, pushed, "all")


def test_booleans_stored_as_text_push_down_as_pulled_duckdb(
    dirty_inspections: pl.DataFrame, tmp_path: Path
) -> None:
    """A CAPA table keeping ``effectiveness_verified`` as text (``Y``/``n ``/empty): pulled,
    the source's true and false words read it; pushed down, the database reads it by the
    same words, so every KPI, list and ledger is the pulled one."""
    db, tables = _every_pushable(tmp_path, dirty_inspections, capa=_capa_verified_as_text())
    _check_text_booleans(tmp_path, db, tables)


@pytest.mark.postgres
def test_booleans_stored_as_text_push_down_as_pulled_postgresql(
    pg_table: PgTable, dirty_inspections: pl.DataFrame, tmp_path: Path
) -> None:
    """The same on PostgreSQL, where a text column is no boolean in a condition."""
    frames = _pg_frames(capa=_capa_verified_as_text())
    with _pg_tables(pg_table, dirty_inspections, **frames) as (tables, db):
        _check_text_booleans(tmp_path, db, tables)


def test_a_boolean_word_nobody_declared_is_one_clear_error_naming_column_and_key(
    dirty_inspections: pl.DataFrame, tmp_path: Path
) -> None:
    # rows 31, 20 and 40 hold words neither true nor false: K0020 comes first by key
    bad = {31: "maybe", 20: " Maybe", 40: "N/A"}
    db, tables = _every_pushable(tmp_path, dirty_inspections, capa=_capa_verified_as_text(bad))
    with pytest.raises(SourceError) as err:
        pipeline.prepare(_complaints_config(tmp_path, db, tables, pushdown=True), "2026-03")
    e = err.value
    assert (e.dataset, e.column, e.path) == ("capa", "effectiveness_verified", "sql:qms")
    assert "3 row(s)" in str(e)
    assert "' Maybe' in capa_id 'K0020'" in str(e)
    assert "true_values or false_values" in str(e)
    # "maybe" declared a false word and "N/A" a null word, they read so (as pulled)
    query = 'query = "SELECT * FROM capa WHERE opened_date <= :period_end"\n'
    words = 'false_values = ["n", "maybe"]\nna_values = ["", "N/A"]\n'
    prepared = []
    for pushdown in (True, False):
        path = _complaints_config(tmp_path, db, tables, pushdown=pushdown)
        text = path.read_text("utf-8")
        assert query in text
        path.write_text(text.replace(query, query + words), "utf-8")
        prepared.append(pipeline.prepare(path, "2026-03"))
    pushed, pulled = prepared
    assert pushed.kpis.equals(pulled.kpis)
    _check_capa(pulled, pushed, "all")


def test_scopes_in_parallel_workers_push_down_to_the_same_duckdb_file(
    dirty_inspections: pl.DataFrame, tmp_path: Path
) -> None:
    """``qmskpi run --jobs 2``: two worker processes push their scopes down to one DuckDB
    file at the same time. DuckDB lets one process write a file or many read it; pushdown
    opens it read-only (GX's temporary tables live in memory), so no worker is locked out."""
    db, tables = _every_pushable(tmp_path, dirty_inspections)
    config = _complaints_config(tmp_path, db, tables, pushdown=True)
    outcomes = pipeline.run_scheduled(config, scopes=["all", "North", "South", "East"], jobs=2)
    assert {o.status for o in outcomes} == {"published"}, [o.error for o in outcomes]
    assert len(outcomes) == 4
