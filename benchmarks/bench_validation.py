"""How long contract validation takes next to just reading (loading) the same data.

Two modes; each prints its times and their ratios.

**A generated sample** (the issue-13 target: validation <= 4x the load)::

    .venv/bin/qmskpi sample --out /tmp/s45 --format parquet --scale 45 --as-of 2026-11-05
    .venv/bin/python benchmarks/bench_validation.py --config /tmp/s45/qmskpi.toml

times ``sources.load_all`` (and a bare ``pl.read_parquet`` of the same files),
then ``contracts.validate`` with the default ``polars`` engine (twice: cold
and warm), ``import great_expectations``, and ``validate(engine="gx")``.

**Inspections alone** (the dataset with the most rules)::

    .venv/bin/python benchmarks/bench_validation.py --rows 1000000
    .venv/bin/python benchmarks/bench_validation.py --rows 10000000 --no-complete

generates ``--rows`` inspections with numpy and polars, about 1 % of them
breaking some rule, writes them as CSV and Parquet under ``benchmarks/data/``
(git-ignored; deleted after reading unless ``--keep-data``), then times in one
process: reading both with polars (the floor); ``validate`` by each engine;
the GX suite alone with ``BASIC`` and with ``COMPLETE`` unexpected index lists
(``--no-complete`` skips it); and, with ``--duckdb``, alternative (a) of issue
13: the same suite through GX's SQL execution engine on DuckDB
(``duckdb-engine``), with how many expectations GX could evaluate.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import polars as pl

from qmskpi import contracts
from qmskpi.config import from_dict
from qmskpi.contracts import gx as contracts_gx
from qmskpi.datasets import DATASETS, SOURCE_ROW
from qmskpi.sources import REJECT_SCHEMA, LoadedDataset

HERE = Path(__file__).resolve().parent
PERIOD = "2026-10"
AS_OF = date(2026, 11, 5)
SITES = ["North", "South", "East"]
T = TypeVar("T")


def generate(n: int, *, bad_share: float = 0.01, seed: int = 9001) -> pl.DataFrame:
    """``n`` canonical inspections, ``bad_share`` of them broken in one of five ways."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-11-01")
    days = rng.integers(0, 730, n)
    inspected = rng.integers(1, 200, n)
    defective = np.where(rng.random(n) < 0.1, rng.integers(1, 5, n), 0)
    defective = np.minimum(defective, inspected)
    frame = pl.DataFrame(
        {
            "id": np.arange(n),
            "day": days,
            "site_i": rng.integers(0, 3, n),
            "product_i": rng.integers(0, 40, n),
            "stage_i": rng.integers(0, 3, n),
            "lot_i": rng.integers(0, 100_000, n),
            "qty_inspected": inspected,
            "qty_defective": defective,
        }
    )
    frame = frame.select(
        pl.format("I-{}", "id").alias("inspection_id"),
        (pl.lit(start.astype(object)) + pl.duration(days="day")).alias("inspection_date"),
        pl.col("site_i").replace_strict(dict(enumerate(SITES))).alias("site"),
        pl.format("P-{}", "product_i").alias("product"),
        pl.col("stage_i")
        .replace_strict(dict(enumerate(["incoming", "in_process", "final"])))
        .alias("stage"),
        pl.format("L-{}", "lot_i").alias("lot_id"),
        "qty_inspected",
        "qty_defective",
        pl.when(pl.col("qty_defective") > 0).then(pl.lit("DIM-OOT")).alias("defect_code"),
        pl.when(pl.col("qty_defective") > 0)
        .then(pl.lit("fail"))
        .otherwise(pl.lit("pass"))
        .alias("result"),
        pl.when(pl.col("qty_defective") > 0).then(pl.col("qty_defective") * 12.5).alias("cost"),
    )
    bad = rng.random(n) < bad_share
    kind = rng.integers(0, 5, n)
    frame = frame.with_columns(
        stage=pl.when(pl.Series(bad & (kind == 0))).then(pl.lit("packing")).otherwise("stage"),
        qty_defective=pl.when(pl.Series(bad & (kind == 1)))
        .then(pl.col("qty_inspected") + 1)
        .otherwise("qty_defective"),
        inspection_date=pl.when(pl.Series(bad & (kind == 2)))
        .then(pl.lit(date(2027, 1, 1)))
        .otherwise("inspection_date"),
        site=pl.when(pl.Series(bad & (kind == 3))).then(pl.lit("Nowhere")).otherwise("site"),
        result=pl.when(pl.Series(bad & (kind == 4))).then(pl.lit("pass")).otherwise("result"),
    )
    return frame.select(
        pl.col(name).cast(dtype) for name, dtype in DATASETS["inspections"].schema.items()
    )


