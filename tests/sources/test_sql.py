"""qmskpi.sources.sql: SQL sources (SQLite, DuckDB, PostgreSQL), bound parameters, hashes."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from qmskpi.datasets import SOURCE_ROW
from qmskpi.errors import ConfigError, HeaderError, SourceError
from sources.helpers import D, check_canonical, load_source

_SQL_ROWS = [
    # (id, received, closed, site, units)
    ("C-1", D(2026, 10, 5), D(2026, 10, 20), "Leeds", 3),
    ("C-2", D(2024, 8, 2), None, "Leeds", 1),  # one day before the window
    ("C-3", D(2024, 8, 3), None, "York", None),  # first day of the window
    ("C-4", D(2026, 11, 1), None, "Leeds", 2),  # after the period
    ("C-5", D(2026, 10, 31), None, "York", 7),
]


def _seed(url: str | sa.URL, table: str = "complaints") -> None:
    engine = sa.create_engine(url)
    md = sa.MetaData()
    t = sa.Table(
        table,
        md,
        sa.Column("id", sa.String(20)),
        sa.Column("recv", sa.Date),
        sa.Column("closed", sa.Date),
        sa.Column("site", sa.String(40)),
        sa.Column("customer", sa.String(40)),
        sa.Column("product", sa.String(40)),
        sa.Column("category", sa.String(40)),
        sa.Column("severity", sa.String(20)),
        sa.Column("status", sa.String(20)),
        sa.Column("units", sa.Integer),
    )
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            t.insert(),
            [
                {
                    "id": i,
                    "recv": rd,
                    "closed": cd,
                    "site": s,
                    "customer": "Acme",
                    "product": "P-1",
                    "category": "packaging",
                    "severity": "minor",
                    "status": "closed" if cd else "open",
                    "units": u,
                }
                for i, rd, cd, s, u in _SQL_ROWS
            ],
        )
    engine.dispose()


def _sql_toml(db: str, table: str = "complaints") -> str:
    return f"""
{db}
[sources.complaints]
database = "qms"
query = \"\"\"
SELECT id, recv, closed, site, customer, product, category, severity, status, units
FROM {table}
WHERE recv BETWEEN :period_start AND :period_end
  AND (:site IS NULL OR site = :site)
ORDER BY id
\"\"\"
columns = {{ complaint_id = "id", received_date = "recv", closed_date = "closed", units_affected = "units" }}
"""


@pytest.fixture(params=["sqlite", "duckdb"])
def file_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLite or DuckDB file in tmp_path, named relative to the config's folder."""
    name = "qms.db" if request.param == "sqlite" else "qms.duckdb"
    _seed(f"{request.param}:///{tmp_path / name}")
    return f'[databases.qms]\nurl = "{request.param}:///{name}"'


def test_sql_pulls_only_the_window_with_bound_parameters(file_db: str, tmp_path: Path) -> None:
    r = load_source(_sql_toml(file_db), base=tmp_path, period="2026-10")
    check_canonical(r)
    assert r.origin == "sql:qms"
    assert r.files == ()
    assert r.frame.select(
        "complaint_id", "received_date", "closed_date", "units_affected", SOURCE_ROW
    ).rows() == [
        ("C-1", D(2026, 10, 5), D(2026, 10, 20), 3, 1),
        ("C-3", D(2024, 8, 3), None, None, 2),
        ("C-5", D(2026, 10, 31), None, 7, 3),
    ]
    # one site, and a shorter window
    r = load_source(
        _sql_toml(file_db),
        base=tmp_path,
        period="2026-10",
        site="York",
        trend_months=3,
        lookback_days=0,
    )
    assert r.frame["complaint_id"].to_list() == ["C-5"]


def test_sql_hash_covers_query_params_and_rows(file_db: str, tmp_path: Path) -> None:
    a = load_source(_sql_toml(file_db), base=tmp_path, period="2026-10")
    b = load_source(_sql_toml(file_db), base=tmp_path, period="2026-10")
    c = load_source(_sql_toml(file_db), base=tmp_path, period="2026-09")
    assert a.sha256 == b.sha256
    assert a.sha256 != c.sha256


def test_sql_site_is_bound_not_executed(file_db: str, tmp_path: Path) -> None:
    evil = "'; DROP TABLE complaints; --"
    r = load_source(_sql_toml(file_db), base=tmp_path, period="2026-10", site=evil)
    assert r.rows_in == 0
    assert load_source(_sql_toml(file_db), base=tmp_path, period="2026-10").rows_in == 3


