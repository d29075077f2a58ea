"""Benchmark: the first aggregation level of the inspection KPIs, in the database or pulled.

The first level is what ``pushdown`` moves into the database: per calendar month
and site, the 18 record measures of ``kpis.conformity.INSPECTION_MEASURES`` +
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
import gc
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import sqlalchemy as sa
from bench_kpis import PeakRss

from qmskpi.kpis import PUSHDOWN
from qmskpi.kpis.firstlevel import MONTH, FirstLevel, Measure, first_level
from qmskpi.kpis.sql import first_level_sql

FIRST_DAY = date(2023, 11, 1)
SPAN = 1096
SITES = ["Berlin", "Dublin", "Lyon", "Porto", "Torino", "Wroclaw"]
STAGES = ["incoming", "in_process", "final"]
MEASURES: tuple[Measure, ...] = tuple(m for m in PUSHDOWN["inspections"] if m.lots is None)
"""The record measures (the lot measures need lot ids; the end-to-end run has them all)."""
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


@dataclass
class Measured:
    seconds: list[float] = field(default_factory=list)
    rss_rise_mb: float = 0.0


def timed(fn: Callable[[], Any], repeat: int) -> tuple[Measured, Any]:
    """Wall seconds per run and the peak RSS rise (sampled every 5 ms)."""
    out: Any = None
    m = Measured()
    for _ in range(repeat):
        gc.collect()
        with PeakRss() as mem:
            t0 = time.perf_counter()
            out = fn()
            m.seconds.append(time.perf_counter() - t0)
        m.rss_rise_mb = max(m.rss_rise_mb, (mem.peak - mem.base) / 2**20)
    return m, out


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


def report(rows: Sequence[tuple[str, Measured, str]]) -> None:
    print("\n| run | best s | median s | peak RSS rise | note |")
    print("|---|---:|---:|---:|---|")
    for name, m, note in rows:
        print(
            f"| {name} | {min(m.seconds):.3f} | {statistics.median(m.seconds):.3f} "
            f"| {m.rss_rise_mb:,.0f} MB | {note} |"
        )


Row = tuple[str, Measured, str]


def pull_row(db: str, engine: sa.Engine, frame: pl.DataFrame, ref: FirstLevel, repeat: int) -> Row:
    """Every row fetched over SQLAlchemy, then the first level in polars."""
    t, (got, size) = timed(lambda: pulled(engine), max(1, repeat - 1))
    same(ref, got, f"{db} pulled")
    note = f"{frame.height:,} rows returned, {size / 2**20:.0f} MB as polars columns"
    return (f"{db}, pull rows + polars", t, note)


def in_memory(frame: pl.DataFrame, ref: FirstLevel, ibis: Any, repeat: int) -> list[Row]:
    out: list[Row] = []
    t, _ = timed(
        lambda: first_level(frame.lazy(), "inspections", "inspection_date", MEASURES), repeat
    )
    out.append(("polars, measures (in memory)", t, f"{ref.frame.height} rows out"))
    if ibis is not None:
        con = ibis.polars.connect()
        table = con.create_table("inspections", frame)
        t, got = timed(lambda: ibis_frame(con.to_polars(ibis_expr(table))), repeat)
        same(ref, got, "ibis polars")
        out.append(("polars, Ibis (in memory)", t, "equal"))
    return out


def on_duckdb(frame: pl.DataFrame, ref: FirstLevel, ibis: Any, repeat: int) -> list[Row]:
    out: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        load_duckdb(frame, path)
        engine = sa.create_engine(f"duckdb:///{path}", connect_args={"read_only": True})
        t, got = timed(
            lambda: first_level_sql(engine, QUERY, "inspections", "inspection_date", MEASURES),
            repeat,
        )
        same(ref, got, "duckdb measures SQL")
        out.append(
            ("DuckDB, measures -> SQLAlchemy SQL", t, f"equal; {got.frame.height} rows returned")
        )
        engine.dispose()  # DuckDB: one configuration per open file
        if ibis is not None:
            dcon = ibis.duckdb.connect(str(path), read_only=True)
            dt = dcon.table("inspections")
            t, got = timed(lambda: ibis_frame(dcon.to_polars(ibis_expr(dt))), repeat)
            same(ref, got, "ibis duckdb")
            out.append(("DuckDB, Ibis", t, "equal"))
            dcon.disconnect()
        out.append(pull_row("DuckDB", engine, frame, ref, repeat))
        engine.dispose()
    return out


def on_postgres(
    frame: pl.DataFrame,
    ref: FirstLevel,
    ibis: Any,
    repeat: int,
    pg: str,
    *,
    pull: bool = True,
    load: bool = True,
) -> list[Row]:
    out: list[Row] = []
    engine = sa.create_engine(pg)
    if load:
        load_postgres(frame, engine)
    t, got = timed(
        lambda: first_level_sql(engine, QUERY, "inspections", "inspection_date", MEASURES),
        repeat,
    )
    same(ref, got, "postgres measures SQL")
    out.append(
        ("PostgreSQL, measures -> SQLAlchemy SQL", t, f"equal; {got.frame.height} rows returned")
    )
    if ibis is not None:
        url = sa.make_url(pg)
        pcon = ibis.postgres.connect(
            host=url.query.get("host") or url.host,
            user=url.username,
            database=url.database,
            port=url.port or 5432,
        )
        pt = pcon.table("inspections")
        t, got = timed(lambda: ibis_frame(pcon.to_polars(ibis_expr(pt))), repeat)
        same(ref, got, "ibis postgres")
        out.append(("PostgreSQL, Ibis", t, "equal"))
        pcon.disconnect()
    if not pull:
        engine.dispose()
        return out
    out.append(pull_row("PostgreSQL", engine, frame, ref, repeat))
    engine.dispose()
    return out


def end_to_end(pg: str, repeat: int, *, pull: bool = True) -> list[Row]:
    """qmskpi's own two paths on the table on_postgres loaded, every covered KPI compared."""
    import tomllib

    from qmskpi import contracts, kpis
    from qmskpi.config import from_dict
    from qmskpi.pushdown import push_down
    from qmskpi.sources import load_dataset

    os.environ["QMSKPI_BENCH_PG_URL"] = pg
    toml = f"""
[organisation]
name = "Bench"
sites = {SITES!r}
[review]
as_of = 2026-11-05
[databases.qms]
url_env = "QMSKPI_BENCH_PG_URL"
[sources.inspections]
database = "qms"
query = "SELECT *, 'p1' AS product, NULL AS lot_id, NULL AS defect_code FROM inspections"
"""
    config = from_dict(tomllib.loads(toml))
    period = "2026-10"
    covered = pl.col("kpi").is_in(list(kpis.pushed_down("inspections")))

    def pull_rows() -> pl.DataFrame:
        loaded = load_dataset(config, "inspections", period=period)
        report = contracts.validate({"inspections": loaded}, period=period, config=config)
        return kpis.kpi_series(report.clean, period, months=24).filter(covered)

    pushed_config = from_dict(tomllib.loads(toml + "pushdown = true\n"))

    travelled: list[str] = []

    def push() -> pl.DataFrame:
        pushed = push_down(pushed_config, "inspections", period)
        agg = {"inspections": pushed.aggregates}
        failing = sum(r.failing.height for r in pushed.validation.rules)
        travelled[:] = [f"{pushed.aggregates.frame.height} aggregate rows + {failing} failing keys"]
        return kpis.kpi_series({}, period, months=24, aggregates=agg).filter(covered)

    t_push, a = timed(push, repeat)
    pushed_row = (
        "qmskpi pushdown: push_down + kpi_series (24 months)",
        t_push,
        f"{travelled[0]} returned",
    )
    if not pull:
        return [pushed_row]
    t_pull, b = timed(pull_rows, 1)
    if not a.equals(b):
        raise SystemExit("pushdown and pull differ on the covered KPIs")
    return [
        (
            "qmskpi pushdown: push_down + kpi_series (24 months)",
            t_push,
            f"equal KPIs; {travelled[0]}",
        ),
        ("qmskpi pull: load_dataset + validate + kpi_series", t_pull, "equal KPIs; every row"),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-ibis", action="store_true", help="skip the Ibis runs")
    ap.add_argument("--postgres-only", action="store_true", help="skip in-memory and DuckDB")
    ap.add_argument("--no-pull", action="store_true", help="skip every pull run (large sizes)")
    ap.add_argument(
        "--reuse-table", action="store_true", help="PostgreSQL already holds these rows"
    )
    ap.add_argument(
        "--end-to-end",
        action="store_true",
        help="also qmskpi's own paths on PostgreSQL: load_dataset + validate + compute_kpis "
        "(pull) vs pushdown.push_down + compute_kpis",
    )
    args = ap.parse_args(argv)
    try:
        import ibis
    except (
        ImportError
    ):  # not a qmskpi dependency: `pip install 'ibis-framework[duckdb,polars,postgres]'`
        ibis = None
        print("ibis-framework not installed: Ibis not timed", file=sys.stderr)
    if args.no_ibis:
        ibis = None

    frame = generate(args.rows)
    ref = first_level(frame.lazy(), "inspections", "inspection_date", MEASURES)
    results: list[tuple[str, Measured, str]] = []
    if not args.postgres_only:
        results += in_memory(frame, ref, ibis, args.repeat)
        results += on_duckdb(frame, ref, ibis, args.repeat)
    pg = os.environ.get("QMSKPI_TEST_PG_URL")
    if pg:
        results += on_postgres(
            frame, ref, ibis, args.repeat, pg, pull=not args.no_pull, load=not args.reuse_table
        )
        if args.end_to_end:
            results += end_to_end(pg, args.repeat, pull=not args.no_pull)
    else:
        print("QMSKPI_TEST_PG_URL not set: PostgreSQL not timed", file=sys.stderr)
    print(f"{args.rows:,} inspections, {len(MEASURES)} measures, best/median of {args.repeat}")
    report(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