def timed(label: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, float]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    seconds = time.perf_counter() - start
    print(f"  {label:<52} {seconds:8.2f} s", flush=True)
    return out, seconds


def bench_config() -> Any:
    return from_dict(
        {"organisation": {"name": "B", "sites": SITES}, "sources": {"inspections": {"path": "x"}}}
    )


def gx_context() -> tuple[Any, Any, Any]:
    """(the gx module, an ephemeral context without progress bars, the inspections suite)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    suite = contracts.build_suites(period=PERIOD, as_of=AS_OF, config=bench_config())
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return gx, ctx, suite["inspections"]


def gx_run(frame: pl.DataFrame, result_format: Any) -> Any:
    """The inspections suite run by GX alone, on the same pandas frame validate hands it."""
    gx, ctx, suite = gx_context()
    bd = (
        ctx.data_sources.add_pandas("bench")
        .add_dataframe_asset("inspections")
        .add_batch_definition_whole_dataframe("whole")
    )
    suite = ctx.suites.add(suite)
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name="b", data=bd, suite=suite))
    return vd.run(
        batch_parameters={"dataframe": contracts_gx._for_gx(frame)}, result_format=result_format
    )


def on_sample(config_path: Path) -> int:
    """Load vs validate on a data set of ``qmskpi sample`` (or any qmskpi.toml)."""
    from qmskpi.config import load_config
    from qmskpi.sources import load_all

    cfg = load_config(config_path)
    period = PERIOD
    print(f"qmskpi validation benchmark: {config_path}, period {period}, as of {AS_OF}")
    files = sorted(config_path.parent.glob("*.parquet"))
    _, t_bare = timed(f"bare pl.read_parquet of the {len(files)} Parquet files", _read_all, files)
    data, t_load = timed("sources.load_all", load_all, cfg, period=period)
    rows = sum(d.frame.height for d in data.values())
    print(f"    {rows:,} rows in {len(data)} datasets")
    times: dict[str, float] = {}
    for label in ("polars engine, first run", "polars engine, second run"):
        report, times[label] = timed(
            f"validate ({label})", contracts.validate, data, period=period, config=cfg, as_of=AS_OF
        )
    print(f"    great_expectations imported: {'great_expectations' in sys.modules}")
    _, t_import = timed("import great_expectations (once per process)", contracts_gx.import_gx)
    gx_report, t_gx = timed(
        "validate (gx engine)",
        contracts.validate,
        data,
        period=period,
        config=cfg,
        as_of=AS_OF,
        engine="gx",
    )
    same = gx_report.quarantine.equals(report.quarantine)
    print(f"    quarantined rows {report.rows_quarantined:,} (gx engine agrees: {same})")
    print("\nratios to sources.load_all (target: validation <= 4x the load)")
    for label, t in times.items():
        print(f"  validate, {label:<28} {t / t_load:6.2f}x  ({t / rows * 1e6:5.2f} s per 1M rows)")
    print(f"  validate, gx engine                  {t_gx / t_load:6.2f}x")
    print(f"  validate, gx engine + GX import      {(t_gx + t_import) / t_load:6.2f}x")
    print(f"  load / bare Parquet read             {t_load / t_bare:6.2f}x")
    best = min(times.values())
    print(
        f"  validate polars (best) / bare read   {best / t_bare:6.2f}x  (the load's own target: 2x)"
    )
    return 0


def _read_all(files: list[Path]) -> int:
    return sum(pl.read_parquet(f).height for f in files)


def gx_on_duckdb(frame: pl.DataFrame, data_dir: Path) -> tuple[int, int]:
    """Alternative (a): the inspections suite through GX's SQL engine on a DuckDB copy.

    Returns (expectations evaluated, expectations GX raised on).
    """
    import duckdb

    path = data_dir / "bench.duckdb"
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    con.register("arrow_frame", frame.to_arrow())
    con.execute("CREATE TABLE inspections AS SELECT * FROM arrow_frame")
    con.close()
    gx, ctx, suite = gx_context()
    bd = (
        ctx.data_sources.add_sql("duck", connection_string=f"duckdb:///{path}")
        .add_table_asset("inspections", table_name="inspections")
        .add_batch_definition_whole_table("whole")
    )
    suite = ctx.suites.add(suite)
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name="d", data=bd, suite=suite))
    try:
        res = vd.run(result_format="BASIC")
    finally:
        path.unlink(missing_ok=True)
    raised = sum(contracts_gx.gx_exception(r.exception_info) is not None for r in res.results)
    return len(res.results), raised


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--config", type=Path, help="time load vs validate on this qmskpi.toml")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--bad-share", type=float, default=0.01)
    ap.add_argument("--no-complete", action="store_true", help="skip the GX COMPLETE alternative")
    ap.add_argument("--duckdb", action="store_true", help="also try GX's SQL engine on DuckDB")
    ap.add_argument("--data-dir", type=Path, default=HERE / "data")
    ap.add_argument("--keep-data", action="store_true", help="keep the CSV/Parquet files written")
    args = ap.parse_args(argv)
    os.environ["GX_ANALYTICS_ENABLED"] = "False"
    if args.config is not None:
        return on_sample(args.config)

    print(f"qmskpi validation benchmark: {args.rows:,} inspections, {args.bad_share:.1%} broken")
    frame, _ = timed("generate (numpy + polars)", generate, args.rows, bad_share=args.bad_share)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    csv_path = args.data_dir / f"inspections_{args.rows}.csv"
    pq_path = args.data_dir / f"inspections_{args.rows}.parquet"
    frame.write_csv(csv_path)
    frame.write_parquet(pq_path)

    _, t_csv = timed("read CSV (polars)", pl.read_csv, csv_path, try_parse_dates=True)
    _, t_pq = timed("read Parquet (polars)", pl.read_parquet, pq_path)
    if not args.keep_data:
        csv_path.unlink()
        pq_path.unlink()

    loaded = LoadedDataset(
        dataset="inspections",
        frame=frame.with_columns(
            pl.int_range(2, frame.height + 2, dtype=pl.Int64).alias(SOURCE_ROW)
        ),
        rejects=pl.DataFrame(schema=REJECT_SCHEMA),
        origin=csv_path.name,
        sha256="",
        rows_in=frame.height,
    )
    cfg = bench_config()
    polars_runs = [
        timed(
            f"contracts.validate, polars engine (default), run {i}",
            contracts.validate,
            {"inspections": loaded},
            period=PERIOD,
            config=cfg,
            as_of=AS_OF,
        )
        for i in (1, 2, 3)
    ]
    report = polars_runs[0][0]
    t_val = min(t for _, t in polars_runs)
    d = report.datasets["inspections"]
    print(
        f"    rows in {d.rows_in:,}, used {d.rows_used:,}, quarantined {d.rows_quarantined:,}; "
        f"{len(d.rules)} rules, {d.errors_failed} errors and {d.warnings_failed} warnings failed"
    )
    timed("import great_expectations (once per process)", contracts_gx.import_gx)
    timed("  frame.to_pandas() (what the gx engine hands GX)", lambda: loaded.frame.to_pandas())
    _, t_gx = timed(
        "contracts.validate, gx engine (GX BASIC + polars rows)",
        contracts.validate,
        {"inspections": loaded},
        period=PERIOD,
        config=cfg,
        as_of=AS_OF,
        engine="gx",
    )
    _, t_basic = timed(
        "  of which: GX suite alone, BASIC (counts only)", gx_run, loaded.frame, "BASIC"
    )
    t_complete = None
    if not args.no_complete:
        complete = {"result_format": "COMPLETE", "unexpected_index_column_names": [SOURCE_ROW]}
        _, t_complete = timed(
            "GX suite alone, COMPLETE index lists", gx_run, loaded.frame, complete
        )
    if args.duckdb:
        (n, raised), _ = timed(
            "(a) GX SQL engine on DuckDB (copy + suite)", gx_on_duckdb, loaded.frame, args.data_dir
        )
        print(f"    {n} expectations, {raised} raised inside GX (not evaluated)")

    print("\nratios (validation time / read time; polars: best of 3 runs)")
    print(f"  validate polars / read CSV       {t_val / t_csv:6.1f}x")
    print(f"  validate polars / read Parquet   {t_val / t_pq:6.1f}x")
    print(f"  validate polars per 1M rows      {t_val / args.rows * 1e6:6.2f} s")
    print(f"  validate gx / validate polars    {t_gx / t_val:6.1f}x")
    print(f"  GX BASIC alone / validate gx     {t_basic / t_gx:6.2f}x")
    if t_complete is not None:
        print(f"  GX COMPLETE / GX BASIC           {t_complete / t_basic:6.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