def test_sql_query_needs_a_period_and_known_parameters(file_db: str, tmp_path: Path) -> None:
    with pytest.raises(
        SourceError, match="sql:qms, dataset 'complaints': the query uses :period_start"
    ):
        load_source(_sql_toml(file_db), base=tmp_path)
    with pytest.raises(ConfigError, match="the query names :plant"):
        load_source(_sql_toml(file_db).replace(":site", ":plant"), base=tmp_path, period="2026-10")


def test_sql_results_take_derive_where_and_duplicates(file_db: str, tmp_path: Path) -> None:
    toml = _sql_toml(file_db).replace("SELECT id,", "SELECT id, id AS again,") + (
        "ignore_columns = ['severity', 'status']\n"
        "where = \"again <> 'C-3'\"\n"
        "[sources.complaints.derive]\n"
        "severity = \"CASE WHEN CAST(units AS INT) > 5 THEN 'major' ELSE 'minor' END\"\n"
        "status = \"CASE WHEN closed IS NULL THEN 'open' ELSE 'closed' END\"\n"
    )
    r = load_source(toml, base=tmp_path, period="2026-10")
    check_canonical(r)
    # native dates and integers are text to an expression: numbers are compared after a CAST
    assert r.frame.select("complaint_id", "severity", "status").rows() == [
        ("C-1", "minor", "closed"),
        ("C-5", "major", "open"),
    ]
    assert r.excluded.select(SOURCE_ROW, "rule").rows() == [(2, "where")]


def test_sql_errors_are_source_errors(tmp_path: Path) -> None:
    _seed(f"sqlite:///{tmp_path / 'qms.db'}")
    toml = _sql_toml('[databases.qms]\nurl = "sqlite:///qms.db"', table="no_such_table")
    with pytest.raises(
        SourceError, match="sql:qms, dataset 'complaints': query failed: no such table"
    ):
        load_source(toml, base=tmp_path, period="2026-10")


def test_sql_header_checks_apply(tmp_path: Path) -> None:
    _seed(f"sqlite:///{tmp_path / 'qms.db'}")
    toml = _sql_toml('[databases.qms]\nurl = "sqlite:///qms.db"').replace(
        'received_date = "recv", ', ""
    )
    with pytest.raises(HeaderError, match=r"sql:qms.*missing column 'received_date'"):
        load_source(toml, base=tmp_path, period="2026-10")


@pytest.mark.postgres
def test_postgresql_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = os.environ.get("QMSKPI_TEST_PG_URL")
    if not url:
        why = os.environ.get("QMSKPI_TEST_PG_UNAVAILABLE", "QMSKPI_TEST_PG_URL is not set")
        pytest.skip(f"{why} (`make test` starts a throwaway PostgreSQL and sets it)")
    table = f"qmskpi_test_{uuid.uuid4().hex[:12]}"
    engine_url = sa.make_url(url)
    if engine_url.drivername == "postgresql":
        engine_url = engine_url.set(drivername="postgresql+psycopg")
    _seed(engine_url, table)
    try:
        toml = _sql_toml('[databases.qms]\nurl_env = "QMSKPI_TEST_PG_URL"', table=table)
        r = load_source(toml, base=tmp_path, period="2026-10")
        check_canonical(r)
        assert r.origin == "sql:qms"
        assert r.frame.select("complaint_id", "received_date", "units_affected").rows() == [
            ("C-1", D(2026, 10, 5), 3),
            ("C-3", D(2024, 8, 3), None),
            ("C-5", D(2026, 10, 31), 7),
        ]
        assert load_source(toml, base=tmp_path, period="2026-10", site="Leeds").frame[
            "complaint_id"
        ].to_list() == ["C-1"]
        evil = f"'; DROP TABLE {table}; --"
        assert load_source(toml, base=tmp_path, period="2026-10", site=evil).rows_in == 0
        assert load_source(toml, base=tmp_path, period="2026-10").rows_in == 3
    finally:
        engine = sa.create_engine(engine_url)
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()


def test_read_only_kwargs_open_duckdb_files_read_only_only() -> None:
    """A DuckDB file is opened read-only (many processes may then read it at once); DuckDB
    in memory cannot be, and other databases take no such argument."""
    from qmskpi.sources import read_only_kwargs

    assert read_only_kwargs("duckdb:////tmp/qms.duckdb") == {"connect_args": {"read_only": True}}
    assert read_only_kwargs("duckdb:///:memory:") == {}
    assert read_only_kwargs("duckdb://") == {}
    assert read_only_kwargs("postgresql+psycopg://u@h/db") == {}
    assert read_only_kwargs("sqlite:////tmp/q.db") == {}
