"""Benchmark: the first aggregation level of the inspection KPIs, in the database or pulled.

The first level is what ``pushdown`` moves into the database: per calendar month
and site, the 18 measures of ``kpis.conformity.INSPECTION_MEASURES`` +
``COST_MEASURES`` (counts, passes, quantities per stage; cost) and the first/last
inspection date. Two ways to keep "one definition per KPI" are timed on the same
data and must agree on every value (asserted):

- **measures** (chosen): the ``Measure`` tuples compiled to polars
  (``kpis.firstlevel.first_level``) and to SQL through SQLAlchemy
  (``kpis.sql.first_level_sql``);
- **Ibis 12**: the same measures written once as an Ibis expression and run on
  Ibis' polars, DuckDB and PostgreSQL backends.

Plus **pull**: ``SELECT`` the needed columns of every row over SQLAlchemy and
aggregate in polars (what a SQL source does without pushdown).

    .venv/bin/python benchmarks/bench_pushdown.py --rows 1000000          # ~2 min
    QMSKPI_TEST_PG_URL=postgresql+psycopg://... .venv/bin/python benchmarks/bench_pushdown.py

PostgreSQL is timed only when ``QMSKPI_TEST_PG_URL`` is set (a unix-socket URL as
``scripts/system-deps with-postgres`` gives); the table is (re)created there.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import sqlalchemy as sa

from qmskpi.kpis import PUSHDOWN
from qmskpi.kpis.firstlevel import MONTH, FirstLevel, Measure, first_level
from qmskpi.kpis.sql import first_level_sql

FIRST_DAY = date(2023, 11, 1)
SPAN = 1096
SITES = ["Berlin", "Dublin", "Lyon", "Porto", "Torino", "Wroclaw"]
STAGES = ["incoming", "in_process", "final"]
MEASURES: tuple[Measure, ...] = PUSHDOWN["inspections"]
COLUMNS = ["inspection_date", "site", "stage", "result", "qty_inspected", "qty_defective", "cost"]
QUERY = "SELECT " + ", ".join(COLUMNS) + " FROM inspections"


def generate(n: int, seed: int = 9001) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    qty = rng.integers(1, 500, n)
    bad = np.where(rng.random(n) < 0.07, np.minimum(rng.binomial(qty, 0.02) + 1, qty), 0)
    days = rng.integers(0, SPAN, n).astype("timedelta64[D]")
    cost = np.where(bad > 0, rng.integers(1, 900, n), -1)
    return pl.DataFrame(
        {
            "inspection_id": pl.select(pl.format("I{}", pl.int_range(n))).to_series(),
            "inspection_date": pl.Series(np.datetime64(FIRST_DAY, "D") + days, dtype=pl.Date),
            "site": pl.Series(SITES).gather(rng.integers(0, len(SITES), n)),
            "stage": pl.Series(STAGES).gather(rng.choice(3, n, p=[0.3, 0.4, 0.3])),
            "result": pl.Series(np.where(bad > 0, "fail", "pass")),
            "qty_inspected": qty,
            "qty_defective": bad,
            "cost": pl.Series(cost, dtype=pl.Float64).replace(-1.0, None),
        }
    )


# --------------------------------------------------------------------------- Ibis


def ibis_expr(t: Any) -> Any:
    """The same measures as one Ibis expression (what "engine in Ibis" would mean)."""
    import ibis

    t = t.filter(t.inspection_date.notnull())
    d = t.inspection_date
    aggs: dict[str, Any] = {}
    for m in MEASURES:
        conds = [t[c] == v for c, v in m.equals]
        if m.present is not None:
            conds.append(t[m.present].notnull())
        where = ibis.and_(*conds) if conds else None
        if m.column is None:
            aggs[m.name] = t.count(where=where)
        else:
            aggs[m.name] = t[m.column].sum(where=where).fill_null(0)
    return t.group_by(_year=d.year(), _month=d.month(), site=t.site).aggregate(
        **aggs, first=d.min(), last=d.max()
    )


def ibis_frame(result: pl.DataFrame) -> FirstLevel:
    frame = result.select(
        pl.date(pl.col("_year"), pl.col("_month"), 1).alias(MONTH),
        "site",
        *[pl.col(m.name).cast(pl.Float64) for m in MEASURES],
        pl.col("first").cast(pl.Date),
        pl.col("last").cast(pl.Date),
    ).sort(MONTH, "site")
    return FirstLevel("inspections", "inspection_date", MEASURES, frame)


# --------------------------------------------------------------------------- runs


def pulled(engine: sa.Engine) -> tuple[FirstLevel, int]:
    """Fetch the columns of every row, then aggregate in polars; returns bytes pulled too."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(QUERY)).fetchall()
    frame = pl.DataFrame(rows, schema=COLUMNS, orient="row", infer_schema_length=None)
    fl = first_level(frame.lazy(), "inspections", "inspection_date", MEASURES)
    return fl, int(frame.estimated_size())


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    out: Any = None
    times: list[float] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def same(a: FirstLevel, b: FirstLevel, name: str) -> None:
    left = a.frame.sort(MONTH, "site")
    right = b.frame.sort(MONTH, "site").select(left.columns)
    if not left.equals(right):
        diff = left.join(right, on=[MONTH, "site"], how="full", suffix="_b").head(5)
        raise SystemExit(f"{name} differs from the polars reference:\n{diff}")


