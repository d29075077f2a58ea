"""Run every benchmark at a size that fits a developer machine (``make benchmark``).

Each benchmark prints its own ratios against a baseline measured in the same run;
see benchmarks/README.md for full-size runs and recorded results.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

RUNS = [
    ["bench_validation.py", "--rows", "1000000"],
    ["bench_kpis.py", "--scale", "0.1"],
    ["bench_load.py", "--scale", "10"],
    ["bench_pack.py"],
]


def main() -> int:
    failed = 0
    for script, *args in RUNS:
        print(f"== {script} {' '.join(args)}", flush=True)
        done = subprocess.run([sys.executable, str(HERE / script), *args], check=False)
        failed += done.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
