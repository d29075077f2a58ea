"""Which chart fits a KPI's series (:func:`auto_chart`): p or p′ (:func:`overdispersion`),
or a run chart or rare-event chart instead of limits."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, get_args

import numpy as np
import numpy.typing as npt

from qmskpi.errors import did_you_mean
from qmskpi.spc.assembly import _build, _frozen, _setup
from qmskpi.spc.attributes import (
    _laney,
    _proportions,
    c_chart,
    laney_p_chart,
    p_chart,
    u_chart,
)
from qmskpi.spc.base import (
    MIN_POINTS_FOR_LIMITS,
    OVERDISPERSION_SE,
    RARE_MEAN_COUNT,
    Baseline,
    KpiKind,
    RuleSetName,
    SpcError,
)
from qmskpi.spc.individuals import xmr
from qmskpi.spc.inputs import _moving_ranges, _same_length, _vector
from qmskpi.spc.rare import rare_events
from qmskpi.spc.results import ControlChart, Phase, RuleSet, _plural
from qmskpi.spc.runchart import run_chart


@dataclass(frozen=True)
class Overdispersion:
    """Laney's σ_z for a proportion series and the test :func:`auto_chart` uses.

    Under the binomial model σ_z ≈ 1 with standard error ≈ 0.91/√m for m moving
    ranges of z (Var |Δz| = 2 − 4/π, lag-1 covariance 0.163, /1.128). The data
    are over-dispersed when σ_z > 1 + 2·0.91/√m (about a 2.5 % one-sided test;
    e.g. 1.38 for 24 points), and then p′ is used instead of p.
    """

    sigma_z: float
    threshold: float
    moving_ranges: int

    @property
    def overdispersed(self) -> bool:
        return self.moving_ranges > 0 and self.sigma_z > self.threshold


def overdispersion(
    defectives: npt.ArrayLike,
    sizes: npt.ArrayLike,
    *,
    baseline: Baseline = None,
    rebase: Sequence[int] | None = None,
) -> Overdispersion:
    """σ_z of the last phase's baseline and whether it exceeds the threshold."""
    d, m, p, missing = _proportions(defectives, sizes)
    bounds, base = _setup(d.shape[0], baseline, rebase)
    pbar, sp, _, _, per_phase = _laney(d, m, p, missing, bounds, base)
    start, stop = bounds[-1]
    z = np.full(d.shape[0], np.nan)
    np.divide(p - pbar, sp, out=z, where=sp > 0)
    z = np.where((sp == 0) & ~np.isnan(p), 0.0, z)
    count = int(np.sum(_moving_ranges(z, start, stop, base)[1]))
    threshold = 1.0 + 2.0 * OVERDISPERSION_SE / math.sqrt(count) if count else math.inf
    return Overdispersion(per_phase[-1], threshold, count)


def _rescaled(chart: ControlChart, scale: float) -> ControlChart:
    if scale == 1.0:
        return chart
    return dataclasses.replace(
        chart,
        values=_frozen(chart.values * scale),
        center=_frozen(chart.center * scale),
        ucl=_frozen(chart.ucl * scale),
        lcl=_frozen(chart.lcl * scale),
        sigma=_frozen(chart.sigma * scale),
        phases=tuple(dataclasses.replace(ph, center=ph.center * scale) for ph in chart.phases),
    )


