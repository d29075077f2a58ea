"""Charts of subgroup means: Xbar-R (with the R chart) and Xbar-S (with the S chart)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from qmskpi.spc.assembly import _build, _setup
from qmskpi.spc.base import Baseline, RuleSetName, SpcError
from qmskpi.spc.factors import constants
from qmskpi.spc.inputs import _mean, _rules, _subgroups, _usable
from qmskpi.spc.results import ControlChart, Phase, RuleSet


def _xbar(
    subgroups: npt.ArrayLike | Sequence[Sequence[float]],
    baseline: Baseline,
    rules: RuleSetName | RuleSet,
    rebase: Sequence[int] | None,
    kind: Literal["r", "s"],
) -> ControlChart:
    ruleset = _rules(rules)
    data = _subgroups(subgroups)
    k = data.shape[0]
    sizes = np.sum(~np.isnan(data), axis=1).astype(np.int64)
    if sizes.max() > 25:
        raise SpcError(f"subgroups of {int(sizes.max())} measurements: the constants stop at 25")
    missing = sizes < 2
    bounds, base = _setup(k, baseline, rebase)
    means, stat = np.full(k, np.nan), np.full(k, np.nan)
    rows = np.flatnonzero(~missing)
    means[rows] = [_mean(r[~np.isnan(r)]) for r in data[rows]]
    if kind == "r":
        stat[rows] = [float(np.ptp(r[~np.isnan(r)])) for r in data[rows]]
    else:
        stat[rows] = [float(np.std(r[~np.isnan(r)], ddof=1)) for r in data[rows]]
    # unbiasing constant (d2 or c4) and limit factors for each point's own n
    n_eff = sizes.copy()
    center, stat_center, a_factor = np.full(k, np.nan), np.full(k, np.nan), np.full(k, np.nan)
    lo_factor, hi_factor = np.full(k, np.nan), np.full(k, np.nan)
    phases: list[Phase] = []
    for start, stop in bounds:
        use = _usable(start, stop, base, missing)
        seg = slice(start, stop)
        known = n_eff[seg][n_eff[seg] >= 2]
        n_eff[seg] = np.where(n_eff[seg] >= 2, n_eff[seg], np.bincount(known).argmax())
        tab = [constants(int(n)) for n in n_eff[seg]]
        unbias = np.array([t.d2 if kind == "r" else t.c4 for t in tab])
        sigma_hat = float(np.mean(stat[use] / unbias[use[seg]]))
        first = means[use][0]
        grand = float(first + np.sum((means[use] - first) * sizes[use]) / np.sum(sizes[use]))
        center[seg] = grand
        stat_center[seg] = unbias * sigma_hat
        a_factor[seg] = 3.0 / (unbias * np.sqrt(n_eff[seg]))  # A2 or A3, unrounded
        lo_factor[seg] = [t.D3 if kind == "r" else t.B3 for t in tab]
        hi_factor[seg] = [t.D4 if kind == "r" else t.B4 for t in tab]
        spread = float(np.mean(stat[use]))
        phases.append(Phase(start, stop, tuple(int(i) for i in np.flatnonzero(use)), grand, spread))
    common: dict[str, Any] = {
        "bounds": bounds, "base": base, "phases": phases, "ruleset": ruleset,
        "missing": missing, "sizes": sizes,
    }  # fmt: skip
    sub = _build(
        kind, stat, stat_center, np.zeros(k), lcl_factor=lo_factor, ucl_factor=hi_factor,
        limits_only=True, **common,
    )  # fmt: skip
    return _build(
        "xbar_r" if kind == "r" else "xbar_s", means, center, a_factor * stat_center,
        dispersion=sub, **common,
    )  # fmt: skip


def xbar_r(
    subgroups: npt.ArrayLike | Sequence[Sequence[float]],
    *,
    baseline: Baseline = None,
    rules: RuleSetName | RuleSet = "mdc",
    rebase: Sequence[int] | None = None,
) -> ControlChart:
    """Xbar-R chart of subgroup means, with the R chart as ``c.range_chart``.

    ``subgroups`` is k × n (rows may be ragged or NaN-padded; 2 ≤ n ≤ 25).
    CL = x̿ (mean of the baseline measurements); UCL/LCL = x̿ ± 3·R̄/(d₂√n); R chart
    CL = R̄, UCL = D₄·R̄, LCL = D₃·R̄. A subgroup with < 2 measurements is missing.
    """
    return _xbar(subgroups, baseline, rules, rebase, "r")


def xbar_s(
    subgroups: npt.ArrayLike | Sequence[Sequence[float]],
    *,
    baseline: Baseline = None,
    rules: RuleSetName | RuleSet = "mdc",
    rebase: Sequence[int] | None = None,
) -> ControlChart:
    """Xbar-S chart of subgroup means, with the S chart as ``c.sd_chart``.

    CL = x̿; UCL/LCL = x̿ ± 3·s̄/(c₄√n) (s: sample SD, n − 1 divisor); S chart CL = s̄,
    UCL = B₄·s̄, LCL = B₃·s̄. A subgroup with < 2 measurements is missing.
    """
    return _xbar(subgroups, baseline, rules, rebase, "s")
