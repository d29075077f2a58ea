"""Scopes fanned out on Dask: one scheduled run of many scopes with 1 vs 2 (or more) workers.

Usage::

    .venv/bin/python benchmarks/bench_dask.py [--sites 50] [--months 36]
        [--workers 1 2] [--render pack|data] [--json out.json]

What it runs:

1. ``synthetic.sample`` writes ``--sites`` sites (``qmskpi sample --sites 50``)
   into a temporary folder: ``--sites`` + 1 scopes (``all`` and each site).
2. For each worker count ``w``, ``pipeline.run_scheduled(executor="dask",
   jobs=w, force=True)`` into a fresh reports folder: what ``qmskpi run
   --executor dask --jobs w --force`` does. It starts a ``LocalCluster`` of
   ``w`` worker processes (one thread each), so the wall time includes the
   cluster start and each worker's first imports (Great Expectations, polars),
   as a real run pays them.
3. Reports the wall seconds per worker count, the sum of the per-scope seconds
   (busy time), the efficiency ``busy / (wall * w)``, the longest scope, and the
   speed-up ``wall(1 worker) / wall(w workers)``. The load average before and
   after each run is printed: on a machine shared with other jobs the ratio
   moves with it.

``--render pack`` (default) renders every pack for real (kernel, HTML,
Chromium PDF). ``--render data`` replaces only the notebook/HTML/PDF step by a
stub that writes three small files (load, validation, KPIs, exports, lock,
staging and publish stay real): for a quick run where kernels and browsers
would not fit the time available. The report says which one ran.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
AS_OF = date(2026, 11, 5)  # the sample ends 2026-10: the last complete month


def data_only_render(stage_dir: Path, /, **kwargs: Any) -> Any:
    """Stand-in for the notebook, HTML and PDF (``--render data``): three small files."""
    from qmskpi import render

    parameters: Mapping[str, object] = kwargs["parameters"]
    stage_dir = Path(stage_dir)
    nb = stage_dir / "management-review.ipynb"
    nb.write_text(json.dumps({"scope": str(parameters["scope"])}))
    page = stage_dir / "management-review.html"
    page.write_text("<html><p>data-only benchmark</p></html>")
    pdf = None
    if kwargs["pdf"]:
        pdf = stage_dir / "management-review.pdf"
        pdf.write_bytes(b"%PDF-1.7 data-only benchmark")
    return render.RenderResult(nb, page, pdf, {"execute": 0.0, "html": 0.0, "pdf": 0.0})


def one_run(config: Path, reports: Path, workers: int, renderer: Any) -> dict[str, Any]:
    from qmskpi import pipeline

    cfg = pipeline.as_config(config).with_reports_dir(reports)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    outcomes = pipeline.run_scheduled(
        cfg, as_of=AS_OF, force=True, executor="dask", jobs=workers, renderer=renderer
    )
    wall = time.perf_counter() - start
    failed = [f"{o.scope}: {o.error}" for o in outcomes if o.status == "failed"]
    if failed:
        raise SystemExit(f"{len(failed)} scope(s) failed: {failed[:3]}")
    busy = sum(o.seconds for o in outcomes)
    return {
        "workers": workers,
        "scopes": len(outcomes),
        "wall_s": round(wall, 1),
        "busy_s": round(busy, 1),
        "efficiency": round(busy / (wall * workers), 2),
        "longest_scope_s": round(max(o.seconds for o in outcomes), 1),
        "longest_scope": max(outcomes, key=lambda o: o.seconds).scope,
        "load_before": round(load_before, 1),
        "load_after": round(os.getloadavg()[0], 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=50)
    ap.add_argument("--months", type=int, default=36)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--render", choices=("pack", "data"), default="pack")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)

    from qmskpi import synthetic

    renderer = data_only_render if args.render == "data" else None
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="qmskpi-bench-dask-") as tmp:
        data = Path(tmp) / "data"
        synthetic.sample(data, synthetic.SyntheticSpec(sites=args.sites, months=args.months))
        config = data / "qmskpi.toml"
        print(
            f"{args.sites} sites ({args.sites + 1} scopes), {args.months} months, "
            f"render={args.render}; {os.cpu_count()} cores, {platform.python_version()}",
            flush=True,
        )
        for w in args.workers:
            r = one_run(config, Path(tmp) / f"reports-{w}", w, renderer)
            results.append(r)
            print(json.dumps(r), flush=True)
    base = results[0]["wall_s"]
    print(
        f"\n| workers | wall s | busy s | efficiency | longest scope s | speed-up vs {results[0]['workers']} |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['workers']} | {r['wall_s']} | {r['busy_s']} | {r['efficiency']} | "
            f"{r['longest_scope_s']} ({r['longest_scope']}) | {base / r['wall_s']:.2f}x |"
        )
    if args.json:
        meta = {"sites": args.sites, "months": args.months, "render": args.render}
        Path(args.json).write_text(json.dumps({**meta, "runs": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    raise SystemExit(main())