def auto_chart(
    kind: KpiKind,
    values: npt.ArrayLike | None = None,
    numerators: npt.ArrayLike | None = None,
    denominators: npt.ArrayLike | None = None,
    *,
    baseline: Baseline = None,
    rules: RuleSetName | RuleSet = "mdc",
    rebase: Sequence[int] | None = None,
    scale: float = 1.0,
    min_points: int | None = MIN_POINTS_FOR_LIMITS,
    rare_below: float | None = RARE_MEAN_COUNT,
) -> ControlChart:
    """The chart for a KPI of the given kind (DESIGN §5).

    ``continuous`` → XmR of ``values``; ``count`` → c chart of ``values`` (or
    ``numerators``); ``rate`` → u chart of numerators per denominator;
    ``proportion`` → p′ when :func:`overdispersion` says so, else p.
    ``scale`` multiplies the plotted rate or proportion (1e6 for ppm); signals
    do not change. ``c.chart`` names the chart chosen ("xmr", "c", "u", "p", "p'").

    Before any limits: a count, rate or proportion whose events (the counts or
    numerators) are :func:`rare_events` below ``rare_below`` gets a chart with
    ``status="rare_events"``: the values, no centre line, no limits, no signal.
    Otherwise a phase with fewer than ``min_points`` observed baseline points
    (default :data:`MIN_POINTS_FOR_LIMITS` = 12) gets a :func:`run_chart` of the
    plotted values (``status="run_chart"``). ``None`` turns either check off.
    ``c.reason`` says why, e.g. "9 points, fewer than the 12 needed for process limits".
    """
    kinds = get_args(KpiKind)
    if kind not in kinds:
        raise SpcError(
            f"unknown KPI kind {kind!r}; available: {', '.join(kinds)}"
            + did_you_mean(str(kind), kinds)
        )
    if not scale > 0 or not math.isfinite(scale):
        raise SpcError(f"scale must be a positive number, got {scale!r}")
    if kind in ("continuous", "count"):
        if scale != 1.0:
            raise SpcError(f"scale applies to rate and proportion KPIs, not {kind!r}")
        data = values if values is not None else numerators
        if data is None:
            raise SpcError(f"a {kind} KPI needs values")
        short = _no_limits(kind, data, None, None, baseline, rebase, min_points, rare_below)
        if short is not None:
            return short
        if kind == "continuous":
            return xmr(data, baseline=baseline, rules=rules, rebase=rebase)
        return c_chart(data, baseline=baseline, rules=rules, rebase=rebase)
    if numerators is None or denominators is None:
        raise SpcError(f"a {kind} KPI needs numerators and denominators")
    short = _no_limits(
        kind, numerators, denominators, scale, baseline, rebase, min_points, rare_below
    )
    if short is not None:
        return short
    if kind == "rate":
        chart = u_chart(numerators, denominators, baseline=baseline, rules=rules, rebase=rebase)
    elif overdispersion(numerators, denominators, baseline=baseline, rebase=rebase).overdispersed:
        chart = laney_p_chart(
            numerators, denominators, baseline=baseline, rules=rules, rebase=rebase
        )
    else:
        chart = p_chart(numerators, denominators, baseline=baseline, rules=rules, rebase=rebase)
    return _rescaled(chart, scale)


def _no_limits(
    kind: KpiKind,
    data: npt.ArrayLike,
    denominators: npt.ArrayLike | None,
    scale: float | None,
    baseline: Baseline,
    rebase: Sequence[int] | None,
    min_points: int | None,
    rare_below: float | None,
) -> ControlChart | None:
    """The rare-event or run chart :func:`auto_chart` draws instead of limits, or None."""
    num = _vector(data, "numerators" if denominators is not None else "values")
    den = None if denominators is None else _vector(denominators, "denominators")
    if den is not None:
        _same_length(num, den, "numerators and denominators")
        shown = np.full(num.shape[0], np.nan)
        np.divide(num, den, out=shown, where=(den > 0) & ~np.isnan(num))
        shown = shown * (scale or 1.0)
        observed = ~np.isnan(shown)
    else:
        shown = num
        observed = ~np.isnan(num)
    counts = np.where(observed, num, np.nan)
    if kind == "proportion" and den is not None:
        # a proportion is rare when either outcome is: few defectives, or few passes
        other = np.where(observed, den - num, np.nan)
        if float(np.nansum(other)) < float(np.nansum(counts)):
            counts = other
    bounds, base = _setup(num.shape[0], baseline, rebase)
    extra: dict[str, Any] = {"numerators": num, "denominators": den} if den is not None else {}
    if (
        kind != "continuous"
        and rare_below is not None
        and rare_events(counts, baseline=baseline, threshold=rare_below)
    ):
        use = base & observed
        mean, periods = float(np.mean(counts[use])), int(np.sum(use))
        reason = (
            f"mean {mean:.2g} a period over {_plural(periods, 'period')}, below {rare_below:g}: "
            "too rare for a chart of counts; the count is stated without a signal"
        )
        n = num.shape[0]
        nan = np.full(n, np.nan)
        chart = _build(
            "run", shown, nan, nan, bounds=bounds, base=base, missing=~observed,
            phases=[Phase(a, b, (), math.nan, math.nan) for a, b in bounds],
            ruleset=RuleSet("run"), limits=(nan, nan, nan), limits_only=True, **extra,
        )  # fmt: skip
        return dataclasses.replace(
            chart, signals=[frozenset()] * n, sides=_frozen(np.zeros(n, dtype=np.int64)),
            status="rare_events", reason=reason,
        )  # fmt: skip
    if min_points is None:
        return None
    fewest = min(int(np.sum((base & observed)[a:b])) for a, b in bounds)
    if fewest >= min_points:
        return None
    reason = f"{_plural(fewest, 'point')}, fewer than the {min_points} needed for process limits"
    if not (base & observed).any():
        return None  # nothing to draw: let the chart raise its own error
    return run_chart(shown, baseline=baseline, rebase=rebase, reason=reason, **extra)
