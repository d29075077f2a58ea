"""How long contract validation takes next to just reading the same data.

    python benchmarks/bench_validation.py --rows 1000000
    python benchmarks/bench_validation.py --rows 10000000 --no-complete

Generates ``--rows`` inspections (the dataset with the most rules: 18) with
numpy and polars, about 1 % of them breaking some rule, writes them as CSV
and Parquet under ``benchmarks/data/`` (git-ignored; deleted after reading
unless ``--keep-data``), then times in one process:

* reading the CSV and the Parquet file with polars (the floor);
* ``contracts.validate`` on the frame (GX import excluded, timed apart),
  i.e. polars row masks + GX suite with ``result_format="BASIC"``;
* the GX suite alone with ``BASIC`` (counts only), and the alternative it
  replaced: the same suite with ``COMPLETE`` unexpected index lists, which
  would give the failing rows without polars (``--no-complete`` skips it);

and prints each time with its ratio to the polars reads.
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
        pl.when(pl.col("qty_defective") > 0)
        .then(pl.col("qty_defective") * 12.5)
        .alias("cost"),
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


def gx_run(frame: pl.DataFrame, result_format: Any) -> Any:
    """The inspections suite run by GX alone, on the same pandas frame validate hands it."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    cfg = from_dict(
        {"organisation": {"name": "B", "sites": SITES}, "sources": {"inspections": {"path": "x"}}}
    )
    suite = contracts.build_suites(period=PERIOD, as_of=AS_OF, config=cfg)["inspections"]
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--bad-share", type=float, default=0.01)
    ap.add_argument("--no-complete", action="store_true", help="skip the GX COMPLETE alternative")
    ap.add_argument("--data-dir", type=Path, default=HERE / "data")
    ap.add_argument("--keep-data", action="store_true", help="keep the CSV/Parquet files written")
    args = ap.parse_args(argv)
    os.environ["GX_ANALYTICS_ENABLED"] = "False"

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

    timed("import great_expectations (once per process)", contracts_gx._import_gx)
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
    cfg = from_dict(
        {"organisation": {"name": "B", "sites": SITES}, "sources": {"inspections": {"path": "x"}}}
    )
    timed("  of which: frame.to_pandas()", lambda: loaded.frame.to_pandas())
    report, t_val = timed(
        "contracts.validate (polars masks + GX BASIC)",
        contracts.validate,
        {"inspections": loaded},
        period=PERIOD,
        config=cfg,
        as_of=AS_OF,
    )
    d = report.datasets["inspections"]
    print(
        f"    rows in {d.rows_in:,}, used {d.rows_used:,}, quarantined {d.rows_quarantined:,}; "
        f"{len(d.rules)} rules, {d.errors_failed} errors and {d.warnings_failed} warnings failed"
    )
    _, t_basic = timed(
        "  of which: GX suite alone, BASIC (counts only)", gx_run, loaded.frame, "BASIC"
    )
    t_complete = None
    if not args.no_complete:
        complete = {"result_format": "COMPLETE", "unexpected_index_column_names": [SOURCE_ROW]}
        _, t_complete = timed(
            "alternative (a): GX suite alone, COMPLETE index lists", gx_run, loaded.frame, complete
        )

    print("\nratios (validation time / read time)")
    print(f"  validate / read CSV       {t_val / t_csv:6.1f}x")
    print(f"  validate / read Parquet   {t_val / t_pq:6.1f}x")
    print(f"  validate per 1M rows      {t_val / args.rows * 1e6:6.2f} s")
    print(f"  GX BASIC alone / validate {t_basic / t_val:6.2f}x  (the rest: polars masks, ledger)")
    if t_complete is not None:
        print(
            "(a) GX COMPLETE lists the rows itself; (b) GX BASIC + polars masks (what validate does)"
        )
        print(f"  (a) GX COMPLETE alone / (b) whole validate  {t_complete / t_val:6.1f}x")
        print(f"  (a) GX COMPLETE / GX BASIC                  {t_complete / t_basic:6.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
