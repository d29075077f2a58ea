"""Stage-by-stage timing of one management-review pack, against a bare papermill + nbconvert run.

Usage::

    .venv/bin/python benchmarks/bench_pack.py [--config sample_data/qmskpi.toml]
        [--period 2026-10] [--scope all] [--repeat 2] [--json out.json]

Measured in one process, in this order:

1. **baseline**: papermill executes a notebook with one empty cell (plain
   ``papermill.execute_notebook``, ``python3`` kernel) and nbconvert exports it
   with the stock ``lab`` template; measured before and after the packs, the
   quicker one counts. Every ratio below is "stage seconds / baseline
   seconds", so results from slower or faster machines compare.
2. **pack** (``--repeat`` times): ``pipeline.run_review(..., force=True)`` into
   a temporary reports folder, with one Chromium shared by the repeats (as
   ``qmskpi run`` does). Stage timings come from the published
   ``manifest.json``: load, validate, compute, exports, execute, html, pdf.
   The first repeat pays the one-off imports (Great Expectations, polars,
   playwright) like a fresh ``qmskpi render`` process; later repeats are warm,
   like the second scope of ``qmskpi run``. Before ``pipeline.run_review``
   existed this timed ``render.render_pack`` alone (execute, html, pdf).

Target (issue 6): the whole pack, HTML and PDF, in <= 10 s wall for one scope on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 10.0
STAGES = ("load", "validate", "compute", "exports", "execute", "html", "pdf")


def baseline(work: Path) -> dict[str, float]:
    """Seconds of a bare papermill run of an empty notebook and its nbconvert HTML export."""
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells.append(nbformat.v4.new_code_cell(""))
    src, out = work / "empty.ipynb", work / "empty.out.ipynb"
    nbformat.write(nb, src)
    start = time.perf_counter()
    papermill.execute_notebook(str(src), str(out), kernel_name="python3", progress_bar=False)
    executed = time.perf_counter()
    body, _ = HTMLExporter(template_name="lab").from_filename(str(out))
    (work / "empty.html").write_text(body, encoding="utf-8")
    done = time.perf_counter()
    return {
        "papermill": round(executed - start, 3),
        "nbconvert": round(done - executed, 3),
        "total": round(done - start, 3),
    }


def pack_with_pipeline(
    config: Path, period: str, scope: str, reports: Path, printer: Any
) -> dict[str, float]:
    from qmskpi import pipeline

    cfg = pipeline.as_config(config).with_reports_dir(reports)
    start = time.perf_counter()
    outcome = pipeline.run_review(cfg, period, scope, force=True, browser=printer)
    wall = time.perf_counter() - start
    if not outcome.ok:
        raise SystemExit(f"run_review failed: {outcome.error}")
    manifest = json.loads((Path(str(outcome.pack_dir)) / "manifest.json").read_text())
    t = manifest["timings"]
    return {
        "load": t.get("load", 0.0),
        "validate": t.get("validate", 0.0),
        "compute": t.get("compute", 0.0),
        "exports": t.get("exports", 0.0),
        "execute": t.get("render.execute", 0.0),
        "html": t.get("render.html", 0.0),
        "pdf": t.get("render.pdf", 0.0),
        "wall": round(wall, 3),
    }


def pack_render_only(
    config: Path, period: str, scope: str, work: Path, printer: Any
) -> dict[str, float]:
    """Before pipeline.run_review: the packaged notebook computes its own review model."""
    from qmskpi import render

    start = time.perf_counter()
    result = render.render_pack(
        work / f"stage-{time.monotonic_ns()}",
        parameters={
            "period": period,
            "scope": scope,
            "config_path": str(config),
            "review_inputs": "",
        },
        title=f"benchmark {period} ({scope})",
        browser=printer,
    )
    return {**result.timings, "wall": round(time.perf_counter() - start, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "sample_data" / "qmskpi.toml")
    parser.add_argument("--period", default="2026-10")
    parser.add_argument("--scope", default="all")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    from qmskpi import render

    try:
        from qmskpi import pipeline

        use_pipeline = hasattr(pipeline, "run_review")
    except ImportError:
        use_pipeline = False

    runs: list[dict[str, float]] = []
    load_before = os.getloadavg()[0]

    def one(work: Path, printer: Any) -> None:
        if use_pipeline:
            run = pack_with_pipeline(
                args.config, args.period, args.scope, work / "reports", printer
            )
        else:
            run = pack_render_only(args.config, args.period, args.scope, work, printer)
        runs.append(run)
        print(f"run {len(runs)}: {run['wall']:.2f} s", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="qmskpi-bench-") as tmp:
        work = Path(tmp)
        bases = [baseline(work)]
        # run 1 as `qmskpi render` does it: cold imports, its own Chromium
        one(work, None)
        # runs 2..n as `qmskpi run` renders further scopes: one Chromium for all
        printer_start = time.perf_counter()
        with render.PdfPrinter() as printer:
            printer.start()
            browser_s = round(time.perf_counter() - printer_start, 3)
            for _ in range(args.repeat - 1):
                one(work, printer)
        bases.append(baseline(work))
    # the quicker of the two baselines (before and after the packs): the least disturbed one
    base = min(bases, key=lambda b: b["total"])

    print(
        f"\nqmskpi pack benchmark · {args.period} / {args.scope} · {platform.node()} · {os.cpu_count()} cores"
    )
    print(
        f"baseline (empty notebook): papermill {base['papermill']:.2f} s + nbconvert "
        f"{base['nbconvert']:.2f} s = {base['total']:.2f} s"
    )
    print(f"Chromium start (shared by runs 2..n): {browser_s:.2f} s")
    load_after = os.getloadavg()[0]
    print(
        f"load average (1 min) before/after: {load_before:.1f}/{load_after:.1f}"
        + ("  -- the machine was busy: timings are inflated" if load_before > 1.5 else "")
        + "\n"
    )
    header = f"{'stage':<10}" + "".join(f"{'run ' + str(i + 1):>16}" for i in range(len(runs)))
    print(header)
    for stage in (*STAGES, "wall"):
        cells = []
        for run in runs:
            if stage in run:
                cells.append(f"{run[stage]:>7.2f} s {run[stage] / base['total']:>5.2f}x")
            else:
                cells.append(f"{'-':>16}")
        print(f"{stage:<10}" + "".join(f"{c:>16}" for c in cells))
    cold = runs[0]["wall"]
    warm = min(r["wall"] for r in runs[1:]) if len(runs) > 1 else cold
    print(
        f"\none scope, cold process (run 1, its own Chromium): {cold:.2f} s "
        f"({'meets' if cold <= TARGET_S else 'misses'} the {TARGET_S:.0f} s target)"
    )
    print(
        f"one scope, warm (another scope of the same run): {warm:.2f} s "
        f"({'meets' if warm <= TARGET_S else 'misses'} the {TARGET_S:.0f} s target)"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "baseline": base,
                    "baselines": bases,
                    "browser_start": browser_s,
                    "runs": runs,
                    "target_s": TARGET_S,
                    "load_average": [load_before, load_after],
                },
                indent=2,
                sort_keys=True,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