def load_duckdb(frame: pl.DataFrame, path: Path) -> None:
    import duckdb

    con = duckdb.connect(str(path))
    con.register("frame", frame.to_arrow())
    con.execute("CREATE TABLE inspections AS SELECT * FROM frame")
    con.close()


def load_postgres(frame: pl.DataFrame, engine: sa.Engine) -> None:
    ddl = """DROP TABLE IF EXISTS inspections;
    CREATE TABLE inspections (inspection_id text PRIMARY KEY, inspection_date date, site text,
      stage text, result text, qty_inspected bigint, qty_defective bigint, cost double precision)"""
    buf = io.BytesIO()
    frame.write_csv(buf, include_header=False)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for stmt in ddl.split(";"):
            cur.execute(stmt)
        with cur.copy(  # type: ignore[attr-defined]
            "COPY inspections FROM STDIN WITH (FORMAT csv)"
        ) as copy:
            copy.write(buf.getvalue())
        cur.execute("ANALYZE inspections")
        raw.commit()
    finally:
        raw.close()


def report(rows: Sequence[tuple[str, list[float], str]]) -> None:
    print("\n| run | best s | median s | note |\n|---|---:|---:|---|")
    for name, times, note in rows:
        print(f"| {name} | {min(times):.3f} | {statistics.median(times):.3f} | {note} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    import ibis

    frame = generate(args.rows)
    ref = first_level(frame.lazy(), "inspections", "inspection_date", MEASURES)
    results: list[tuple[str, list[float], str]] = []

    t, _ = timed(
        lambda: first_level(frame.lazy(), "inspections", "inspection_date", MEASURES), args.repeat
    )
    results.append(("polars, measures (in memory)", t, f"{ref.frame.height} rows out"))
    con = ibis.polars.connect()
    table = con.create_table("inspections", frame)
    t, out = timed(lambda: ibis_frame(con.to_polars(ibis_expr(table))), args.repeat)
    same(ref, out, "ibis polars")
    results.append(("polars, Ibis (in memory)", t, "equal"))

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        load_duckdb(frame, path)
        engine = sa.create_engine(f"duckdb:///{path}", connect_args={"read_only": True})
        t, out = timed(
            lambda: first_level_sql(engine, QUERY, "inspections", "inspection_date", MEASURES),
            args.repeat,
        )
        same(ref, out, "duckdb measures SQL")
        results.append(("DuckDB, measures -> SQLAlchemy SQL", t, "equal"))
        engine.dispose()  # DuckDB: one configuration per open file
        dcon = ibis.duckdb.connect(str(path), read_only=True)
        dt = dcon.table("inspections")
        t, out = timed(lambda: ibis_frame(dcon.to_polars(ibis_expr(dt))), args.repeat)
        same(ref, out, "ibis duckdb")
        results.append(("DuckDB, Ibis", t, "equal"))
        dcon.disconnect()
        t, (out, size) = timed(lambda: pulled(engine), max(1, args.repeat - 1))
        same(ref, out, "duckdb pulled")
        results.append(
            (
                "DuckDB, pull rows + polars",
                t,
                f"{size / 2**20:.0f} MB of columns pulled (polars size)",
            )
        )
        engine.dispose()

    pg = os.environ.get("QMSKPI_TEST_PG_URL")
    if pg:
        engine = sa.create_engine(pg)
        load_postgres(frame, engine)
        t, out = timed(
            lambda: first_level_sql(engine, QUERY, "inspections", "inspection_date", MEASURES),
            args.repeat,
        )
        same(ref, out, "postgres measures SQL")
        results.append(("PostgreSQL, measures -> SQLAlchemy SQL", t, "equal"))
        url = sa.make_url(pg)
        pcon = ibis.postgres.connect(
            host=url.query.get("host") or url.host,
            user=url.username,
            database=url.database,
            port=url.port or 5432,
        )
        pt = pcon.table("inspections")
        t, out = timed(lambda: ibis_frame(pcon.to_polars(ibis_expr(pt))), args.repeat)
        same(ref, out, "ibis postgres")
        results.append(("PostgreSQL, Ibis", t, "equal"))
        pcon.disconnect()
        t, (out, size) = timed(lambda: pulled(engine), max(1, args.repeat - 1))
        same(ref, out, "postgres pulled")
        results.append(
            (
                "PostgreSQL, pull rows + polars",
                t,
                f"{size / 2**20:.0f} MB of columns pulled (polars size)",
            )
        )
        engine.dispose()
    else:
        print("QMSKPI_TEST_PG_URL not set: PostgreSQL not timed", file=sys.stderr)
    print(f"{args.rows:,} inspections, {len(MEASURES)} measures, best/median of {args.repeat}")
    report(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
