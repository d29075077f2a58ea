"""The run chart: values around their median, run-chart rules, no process limits."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from qmskpi.spc.assembly import _build, _setup
from qmskpi.spc.base import Baseline, BoolArray, FloatArray, SpcError
from qmskpi.spc.inputs import _same_length, _usable, _vector
from qmskpi.spc.results import ControlChart, Phase, RuleSet


def _medians(
    x: FloatArray, bounds: list[tuple[int, int]], base: BoolArray, missing: BoolArray
) -> tuple[FloatArray, list[Phase]]:
    """Median of each phase's usable baseline points, spread over the phase."""
    med = np.full(x.shape[0], np.nan)
    phases = []
    for start, stop in bounds:
        use = _usable(start, stop, base, missing)
        m = float(np.median(x[use]))
        med[start:stop] = m
        phases.append(Phase(start, stop, tuple(int(i) for i in np.flatnonzero(use)), m, math.nan))
    return med, phases


def run_chart(
    values: npt.ArrayLike,
    *,
    baseline: Baseline = None,
    rules: RuleSet | None = None,
    rebase: Sequence[int] | None = None,
    reason: str = "",
    numerators: npt.ArrayLike | None = None,
    denominators: npt.ArrayLike | None = None,
) -> ControlChart:
    """Run chart: the values around their median, with no process limits.

    CL = median of the baseline's observed values; ``ucl``, ``lcl`` and ``sigma``
    are NaN. Rules (Perla, Provost & Murray 2011, "The run chart", BMJ Qual Saf
    20:46-51; the NHS England run-chart guidance uses the same two): ``run_shift``,
    6 or more points in a row on one side of the median (points on the median
    neither count nor break it); ``run_trend``, 5 or more points all going up or
    all going down (a point equal to the one before is not counted). Every point
    of a shift or trend is flagged. Gaps (NaN) are skipped, as on control charts.
    ``RuleSet("run", run_length=..., trend_length=...)`` changes the lengths.
    ``numerators``/``denominators`` travel with the points (p, u charts shown as
    run charts). :func:`variation` gives ``"run_chart"``, :func:`assurance` None.
    """
    ruleset = rules if rules is not None else RuleSet("run")
    if ruleset.name != "run":
        raise SpcError(f"a run chart uses the 'run' rules, not {ruleset.name!r}")
    x = _vector(values, "values")
    n = x.shape[0]
    bounds, base = _setup(n, baseline, rebase)
    missing = np.isnan(x)
    center, phases = _medians(x, bounds, base, missing)
    nan = np.full(n, np.nan)
    extra: dict[str, Any] = {}
    for name, data in (("numerators", numerators), ("denominators", denominators)):
        if data is not None:
            arr = _vector(data, name)
            _same_length(x, arr, f"values and {name}")
            extra[name] = arr
    chart = _build(
        "run", x, center, nan, bounds=bounds, base=base, missing=missing, phases=phases,
        ruleset=ruleset, limits=(nan, nan, nan), **extra,
    )  # fmt: skip
    return dataclasses.replace(chart, status="run_chart", reason=reason)
