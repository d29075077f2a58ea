"""How long ``sources.load_all`` takes next to a bare ``pl.read_parquet`` of the same files.

    python benchmarks/bench_load.py --scale 45               # ~1M inspections
    python benchmarks/bench_load.py --scale 450 --repeat 2   # ~10M inspections
    python benchmarks/bench_load.py --data /tmp/s45          # an existing `qmskpi sample` folder

Writes ``qmskpi sample --format parquet --scale S --end-month 2026-10`` into a
temporary folder (or reads ``--data``), then runs, alternating, ``--repeat``
times each, in a fresh process per run:

* ``bare``: ``pl.read_parquet`` of every configured file (every column, every row);
* ``load``: ``sources.load_all(config, period=2026-10)``: the mapped columns, typed,
  checked, with row numbers, sha256 and the trend window (rows wholly before it
  are left out of the scan and counted as ``outside_window``).

Each run reports its wall seconds and CPU seconds (user + system, every thread; both
without the imports) and the process's peak RSS (``ru_maxrss`` from ``wait4``, imports
included). On a machine shared with other jobs the wall seconds swing by 2x; the CPU
seconds much less (a page fault or a copy costs the same CPU, only later). The report gives best and
median of each and the ratio load / bare (target: at most 2x), and checks the
ledger of every dataset (``rows_in == frame + rejected + excluded``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PERIOD = "2026-10"


def child(kind: str, data: Path) -> None:
    """One timed run in this process; prints a JSON line."""
    import polars as pl

    from qmskpi import config, sources

    cfg = config.load_config(data / "qmskpi.toml")
    paths = [cfg.resolve(s.path) for s in cfg.sources.values() if s.path is not None]
    out: dict[str, Any] = {"kind": kind}
    cpu = _cpu_seconds()
    start = time.perf_counter()
    if kind == "bare":
        frames = [pl.read_parquet(p) if p.suffix == ".parquet" else pl.read_csv(p) for p in paths]
        out["seconds"] = time.perf_counter() - start
        out["cpu"] = _cpu_seconds() - cpu
        out["rows"] = sum(f.height for f in frames)
    else:
        loaded = sources.load_all(cfg, period=PERIOD)
        out["seconds"] = time.perf_counter() - start
        out["cpu"] = _cpu_seconds() - cpu
        out["datasets"] = {
            name: {
                "rows_in": ld.rows_in,
                "used": ld.frame.height,
                "rejected": ld.rows_rejected,
                "excluded": ld.excluded_by,
            }
            for name, ld in loaded.items()
        }
    print(json.dumps(out), flush=True)


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(kind: str, data: Path, before: Path | None = None) -> dict[str, Any]:
    env = None
    if kind == "before" and before is not None:  # the loader of another checkout
        env = {**os.environ, "PYTHONPATH": str(before / "src")}
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", "load" if kind == "before" else kind, "--data",
         str(data)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    text = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{kind} run failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    result["kind"] = kind
    return result


def report(runs: list[dict[str, Any]]) -> int:
    bare = [r for r in runs if r["kind"] == "bare"]
    load = [r for r in runs if r["kind"] == "load"]
    print(f"{'run':<8}{'best s':>9}{'median s':>10}{'CPU s best':>12}{'peak RSS MB':>13}")
    for name in ("bare", "before", "load"):
        rs = [r for r in runs if r["kind"] == name]
        if not rs:
            continue
        secs = [r["seconds"] for r in rs]
        rss = max(r["peak_rss_mb"] for r in rs)
        cpu = min(r["cpu"] for r in rs)
        print(f"{name:<8}{min(secs):>9.3f}{statistics.median(secs):>10.3f}{cpu:>12.2f}{rss:>13.0f}")
    for name in ("before", "load"):
        rs = [r for r in runs if r["kind"] == name]
        if not rs:
            continue
        best = min(r["seconds"] for r in rs) / min(r["seconds"] for r in bare)
        med = statistics.median(r["seconds"] for r in rs) / statistics.median(
            r["seconds"] for r in bare
        )
        cpu = min(r["cpu"] for r in rs) / min(r["cpu"] for r in bare)
        print(
            f"{name} / bare: {best:.2f}x best-to-best, {med:.2f}x median (target <= 2x); "
            f"CPU seconds {cpu:.2f}x"
        )
    print(f"rows read by the bare run: {bare[0]['rows']:,}")
    failed = 0
    for name, d in load[0]["datasets"].items():
        excluded = sum(d["excluded"].values())
        ok = d["rows_in"] == d["used"] + d["rejected"] + excluded
        failed += not ok
        detail = ", ".join(f"{k} {v:,}" for k, v in d["excluded"].items()) or "none"
        print(
            f"  {name:<20} rows_in {d['rows_in']:>10,} = used {d['used']:>10,} + rejected "
            f"{d['rejected']:,} + excluded ({detail}){'' if ok else '  LEDGER DOES NOT BALANCE'}"
        )
    return 1 if failed else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--scale", type=float, default=45)
    ap.add_argument("--data", type=Path, help="an existing `qmskpi sample` folder")
    ap.add_argument(
        "--format",
        choices=["parquet", "csv"],
        default="parquet",
        help="what `qmskpi sample` writes (bare read: pl.read_parquet / pl.read_csv)",
    )
    ap.add_argument(
        "--before",
        type=Path,
        help="another checkout: its loader runs too, alternating (PYTHONPATH=BEFORE/src)",
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", choices=["bare", "load"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.data)
        return 0
    tmp = None
    data = args.data
    if data is None:
        tmp = Path(tempfile.mkdtemp(prefix="qmskpi-bench-load-"))
        data = tmp / "data"
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "qmskpi", "sample", "--out", str(data), "--format", args.format,
             "--scale", str(args.scale), "--end-month", PERIOD],
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        print(f"generated --scale {args.scale:g} in {time.perf_counter() - started:.1f} s")
    try:
        runs = []
        for _ in range(args.repeat):
            runs.append(run("bare", data))
            if args.before is not None:
                runs.append(run("before", data, args.before))
            runs.append(run("load", data))
        return report(runs)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
