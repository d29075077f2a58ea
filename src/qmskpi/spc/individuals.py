"""The XmR chart of individual values (and its moving-range chart)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from qmskpi.spc.assembly import _build, _setup
from qmskpi.spc.base import MR_LIMIT, SCREEN_LIMIT, XMR_LIMIT, Baseline, FloatArray, RuleSetName
from qmskpi.spc.inputs import _mean, _moving_ranges, _rules, _usable, _vector
from qmskpi.spc.results import ControlChart, Phase, RuleSet


def xmr(
    values: npt.ArrayLike,
    *,
    baseline: Baseline = None,
    rules: RuleSetName | RuleSet = "mdc",
    screen_outliers: bool = False,
    rebase: Sequence[int] | None = None,
) -> ControlChart:
    """XmR (individuals and moving range) chart.

    CL = x̄ of the baseline; UCL/LCL = x̄ ± 2.66·MR̄ where MR̄ is the mean of the
    baseline moving ranges |xᵢ − xᵢ₋₁|; σ = 2.66·MR̄/3. The MR chart
    (``c.mr_chart``) has CL = MR̄, UCL = 3.267·MR̄, LCL = 0.
    ``screen_outliers=True`` drops moving ranges ≥ 3.267·MR̄ and recomputes MR̄
    once (as NHSRplotthedots does); off by default, like the NHS England
    spreadsheet. The LCL is not floored: values may be negative.
    """
    return _individuals(_vector(values, "values"), baseline, _rules(rules), screen_outliers, rebase)


def _individuals(
    x: FloatArray,
    baseline: Baseline,
    ruleset: RuleSet,
    screen_outliers: bool,
    rebase: Sequence[int] | None,
    factor: float = XMR_LIMIT,
) -> ControlChart:
    """The XmR chart of ``x`` with limits x̄ ± factor·MR̄ (2.66 for XmR, 3/1.128 for t)."""
    n = x.shape[0]
    bounds, base = _setup(n, baseline, rebase)
    missing = np.isnan(x)
    center, half, mr_all, mr_bar_pt = (np.full(n, np.nan) for _ in range(4))
    phases: list[Phase] = []
    for start, stop in bounds:
        use = _usable(start, stop, base, missing)
        mean = _mean(x[use])
        mr, mr_base = _moving_ranges(x, start, stop, base)
        kept = np.flatnonzero(mr_base)
        mr_bar = _mean(mr[kept])
        screened: tuple[int, ...] = ()
        if screen_outliers and mr_bar > 0:
            outlier = mr[kept] >= SCREEN_LIMIT * mr_bar
            screened = tuple(int(i) for i in kept[outlier])
            mr_bar = _mean(mr[kept[~outlier]])
        center[start:stop] = mean
        half[start:stop] = factor * mr_bar
        mr_all[start:stop] = mr[start:stop]
        mr_bar_pt[start:stop] = mr_bar
        phases.append(
            Phase(start, stop, tuple(int(i) for i in np.flatnonzero(use)), mean, mr_bar, screened)
        )
    common: dict[str, Any] = {"bounds": bounds, "base": base, "phases": phases, "ruleset": ruleset}
    mr_chart = _build(
        "mr", mr_all, mr_bar_pt, np.zeros(n), missing=np.isnan(mr_all),
        lcl_factor=np.zeros(n), ucl_factor=np.full(n, MR_LIMIT), limits_only=True, **common,
    )  # fmt: skip
    return _build("xmr", x, center, half, missing=missing, dispersion=mr_chart, **common)
